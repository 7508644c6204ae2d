use super::*;
use crate::staging::writer::FileHeader;
use crate::store::staged_file::{self, CreateSpec};

const GROUP: Guid = Guid([0x71; 16]);
const FOLDER: Guid = Guid([0xc1; 16]);

/// Stages from the file system (no security descriptor), counting calls.
struct FsReader {
    root: PathBuf,
    calls: Vec<String>,
    busy: Vec<String>,
}

impl LocalReader for FsReader {
    fn stage(&mut self, relpath: &str, out: &Path) -> Result<StagedLocal, ReadError> {
        self.calls.push(relpath.to_string());
        if self.busy.iter().any(|b| b == relpath) {
            return Err(ReadError { status: Some(NtStatus::SHARING_VIOLATION), reason: "open".into() });
        }
        let path = self.root.join(relpath);
        let md = std::fs::metadata(&path).map_err(|e| ReadError { status: None, reason: e.to_string() })?;
        let empty = out.with_extension("empty");
        std::fs::write(&empty, b"").unwrap();
        let mtime = crate::meet::nttime(md.modified().unwrap());
        let attributes = if md.is_dir() { 0x10 } else { 0x20 };
        let spec = CreateSpec {
            data: if md.is_dir() { empty.clone() } else { path.clone() },
            streams: Vec::new(),
            header: FileHeader { security: None, attributes, times: [0, mtime as i64, mtime as i64, mtime as i64], reparse: None },
            sparse: false,
        };
        let hash = staged_file::create(&spec, out).map_err(|e| ReadError { status: None, reason: e.to_string() })?;
        let _ = std::fs::remove_file(&empty);
        Ok(StagedLocal { hash, attributes, create_time: 0, is_dir: md.is_dir(), size: if md.is_dir() { 0 } else { md.len() } })
    }
}

struct World {
    dir: PathBuf,
    root: PathBuf,
    db: Database,
    staging: StagingArea,
    placed: HashMap<Uid, Placed>,
    reader: FsReader,
    clock: u64,
    revert: bool,
}

