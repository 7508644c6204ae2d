//! Crash safety of the replication database: a writer process is killed
//! (SIGKILL) at random moments, many times, and after each kill the
//! database must hold exactly the transactions committed so far — every
//! update with its indexes, the counters and the vector agreeing — with
//! `check()` finding nothing.
//!
//! The writer is this test binary re-executed (the `crash_writer` test,
//! which does nothing unless `DFSR_CRASH_WRITER` names a database). Its
//! transactions are deterministic, so the parent replays the first `n` of
//! them in memory and compares the whole database with that model.
//!
//! Durability path: the database is opened as `Database::open` opens it
//! (`O_RDWR|O_CREAT`, TDB's default hash function, no `TDB_NOSYNC`), so
//! each commit fsyncs the recovery area before overwriting data and again
//! after. For a *process* kill the fsyncs are not what saves us — the page
//! cache survives the process — but TDB's recovery area is: a commit killed
//! after it started overwriting records leaves a valid recovery record,
//! which the next `tdb_open` replays. The test counts how many kills
//! landed in that window (the recovery record was valid on disk before
//! reopening). Power loss would additionally rely on the fsyncs, which
//! this test cannot simulate.
//!
//! Environment: `DFSR_CRASH_KILLS` (default 500), `DFSR_CRASH_SEED`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use samba_dfsr::engine::ids::{Guid, Gvsn, Uid};
use samba_dfsr::engine::update::{fence, Update};
use samba_dfsr::engine::version_vector::VersionVector;
use samba_dfsr::store::{Database, DownloadState, OriginatorState, StoreError};

const WRITER_ENV: &str = "DFSR_CRASH_WRITER";
const DB: Guid = Guid([0x42; 16]);
const FOLDER: Guid = Guid([0xcc; 16]);
const GROUP: Guid = Guid([0x77; 16]);
const FIRST: u64 = 9;

/// The state after some transactions, as the writer makes it.
#[derive(Default)]
struct Model {
    updates: BTreeMap<Uid, Update>,
    /// Uid of the file created by transaction i.
    created: Vec<Uid>,
    next_version: u64,
}

fn file(uid: Uid, gvsn: Gvsn, parent: Uid, i: usize) -> Update {
    Update {
        present: true,
        name_conflict: false,
        attributes: if i % 5 == 0 { 0x10 } else { 0x20 },
        fence: fence::DEFAULT,
        clock: 1000 + gvsn.version,
        create_time: 500 + i as u64,
        content_set_id: FOLDER,
        hash: [(i % 251) as u8; 20],
        rdc_similarity: [0; 16],
        uid,
        gvsn,
        parent,
        name: format!("file-{i}"),
        flags: 0,
    }
}

/// What transaction `i` writes, given the state before it: always one new
/// file (every fifth a directory, the others in the latest directory);
/// every fourth also moves an older file to the latest directory with a
/// new GVSN (so index entries are removed, not only added).
fn step(m: &mut Model, i: usize) -> Vec<Update> {
    let root = Uid::root_of(FOLDER);
    let latest_dir = |m: &Model| if i >= 5 { m.created[5 * (i / 5)] } else { m.created[0] };
    let mut out = Vec::new();
    let v = m.next_version;
    let uid = Uid::new(DB, v);
    m.created.push(uid);
    let parent = if i % 5 == 0 { root } else { latest_dir(m) };
    out.push(file(uid, Gvsn::new(DB, v), parent, i));
    m.next_version += 1;
    if i % 4 == 3 {
        let j = i / 2;
        let moved = m.created[j];
        let dir = latest_dir(m);
        let parent = if dir == moved { root } else { dir };
        let v2 = m.next_version;
        m.next_version += 1;
        let mut u = m.updates[&moved].clone();
        u.gvsn = Gvsn::new(DB, v2);
        u.parent = parent;
        u.clock = 1000 + v2;
        out.push(u);
    }
    for u in &out {
        m.updates.insert(u.uid, u.clone());
    }
    out
}

fn model(n: usize) -> Model {
    let mut m = Model { next_version: FIRST, ..Model::default() };
    for i in 0..n {
        step(&mut m, i);
    }
    m
}

fn staged(uid: &Uid) -> DownloadState {
    DownloadState::Staged { path: format!("/staging/{}", uid.version).into(), hash: [uid.version as u8; 20] }
}

/// The child: resume after the last committed transaction and commit more
/// until killed, reporting each commit.
fn writer(path: &Path) -> Result<(), StoreError> {
    let mut db = Database::open(path)?;
    let n = db.counts()?.updates;
    let mut m = model(n);
    let stored = db.originator(&FOLDER)?.map_or(FIRST, |s| s.next_version);
    assert_eq!(stored, m.next_version, "counter disagrees with the updates");
    println!("ready {n}");
    for i in n.. {
        let writes = step(&mut m, i);
        let next = m.next_version;
        db.transaction(|tx| -> Result<(), StoreError> {
            if tx.database_guid()?.is_none() {
                tx.set_database_guid(&DB)?;
            }
            let mut v = tx.known_vector(&GROUP, &FOLDER)?;
            for u in &writes {
                tx.put_update(u)?;
                v.insert(u.gvsn);
            }
            tx.set_download(&writes[0].uid, &staged(&writes[0].uid))?;
            tx.set_known_vector(&GROUP, &FOLDER, &v)?;
            tx.set_originator(&FOLDER, &OriginatorState { next_version: next, last_clock: 1000 + next - 1 })
        })?;
        println!("committed {}", i + 1);
    }
    Ok(())
}

