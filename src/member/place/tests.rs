use super::*;
use crate::engine::ids::Gvsn;
use crate::engine::update::tests::sample;
use crate::engine::update::FILE_ATTRIBUTE_DIRECTORY;

const GROUP: Guid = Guid([0x77; 16]);
const FOLDER: Guid = Guid([0xcc; 16]);
const PARTNER: Guid = Guid([0x99; 16]);

/// Records what the meet was asked; refuses paths listed in `busy` with
/// SHARING_VIOLATION.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    busy: Vec<String>,
}

impl Meet for Recorder {
    fn install(&mut self, _share: &str, path: &str, _staged: &str, _uid: &str, lost: bool) -> Result<(), MeetError> {
        if self.busy.iter().any(|b| b == path) {
            return Err(MeetError { status: NtStatus::SHARING_VIOLATION, reason: format!("{path} is open") });
        }
        self.calls.push(format!("install {path}{}", if lost { " lost" } else { "" }));
        Ok(())
    }
    fn remove(&mut self, _share: &str, path: &str, _uid: &str) -> Result<(), MeetError> {
        self.calls.push(format!("remove {path}"));
        Ok(())
    }
    fn move_path(&mut self, _share: &str, from: &str, to: &str) -> Result<(), MeetError> {
        self.calls.push(format!("move {from} {to}"));
        Ok(())
    }
    fn seen(&mut self, _share: &str, _path: &str) -> Option<crate::store::placed::Seen> {
        None
    }
}

struct World {
    dir: std::path::PathBuf,
    db: Database,
    staging: StagingArea,
    placed: PlacedStore,
    next: u64,
}

impl World {
    fn new(tag: &str) -> World {
        let dir = std::env::temp_dir().join(format!("dfsr-place-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("staging")).unwrap();
        World {
            db: Database::open(&dir.join("dfsr.tdb")).unwrap(),
            staging: StagingArea::new(dir.join("staging")),
            placed: PlacedStore::open(&dir.join("placed.tdb")).unwrap(),
            dir,
            next: 1,
        }
    }

    /// Stores a version (staged file included) of `uid` under `parent`.
    fn put(&mut self, uid: Uid, parent: Uid, name: &str, dir: bool, present: bool) -> Update {
        let v = self.next;
        self.next += 1;
        let mut u = sample(uid, Gvsn::new(PARTNER, v), parent, name);
        u.present = present;
        if dir {
            u.attributes = FILE_ATTRIBUTE_DIRECTORY;
        }
        std::fs::write(self.staging.path_of(&u.gvsn), b"staged").unwrap();
        self.db.transaction(|tx| tx.put_update(&u).map(|_| ())).unwrap();
        u
    }

    fn run(&mut self, p: &mut FolderPlacer, meet: &mut Recorder) -> PlaceReport {
        p.run(&self.db, &self.staging, &mut self.placed, meet).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uid(n: u64) -> Uid {
    Uid::new(PARTNER, 1000 + n)
}

#[test]
fn parents_first_then_moves_and_removals_children_first() {
    let mut w = World::new("order");
    let root = Uid::root_of(FOLDER);
    // Stored child before parent: the placer still goes parents first.
    w.put(uid(2), uid(1), "f", false, true);
    w.put(uid(1), root, "d", true, true);
    let mut p = FolderPlacer::load(&w.db, &w.placed, GROUP, FOLDER, "data").unwrap();
    let mut m = Recorder::default();
    let r = w.run(&mut p, &mut m);
    // d again after its child: its times are set back to the staged ones.
    assert_eq!(m.calls, ["install d", "install d/f", "install d"]);
    assert_eq!((r.installed, p.pending()), (2, 0));
    // Nothing changed: nothing done.
    p.touch([uid(1), uid(2)]);
    w.run(&mut p, &mut m);
    assert_eq!(m.calls.len(), 3);
    // A rename of the directory: one move; the file keeps its place.
    let d = w.put(uid(1), root, "e", true, true);
    p.touch([d.uid]);
    w.run(&mut p, &mut m);
    assert_eq!(&m.calls[3..], ["move d e", "install e"]);
    // Both deleted: the file goes before its directory.
    w.put(uid(1), root, "e", true, false);
    w.put(uid(2), uid(1), "f", false, false);
    p.touch([uid(1), uid(2)]);
    let r = w.run(&mut p, &mut m);
    assert_eq!(&m.calls[5..], ["remove e/f", "remove e"]);
    assert_eq!(r.removed, 2);
    assert!(p.placed().is_empty());
}

#[test]
fn what_was_placed_survives_a_restart_and_an_open_file_waits() {
    let mut w = World::new("restart");
    let root = Uid::root_of(FOLDER);
    w.put(uid(1), root, "a", false, true);
    w.put(uid(2), root, "b", false, true);
    let mut p = FolderPlacer::load(&w.db, &w.placed, GROUP, FOLDER, "data").unwrap();
    let mut m = Recorder { busy: vec!["b".into()], ..Default::default() };
    let r = w.run(&mut p, &mut m);
    assert_eq!((r.installed, r.deferred, p.pending()), (1, 1, 1));
    assert!(r.last_error.unwrap().contains("open"));
    // A restart loads what was placed: only b is installed.
    let mut p = FolderPlacer::load(&w.db, &w.placed, GROUP, FOLDER, "data").unwrap();
    let mut m = Recorder::default();
    w.run(&mut p, &mut m);
    assert_eq!(m.calls, ["install b"]);
}

#[test]
fn a_name_is_freed_by_the_file_moving_away_or_kept_as_a_conflict() {
    let mut w = World::new("names");
    let root = Uid::root_of(FOLDER);
    w.put(uid(1), root, "x", false, true);
    let mut p = FolderPlacer::load(&w.db, &w.placed, GROUP, FOLDER, "data").unwrap();
    let mut m = Recorder::default();
    w.run(&mut p, &mut m);
    // x is renamed to y and a new file takes x, stored in that order but
    // placed so that nothing is overwritten.
    // (uid 0 sorts first: the occupant must be moved out of its way.)
    w.put(uid(0), root, "x", false, true);
    w.put(uid(1), root, "y", false, true);
    p.touch([uid(0), uid(1)]);
    w.run(&mut p, &mut m);
    assert_eq!(&m.calls[1..], ["move x y", "install y", "install x"]);
    // A third file with the name y while y stays: y's file lost the name.
    w.put(uid(3), root, "y", false, true);
    p.touch([uid(3)]);
    let r = w.run(&mut p, &mut m);
    assert_eq!(m.calls.last().unwrap(), "install y lost");
    assert_eq!(r.conflicts, 1);
    assert!(!p.placed().contains_key(&uid(1)));
}
