//! The change journal between smbd and dfsrd,
//! `<state directory>/dfsr/journal.tdb`: what a client changed through
//! smbd in a replicated folder, kept until the member has committed what
//! it announced (MS-FRS2 leaves change detection to the implementation;
//! Windows reads the NTFS USN journal, this is its stand-in).
//!
//! One record per replicated share, keyed `share/<name, lower case>`. The
//! member writes it when it takes the folder up ([`Journal::watch`]); its
//! presence is what makes the `dfsr` module record changes to that share.
//! The value is a sequence of changes, each a [`ChangeKind`] letter and
//! the share-relative path, NUL-terminated (a rename: the old path and the
//! new), appended by smbd's processes ([`Journal::record`]) and taken off
//! the front by the member once it has committed what they announced
//! ([`Journal::consume`]); a change made while dfsrd is down stays until
//! it is back. Bounded: past [`CAP`] bytes a change is only counted under
//! `dropped/<share>`, and the member then scans the whole folder, as
//! Windows rescans a volume whose USN journal wrapped.

use std::io;
use std::path::{Path, PathBuf};

use trivialdb::{Flags, Tdb};

/// The file in the state directory's `dfsr` directory.
pub const FILE_NAME: &str = "journal.tdb";

/// Bytes of changes kept per share before they are only counted (about
/// 10 000 changes of 50-byte paths; each append rewrites the record).
pub const CAP: usize = 512 * 1024;

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
    /// A rename or move (two paths).
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

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Share-relative, `/`-separated, as smbd named it.
    pub path: String,
    /// A rename's new path.
    pub to: Option<String>,
}

/// What a share's journal holds, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// The bytes read ([`Journal::consume`] takes exactly these off).
    pub len: usize,
    pub changes: Vec<Change>,
    /// Changes past [`CAP`], counted only: the whole folder is to be scanned.
    pub dropped: u64,
}

