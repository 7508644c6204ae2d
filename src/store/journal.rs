//! The change journal between smbd and dfsrd,
//! `<state directory>/dfsr/journal.tdb`: what a client changed through
//! smbd in a replicated folder, kept until the member has looked (MS-FRS2
//! leaves change detection to the implementation; Windows reads the NTFS
//! USN journal, this is its stand-in).
//!
//! One record per replicated share, keyed `share/<name, lower case>`. The
//! member writes it when it takes the folder up ([`Journal::watch`]); its
//! presence is what makes the `dfsr` module record changes to that share.
//! The value holds one byte per change (a [`ChangeKind`] letter), appended
//! by smbd's processes ([`Journal::record`]) and taken off the front by the
//! member once a scan has committed what they announced
//! ([`Journal::consume`]); a change made while dfsrd is down stays until it
//! is back. Bounded: past [`CAP`] changes nothing more is appended — the
//! scan that follows covers the whole folder, as Windows rescans a volume
//! whose USN journal wrapped.

use std::io;
use std::path::{Path, PathBuf};

use trivialdb::{Flags, Tdb};

/// The file in the state directory's `dfsr` directory.
pub const FILE_NAME: &str = "journal.tdb";

/// Changes kept per share before the journal only says "changed".
pub const CAP: usize = 4096;

const CREATE_MODE: u32 = 0o600;

/// What a client did, as the hook saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A file created (or opened to be created).
    Created,
    /// A handle that wrote, truncated or set the size was closed.
    Written,
    /// A directory made.
    DirectoryMade,
    /// A rename or move.
    Renamed,
    /// A file, directory or stream removed (delete-on-close too).
    Removed,
    /// An NT ACL set.
    Security,
    /// DOS attributes set.
    Attributes,
    /// Times set.
    Times,
}

impl ChangeKind {
    /// Its letter in the journal.
    pub fn letter(self) -> u8 {
        match self {
            ChangeKind::Created => b'N',
            ChangeKind::Written => b'W',
            ChangeKind::DirectoryMade => b'M',
            ChangeKind::Renamed => b'R',
            ChangeKind::Removed => b'U',
            ChangeKind::Security => b'A',
            ChangeKind::Attributes => b'D',
            ChangeKind::Times => b'T',
        }
    }

    /// The kind of a letter (the C hooks pass letters).
    pub fn from_letter(c: u8) -> Option<ChangeKind> {
        Some(match c {
            b'N' => ChangeKind::Created,
            b'W' => ChangeKind::Written,
            b'M' => ChangeKind::DirectoryMade,
            b'R' => ChangeKind::Renamed,
            b'U' => ChangeKind::Removed,
            b'A' => ChangeKind::Security,
            b'D' => ChangeKind::Attributes,
            b'T' => ChangeKind::Times,
            _ => return None,
        })
    }
}

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: TDB {op} failed: {source}")]
    Tdb { path: PathBuf, op: &'static str, source: trivialdb::Error },
}

/// The journal file.
pub struct Journal {
    path: PathBuf,
    tdb: Tdb,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

fn key(share: &str) -> Vec<u8> {
    format!("share/{}", share.to_lowercase()).into_bytes()
}

impl Journal {
    /// Opens (the member: creating) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let empty = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(source) => return Err(JournalError::Open { path: path.into(), source }),
        };
        // O_CREAT would let tdb_open rewrite a file that is not a TDB.
        let flags = if empty { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
        Self::open_with(path, flags)
    }

    /// Opens an existing journal (smbd: no member, no journal, nothing to
    /// record); None when there is none.
    pub fn open_existing(path: &Path) -> Option<Journal> {
        Self::open_with(path, libc::O_RDWR).ok()
    }

    fn open_with(path: &Path, flags: i32) -> Result<Journal, JournalError> {
        let tdb = Tdb::open(path, None, Flags::empty(), flags, CREATE_MODE)
            .ok_or_else(|| JournalError::Open { path: path.into(), source: io::Error::last_os_error() })?;
        Ok(Journal { path: path.into(), tdb })
    }

