//! The namespace store: the table and the site map in a TDB file in
//! Samba's state directory, so `dfsrctl` edits it and smbd (any child,
//! any user) reads it. Records: `schema` (u32 LE), `table`
//! ([`Table::encode`]) and `sites` ([`SiteMap::encode`]); a missing record
//! reads as empty. Edits run inside a TDB transaction, so readers see the
//! whole edit or none of it.

use std::cell::Cell;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;
use trivialdb::{Flags, Tdb};

use super::site::{SiteDecodeError, SiteMap};
use super::table::{DecodeError, Table};

/// The store's file name inside Samba's state directory.
pub const FILE_NAME: &str = "dfsr_namespace.tdb";
/// Layout of the set of records; bump when keys or their meaning change.
pub const SCHEMA_VERSION: u32 = 1;

const KEY_SCHEMA: &[u8] = b"schema";
const KEY_TABLE: &[u8] = b"table";
const KEY_SITES: &[u8] = b"sites";

/// World-readable: smbd children run as the connected user and must be
/// able to read referrals; only root (dfsrctl) writes.
const CREATE_MODE: u32 = 0o644;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: cannot open the namespace store: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: cannot set the namespace store's mode: {source}")]
    Chmod { path: PathBuf, source: io::Error },
    #[error("{path}: TDB {op} failed: {source}")]
    Tdb { path: PathBuf, op: &'static str, source: trivialdb::Error },
    #[error("{path}: the schema record is {len} bytes, not 4")]
    BadSchema { path: PathBuf, len: usize },
    #[error("{path}: namespace store schema {found} is not the supported {SCHEMA_VERSION}")]
    UnsupportedSchema { path: PathBuf, found: u32 },
    #[error("{path}: bad table record: {source}")]
    Table { path: PathBuf, source: DecodeError },
    #[error("{path}: bad sites record: {source}")]
    Sites { path: PathBuf, source: SiteDecodeError },
    #[error("{path}: the namespace store kept changing while being read")]
    Unstable { path: PathBuf },
    #[error("{path}: the namespace store was opened read-only")]
    ReadOnly { path: PathBuf },
}

/// An open namespace store.
///
/// TDB allows one open handle per file per process, so open a store once
/// and keep it (a read-only store opens the file only while loading).
pub struct Store {
    path: PathBuf,
    /// `None` for a read-only store.
    tdb: Option<Tdb>,
    /// Read-only: the handle `open_read_only` checked the file with, kept
    /// for the first `load` (which closes it to drop its read lock).
    pending: Cell<Option<Tdb>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("read_only", &self.tdb.is_none()).finish()
    }
}

/// Cancels the transaction unless committed (also on a panic in the edit).
struct Transaction<'a> {
    tdb: &'a mut Tdb,
    open: bool,
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the error that got us here is returned.
            let _ = self.tdb.transaction_cancel();
        }
    }
}

impl Store {
    /// Opens the store read-write, creating it (mode 0644) if missing.
    /// The directory must exist (Samba creates its state directory).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let (existed, empty) = match std::fs::metadata(path) {
            Ok(m) => (true, m.len() == 0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (false, true),
            Err(source) => return Err(StoreError::Open { path: path.into(), source }),
        };
        // With O_CREAT tdb_open rewrites a file whose header is not a TDB's
        // as a new database: only allow that for a missing or empty file.
        let flags = if empty { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
        let tdb = open_tdb(path, flags)?;
        if !existed {
            // tdb_open's mode goes through the umask; readers need 0644.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(CREATE_MODE))
                .map_err(|source| StoreError::Chmod { path: path.into(), source })?;
        }
        Ok(Store { path: path.into(), tdb: Some(tdb), pending: Cell::new(None) })
    }

