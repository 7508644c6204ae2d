//! What the meet has placed in each share: for every file and directory
//! of a replicated folder that is on disk, the version installed there and
//! where (its parent's UID and its name), in
//! `<state directory>/dfsr/placed.tdb`. The member compares it with the
//! database to know what still has to be installed, moved or removed —
//! after a crash too: a record is written only once the meet has placed
//! the version, so an interrupted install is done again, never skipped.
//! Paths are kept as parent + name, so moving a directory changes one
//! record, not one per descendant.
//!
//! Each record also keeps what the file looked like on disk right after it
//! was placed or scanned ([`Seen`]): the member's scan passes over a file
//! whose inode, change time and size are unchanged, so what the meet
//! installed is never taken for a local change.
//!
//! Record: key `p` + folder GUID + UID (db GUID, version big-endian);
//! value: GVSN (db GUID, version LE), parent UID (db GUID, version LE),
//! seen (inode, btime ns, ctime ns, mtime ns, size; LE, all zero when
//! unknown),
//! then the name in UTF-8.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use trivialdb::{Flags, Tdb};

use crate::engine::ids::{Guid, Gvsn, Uid};

/// The file's name inside `<state directory>/dfsr`.
pub const FILE_NAME: &str = "placed.tdb";

const PREFIX: u8 = b'p';
const CREATE_MODE: u32 = 0o600;

/// One placed version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub gvsn: Gvsn,
    pub parent: Uid,
    pub name: String,
    /// The file on disk when it was last placed or scanned.
    pub seen: Option<Seen>,
}

/// A file's stat as the scan compares it: POSIX ctime moves on every
/// change of data, xattrs (NT ACL, DOS attributes, streams), times or
/// name, so an unchanged (inode, ctime, size) means an unchanged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Seen {
    pub inode: u64,
    /// Birth time (statx), 0 when the file system has none: an inode
    /// reused by a new file has a new one.
    pub btime_ns: i64,
    pub ctime_ns: i64,
    pub mtime_ns: i64,
    pub size: u64,
}

impl Seen {
    /// The stat of `md` (from `symlink_metadata`).
    pub fn of(md: &std::fs::Metadata) -> Seen {
        use std::os::unix::fs::MetadataExt;
        let btime_ns = md
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Seen {
            inode: md.ino(),
            btime_ns,
            ctime_ns: md.ctime().saturating_mul(1_000_000_000).saturating_add(md.ctime_nsec()),
            mtime_ns: md.mtime().saturating_mul(1_000_000_000).saturating_add(md.mtime_nsec()),
            size: if md.is_dir() { 0 } else { md.len() },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlacedError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: TDB {op} failed: {source}")]
    Tdb { path: PathBuf, op: &'static str, source: trivialdb::Error },
    #[error("{path}: a damaged record ({len} bytes) under key {key}")]
    Damaged { path: PathBuf, key: String, len: usize },
}

/// The placed-versions file.
pub struct PlacedStore {
    path: PathBuf,
    tdb: Tdb,
}

impl std::fmt::Debug for PlacedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacedStore").field("path", &self.path).finish()
    }
}

/// One change to the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlacedChange {
    Put(Guid, Uid, Placed),
    Remove(Guid, Uid),
}

fn key(folder: &Guid, uid: &Uid) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(PREFIX);
    k.extend_from_slice(&folder.0);
    k.extend_from_slice(&uid.db.0);
    k.extend_from_slice(&uid.version.to_be_bytes());
    k
}

const FIXED: usize = 88;

fn encode(p: &Placed) -> Vec<u8> {
    let mut v = Vec::with_capacity(FIXED + p.name.len());
    v.extend_from_slice(&p.gvsn.db.0);
    v.extend_from_slice(&p.gvsn.version.to_le_bytes());
    v.extend_from_slice(&p.parent.db.0);
    v.extend_from_slice(&p.parent.version.to_le_bytes());
    let s = p.seen.unwrap_or(Seen { inode: 0, btime_ns: 0, ctime_ns: 0, mtime_ns: 0, size: 0 });
    v.extend_from_slice(&s.inode.to_le_bytes());
    v.extend_from_slice(&s.btime_ns.to_le_bytes());
    v.extend_from_slice(&s.ctime_ns.to_le_bytes());
    v.extend_from_slice(&s.mtime_ns.to_le_bytes());
    v.extend_from_slice(&s.size.to_le_bytes());
    v.extend_from_slice(p.name.as_bytes());
    v
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    Guid(g)
}

fn u64_at(b: &[u8], at: usize, be: bool) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    if be {
        u64::from_be_bytes(x)
    } else {
        u64::from_le_bytes(x)
    }
}

