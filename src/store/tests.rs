//! Tests of the database against real TDB files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use trivialdb::{Flags, Tdb};

use super::codec::{self, DownloadState, OriginatorState};
use super::database::{Database, Inconsistency, StoreError, SCHEMA_KEY};
use super::keys::Key;
use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::rules::{ConflictRecord, LossReason};
use crate::engine::update::{fence, Update};
use crate::engine::version_vector::VersionVector;

/// A fresh directory per test: TDB refuses a second handle on one file in
/// one process, and tests run in parallel.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "dfsr-db-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn db(&self) -> PathBuf {
        self.0.join("dfsr.tdb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn raw(path: &Path) -> Tdb {
    Tdb::open(path, None, Flags::empty(), libc::O_RDWR, 0o600).unwrap()
}

const DB: Guid = Guid([0x11; 16]);
const FOLDER: Guid = Guid([0xcc; 16]);
const GROUP: Guid = Guid([0x77; 16]);

fn upd(uid: Uid, gvsn: Gvsn, parent: Uid, name: &str) -> Update {
    Update {
        present: true,
        name_conflict: false,
        attributes: 0x20,
        fence: fence::DEFAULT,
        clock: 1000 + gvsn.version,
        create_time: 500,
        content_set_id: FOLDER,
        hash: [3; 20],
        rdc_similarity: [0; 16],
        uid,
        gvsn,
        parent,
        name: name.into(),
        flags: 0,
    }
}

fn put(db: &mut Database, u: &Update) {
    db.transaction(|tx| tx.put_update(u)).unwrap();
}

#[test]
fn create_reopen_and_schema() {
    let t = TempDir::new();
    let db = Database::open(&t.db()).unwrap();
    drop(db);
    let v = raw(&t.db()).fetch(SCHEMA_KEY).unwrap().unwrap();
    assert_eq!(codec::decode_schema(&v).unwrap(), super::SCHEMA_VERSION);
    Database::open_existing(&t.db()).unwrap();
    // open_existing does not create.
    let e = Database::open_existing(&t.0.join("missing.tdb")).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(!t.0.join("missing.tdb").exists());
    // A missing directory is an error naming the path.
    let e = Database::open(&t.0.join("nope").join("x.tdb")).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    // A file that is not a TDB is refused and left alone.
    let junk = t.0.join("junk.tdb");
    std::fs::write(&junk, b"not a tdb file, just some bytes that are long enough").unwrap();
    assert!(matches!(Database::open(&junk), Err(StoreError::Open { .. })));
    assert!(std::fs::read(&junk).unwrap().starts_with(b"not a tdb"));
}

#[test]
fn newer_older_and_missing_schema_are_refused() {
    let t = TempDir::new();
    drop(Database::open(&t.db()).unwrap());
    raw(&t.db()).store(SCHEMA_KEY, &codec::encode_schema(super::SCHEMA_VERSION + 1), None).unwrap();
    let e = Database::open(&t.db()).unwrap_err();
    let (newer, ours) = (super::SCHEMA_VERSION + 1, super::SCHEMA_VERSION);
    assert!(matches!(e, StoreError::NewerSchema { found, supported, .. } if found == newer && supported == ours), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("dfsr.tdb") && msg.contains(&format!("schema {newer}")) && msg.contains(&format!("supported {ours}")),
        "{msg}"
    );

    raw(&t.db()).store(SCHEMA_KEY, &codec::encode_schema(0), None).unwrap();
    let e = Database::open(&t.db()).unwrap_err();
    assert!(matches!(e, StoreError::NoUpgrade { found: 0, supported, .. } if supported == ours), "{e}");

    raw(&t.db()).store(SCHEMA_KEY, b"\x01\x02\x01\0\0\0", None).unwrap();
    let e = Database::open(&t.db()).unwrap_err();
    assert!(matches!(e, StoreError::Decode { ref key, .. } if key == "schema"), "{e}");

    {
        let mut r = raw(&t.db());
        r.delete(SCHEMA_KEY).unwrap();
        r.store(b"u/x", b"y", None).unwrap();
    }
    let e = Database::open(&t.db()).unwrap_err();
    assert!(matches!(e, StoreError::MissingSchema { .. }), "{e}");
}