    /// A read-only store. A missing file is not an error: it reads as an
    /// empty namespace (nothing configured yet), so readers need no write
    /// access anywhere. Any other open failure is reported here.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let store = Store { path: path.into(), tdb: None, pending: Cell::new(None) };
        store.pending.set(store.open_for_reading()?);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.tdb.is_none()
    }

    /// The read-only handle, or `None` when the file does not exist.
    fn open_for_reading(&self) -> Result<Option<Tdb>, StoreError> {
        match open_tdb(&self.path, libc::O_RDONLY) {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Loads the table and the site map as of one moment.
    pub fn load(&self) -> Result<(Table, SiteMap), StoreError> {
        let path = &self.path;
        let lock_err = |op| move |source| StoreError::Tdb { path: path.clone(), op, source };
        match &self.tdb {
            Some(tdb) => {
                // An all-record lock keeps a writer from committing between
                // the fetches; write lock because only it can be unlocked
                // through trivialdb.
                tdb.lockall().map_err(lock_err("lockall"))?;
                let records = read_records(tdb, path);
                tdb.unlockall().map_err(lock_err("unlockall"))?;
                records
            }
            None => {
                let tdb = match self.pending.take() {
                    Some(t) => t,
                    None => match self.open_for_reading()? {
                        Some(t) => t,
                        None => return Ok((Table::new(), SiteMap::new())),
                    },
                };
                read_stable(&tdb, path)
            }
        }
    }

    /// Loads, applies `edit`, and writes back only if it succeeded, all in
    /// one transaction: on any error the store is unchanged.
    pub fn update<T, E, F>(&mut self, edit: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut Table, &mut SiteMap) -> Result<T, E>,
    {
        let path = self.path.clone();
        let tdb = self.tdb.as_mut().ok_or_else(|| StoreError::ReadOnly { path: path.clone() })?;
        let mut txn = start(tdb, &path)?;
        let (mut table, mut sites) = read_records(txn.tdb, &path)?;
        let out = edit(&mut table, &mut sites)?;
        let p = &path;
        let tdb_err = |op| move |source| StoreError::Tdb { path: p.clone(), op, source };
        txn.tdb.store(KEY_SCHEMA, &SCHEMA_VERSION.to_le_bytes(), None).map_err(tdb_err("store schema"))?;
        txn.tdb.store(KEY_TABLE, &table.encode(), None).map_err(tdb_err("store table"))?;
        txn.tdb.store(KEY_SITES, &sites.encode(), None).map_err(tdb_err("store sites"))?;
        // A failed commit is cancelled by tdb itself; the guard's cancel
        // is then a harmless no-op error.
        let committed = txn.tdb.transaction_commit();
        txn.open = false;
        committed.map_err(tdb_err("transaction commit"))?;
        Ok(out)
    }
}

fn open_tdb(path: &Path, open_flags: i32) -> Result<Tdb, StoreError> {
    // Flags::NoSync is mis-mapped to TDB_SEQNUM in trivialdb 0.1.10; plain
    // flags give synced transactions, which is what an admin edit wants.
    Tdb::open(path, None, Flags::empty(), open_flags, CREATE_MODE)
        .ok_or_else(|| StoreError::Open { path: path.into(), source: io::Error::last_os_error() })
}

fn start<'a>(tdb: &'a mut Tdb, path: &Path) -> Result<Transaction<'a>, StoreError> {
    tdb.transaction_start().map_err(|source| StoreError::Tdb { path: path.into(), op: "transaction start", source })?;
    Ok(Transaction { tdb, open: true })
}

type RawRecords = [Option<Vec<u8>>; 3];

fn read_raw(tdb: &Tdb, path: &Path) -> Result<RawRecords, StoreError> {
    let fetch = |key: &'static [u8]| {
        tdb.fetch(key).map_err(|source| StoreError::Tdb { path: path.into(), op: "fetch", source })
    };
    Ok([fetch(KEY_SCHEMA)?, fetch(KEY_TABLE)?, fetch(KEY_SITES)?])
}

