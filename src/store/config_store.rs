//! The replication configuration in a TDB file
//! (`<state directory>/dfsr/replication.tdb`): `dfsrctl replication`
//! edits it, dfsrd's member reads it again whenever it changes, so a
//! running member follows an edit without a restart. Records: `schema`
//! (u32 LE) and `config` (the configuration as JSON,
//! [`ReplicationConfig::to_json`]); a missing record reads as nothing
//! configured. Each edit is one TDB transaction: readers see all of it or
//! none, and a refused edit writes nothing.

use std::io;
use std::path::{Path, PathBuf};

use trivialdb::{Flags, Tdb};

use crate::config::replication::{ConfigError, ReplicationConfig};

/// The file's name inside `<state directory>/dfsr`.
pub const FILE_NAME: &str = "replication.tdb";
/// Layout of the records; bump when their meaning changes.
pub const SCHEMA_VERSION: u32 = 1;

const KEY_SCHEMA: &[u8] = b"schema";
const KEY_CONFIG: &[u8] = b"config";

/// Root writes it; only root reads it (dfsrd, dfsrctl).
const CREATE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigStoreError {
    #[error("{path}: cannot open the replication configuration: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: TDB {op} failed: {source}")]
    Tdb { path: PathBuf, op: &'static str, source: trivialdb::Error },
    #[error("{path}: schema {found} is not the supported {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: String },
    #[error("{path}: the stored configuration is damaged: {why}")]
    Damaged { path: PathBuf, why: String },
    /// An edit was refused; nothing was written.
    #[error(transparent)]
    Refused(#[from] ConfigError),
}

/// An open configuration store. TDB allows one handle per file per
/// process: open it once and keep it.
pub struct ConfigStore {
    path: PathBuf,
    tdb: Tdb,
}

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigStore").field("path", &self.path).finish()
    }
}

/// Cancels the transaction unless it was committed (also on a panic).
struct Txn<'a> {
    tdb: &'a mut Tdb,
    open: bool,
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.tdb.transaction_cancel();
        }
    }
}