#[test]
fn indexes_follow_replacement() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let root = Uid::root_of(FOLDER);
    let dir_a = Uid::new(DB, 9);
    let dir_b = Uid::new(DB, 10);
    let f = Uid::new(DB, 11);
    put(&mut db, &upd(dir_a, Gvsn::new(DB, 9), root, "a"));
    put(&mut db, &upd(dir_b, Gvsn::new(DB, 10), root, "b"));
    put(&mut db, &upd(f, Gvsn::new(DB, 11), dir_a, "f"));
    assert_eq!(db.children(&root).unwrap(), vec![dir_a, dir_b]);
    assert_eq!(db.children(&dir_a).unwrap(), vec![f]);
    assert_eq!(db.update_by_gvsn(&Gvsn::new(DB, 11)).unwrap().unwrap().uid, f);

    // New GVSN, same parent: the old g/ entry goes.
    let old = db.transaction(|tx| tx.put_update(&upd(f, Gvsn::new(DB, 12), dir_a, "f"))).unwrap();
    assert_eq!(old.unwrap().gvsn, Gvsn::new(DB, 11));
    assert_eq!(db.update_by_gvsn(&Gvsn::new(DB, 11)).unwrap(), None);
    assert_eq!(db.update_by_gvsn(&Gvsn::new(DB, 12)).unwrap().unwrap().uid, f);
    // New parent (a move): the old p/ entry goes.
    put(&mut db, &upd(f, Gvsn::new(DB, 13), dir_b, "f"));
    assert_eq!(db.children(&dir_a).unwrap(), vec![]);
    assert_eq!(db.children(&dir_b).unwrap(), vec![f]);
    assert_eq!(db.update(&f).unwrap().unwrap().parent, dir_b);
    let c = db.counts().unwrap();
    assert_eq!((c.updates, c.gvsn_index, c.parent_index), (3, 3, 3));
    assert_eq!(db.check().unwrap(), vec![]);

    // A GVSN names one change: another UID cannot take it.
    let e = db.transaction(|tx| tx.put_update(&upd(Uid::new(DB, 50), Gvsn::new(DB, 13), root, "x"))).unwrap_err();
    assert!(matches!(e, StoreError::GvsnTaken { by, .. } if by == f), "{e}");

    // Removal takes the indexes and download state with it.
    db.transaction(|tx| tx.set_download(&f, &DownloadState::Installed)).unwrap();
    let gone = db.transaction(|tx| tx.remove_update(&f)).unwrap();
    assert_eq!(gone.unwrap().uid, f);
    assert_eq!(db.update(&f).unwrap(), None);
    assert_eq!(db.children(&dir_b).unwrap(), vec![]);
    assert_eq!(db.download(&f).unwrap(), None);
    assert_eq!(db.update_by_gvsn(&Gvsn::new(DB, 13)).unwrap(), None);
    assert_eq!(db.check().unwrap(), vec![]);
    assert_eq!(db.transaction(|tx| tx.remove_update(&f)).unwrap(), None);
}