#[test]
fn crash_writer() {
    let Some(path) = std::env::var_os(WRITER_ENV) else { return };
    if let Err(e) = writer(Path::new(&path)) {
        eprintln!("writer: {e}");
        std::process::exit(2);
    }
}

/// xorshift64*: seeded, so a failing run can be repeated.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// True when the file holds a valid recovery record: a commit was killed
/// after it started overwriting data, and the next open must replay it.
/// (`tdb_header.recovery_start` is at offset 44; the record's magic at
/// +20 is TDB_RECOVERY_MAGIC while a commit is in flight.)
fn recovery_pending(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let mut b = [0u8; 4];
    let read_u32 = |f: &mut std::fs::File, off: u64, b: &mut [u8; 4]| -> Option<u32> {
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(b).ok()?;
        Some(u32::from_ne_bytes(*b))
    };
    match read_u32(&mut f, 44, &mut b) {
        Some(0) | None => false,
        Some(start) => read_u32(&mut f, u64::from(start) + 20, &mut b) == Some(0xf53b_c0e7),
    }
}

/// The whole database against the model of its first `n` transactions.
fn verify(path: &Path, kill: u64) -> usize {
    let db = Database::open(path).unwrap_or_else(|e| panic!("kill {kill}: reopen: {e}"));
    let problems = db.check().unwrap();
    assert!(problems.is_empty(), "kill {kill}: check found {problems:#?}");
    let counts = db.counts().unwrap();
    let n = counts.updates;
    let m = model(n);
    assert_eq!(counts.gvsn_index, n, "kill {kill}");
    assert_eq!(counts.parent_index, n, "kill {kill}");
    assert_eq!(counts.downloads, n, "kill {kill}");
    if n == 0 {
        assert_eq!(db.originator(&FOLDER).unwrap(), None);
        return 0;
    }
    let o = db.originator(&FOLDER).unwrap().unwrap();
    assert_eq!(o.next_version, m.next_version, "kill {kill}: counter vs updates");
    let mut want = VersionVector::new();
    for v in FIRST..m.next_version {
        want.insert(Gvsn::new(DB, v));
    }
    assert_eq!(db.known_vector(&GROUP, &FOLDER).unwrap(), want, "kill {kill}");
    for (uid, u) in &m.updates {
        assert_eq!(db.update(uid).unwrap().as_ref(), Some(u), "kill {kill}: {uid}");
        assert_eq!(db.download(uid).unwrap(), Some(staged(uid)), "kill {kill}: {uid}");
    }
    n
}

#[test]
fn sigkill_during_commits() {
    let kills = env_u64("DFSR_CRASH_KILLS", 500);
    let mut rng = Rng(env_u64("DFSR_CRASH_SEED", 0x5eed_dfc5) | 1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("store-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dfsr.tdb");
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let (mut in_recovery, mut first_commit, mut after_commit, mut before_ready) = (0u64, 0u64, 0u64, 0u64);
    let mut n = 0;
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args(["crash_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Lines arrive through a thread so a writer that never gets ready
        // fails the test instead of hanging it. libtest may print "test
        // crash_writer ... " before the first line: match inside lines.
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let report =
                    |tag: &str| line.find(tag).and_then(|i| line[i + tag.len()..].trim().parse::<usize>().ok());
                let msg = match (report("ready "), report("committed ")) {
                    (Some(n), _) => (true, n),
                    (None, Some(n)) => (false, n),
                    _ => continue,
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let ready = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((true, n)) => break n,
                Ok((false, _)) => continue,
                Err(e) => {
                    let _ = child.kill();
                    panic!("kill {kill}: the writer never got ready ({e}): {:?}", child.wait());
                }
            }
        };
        assert_eq!(ready, n, "kill {kill}: the writer resumed elsewhere");
        std::thread::sleep(Duration::from_micros(rng.next() % 30_001));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "kill {kill}: the writer exited by itself: {status}");
        // The pipe closes with the writer: drain what it reported.
        let last = rx.iter().filter(|(r, _)| !r).map(|(_, n)| n).last().unwrap_or(ready);
        let pending = recovery_pending(&path);
        n = verify(&path, kill);
        if pending {
            // TDB's recovery undoes a commit in flight: it is as if the
            // transaction never ran.
            assert_eq!(n, last, "kill {kill}: a commit in flight survived recovery");
            in_recovery += 1;
            if n == ready {
                first_commit += 1;
            }
        }
        // Every reported commit is there; at most one more (committed,
        // killed before it could say so).
        assert!(n == last || n == last + 1, "kill {kill}: {n} transactions held, {last} reported");
        if n == last + 1 {
            after_commit += 1;
        }
        if n == ready {
            before_ready += 1;
        }
    }
    let took = start.elapsed();
    eprintln!(
        "store_crash: {kills} kills in {:.1} s, {n} transactions survived; {in_recovery} kills mid-commit \
         (recovery replayed on open and the commit rolled back; {first_commit} of them in the writer's first), \
         {after_commit} between commit and report, {before_ready} with no commit",
        took.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