impl ConfigStore {
    /// Opens the store, creating the file (mode 0600) when missing. The
    /// directory must exist.
    pub fn open(path: &Path) -> Result<ConfigStore, ConfigStoreError> {
        let empty = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(source) => return Err(ConfigStoreError::Open { path: path.into(), source }),
        };
        // With O_CREAT tdb_open rewrites a file that is not a TDB: only
        // allow that for a missing or empty file.
        let flags = if empty { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
        let tdb = Tdb::open(path, None, Flags::empty(), flags, CREATE_MODE)
            .ok_or_else(|| ConfigStoreError::Open { path: path.into(), source: io::Error::last_os_error() })?;
        Ok(ConfigStore { path: path.into(), tdb })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &'static str) -> impl Fn(trivialdb::Error) -> ConfigStoreError + '_ {
        move |source| ConfigStoreError::Tdb { path: self.path.clone(), op, source }
    }

    /// The configuration as of now.
    pub fn load(&self) -> Result<ReplicationConfig, ConfigStoreError> {
        // An all-record write lock: the only kind trivialdb can release;
        // it keeps a commit from landing between the two fetches.
        self.tdb.lockall().map_err(self.err("lockall"))?;
        let raw = read(&self.tdb, &self.path);
        self.tdb.unlockall().map_err(self.err("unlockall"))?;
        decode(raw?, &self.path)
    }

    /// Loads, applies `edit`, and writes the result only if `edit`
    /// succeeded, in one transaction.
    pub fn update<T, F>(&mut self, edit: F) -> Result<T, ConfigStoreError>
    where
        F: FnOnce(&mut ReplicationConfig) -> Result<T, ConfigError>,
    {
        let path = self.path.clone();
        let tdb_err = |op| {
            let path = path.clone();
            move |source| ConfigStoreError::Tdb { path, op, source }
        };
        self.tdb.transaction_start().map_err(tdb_err("transaction start"))?;
        let txn = Txn { tdb: &mut self.tdb, open: true };
        let mut config = decode(read(txn.tdb, &path)?, &path)?;
        let out = edit(&mut config)?;
        txn.tdb.store(KEY_SCHEMA, &SCHEMA_VERSION.to_le_bytes(), None).map_err(tdb_err("store schema"))?;
        txn.tdb.store(KEY_CONFIG, config.to_json().to_string().as_bytes(), None).map_err(tdb_err("store config"))?;
        let mut txn = txn;
        txn.open = false;
        // A failed commit is cancelled by tdb itself.
        txn.tdb.transaction_commit().map_err(tdb_err("transaction commit"))?;
        Ok(out)
    }
}

type Raw = (Option<Vec<u8>>, Option<Vec<u8>>);

fn read(tdb: &Tdb, path: &Path) -> Result<Raw, ConfigStoreError> {
    let fetch = |k: &[u8]| tdb.fetch(k).map_err(|source| ConfigStoreError::Tdb { path: path.into(), op: "fetch", source });
    Ok((fetch(KEY_SCHEMA)?, fetch(KEY_CONFIG)?))
}

fn decode((schema, config): Raw, path: &Path) -> Result<ReplicationConfig, ConfigStoreError> {
    if let Some(s) = schema {
        let found = <[u8; 4]>::try_from(s.as_slice()).map(u32::from_le_bytes).map_err(|_| ());
        if found != Ok(SCHEMA_VERSION) {
            let found = found.map_or_else(|_| format!("record of {} bytes", s.len()), |v| v.to_string());
            return Err(ConfigStoreError::Schema { path: path.into(), found });
        }
    }
    let Some(bytes) = config else { return Ok(ReplicationConfig::default()) };
    let damaged = |why: String| ConfigStoreError::Damaged { path: path.into(), why };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    ReplicationConfig::from_json(&value).map_err(|e| damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::replication::Address;
    use crate::engine::ids::Guid;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dfsr-config-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn edits_persist_and_a_refused_edit_writes_nothing() {
        let d = dir("edits");
        let p = d.join(FILE_NAME);
        let mut s = ConfigStore::open(&p).unwrap();
        assert_eq!(s.load().unwrap(), ReplicationConfig::default());
        s.update(|c| c.add_group("G", Guid([1; 16])).map(|_| ())).unwrap();
        s.update(|c| c.add_member("G", "A", Address::parse("a").unwrap(), Guid([2; 16])).map(|_| ())).unwrap();
        let before = s.load().unwrap();
        let e = s
            .update(|c| {
                c.add_folder("G", "F", Guid([3; 16]))?;
                c.add_folder("G", "f", Guid([4; 16])).map(|_| ())
            })
            .unwrap_err();
        assert!(matches!(e, ConfigStoreError::Refused(ConfigError::Duplicate { .. })), "{e}");
        assert_eq!(s.load().unwrap(), before, "half an edit was kept");
        drop(s);
        let s = ConfigStore::open(&p).unwrap();
        assert_eq!(s.load().unwrap(), before);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "others can read the configuration");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_record_is_reported_not_read_as_empty() {
        let d = dir("damaged");
        let p = d.join(FILE_NAME);
        let mut s = ConfigStore::open(&p).unwrap();
        s.update(|c| c.add_group("G", Guid([1; 16])).map(|_| ())).unwrap();
        s.tdb.store(KEY_CONFIG, b"{\"groups\": [{}]}", None).unwrap();
        let e = s.load().unwrap_err();
        assert!(matches!(e, ConfigStoreError::Damaged { .. }), "{e}");
        assert!(s.update(|_| Ok(())).is_err(), "an edit overwrote a damaged configuration");
        s.tdb.store(KEY_SCHEMA, &7u32.to_le_bytes(), None).unwrap();
        assert!(matches!(s.load().unwrap_err(), ConfigStoreError::Schema { .. }));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