/// Adds, moves and removes in any order keep every directory's and the
/// folder's list equal to a model, and consistent (the lists are linked
/// through records, so a removal in the middle must mend both neighbours).
#[test]
fn index_lists_follow_adds_moves_and_removes() {
    use std::collections::{BTreeMap, BTreeSet};
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let dirs: Vec<Uid> = (1..=4).map(|v| Uid::new(Guid([0x22; 16]), v)).collect();
    let mut model: BTreeMap<Uid, Uid> = BTreeMap::new();
    let mut gvsn = 100;
    let mut rng = crate::engine::rng::SplitMix64::new(13);
    for step in 0..600 {
        let uid = Uid::new(DB, 1 + rng.below(40));
        let dir = dirs[rng.index(dirs.len())];
        if rng.chance(0.25) {
            db.transaction(|tx| tx.remove_update(&uid)).unwrap();
            model.remove(&uid);
        } else {
            gvsn += 1;
            put(&mut db, &upd(uid, Gvsn::new(DB, gvsn), dir, "f"));
            model.insert(uid, dir);
        }
        for d in &dirs {
            let want: Vec<Uid> = model.iter().filter(|(_, p)| *p == d).map(|(u, _)| *u).collect();
            assert_eq!(db.children(d).unwrap(), want, "step {step}, directory {d}");
        }
        let all: BTreeSet<Uid> = db.folder_uids(&FOLDER).unwrap().into_iter().collect();
        assert_eq!(all, model.keys().copied().collect(), "step {step}");
        if step % 50 == 0 {
            assert_eq!(db.check().unwrap(), vec![], "step {step}");
        }
    }
    assert_eq!(db.check().unwrap(), vec![]);
}

/// A schema 1 database (a bare `p/` key per child, no folder index) is
/// rebuilt into linked lists when opened.
#[test]
fn schema_1_is_upgraded_to_index_lists() {
    let t = TempDir::new();
    drop(Database::open(&t.db()).unwrap());
    let root = Uid::root_of(FOLDER);
    let (a, b) = (Uid::new(DB, 9), Uid::new(DB, 10));
    {
        let mut r = raw(&t.db());
        r.store(SCHEMA_KEY, &codec::encode_schema(1), None).unwrap();
        for (u, parent) in [(a, root), (b, a)] {
            let up = upd(u, Gvsn::new(DB, u.version), parent, "x");
            r.store(&Key::Update(u).encode(), &codec::encode_update(&up), None).unwrap();
            r.store(&Key::Gvsn(up.gvsn).encode(), &codec::encode_gvsn_index(&u), None).unwrap();
            r.store(&Key::Child { parent, child: u }.encode(), &[], None).unwrap();
        }
    }
    let db = Database::open(&t.db()).unwrap();
    assert_eq!(db.children(&root).unwrap(), vec![a]);
    assert_eq!(db.children(&a).unwrap(), vec![b]);
    assert_eq!(db.folder_uids(&FOLDER).unwrap(), vec![a, b]);
    assert_eq!(db.check().unwrap(), vec![]);
    drop(db);
    let v = raw(&t.db()).fetch(SCHEMA_KEY).unwrap().unwrap();
    assert_eq!(codec::decode_schema(&v).unwrap(), super::SCHEMA_VERSION);
}

/// A list whose links loop or point nowhere is an error naming the record,
/// never a short answer, and `check` reports it.
#[test]
fn a_broken_index_list_is_an_error() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let root = Uid::root_of(FOLDER);
    let (a, b) = (Uid::new(DB, 9), Uid::new(DB, 10));
    put(&mut db, &upd(a, Gvsn::new(DB, 9), root, "a"));
    put(&mut db, &upd(b, Gvsn::new(DB, 10), root, "b"));
    drop(db);
    // b was added last, so it is first: make a's next point back to b.
    let looped = codec::encode_links(&codec::Links { prev: Some(b), next: Some(b) });
    raw(&t.db()).store(&Key::Child { parent: root, child: a }.encode(), &looped, None).unwrap();
    let db = Database::open(&t.db()).unwrap();
    let e = db.children(&root).unwrap_err();
    assert!(matches!(e, StoreError::Inconsistent { ref key, .. } if *key == format!("p/{root}/{b}")), "{e}");
    let found = db.check().unwrap();
    assert!(
        found.iter().any(|i| matches!(i, Inconsistency::BrokenList { head: Key::FirstChild(p), .. } if *p == root)),
        "{found:#?}"
    );
    drop(db);
    raw(&t.db()).delete(&Key::Child { parent: root, child: a }.encode()).unwrap();
    let db = Database::open(&t.db()).unwrap();
    let e = db.children(&root).unwrap_err();
    assert!(matches!(e, StoreError::Inconsistent { ref key, .. } if *key == format!("p/{root}/{a}")), "{e}");
}