fn decode(v: &[u8]) -> Option<Placed> {
    if v.len() < FIXED {
        return None;
    }
    let name = std::str::from_utf8(&v[FIXED..]).ok()?.to_string();
    let seen = Seen {
        inode: u64_at(v, 48, false),
        btime_ns: u64_at(v, 56, false) as i64,
        ctime_ns: u64_at(v, 64, false) as i64,
        mtime_ns: u64_at(v, 72, false) as i64,
        size: u64_at(v, 80, false),
    };
    Some(Placed {
        gvsn: Gvsn::new(guid_at(v, 0), u64_at(v, 16, false)),
        parent: Uid::new(guid_at(v, 24), u64_at(v, 40, false)),
        name,
        seen: (seen.inode != 0).then_some(seen),
    })
}

impl PlacedStore {
    /// Opens the file, creating it (mode 0600) when missing.
    pub fn open(path: &Path) -> Result<PlacedStore, PlacedError> {
        let empty = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(source) => return Err(PlacedError::Open { path: path.into(), source }),
        };
        // O_CREAT would let tdb_open rewrite a file that is not a TDB.
        let flags = if empty { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
        let tdb = Tdb::open(path, None, Flags::empty(), flags, CREATE_MODE)
            .ok_or_else(|| PlacedError::Open { path: path.into(), source: io::Error::last_os_error() })?;
        Ok(PlacedStore { path: path.into(), tdb })
    }

    fn tdb_err(&self, op: &'static str) -> impl Fn(trivialdb::Error) -> PlacedError + '_ {
        move |source| PlacedError::Tdb { path: self.path.clone(), op, source }
    }

    /// Everything placed of `folder`.
    pub fn folder(&self, folder: &Guid) -> Result<HashMap<Uid, Placed>, PlacedError> {
        let mut out = HashMap::new();
        let mut prefix = vec![PREFIX];
        prefix.extend_from_slice(&folder.0);
        for k in self.tdb.keys() {
            if k.len() != 41 || !k.starts_with(&prefix) {
                continue;
            }
            let Some(v) = self.tdb.fetch(&k).map_err(self.tdb_err("fetch"))? else { continue };
            let p = decode(&v).ok_or_else(|| PlacedError::Damaged {
                path: self.path.clone(),
                key: k.iter().map(|b| format!("{b:02x}")).collect(),
                len: v.len(),
            })?;
            out.insert(Uid::new(guid_at(&k, 17), u64_at(&k, 33, true)), p);
        }
        Ok(out)
    }

    /// Applies `changes` in one transaction.
    pub fn apply(&mut self, changes: &[PlacedChange]) -> Result<(), PlacedError> {
        if changes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = |op| {
            let path = path.clone();
            move |source| PlacedError::Tdb { path, op, source }
        };
        self.tdb.transaction_start().map_err(err("transaction start"))?;
        let written = (|| {
            for c in changes {
                match c {
                    PlacedChange::Put(f, u, p) => self.tdb.store(&key(f, u), &encode(p), None).map_err(err("store"))?,
                    PlacedChange::Remove(f, u) => match self.tdb.delete(&key(f, u)) {
                        Ok(()) | Err(trivialdb::Error::NoExist) => {}
                        Err(e) => return Err(err("delete")(e)),
                    },
                }
            }
            Ok(())
        })();
        match written {
            Ok(()) => self.tdb.transaction_commit().map_err(err("transaction commit")),
            Err(e) => {
                let _ = self.tdb.transaction_cancel();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_per_folder_and_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("dfsr-placed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(FILE_NAME);
        let (f1, f2) = (Guid([1; 16]), Guid([2; 16]));
        let u = Uid::new(Guid([3; 16]), 0x0102_0304_0506_0708);
        let seen = Seen { inode: 77, btime_ns: 3, ctime_ns: -5, mtime_ns: 1_700_000_000_000_000_001, size: 1 << 40 };
        let placed = Placed { gvsn: Gvsn::new(Guid([4; 16]), 9), parent: Uid::root_of(f1), name: "näme".into(), seen: Some(seen) };
        let mut s = PlacedStore::open(&p).unwrap();
        s.apply(&[PlacedChange::Put(f1, u, placed.clone()), PlacedChange::Put(f2, u, placed.clone())]).unwrap();
        s.apply(&[PlacedChange::Remove(f2, u), PlacedChange::Remove(f2, u)]).unwrap();
        drop(s);
        let s = PlacedStore::open(&p).unwrap();
        assert_eq!(s.folder(&f1).unwrap(), HashMap::from([(u, placed.clone())]));
        let unseen = Placed { seen: None, ..placed };
        assert_eq!(decode(&encode(&unseen)), Some(unseen));
        assert!(s.folder(&f2).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_short_record_is_reported() {
        assert_eq!(decode(&[0u8; FIXED - 1]), None);
        assert_eq!(decode(&[0u8; FIXED]).map(|p| p.name), Some(String::new()));
        let mut bad = vec![0u8; FIXED];
        bad.push(0xff);
        assert_eq!(decode(&bad), None, "a name that is not UTF-8 was accepted");
    }
}
