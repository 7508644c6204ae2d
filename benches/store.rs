//! `cargo bench --bench store`: inserts DFSR_BENCH_UPDATES updates
//! (default 1 000 000) into the replication database in transactions of
//! DFSR_BENCH_BATCH (default 1000), each with its GVSN and parent index
//! entries, the vector and the originator counters; then writes the same
//! records (same keys, same value sizes) straight into a raw TDB with the
//! same hash size and batches, no reads. Prints both rates, the ratio and
//! the file's bytes per update. At 10 000, 100 000 and 1 000 000 updates
//! it times the listings a member makes per directory and per folder: the
//! children of one directory (100 files) and the updates of a small second
//! folder (100), beside one traverse of the file's keys, so whether they
//! grow with the database shows in the same run. Not a test: it prints.

use std::path::Path;
use std::time::{Duration, Instant};

use samba_dfsr::engine::ids::{Guid, Gvsn, Uid};
use samba_dfsr::engine::update::{fence, Update};
use samba_dfsr::engine::session::{UpdateDatabase, UpdateRequestType};
use samba_dfsr::engine::version_vector::VersionVector;
use samba_dfsr::store::codec::{self, Links};
use samba_dfsr::store::database::HASH_SIZE;
use samba_dfsr::store::{Database, Key, OriginatorState, StoreError};
use trivialdb::{Flags, Tdb};

const DB: Guid = Guid([0x42; 16]);
const FOLDER: Guid = Guid([0xcc; 16]);
const GROUP: Guid = Guid([0x77; 16]);
/// A second, small folder: what its listing costs beside the big one.
const SMALL_FOLDER: Guid = Guid([0xdd; 16]);
const SMALL_FILES: u64 = 100;
/// Database sizes at which the listings are timed.
const CHECKPOINTS: &[u64] = &[10_000, 100_000, 1_000_000];

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The version of update i's UID and GVSN.
fn v_of(i: u64) -> u64 {
    9 + i
}

/// Update i: one directory per 100 files, realistic name lengths.
fn update(i: u64) -> Update {
    let v = v_of(i);
    let parent = if i % 100 == 0 { Uid::root_of(FOLDER) } else { Uid::new(DB, 9 + i / 100 * 100) };
    Update {
        present: true,
        name_conflict: false,
        attributes: if i % 100 == 0 { 0x10 } else { 0x20 },
        fence: fence::DEFAULT,
        clock: 0x01da_0000_0000_0000 + v,
        create_time: 0x01d9_0000_0000_0000 + i,
        content_set_id: FOLDER,
        hash: [(i % 251) as u8; 20],
        rdc_similarity: [0; 16],
        uid: Uid::new(DB, v),
        gvsn: Gvsn::new(DB, v),
        parent,
        name: format!("Quarterly report {i:07}.docx"),
        flags: 0,
    }
}

/// File i of the small folder, all in its root.
fn small_update(i: u64) -> Update {
    let mut u = update(i);
    let v = (1 << 40) + i;
    u.content_set_id = SMALL_FOLDER;
    u.uid = Uid::new(DB, v);
    u.gvsn = Gvsn::new(DB, v);
    u.parent = Uid::root_of(SMALL_FOLDER);
    u.attributes = 0x20;
    u
}

/// Times the two listings (best of `REPEAT`) and one traverse of every key
/// at a database of `n` updates, and prints them.
fn time_listings(db: &Database, raw: &Tdb, n: u64) {
    const REPEAT: usize = 5;
    let best = |f: &dyn Fn() -> usize| -> (Duration, usize) {
        let mut out = (Duration::MAX, 0);
        for _ in 0..REPEAT {
            let t = Instant::now();
            let got = f();
            out = (out.0.min(t.elapsed()), got);
        }
        out
    };
    // The directory of files 1..99 (update 0 is it).
    let dir = Uid::new(DB, 9);
    let (children, nc) = best(&|| db.children(&dir).unwrap_or_else(|e| fail("children", e)).len());
    let (folder, nf) = best(&|| db.folder_updates(&SMALL_FOLDER).unwrap_or_else(|e| fail("folder", e)).len());
    let (keys, nk) = best(&|| raw.keys().count());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "at {n:>9} updates: children of one directory ({nc}) {:9.3} ms; updates of a {nf}-update folder {:9.3} ms; \
         one traverse of the {nk} keys of the raw tdb {:9.3} ms",
        ms(children),
        ms(folder),
        ms(keys)
    );
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The two sides, written batch by batch in turn so that load from
/// anything else on the machine (fsync latency above all) hits both alike.
struct Sides {
    db: Database,
    raw: Tdb,
    db_vector: VersionVector,
    raw_vector: VersionVector,
}

impl Sides {
    fn db_batch(&mut self, from: u64, to: u64) -> Result<(), StoreError> {
        let vector = &mut self.db_vector;
        self.db.transaction(|tx| -> Result<(), StoreError> {
            for k in from..to {
                let u = update(k);
                tx.put_update(&u)?;
                vector.insert(u.gvsn);
            }
            tx.set_known_vector(&GROUP, &FOLDER, vector)?;
            tx.set_originator(&FOLDER, &OriginatorState { next_version: 9 + to, last_clock: 0 })
        })
    }