#[test]
fn failed_or_panicking_transaction_writes_nothing() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let u = upd(Uid::new(DB, 9), Gvsn::new(DB, 9), Uid::root_of(FOLDER), "a");
    let r = db.transaction(|tx| {
        tx.put_update(&u)?;
        tx.add_known(&GROUP, &FOLDER, u.gvsn)?;
        Err::<(), _>(StoreError::MissingSchema { path: "x".into() })
    });
    assert!(r.is_err());
    assert_eq!(db.update(&u.uid).unwrap(), None);
    assert!(db.known_vector(&GROUP, &FOLDER).unwrap().is_empty());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = db.transaction(|tx| -> Result<(), StoreError> {
            tx.put_update(&u)?;
            panic!("change failed");
        });
    }));
    assert!(caught.is_err());
    assert_eq!(db.update(&u.uid).unwrap(), None);
    put(&mut db, &u);
    assert_eq!(db.update(&u.uid).unwrap(), Some(u));
}

#[test]
fn counters_vectors_downloads_conflicts() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    assert_eq!(db.database_guid().unwrap(), None);
    assert_eq!(db.originator(&FOLDER).unwrap(), None);
    let u = upd(Uid::new(DB, 9), Gvsn::new(DB, 9), Uid::root_of(FOLDER), "a");
    let conflict = ConflictRecord::new(&u, LossReason::NameConflict, 42);
    db.transaction(|tx| -> Result<(), StoreError> {
        tx.set_database_guid(&DB)?;
        tx.set_originator(&FOLDER, &OriginatorState { next_version: 10, last_clock: 1009 })?;
        tx.put_update(&u)?;
        tx.add_known(&GROUP, &FOLDER, u.gvsn)?;
        tx.add_known(&GROUP, &FOLDER, Gvsn::new(DB, 10))?;
        tx.set_download(&u.uid, &DownloadState::Downloading { offset: 4096 })?;
        tx.add_conflict(&conflict)?;
        // Reads inside the transaction see its writes.
        assert_eq!(tx.database_guid()?, Some(DB));
        assert_eq!(tx.update(&u.uid)?.as_ref(), Some(&u));
        assert_eq!(tx.children(&u.parent).unwrap(), vec![u.uid]);
        Ok(())
    })
    .unwrap();
    drop(db);
    let db = Database::open(&t.db()).unwrap();
    assert_eq!(db.database_guid().unwrap(), Some(DB));
    assert_eq!(db.originator(&FOLDER).unwrap(), Some(OriginatorState { next_version: 10, last_clock: 1009 }));
    assert_eq!(db.known_vector(&GROUP, &FOLDER).unwrap().to_wire(), vec![(DB, 8, 10)]);
    assert!(db.known_vector(&FOLDER, &GROUP).unwrap().is_empty());
    assert_eq!(db.download(&u.uid).unwrap(), Some(DownloadState::Downloading { offset: 4096 }));
    assert_eq!(db.conflicts().unwrap(), vec![conflict]);
    assert_eq!(db.check().unwrap(), vec![]);

    let mut out = Vec::new();
    let n = db.dump(&mut out).unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), n);
    // schema, d/, o/, u/, g/, p/, P/, f/, F/, v/, s/, c/
    assert_eq!(n, 12);
    let upd_line = lines.iter().find(|l| l["type"] == "update").unwrap();
    assert_eq!(upd_line["key"], format!("u/{}", u.uid));
    assert_eq!(upd_line["value"]["name"], "a");
    assert_eq!(upd_line["value"]["gvsn"], u.gvsn.to_string());
    let dl = lines.iter().find(|l| l["type"] == "download").unwrap();
    assert_eq!(dl["value"]["offset"], 4096);
}