impl Pending {
    /// How many changes wait.
    pub fn depth(&self) -> u64 {
        self.changes.len() as u64 + self.dropped
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.dropped == 0
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

fn dropped_key(share: &str) -> Vec<u8> {
    format!("dropped/{}", share.to_lowercase()).into_bytes()
}

fn count(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map_or(0, u64::from_le_bytes)
}

/// The changes of a journal value; a path that is not UTF-8 (no share
/// of ours has one: the scan refuses them) is kept lossily, which still
/// names its directory.
fn parse(v: &[u8]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut rest = v;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    while let Some((&letter, after)) = rest.split_first() {
        let Some(end) = after.iter().position(|&b| b == 0) else { break };
        let path = text(&after[..end]);
        rest = &after[end + 1..];
        let Some(kind) = ChangeKind::from_letter(letter) else { continue };
        let to = if kind == ChangeKind::Renamed {
            let Some(end) = rest.iter().position(|&b| b == 0) else { break };
            let to = text(&rest[..end]);
            rest = &rest[end + 1..];
            Some(to)
        } else {
            None
        };
        out.push(Change { kind, path, to });
    }
    out
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
        for k in [key(share), dropped_key(share)] {
            match self.tdb.delete(&k) {
                Ok(()) | Err(trivialdb::Error::NoExist) => {}
                Err(e) => return Err(self.tdb_err("delete")(e)),
            }
        }
        Ok(())
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

    /// Records a change to `path` of `share` (`to`: a rename's new path;
    /// smbd, after the change succeeded); returns false when the share is
    /// not watched (nothing recorded). A path with a NUL cannot come from
    /// smbd; it is recorded as its directory would be, up to the NUL.
    pub fn record(&mut self, share: &str, kind: ChangeKind, path: &str, to: Option<&str>) -> Result<bool, JournalError> {
        let k = key(share);
        let Some(v) = self.tdb.fetch(&k).map_err(self.tdb_err("fetch"))? else { return Ok(false) };
        let cut = |p: &str| p.split('\0').next().unwrap_or("").as_bytes().to_vec();
        let mut rec = vec![kind.letter()];
        rec.extend(cut(path));
        rec.push(0);
        if kind == ChangeKind::Renamed {
            rec.extend(cut(to.unwrap_or("")));
            rec.push(0);
        }
        if v.len() + rec.len() > CAP {
            // Counted only (the all-record lock keeps two smbd processes
            // from losing one; a full journal is rare).
            let dk = dropped_key(share);
            self.tdb.lockall().map_err(self.tdb_err("lockall"))?;
            let n = self.tdb.fetch(&dk).map(count).map_err(self.tdb_err("fetch"));
            let stored = n.and_then(|n| self.tdb.store(&dk, &(n + 1).to_le_bytes(), None).map_err(self.tdb_err("store")));
            let unlocked = self.tdb.unlockall().map_err(self.tdb_err("unlockall"));
            stored.and(unlocked)?;
            return Ok(true);
        }
        self.tdb.append(&k, &rec).map_err(self.tdb_err("append"))?;
        Ok(true)
    }

    /// The bytes of changes to `share` not yet consumed (0 when not
    /// watched); what the member watches for between rounds.
    pub fn pending_len(&self, share: &str) -> Result<usize, JournalError> {
        let len = self.tdb.fetch(&key(share)).map_err(self.tdb_err("fetch"))?.map_or(0, |v| v.len());
        let dropped = count(self.tdb.fetch(&dropped_key(share)).map_err(self.tdb_err("fetch"))?);
        Ok(len + dropped as usize)
    }

    /// What `share`'s journal holds now.
    pub fn pending(&self, share: &str) -> Result<Pending, JournalError> {
        let v = self.tdb.fetch(&key(share)).map_err(self.tdb_err("fetch"))?.unwrap_or_default();
        let dropped = count(self.tdb.fetch(&dropped_key(share)).map_err(self.tdb_err("fetch"))?);
        Ok(Pending { len: v.len(), changes: parse(&v), dropped })
    }

    /// Takes what `taken` read off `share`'s journal (the member committed
    /// what it announced); changes recorded since stay.
    pub fn consume(&mut self, share: &str, taken: &Pending) -> Result<(), JournalError> {
        let (k, dk) = (key(share), dropped_key(share));
        // The all-record lock keeps smbd's appends out between the read
        // and the write.
        self.tdb.lockall().map_err(self.tdb_err("lockall"))?;
        let r = (|| {
            if let Some(v) = self.tdb.fetch(&k).map_err(self.tdb_err("fetch"))? {
                let rest = v.get(taken.len.min(v.len())..).unwrap_or(&[]);
                self.tdb.store(&k, rest, None).map_err(self.tdb_err("store"))?;
            }
            if taken.dropped > 0 {
                let left = count(self.tdb.fetch(&dk).map_err(self.tdb_err("fetch"))?).saturating_sub(taken.dropped);
                match left {
                    0 => match self.tdb.delete(&dk) {
                        Ok(()) | Err(trivialdb::Error::NoExist) => {}
                        Err(e) => return Err(self.tdb_err("delete")(e)),
                    },
                    n => self.tdb.store(&dk, &n.to_le_bytes(), None).map_err(self.tdb_err("store"))?,
                }
            }
            Ok(())
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

    fn change(kind: ChangeKind, path: &str, to: Option<&str>) -> Change {
        Change { kind, path: path.into(), to: to.map(str::to_string) }
    }

    #[test]
    fn only_watched_shares_record_and_consuming_keeps_later_changes() {
        let p = temp("watch");
        assert!(Journal::open_existing(&p).is_none(), "no journal before the member makes it");
        // TDB opens a file once per process: one handle plays smbd's and
        // the member's part.
        let mut j = Journal::open(&p).unwrap();
        assert!(!j.record("Data", ChangeKind::Written, "a", None).unwrap(), "an unwatched share recorded");
        j.watch("Data").unwrap();
        assert!(j.watches("data"), "share names are case-insensitive");
        assert!(j.record("DATA", ChangeKind::Created, "dir/new.txt", None).unwrap());
        assert!(j.record("data", ChangeKind::Renamed, "dir/new.txt", Some("other/Moved.txt")).unwrap());
        let first = j.pending("data").unwrap();
        assert_eq!(
            first.changes,
            vec![change(ChangeKind::Created, "dir/new.txt", None), change(ChangeKind::Renamed, "dir/new.txt", Some("other/Moved.txt"))]
        );
        assert_eq!(first.depth(), 2);
        assert_eq!(j.pending_len("data").unwrap(), first.len);
        // A change arrives while the member works: it stays.
        j.record("data", ChangeKind::Removed, "other/Moved.txt", None).unwrap();
        j.consume("data", &first).unwrap();
        let second = j.pending("data").unwrap();
        assert_eq!(second.changes, vec![change(ChangeKind::Removed, "other/Moved.txt", None)]);
        j.consume("data", &second).unwrap();
        assert!(j.pending("data").unwrap().is_empty());
        assert!(j.watches("data"), "consuming stopped the watch");
        assert_eq!(j.watched(), vec!["data".to_string()]);
        j.unwatch("data").unwrap();
        assert!(!j.record("data", ChangeKind::Written, "a", None).unwrap());
        assert!(j.watched().is_empty());
        drop(j);
        assert!(Journal::open_existing(&p).is_some());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn past_the_cap_changes_are_counted_and_consumed_counts_go() {
        let p = temp("cap");
        let mut j = Journal::open(&p).unwrap();
        j.watch("s").unwrap();
        let path = "d".repeat(100);
        let per = path.len() + 2;
        let fit = CAP / per;
        for _ in 0..fit + 10 {
            assert!(j.record("s", ChangeKind::Written, &path, None).unwrap());
        }
        let seen = j.pending("s").unwrap();
        assert_eq!(seen.changes.len(), fit);
        assert_eq!(seen.dropped, 10);
        assert_eq!(seen.depth(), fit as u64 + 10);
        // Two more dropped after the member looked: they stay counted.
        j.record("s", ChangeKind::Written, &path, None).unwrap();
        j.record("s", ChangeKind::Written, &path, None).unwrap();
        j.consume("s", &seen).unwrap();
        let left = j.pending("s").unwrap();
        assert_eq!((left.changes.len(), left.dropped), (0, 2));
        j.consume("s", &left).unwrap();
        assert!(j.pending("s").unwrap().is_empty());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn damaged_values_yield_the_whole_changes_only() {
        let mut v = b"Wa/b\0Rold\0new\0".to_vec();
        v.extend(b"?junk\0Tc\0Ucut-off");
        assert_eq!(
            parse(&v),
            vec![
                change(ChangeKind::Written, "a/b", None),
                change(ChangeKind::Renamed, "old", Some("new")),
                change(ChangeKind::Times, "c", None)
            ]
        );
        assert!(parse(b"Rold\0").is_empty(), "a rename without its new path");
        assert!(parse(b"").is_empty());
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
