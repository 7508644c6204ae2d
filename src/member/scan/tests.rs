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
    /// The next scan's paths (None: the whole folder).
    scope: Option<Scope>,
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
        World { staging: StagingArea::new(dir.join("staging")), dir, root, db, placed: HashMap::new(), reader, clock: 130_000_000_000_000_000, revert: false, scope: None }
    }

    fn scan(&mut self) -> ScanReport {
        self.reader.calls.clear();
        let scan = Scan { group: GROUP, folder: FOLDER, root: &self.root, staging: &self.staging, revert: self.revert, scope: self.scope.as_ref() };
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

    /// A scan of only these paths.
    fn scan_paths(&mut self, paths: &[&str]) -> ScanReport {
        self.scope = Some(Scope::of(paths.iter().copied()).expect("paths below the root"));
        let r = self.scan();
        self.scope = None;
        r
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
fn a_file_replaced_by_rename_keeps_its_uid_and_a_busy_file_waits() {
    let mut w = World::new("replace");
    std::fs::write(w.root.join("doc"), b"v1").unwrap();
    w.scan();
    let old = w.uid_of("doc");
    // A save by rename over the original: the new file takes the name and the
    // old one is gone, which is a new version of the same file, not a
    // tombstone and a create (partners would otherwise see a delete).
    std::fs::write(w.root.join("doc.tmp"), b"v2").unwrap();
    std::fs::rename(w.root.join("doc.tmp"), w.root.join("doc")).unwrap();
    let r = w.scan();
    assert_eq!((r.created, r.modified, r.deleted, r.failed), (0, 1, 0, 0), "{r:?}");
    assert!(w.db.update(&old).unwrap().unwrap().present);
    assert_eq!(w.uid_of("doc"), old);
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

/// An editor's save: the new content written to a temporary, the original
/// renamed to a backup, the temporary renamed over it, the backup deleted.
fn editor_save(root: &Path, name: &str, content: &[u8]) {
    std::fs::write(root.join("~tmp"), content).unwrap();
    std::fs::rename(root.join(name), root.join("backup.bak")).unwrap();
    std::fs::rename(root.join("~tmp"), root.join(name)).unwrap();
    std::fs::remove_file(root.join("backup.bak")).unwrap();
}

#[test]
fn an_editor_save_is_a_new_version_of_the_same_uid() {
    for limited in [false, true] {
        let mut w = World::new(if limited { "save-limited" } else { "save" });
        std::fs::write(w.root.join("doc.txt"), b"first draft").unwrap();
        std::fs::write(w.root.join("other.txt"), b"other").unwrap();
        w.scan();
        let uid = w.uid_of("doc.txt");
        let before = w.db.update(&uid).unwrap().unwrap();
        editor_save(&w.root, "doc.txt", b"second draft, longer");
        let r = if limited {
            w.scan_paths(&["~tmp", "doc.txt", "backup.bak"])
        } else {
            w.scan()
        };
        assert_eq!((r.created, r.modified, r.moved, r.deleted, r.failed), (0, 1, 0, 0, 0), "limited {limited}: {r:?}");
        assert_eq!(w.uid_of("doc.txt"), uid, "the save made a new file");
        let after = w.db.update(&uid).unwrap().unwrap();
        assert!(after.present);
        assert_ne!(after.hash, before.hash, "the new content is not the version's");
        assert!(after.gvsn.version > before.gvsn.version);
        assert_eq!(w.live_paths(), ["doc.txt", "other.txt"]);
        // Saved again with the same bytes: nothing new.
        editor_save(&w.root, "doc.txt", b"second draft, longer");
        let r = w.scan();
        assert_eq!(r.deleted + r.created, 0, "{r:?}");
        assert_eq!(w.uid_of("doc.txt"), uid);
    }
}

#[test]
fn a_directory_replaced_by_a_file_of_its_name_is_a_delete_and_a_create() {
    let mut w = World::new("save-dir");
    std::fs::create_dir(w.root.join("thing")).unwrap();
    w.scan();
    let dir = w.uid_of("thing");
    std::fs::remove_dir(w.root.join("thing")).unwrap();
    std::fs::write(w.root.join("thing"), b"now a file").unwrap();
    let r = w.scan();
    assert_eq!((r.created, r.deleted), (1, 1), "{r:?}");
    assert_ne!(w.uid_of("thing"), dir);
}

#[test]
fn a_limited_scan_looks_only_at_recorded_paths_and_what_leads_to_them() {
    let mut w = World::new("limited");
    for d in ["a", "b", "a/deep"] {
        std::fs::create_dir_all(w.root.join(d)).unwrap();
    }
    for f in ["a/one.txt", "a/deep/two.txt", "b/three.txt", "top.txt"] {
        std::fs::write(w.root.join(f), f.as_bytes()).unwrap();
    }
    w.scan();
    let top = w.uid_of("top.txt");
    // Changed but not recorded: a limited scan neither stages nor deletes it.
    std::fs::write(w.root.join("top.txt"), b"changed outside smbd").unwrap();
    std::fs::remove_file(w.root.join("b/three.txt")).unwrap();
    std::fs::write(w.root.join("a/deep/two.txt"), b"recorded change").unwrap();
    let r = w.scan_paths(&["A/Deep/two.txt"]);
    assert_eq!((r.created, r.modified, r.moved, r.deleted), (0, 1, 0, 0), "{r:?}");
    assert!(!w.reader.calls.iter().any(|c| c == "top.txt" || c.starts_with("b")), "looked at unrecorded paths: {:?}", w.reader.calls);
    assert!(w.reader.calls.contains(&"a/deep/two.txt".to_string()), "{:?}", w.reader.calls);
    assert!(w.live_paths().contains(&"b/three.txt".to_string()), "an unrecorded deletion was taken");
    // A recorded directory removal takes what was under it.
    std::fs::remove_dir_all(w.root.join("a")).unwrap();
    let r = w.scan_paths(&["a"]);
    assert_eq!(r.deleted, 4, "a, a/one.txt, a/deep, a/deep/two.txt: {r:?}");
    // A directory made and filled, and a file moved into it, by their records.
    std::fs::create_dir_all(w.root.join("new/sub")).unwrap();
    std::fs::write(w.root.join("new/sub/f.txt"), b"f").unwrap();
    std::fs::rename(w.root.join("top.txt"), w.root.join("new/top.txt")).unwrap();
    let r = w.scan_paths(&["new", "top.txt", "new/top.txt"]);
    assert_eq!((r.created, r.moved), (3, 1), "{r:?}");
    assert_eq!(w.uid_of("top.txt"), top, "the move made a new file");
    // The whole scan still finds what was changed outside smbd (top.txt's
    // outside edit went with its recorded move, which staged it as it is).
    let r = w.scan();
    assert_eq!((r.modified, r.deleted), (0, 1), "b/three.txt: {r:?}");
    assert_eq!(w.live_paths(), ["b", "new", "new/sub", "new/sub/f.txt", "new/top.txt"]);
}

#[test]
fn scopes_name_paths_below_the_root_only() {
    assert!(Scope::of(["a/b", "./c/"]).is_some());
    assert!(Scope::of(["a/../../etc"]).is_none());
    assert!(Scope::of(["."]).is_none());
    assert!(Scope::of([""]).is_none());
    let s = Scope::of(["Dir/Sub/File.txt"]).unwrap();
    assert!(s.names("dir/sub/file.txt") && s.leads_to("DIR") && s.leads_to("dir/sub") && s.leads_to(""));
    assert!(!s.leads_to("dir/sub/file.txt") && !s.names("dir"));
}