#[test]
fn by_gvsn_is_in_gvsn_order() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    // Byte-wise GUID order differs from textual order; versions cross a
    // byte boundary (255/256) so a little-endian key would sort wrongly.
    let g1: Guid = "00000100-0000-0000-0000-000000000000".parse().unwrap();
    let g2: Guid = "00000001-0000-0000-0000-000000000000".parse().unwrap();
    assert!(g1 < g2);
    let root = Uid::root_of(FOLDER);
    let mut all = Vec::new();
    db.transaction(|tx| -> Result<(), StoreError> {
        for (i, (g, v)) in
            [(g2, 9u64), (g1, 256), (g2, 300), (g1, 255), (g1, 9), (g2, 256), (g1, 70_000)].into_iter().enumerate()
        {
            let u = upd(Uid::new(DB, 100 + i as u64), Gvsn::new(g, v), root, &format!("f{i}"));
            tx.put_update(&u)?;
            all.push(u.gvsn);
        }
        Ok(())
    })
    .unwrap();
    all.sort();
    let got =
        |v: &VersionVector, limit| -> Vec<Gvsn> { db.by_gvsn(v, limit).unwrap().iter().map(|u| u.gvsn).collect() };
    // Small vector: point lookups.
    let small = VersionVector::from_wire([(g1, 0, 1000), (g2, 0, 1000)]).unwrap();
    let want: Vec<Gvsn> = all.iter().copied().filter(|g| g.version <= 1000).collect();
    assert_eq!(got(&small, usize::MAX), want);
    assert_eq!(got(&small, 2), want[..2].to_vec());
    // Large vector: traverse + sort gives the same order.
    let big = VersionVector::from_wire([(g1, 0, u64::MAX), (g2, 0, u64::MAX)]).unwrap();
    assert_eq!(got(&big, usize::MAX), all);
    assert_eq!(got(&big, 3), all[..3].to_vec());
    // A vector that excludes some.
    let part = VersionVector::from_wire([(g1, 254, 255), (g2, 255, 1_000_000)]).unwrap();
    assert_eq!(got(&part, 10), vec![Gvsn::new(g1, 255), Gvsn::new(g2, 256), Gvsn::new(g2, 300)]);
    assert_eq!(
        db.by_gvsn_range(g1, 200, 100_000, 10).unwrap().iter().map(|u| u.gvsn).collect::<Vec<_>>(),
        vec![Gvsn::new(g1, 255), Gvsn::new(g1, 256), Gvsn::new(g1, 70_000)]
    );
    assert!(db.by_gvsn_range(g1, 5, 4, 10).unwrap().is_empty());
}