/// Reads under a lock the caller holds (or inside a transaction).
fn read_records(tdb: &Tdb, path: &Path) -> Result<(Table, SiteMap), StoreError> {
    decode_records(read_raw(tdb, path)?, path)
}

/// Reads through a read-only handle. TDB does no locking at all on those
/// (tdb_open sets TDB_NOLOCK for O_RDONLY), so a commit could be seen half
/// written: read until two passes agree, and let the decoders' checks
/// catch the rest.
fn read_stable(tdb: &Tdb, path: &Path) -> Result<(Table, SiteMap), StoreError> {
    let mut last = read_raw(tdb, path)?;
    for _ in 0..8 {
        let again = read_raw(tdb, path)?;
        if again == last {
            return decode_records(again, path);
        }
        last = again;
    }
    Err(StoreError::Unstable { path: path.into() })
}

fn decode_records(raw: RawRecords, path: &Path) -> Result<(Table, SiteMap), StoreError> {
    let [schema, table, sites] = raw;
    if let Some(b) = schema {
        let raw: [u8; 4] =
            b.as_slice().try_into().map_err(|_| StoreError::BadSchema { path: path.into(), len: b.len() })?;
        let found = u32::from_le_bytes(raw);
        if found != SCHEMA_VERSION {
            return Err(StoreError::UnsupportedSchema { path: path.into(), found });
        }
    }
    let table = match table {
        Some(b) => Table::decode(&b).map_err(|source| StoreError::Table { path: path.into(), source })?,
        None => Table::new(),
    };
    let sites = match sites {
        Some(b) => SiteMap::decode(&b).map_err(|source| StoreError::Sites { path: path.into(), source })?,
        None => SiteMap::new(),
    };
    Ok((table, sites))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::site::SiteError;
    use crate::namespace::table::TableError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory per test: TDB refuses a second handle on one file
    /// in one process, and tests run in parallel.
    fn temp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "dfsr-store-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[allow(dead_code)] // the payloads are for Debug output on failure
    #[derive(Debug)]
    enum TestError {
        Store(StoreError),
        Table(TableError),
        Site(SiteError),
    }
    impl From<SiteError> for TestError {
        fn from(e: SiteError) -> Self {
            TestError::Site(e)
        }
    }
    impl From<StoreError> for TestError {
        fn from(e: StoreError) -> Self {
            TestError::Store(e)
        }
    }
    impl From<TableError> for TestError {
        fn from(e: TableError) -> Self {
            TestError::Table(e)
        }
    }

    #[test]
    fn create_update_reload() {
        let dir = temp_dir();
        let path = dir.join(FILE_NAME);
        let mut s = Store::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(s.load().unwrap(), (Table::new(), SiteMap::new()));
        let n: usize = s
            .update(|t, m| -> Result<usize, TestError> {
                t.add_root("Public")?;
                t.add_target_unc("Public", r"\\srv\Public")?;
                m.add_subnet("10.1.0.0/16", "Paris")?;
                Ok(t.roots().len())
            })
            .unwrap();
        assert_eq!(n, 1);
        let (t, m) = s.load().unwrap();
        assert_eq!(t.roots()[0].name, "Public");
        assert_eq!(m.sites().collect::<Vec<_>>(), vec!["Paris"]);
        drop(s);

        // Another opener (a fresh process would do the same) sees it.
        let mut ro = Store::open_read_only(&path).unwrap();
        assert!(ro.is_read_only());
        let (t2, m2) = ro.load().unwrap();
        assert_eq!((t2, m2), (t, m));
        assert!(matches!(ro.update(|_, _| Ok::<(), StoreError>(())), Err(StoreError::ReadOnly { .. })));
        drop(ro);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_edit_changes_nothing() {
        let dir = temp_dir();
        let path = dir.join(FILE_NAME);
        let mut s = Store::open(&path).unwrap();
        s.update(|t, _| t.add_root("Public").map_err(TestError::from)).unwrap();
        let before = s.load().unwrap();
        let r = s.update(|t, m| -> Result<(), TestError> {
            t.add_root("Other")?;
            m.add_site("Paris")?;
            t.add_root("public")?; // duplicate: the whole edit is dropped
            Ok(())
        });
        assert!(matches!(r, Err(TestError::Table(TableError::DuplicateRoot(_)))));
        assert_eq!(s.load().unwrap(), before);
        // A panicking edit is cancelled too, and the store stays usable.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = s.update(|t, _| -> Result<(), StoreError> {
                t.add_root("Boom").ok();
                panic!("edit failed");
            });
        }));
        assert!(caught.is_err());
        assert_eq!(s.load().unwrap(), before);
        s.update(|t, _| t.add_root("After").map_err(TestError::from)).unwrap();
        assert_eq!(s.load().unwrap().0.roots().len(), 2);
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_and_bad_records() {
        let dir = temp_dir();
        let path = dir.join(FILE_NAME);
        // Read-only on a missing file: an empty namespace, no file created.
        let ro = Store::open_read_only(&path).unwrap();
        assert_eq!(ro.load().unwrap(), (Table::new(), SiteMap::new()));
        assert!(!path.exists());
        drop(ro);
        // A missing directory is an error naming the path.
        let e = Store::open(&dir.join("nope").join(FILE_NAME)).unwrap_err();
        assert!(matches!(e, StoreError::Open { .. }), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");

        // Hostile records are typed errors naming the file, not panics.
        {
            let mut raw = Tdb::open(&path, None, Flags::empty(), libc::O_RDWR | libc::O_CREAT, 0o644).unwrap();
            raw.store(KEY_TABLE, b"garbage", None).unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        let e = s.load().unwrap_err();
        assert!(matches!(e, StoreError::Table { source: DecodeError::BadMagic, .. }), "{e}");
        assert!(e.to_string().contains(FILE_NAME), "{e}");
        // update refuses to overwrite a record it cannot read.
        assert!(matches!(s.update(|_, _| Ok::<(), StoreError>(())), Err(StoreError::Table { .. })));
        drop(s);
        {
            let mut raw = Tdb::open(&path, None, Flags::empty(), libc::O_RDWR, 0o644).unwrap();
            raw.delete(KEY_TABLE).unwrap();
            raw.store(KEY_SITES, b"DFSS\x01\x01", None).unwrap();
        }
        let e = Store::open_read_only(&path).unwrap().load().unwrap_err();
        assert!(matches!(e, StoreError::Sites { source: SiteDecodeError::Truncated, .. }), "{e}");
        {
            let mut raw = Tdb::open(&path, None, Flags::empty(), libc::O_RDWR, 0o644).unwrap();
            raw.delete(KEY_SITES).unwrap();
            raw.store(KEY_SCHEMA, &2u32.to_le_bytes(), None).unwrap();
        }
        let e = Store::open_read_only(&path).unwrap().load().unwrap_err();
        assert!(matches!(e, StoreError::UnsupportedSchema { found: 2, .. }), "{e}");
        {
            let mut raw = Tdb::open(&path, None, Flags::empty(), libc::O_RDWR, 0o644).unwrap();
            raw.store(KEY_SCHEMA, b"1", None).unwrap();
        }
        let e = Store::open_read_only(&path).unwrap().load().unwrap_err();
        assert!(matches!(e, StoreError::BadSchema { len: 1, .. }), "{e}");
        // A file that is not a TDB at all.
        let junk = dir.join("junk.tdb");
        std::fs::write(&junk, b"not a tdb file, just some bytes that are long enough").unwrap();
        assert!(matches!(Store::open_read_only(&junk), Err(StoreError::Open { .. })));
        assert!(matches!(Store::open(&junk), Err(StoreError::Open { .. })));
        assert!(std::fs::read(&junk).unwrap().starts_with(b"not a tdb"), "junk was overwritten");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