impl World {
    fn new(tag: &str) -> World {
        let dir = std::env::temp_dir().join(format!("dfsr-scan-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("share");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.join("staging")).unwrap();
        let db = Database::open(&dir.join("db.tdb")).unwrap();
        let reader = FsReader { root: root.clone(), calls: Vec::new(), busy: Vec::new() };
        World { staging: StagingArea::new(dir.join("staging")), dir, root, db, placed: HashMap::new(), reader, clock: 130_000_000_000_000_000, revert: false }
    }

    fn scan(&mut self) -> ScanReport {
        self.reader.calls.clear();
        let scan = Scan { group: GROUP, folder: FOLDER, root: &self.root, staging: &self.staging, revert: self.revert };
        let mut clock = self.clock;
        let (report, changes) = scan
            .run(&mut self.db, &self.placed, &HashSet::new(), &mut self.reader, &mut || {
                clock += 10;
                clock
            })
            .unwrap();
        self.clock = clock;
        for c in changes {
            match c {
                PlacedChange::Put(_, uid, p) => {
                    self.placed.insert(uid, p);
                }
                PlacedChange::Remove(_, uid) => {
                    self.placed.remove(&uid);
                }
            }
        }
        report
    }

    /// The live tree in the database as "path" strings, sorted.
    fn live_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for uid in self.db.folder_uids(&FOLDER).unwrap() {
            let Some(u) = self.db.update(&uid).unwrap() else { continue };
            if !u.present || uid == Uid::root_of(FOLDER) {
                continue;
            }
            let mut parts = vec![u.name.clone()];
            let mut at = u.parent;
            while at != Uid::root_of(FOLDER) {
                let p = self.db.update(&at).unwrap().unwrap();
                parts.push(p.name.clone());
                at = p.parent;
            }
            parts.reverse();
            out.push(parts.join("/"));
        }
        out.sort();
        out
    }

    fn uid_of(&self, name: &str) -> Uid {
        *self.placed.iter().find(|(_, p)| p.name == name).unwrap().0
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_new_tree_becomes_creates_with_staged_files_and_a_second_scan_opens_nothing() {
    let mut w = World::new("new");
    std::fs::create_dir_all(w.root.join("a/b")).unwrap();
    std::fs::write(w.root.join("a/b/f.txt"), b"hello").unwrap();
    std::fs::write(w.root.join("top.txt"), b"top").unwrap();
    std::fs::create_dir_all(w.root.join("DfsrPrivate/Installing")).unwrap();
    std::fs::write(w.root.join("DfsrPrivate/Installing/x"), b"meet's").unwrap();
    let r = w.scan();
    assert_eq!((r.created, r.modified, r.moved, r.deleted, r.failed), (4, 0, 0, 0, 0), "{r:?}");
    assert_eq!(w.live_paths(), ["a", "a/b", "a/b/f.txt", "top.txt"]);
    for uid in w.db.folder_uids(&FOLDER).unwrap() {
        let u = w.db.update(&uid).unwrap().unwrap();
        if uid != Uid::root_of(FOLDER) {
            assert!(w.staging.path_of(&u.gvsn).exists(), "{} has no staged file", u.name);
        }
    }
    let r = w.scan();
    assert_eq!(r.changes(), 0, "{r:?}");
    assert!(w.reader.calls.is_empty(), "unchanged files were opened: {:?}", w.reader.calls);
    // No temporaries left behind.
    let left: Vec<_> = std::fs::read_dir(w.staging.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn writes_renames_moves_and_deletes_become_versions_of_the_same_uid() {
    let mut w = World::new("changes");
    std::fs::create_dir_all(w.root.join("d")).unwrap();
    for n in ["one", "two", "three", "four"] {
        std::fs::write(w.root.join(n), n.as_bytes()).unwrap();
    }
    w.scan();
    let (one, two, three) = (w.uid_of("one"), w.uid_of("two"), w.uid_of("three"));
    let before = w.db.update(&one).unwrap().unwrap();
    let d_before = w.db.update(&w.uid_of("d")).unwrap().unwrap().gvsn;
    std::fs::write(w.root.join("one"), b"one, longer now").unwrap();
    std::fs::rename(w.root.join("two"), w.root.join("deux")).unwrap();
    std::fs::rename(w.root.join("three"), w.root.join("d/three")).unwrap();
    std::fs::remove_file(w.root.join("four")).unwrap();
    let r = w.scan();
    assert_eq!((r.created, r.modified, r.moved, r.deleted, r.failed), (0, 1, 2, 1, 0), "{r:?}");
    assert_eq!(w.live_paths(), ["d", "d/three", "deux", "one"]);
    let after = w.db.update(&one).unwrap().unwrap();
    assert_ne!(after.hash, before.hash);
    assert!(after.gvsn.version > before.gvsn.version);
    assert_eq!(w.db.update(&two).unwrap().unwrap().name, "deux");
    assert_eq!(w.db.update(&three).unwrap().unwrap().parent, w.uid_of("d"));
    // The directory whose children changed is not a new version.
    assert_eq!(w.db.update(&w.uid_of("d")).unwrap().unwrap().gvsn, d_before);
    assert_eq!(w.scan().changes(), 0);
}

#[test]
fn a_replaced_file_is_a_tombstone_and_a_create_and_a_busy_file_waits() {
    let mut w = World::new("replace");
    std::fs::write(w.root.join("doc"), b"v1").unwrap();
    w.scan();
    let old = w.uid_of("doc");
    // An editor's save: the new file takes the name, the old one is gone.
    std::fs::write(w.root.join("doc.tmp"), b"v2").unwrap();
    std::fs::rename(w.root.join("doc.tmp"), w.root.join("doc")).unwrap();
    let r = w.scan();
    assert_eq!((r.created, r.deleted, r.failed), (1, 1, 0), "{r:?}");
    assert!(!w.db.update(&old).unwrap().unwrap().present);
    assert_eq!(w.live_paths(), ["doc"]);
    // Held open by a client: not staged, not lost, staged by the next scan.
    std::fs::write(w.root.join("open"), b"being written").unwrap();
    w.reader.busy.push("open".into());
    let r = w.scan();
    assert_eq!((r.created, r.busy), (0, 1), "{r:?}");
    w.reader.busy.clear();
    let r = w.scan();
    assert_eq!(r.created, 1, "{r:?}");
    assert_eq!(w.live_paths(), ["doc", "open"]);
}

#[test]
fn a_read_only_member_undoes_local_changes_and_originates_nothing() {
    let mut w = World::new("readonly");
    std::fs::create_dir_all(w.root.join("d")).unwrap();
    for n in ["edited", "deleted", "moved"] {
        std::fs::write(w.root.join(n), n.as_bytes()).unwrap();
    }
    w.scan();
    let before = w.live_paths();
    let ids: Vec<Uid> = ["edited", "deleted", "moved"].iter().map(|n| w.uid_of(n)).collect();
    w.revert = true;
    std::fs::write(w.root.join("edited"), b"a local edit").unwrap();
    std::fs::remove_file(w.root.join("deleted")).unwrap();
    std::fs::rename(w.root.join("moved"), w.root.join("d/moved")).unwrap();
    std::fs::create_dir_all(w.root.join("new/inner")).unwrap();
    std::fs::write(w.root.join("new/inner/f"), b"x").unwrap();
    let r = w.scan();
    assert_eq!(r.changes(), 0, "{r:?}");
    assert_eq!(w.live_paths(), before, "a read-only member made versions");
    let mut got = r.reverts.clone();
    got.sort_by_key(|x| format!("{x:?}"));
    let mut want = vec![
        Revert::Reinstall { uid: ids[0], keep_local: true },
        Revert::Reinstall { uid: ids[1], keep_local: false },
        Revert::MoveBack { from: "d/moved".into(), uid: ids[2] },
        Revert::Remove { path: "new".into() },
        Revert::Remove { path: "new/inner".into() },
        Revert::Remove { path: "new/inner/f".into() },
    ];
    want.sort_by_key(|x| format!("{x:?}"));
    assert_eq!(got, want);
    // Children are listed after their directory (removed first, in reverse).
    let order: Vec<&Revert> = r.reverts.iter().filter(|x| matches!(x, Revert::Remove { .. })).collect();
    assert_eq!(order.first(), Some(&&Revert::Remove { path: "new".into() }));
}