#[test]
fn check_finds_injected_corruption() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let root = Uid::root_of(FOLDER);
    let a = Uid::new(DB, 9);
    let b = Uid::new(DB, 10);
    let c = Uid::new(DB, 11);
    for (u, name) in [(a, "a"), (b, "b"), (c, "c")] {
        put(&mut db, &upd(u, Gvsn::new(DB, u.version), root, name));
    }
    db.transaction(|tx| tx.add_known(&GROUP, &FOLDER, Gvsn::new(DB, 9))).unwrap();
    assert_eq!(db.check().unwrap(), vec![]);
    drop(db);
    {
        let mut r = raw(&t.db());
        // a: its g/ entry lost.
        r.delete(&Key::Gvsn(Gvsn::new(DB, 9)).encode()).unwrap();
        // b: its p/ entry lost, and a stale one under another parent.
        r.delete(&Key::Child { parent: root, child: b }.encode()).unwrap();
        let lone = codec::encode_links(&codec::Links::default());
        r.store(&Key::Child { parent: a, child: b }.encode(), &lone, None).unwrap();
        // An index entry for an update that is gone.
        let ghost = Uid::new(DB, 99);
        r.store(&Key::Gvsn(Gvsn::new(DB, 99)).encode(), &codec::encode_gvsn_index(&ghost), None).unwrap();
        r.store(&Key::Child { parent: root, child: ghost }.encode(), &lone, None).unwrap();
        // A g/ entry naming c under a GVSN c does not have.
        r.store(&Key::Gvsn(Gvsn::new(DB, 98)).encode(), &codec::encode_gvsn_index(&c), None).unwrap();
        // Undecodable records, an unknown key.
        let mut bad = codec::encode_update(&upd(c, Gvsn::new(DB, 11), root, "c"));
        bad.truncate(40);
        r.store(&Key::Update(c).encode(), &bad, None).unwrap();
        r.store(&Key::Vector { group: GROUP, folder: FOLDER }.encode(), b"\x04\x09", None).unwrap();
        r.store(b"zz", b"?", None).unwrap();
    }
    let db = Database::open(&t.db()).unwrap();
    let found = db.check().unwrap();
    let has = |pred: &dyn Fn(&Inconsistency) -> bool| found.iter().any(pred);
    assert!(has(&|i| matches!(i, Inconsistency::MissingGvsnIndex { uid, .. } if *uid == a)), "{found:#?}");
    assert!(has(&|i| matches!(i, Inconsistency::MissingChild { child, .. } if *child == b)), "{found:#?}");
    assert!(has(
        &|i| matches!(i, Inconsistency::StaleChild { parent, child, actual } if *parent == a && *child == b && *actual == root)
    ));
    assert!(has(&|i| matches!(i, Inconsistency::DanglingGvsnIndex { uid, .. } if uid.version == 99)));
    assert!(has(&|i| matches!(i, Inconsistency::DanglingChild { child, .. } if child.version == 99)));
    assert!(has(
        &|i| matches!(i, Inconsistency::Undecodable { key: Key::Update(u), error: codec::DecodeError::Truncated { .. } } if *u == c)
    ));
    assert!(has(&|i| matches!(
        i,
        Inconsistency::Undecodable {
            key: Key::Vector { .. },
            error: codec::DecodeError::UnsupportedFormat { found: 9, .. }
        }
    )));
    assert!(has(&|i| matches!(i, Inconsistency::UnknownKey { .. })));
    // c's update is unreadable, so its index entries dangle.
    assert!(has(&|i| matches!(i, Inconsistency::DanglingGvsnIndex { uid, .. } if *uid == c)));
    // Each message names the key.
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|t| t.starts_with(&format!("u/{a}: its GVSN index entry g/{}", Gvsn::new(DB, 9)))),
        "{text:#?}"
    );
    assert!(text.iter().any(|t| t.starts_with("0x7a7a: unknown key")), "{text:#?}");
    // Reads report the damage as typed errors naming the key.
    let e = db.update(&c).unwrap_err();
    assert!(matches!(e, StoreError::Decode { ref key, .. } if *key == format!("u/{c}")), "{e}");
    let e = db.known_vector(&GROUP, &FOLDER).unwrap_err();
    assert!(e.to_string().contains("v/"), "{e}");
    assert!(matches!(db.update_by_gvsn(&Gvsn::new(DB, 98)), Err(StoreError::Decode { .. })));
    // The dump shows undecodable records instead of stopping.
    let mut entries = Vec::new();
    db.dump_with(|e| -> Result<(), StoreError> {
        entries.push(e.clone());
        Ok(())
    })
    .unwrap();
    let bad = entries.iter().find(|e| e.key == Key::Update(c)).unwrap();
    assert!(bad.value.is_err());
    assert!(bad.json()["error"].as_str().unwrap().contains("truncated"));
    assert!(bad.text().contains("UNDECODABLE"));
}