    fn tdb_err(&self, op: &'static str) -> impl Fn(trivialdb::Error) -> JournalError + '_ {
        move |source| JournalError::Tdb { path: self.path.clone(), op, source }
    }

    /// Changes to `share` are to be recorded from now on.
    pub fn watch(&mut self, share: &str) -> Result<(), JournalError> {
        let k = key(share);
        if self.tdb.exists(&k) {
            return Ok(());
        }
        self.tdb.store(&k, b"", None).map_err(self.tdb_err("store"))
    }

    /// `share` is no longer replicated here.
    pub fn unwatch(&mut self, share: &str) -> Result<(), JournalError> {
        match self.tdb.delete(&key(share)) {
            Ok(()) | Err(trivialdb::Error::NoExist) => Ok(()),
            Err(e) => Err(self.tdb_err("delete")(e)),
        }
    }

    /// The shares watched (their names in lower case).
    pub fn watched(&self) -> Vec<String> {
        self.tdb
            .keys()
            .filter_map(|k| k.strip_prefix(b"share/").map(|n| String::from_utf8_lossy(n).into_owned()))
            .collect()
    }

    /// Whether changes to `share` are recorded.
    pub fn watches(&self, share: &str) -> bool {
        self.tdb.exists(&key(share))
    }

    /// Records a change to `share` (smbd, after the change succeeded);
    /// returns false when the share is not watched (nothing recorded).
    pub fn record(&mut self, share: &str, kind: ChangeKind) -> Result<bool, JournalError> {
        let k = key(share);
        match self.tdb.fetch(&k).map_err(self.tdb_err("fetch"))? {
            None => Ok(false),
            Some(v) if v.len() >= CAP => Ok(true),
            Some(_) => {
                self.tdb.append(&k, &[kind.letter()]).map_err(self.tdb_err("append"))?;
                Ok(true)
            }
        }
    }

    /// Changes to `share` not yet consumed (0 when not watched).
    pub fn pending(&self, share: &str) -> Result<usize, JournalError> {
        Ok(self.tdb.fetch(&key(share)).map_err(self.tdb_err("fetch"))?.map_or(0, |v| v.len()))
    }

    /// Takes the first `n` changes of `share` off (a scan committed what
    /// they announced); later ones stay.
    pub fn consume(&mut self, share: &str, n: usize) -> Result<(), JournalError> {
        let k = key(share);
        // The all-record lock keeps smbd's appends out between the read
        // and the write.
        self.tdb.lockall().map_err(self.tdb_err("lockall"))?;
        let r = (|| {
            let Some(v) = self.tdb.fetch(&k).map_err(self.tdb_err("fetch"))? else { return Ok(()) };
            let rest = v.get(n.min(v.len())..).unwrap_or(&[]);
            self.tdb.store(&k, rest, None).map_err(self.tdb_err("store"))
        })();
        let unlocked = self.tdb.unlockall().map_err(self.tdb_err("unlockall"));
        r.and(unlocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("dfsr-journal-{name}-{}.tdb", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn only_watched_shares_record_and_consuming_keeps_later_changes() {
        let p = temp("watch");
        assert!(Journal::open_existing(&p).is_none(), "no journal before the member makes it");
        // TDB opens a file once per process: one handle plays smbd's and
        // the member's part.
        let mut j = Journal::open(&p).unwrap();
        assert!(!j.record("Data", ChangeKind::Written).unwrap(), "an unwatched share recorded");
        j.watch("Data").unwrap();
        assert!(j.watches("data"), "share names are case-insensitive");
        assert!(j.record("DATA", ChangeKind::Created).unwrap());
        assert!(j.record("data", ChangeKind::Written).unwrap());
        assert_eq!(j.pending("data").unwrap(), 2);
        // A change arrives while the member scans: it stays.
        j.record("data", ChangeKind::Renamed).unwrap();
        j.consume("data", 2).unwrap();
        assert_eq!(j.pending("data").unwrap(), 1);
        j.consume("data", 1).unwrap();
        assert_eq!(j.pending("data").unwrap(), 0);
        assert!(j.watches("data"), "consuming stopped the watch");
        assert_eq!(j.watched(), vec!["data".to_string()]);
        j.unwatch("data").unwrap();
        assert!(!j.record("data", ChangeKind::Written).unwrap());
        assert!(j.watched().is_empty());
        drop(j);
        assert!(Journal::open_existing(&p).is_some());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_journal_is_bounded() {
        let p = temp("cap");
        let mut j = Journal::open(&p).unwrap();
        j.watch("s").unwrap();
        for _ in 0..CAP + 10 {
            assert!(j.record("s", ChangeKind::Written).unwrap());
        }
        assert_eq!(j.pending("s").unwrap(), CAP);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn no_journal_file_means_nothing_to_record() {
        assert!(Journal::open_existing(&temp("missing")).is_none());
    }

    #[test]
    fn letters_round_trip() {
        for k in [
            ChangeKind::Created,
            ChangeKind::Written,
            ChangeKind::DirectoryMade,
            ChangeKind::Renamed,
            ChangeKind::Removed,
            ChangeKind::Security,
            ChangeKind::Attributes,
            ChangeKind::Times,
        ] {
            assert_eq!(ChangeKind::from_letter(k.letter()), Some(k));
        }
        assert_eq!(ChangeKind::from_letter(b'?'), None);
    }
}