    /// The same records, stored blind: no reads, no index maintenance.
    fn raw_batch(&mut self, from: u64, to: u64) -> Result<(), trivialdb::Error> {
        let t = &mut self.raw;
        t.transaction_start()?;
        for k in from..to {
            let u = update(k);
            t.store(&Key::Update(u.uid).encode(), &codec::encode_update(&u), None)?;
            t.store(&Key::Gvsn(u.gvsn).encode(), &codec::encode_gvsn_index(&u.uid), None)?;
            // The index list records as the database writes them for a
            // new member at the front (without its reads and its rewrite
            // of the old first member's links).
            let links = codec::encode_links(&Links { prev: None, next: Some(Uid::new(DB, v_of(k) - 1)) });
            t.store(&Key::Child { parent: u.parent, child: u.uid }.encode(), &links, None)?;
            t.store(&Key::FirstChild(u.parent).encode(), &codec::encode_list_head(&u.uid), None)?;
            t.store(&Key::InFolder { folder: FOLDER, uid: u.uid }.encode(), &links, None)?;
            t.store(&Key::FirstInFolder(FOLDER).encode(), &codec::encode_list_head(&u.uid), None)?;
            self.raw_vector.insert(u.gvsn);
        }
        t.store(&Key::Vector { group: GROUP, folder: FOLDER }.encode(), &codec::encode_vector(&self.raw_vector), None)?;
        let o = OriginatorState { next_version: 9 + to, last_clock: 0 };
        t.store(&Key::Originator(FOLDER).encode(), &codec::encode_originator(&o), None)?;
        t.transaction_commit()
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("store bench: {what}: {e}");
    std::process::exit(1);
}

fn main() {
    let n = env_num("DFSR_BENCH_UPDATES", 1_000_000) as u64;
    let batch = env_num("DFSR_BENCH_BATCH", 1000).max(1) as u64;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let raw_path = dir.join("raw.tdb");
    let db_path = dir.join("dfsr.tdb");
    let record = codec::encode_update(&update(n / 2)).len();
    println!("store bench: {n} updates, transactions of {batch}, {record}-byte update records, hash size {HASH_SIZE}");

    let db = Database::open(&db_path).unwrap_or_else(|e| fail("database", e));
    let raw = Tdb::open(&raw_path, Some(HASH_SIZE), Flags::empty(), libc::O_RDWR | libc::O_CREAT, 0o600)
        .unwrap_or_else(|| fail("raw tdb", std::io::Error::last_os_error()));
    let mut sides = Sides { db, raw, db_vector: VersionVector::new(), raw_vector: VersionVector::new() };
    sides
        .db
        .transaction(|tx| -> Result<(), StoreError> {
            for i in 0..SMALL_FILES {
                tx.put_update(&small_update(i))?;
            }
            Ok(())
        })
        .unwrap_or_else(|e| fail("database", e));
    let (mut db_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let t = Instant::now();
        sides.raw_batch(i, end).unwrap_or_else(|e| fail("raw tdb", e));
        raw_time += t.elapsed();
        let t = Instant::now();
        sides.db_batch(i, end).unwrap_or_else(|e| fail("database", e));
        db_time += t.elapsed();
        i = end;
        if CHECKPOINTS.contains(&i) || (i == n && !CHECKPOINTS.iter().any(|c| *c <= n)) {
            time_listings(&sides.db, &sides.raw, i);
        }
    }
    drop(sides);
    let (db, raw) = (db_time.as_secs_f64(), raw_time.as_secs_f64());
    let raw_size = file_size(&raw_path);
    let db_size = file_size(&db_path);
    println!(
        "raw tdb : {raw:8.2} s  {:>10.0} updates/s  {:6.1} bytes/update (the same records, no reads)",
        n as f64 / raw,
        raw_size as f64 / n as f64
    );
    println!(
        "database: {db:8.2} s  {:>10.0} updates/s  {:6.1} bytes/update (file {:.1} MB)",
        n as f64 / db,
        db_size as f64 / n as f64,
        db_size as f64 / 1e6
    );
    println!("ratio database/raw time: {:.2}", db / raw);
    // A sanity check that the run stored what it claims, then what a
    // partner's initial sync costs: the whole folder in RequestUpdates
    // pages of 256 (as dfsrd serves them), beside one traverse of every
    // record of the file (`db dump`).
    if let Ok(d) = Database::open(&db_path) {
        if let Ok(c) = d.counts() {
            println!(
                "records: {} updates, {} gvsn index, {} parent index, {} folder index",
                c.updates, c.gvsn_index, c.parent_index, c.folder_index
            );
        }
        let served = samba_dfsr::store::ServedGroup::new(&d, GROUP);
        let vv = served.version_vector(&FOLDER).ok().flatten().unwrap_or_default();
        let t = Instant::now();
        let (mut pages, mut got, mut after) = (0u64, 0u64, None);
        loop {
            let page = served
                .updates_in(&FOLDER, &vv, UpdateRequestType::All, after, 256)
                .unwrap_or_else(|e| fail("serving a page", e));
            pages += 1;
            got += page.len() as u64;
            match page.last() {
                Some(u) if page.len() == 256 => after = Some(u.gvsn),
                _ => break,
            }
        }
        let paged = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let traversed = d.dump_with(|_| -> Result<(), StoreError> { Ok(()) }).unwrap_or(0);
        let dump = t.elapsed().as_secs_f64();
        println!(
            "initial sync: {got} updates in {pages} pages of 256: {paged:.2} s ({:.0} updates/s); \
             one traverse of {traversed} records: {dump:.2} s; ratio {:.2}",
            got as f64 / paged,
            paged / dump
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