#[test]
fn stale_gvsn_index_is_reported() {
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let a = Uid::new(DB, 9);
    put(&mut db, &upd(a, Gvsn::new(DB, 9), Uid::root_of(FOLDER), "a"));
    drop(db);
    {
        let mut r = raw(&t.db());
        r.store(&Key::Gvsn(Gvsn::new(DB, 5)).encode(), &codec::encode_gvsn_index(&a), None).unwrap();
    }
    let db = Database::open(&t.db()).unwrap();
    assert_eq!(
        db.check().unwrap(),
        vec![Inconsistency::StaleGvsnIndex { gvsn: Gvsn::new(DB, 5), uid: a, actual: Gvsn::new(DB, 9) }]
    );
    assert!(matches!(db.update_by_gvsn(&Gvsn::new(DB, 5)), Err(StoreError::Inconsistent { .. })));
}

mod local_commit {
    use super::*;
    use crate::store::local_commit::{CommitError, LocalChange, LocalChanges};
    use crate::store::StagingArea;

    fn change(dir: &Path, n: u64) -> LocalChange {
        let tmp = dir.join(format!("tmp-{n}"));
        std::fs::write(&tmp, format!("staged {n}")).unwrap();
        let g = Gvsn { db: DB, version: n };
        LocalChange { update: upd(Uid { db: DB, version: n }, g, Uid::root_of(FOLDER), &format!("f{n}")), staged_temp: Some(tmp), replaces: None }
    }

    fn batch(changes: Vec<LocalChange>, next: u64) -> LocalChanges {
        LocalChanges {
            database_guid: DB,
            group: GROUP,
            folder: FOLDER,
            changes,
            originator: OriginatorState { next_version: next, last_clock: 9 },
        }
    }

    #[test]
    fn commit_places_staged_files_and_stores_updates_vector_and_counters() {
        let t = TempDir::new();
        let area = StagingArea::new(t.0.join("staging"));
        std::fs::create_dir_all(area.dir()).unwrap();
        let mut db = Database::open(&t.db()).unwrap();
        let other = Guid([0xdd; 16]);
        db.transaction(|tx| tx.set_originator(&other, &OriginatorState { next_version: 2, last_clock: 1 })).unwrap();
        let b = batch(vec![change(&t.0, 1), change(&t.0, 2)], 3);
        db.commit_local_changes(&area, &b).unwrap();
        for c in &b.changes {
            assert!(!c.staged_temp.as_ref().unwrap().exists());
            assert!(area.path_of(&c.update.gvsn).exists());
            assert_eq!(db.update(&c.update.uid).unwrap().as_ref(), Some(&c.update));
        }
        let v = db.known_vector(&GROUP, &FOLDER).unwrap();
        assert!(v.contains(&Gvsn { db: DB, version: 1 }) && v.contains(&Gvsn { db: DB, version: 2 }));
        assert_eq!(db.originator(&FOLDER).unwrap().map(|s| s.next_version), Some(3));
        // The other folder's counter is raised: one GUID numbers both.
        assert_eq!(db.originator(&other).unwrap().map(|s| s.next_version), Some(3));
    }

    #[test]
    fn a_failed_commit_keeps_no_staged_file_and_no_record() {
        let t = TempDir::new();
        let area = StagingArea::new(t.0.join("staging"));
        std::fs::create_dir_all(area.dir()).unwrap();
        let mut db = Database::open(&t.db()).unwrap();
        // The UID of the second change is taken: the transaction fails
        // after both staged files were placed.
        let taken = change(&t.0, 2);
        put(&mut db, &taken.update);
        let b = batch(vec![change(&t.0, 1), change(&t.0, 2)], 3);
        let e = db.commit_local_changes(&area, &b).unwrap_err();
        assert!(matches!(e, CommitError::Store(StoreError::GvsnTaken { .. })), "{e}");
        for c in &b.changes {
            assert!(!area.path_of(&c.update.gvsn).exists(), "placed file left behind");
        }
        assert_eq!(db.update(&b.changes[0].update.uid).unwrap(), None);
        assert_eq!(db.originator(&FOLDER).unwrap(), None);

        // A staged name that exists is someone else's content: refused
        // before the transaction, temporaries removed.
        std::fs::write(area.path_of(&Gvsn { db: DB, version: 5 }), b"theirs").unwrap();
        let b = batch(vec![change(&t.0, 4), change(&t.0, 5)], 6);
        let e = db.commit_local_changes(&area, &b).unwrap_err();
        assert!(matches!(e, CommitError::StagedExists { .. }), "{e}");
        assert!(b.changes.iter().all(|c| !c.staged_temp.as_ref().unwrap().exists()));
        assert!(!area.path_of(&Gvsn { db: DB, version: 4 }).exists());
        assert_eq!(std::fs::read(area.path_of(&Gvsn { db: DB, version: 5 })).unwrap(), b"theirs");
    }
}

/// Updates held aside are kept by UID and listed by folder and by the
/// parent they wait for; replacing one moves it between parents' lists;
/// `check` is clean throughout and notices a lost list entry.
#[test]
fn held_aside_updates_are_listed_by_folder_and_parent() {
    use super::StoredReplica;
    use crate::engine::replica::ReplicaRead;
    let t = TempDir::new();
    let mut db = Database::open(&t.db()).unwrap();
    let (p1, p2) = (Uid::new(DB, 500), Uid::new(DB, 501));
    let a = upd(Uid::new(DB, 9), Gvsn::new(DB, 9), p1, "a");
    let b = upd(Uid::new(DB, 10), Gvsn::new(DB, 10), p1, "b");
    db.transaction(|tx| -> Result<(), StoreError> {
        tx.put_held_aside(&a)?;
        tx.put_held_aside(&b)
    })
    .unwrap();
    let view = StoredReplica::new(&db, GROUP);
    assert_eq!(view.held_aside(&a.uid).unwrap(), Some(a.clone()));
    assert_eq!(view.all_held_aside(&FOLDER).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(view.held_aside_under(&p1).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(db.check().unwrap(), vec![]);
    // A later version of b waits for another parent.
    let mut b2 = b.clone();
    b2.parent = p2;
    b2.gvsn = Gvsn::new(DB, 11);
    db.transaction(|tx| tx.put_held_aside(&b2)).unwrap();
    let view = StoredReplica::new(&db, GROUP);
    assert_eq!(view.held_aside_under(&p1).unwrap(), vec![a.clone()]);
    assert_eq!(view.held_aside_under(&p2).unwrap(), vec![b2.clone()]);
    assert_eq!(db.counts().unwrap().held_aside, 2);
    assert_eq!(db.check().unwrap(), vec![]);
    // Released: gone from everything.
    let gone = db.transaction(|tx| tx.remove_held_aside(&a.uid)).unwrap();
    assert_eq!(gone, Some(a.clone()));
    let view = StoredReplica::new(&db, GROUP);
    assert_eq!(view.held_aside(&a.uid).unwrap(), None);
    assert_eq!(view.all_held_aside(&FOLDER).unwrap(), vec![b2.clone()]);
    assert_eq!(view.held_aside_under(&p1).unwrap(), vec![]);
    assert_eq!(db.check().unwrap(), vec![]);
    drop(db);
    // A lost list entry is found.
    raw(&t.db()).delete(&Key::AsideUnder { parent: p2, uid: b2.uid }.encode()).unwrap();
    let db = Database::open(&t.db()).unwrap();
    let found = db.check().unwrap();
    assert!(
        found.iter().any(|i| matches!(i, Inconsistency::StaleIndexEntry { key: Key::Aside(u), .. } if *u == b2.uid)),
        "{found:#?}"
    );
}
