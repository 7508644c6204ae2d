//! Local changes found by scanning a replicated folder: its tree is walked,
//! each file is compared with what [`crate::store::placed`] says was there
//! when it was last placed or scanned, and what changed becomes a new
//! version from our originator (MS-FRS2 §3.3.4.6.2 UIDs and GVSNs), with
//! a staged file written from what the share's VFS reads
//! ([`LocalReader`]: data, alternate streams, the NT security descriptor,
//! DOS attributes, times), so a partner installs exactly what smbd shows.
//!
//! - A file whose inode, POSIX change time and size are unchanged is not
//!   opened (ctime moves on any change of data, xattrs, times or name).
//! - Otherwise it is staged and compared with its current version: the
//!   DFS-R hash (data and security), attributes and creation time, and for
//!   files the last write time; a directory whose ctime moved only because
//!   of its children stays the same version.
//! - Same inode at a new parent or name: a move (the same UID); an inode
//!   not placed: a create; a placed file not found: a tombstone, children
//!   first. A directory that cannot be read hides nothing: nothing under it
//!   is taken for deleted.
//! - A file open for writing by a client (SHARING_VIOLATION) is staged by a
//!   later scan.
//!
//! A scan may be limited to the paths smbd recorded ([`Scope`]): only the
//! directories leading to them are listed, only those paths are looked
//! at, and only what is missing from a listed directory is taken for
//! deleted. The whole folder is walked at start, every scan interval and
//! when the journal overflowed.
//!
//! A file whose name was held by a file now gone (an editor's save: write
//! a temporary, rename it over the original, delete the backup) is a new
//! version of the file it replaces, the same UID, not a delete and a
//! create.
//!
//! Staged files are placed first, then one transaction per batch
//! ([`crate::store::local_commit`]); the placed records follow. A crash in
//! between leaves a file whose record is older than its version: the next
//! scan stages it, finds it equal and only refreshes the record.
//!
//! The meet installs into `DfsrPrivate` and records each install's stat,
//! so installs are never seen as local changes; `DfsrPrivate` is not
//! scanned. Access and change times are staged as the last write time
//! (they move on every read and child change; replicating them would make
//! versions of nothing).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::engine::ids::{Guid, Uid};
use crate::engine::local_change::{ChangeError, LocalChangeError, NewFile, Originator};
use crate::engine::replica::ReplicaRead;
use crate::engine::rules::names_equal;
use crate::engine::update::{Update, FILE_ATTRIBUTE_DIRECTORY};
use crate::engine::version_vector::VersionVector;
use crate::samba::ntstatus::NtStatus;
use crate::store::local_commit::{LocalChange, LocalChanges};
use crate::store::placed::{Placed, PlacedChange, Seen};
use crate::store::{Database, OriginatorState, StagingArea, StoreError, StoredReplica};

/// What staging one local file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedLocal {
    /// The DFS-R hash of the staged file (data and security).
    pub hash: [u8; 20],
    pub attributes: u32,
    /// NTTIME.
    pub create_time: u64,
    pub is_dir: bool,
    /// Main data bytes.
    pub size: u64,
}

/// Why a file could not be staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The VFS's status, when it gave one (SHARING_VIOLATION: try later).
    pub status: Option<NtStatus>,
    pub reason: String,
}

/// Reads a file of the folder and writes its staged file.
pub trait LocalReader {
    fn stage(&mut self, relpath: &str, out: &Path) -> Result<StagedLocal, ReadError>;
}

/// Why a scan stopped (a file that cannot be read is not this: it is
/// counted and tried again by the next scan).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Root { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Commit(#[from] crate::store::local_commit::CommitError),
    #[error("cannot make a database GUID: {0}")]
    Random(String),
}

/// What one scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub files: u64,
    pub created: u64,
    pub modified: u64,
    pub moved: u64,
    pub deleted: u64,
    /// Open by a client for writing: staged by a later scan.
    pub busy: u64,
    /// Their paths (share-relative).
    pub busy_paths: Vec<String>,
    /// Could not be read or named (logged).
    pub failed: u64,
    pub last_error: Option<String>,
    /// On a read-only member: what puts the replicated versions back.
    pub reverts: Vec<Revert>,
}

impl ScanReport {
    pub fn changes(&self) -> u64 {
        self.created + self.modified + self.moved + self.deleted
    }
}

/// The paths a limited scan looks at (share-relative, compared without
/// case, as smbd names them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    paths: HashSet<String>,
    /// Every directory on the way to one of them ("" is the root).
    leading: HashSet<String>,
}

impl Scope {
    /// The scope of `paths`; None (the whole folder) when one names the
    /// root, is empty or climbs out with `..`.
    pub fn of<'p>(paths: impl IntoIterator<Item = &'p str>) -> Option<Scope> {
        let mut scope = Scope::default();
        for p in paths {
            let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            if parts.is_empty() || parts.contains(&"..") {
                return None;
            }
            for i in 0..parts.len() {
                scope.leading.insert(parts[..i].join("/").to_lowercase());
            }
            scope.paths.insert(parts.join("/").to_lowercase());
        }
        Some(scope)
    }

    fn names(&self, rel: &str) -> bool {
        self.paths.contains(&rel.to_lowercase())
    }

    fn leads_to(&self, rel: &str) -> bool {
        self.leading.contains(&rel.to_lowercase())
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// How many changes go in one transaction.
const BATCH: usize = 512;

/// One folder's scan.
pub struct Scan<'a> {
    pub group: Guid,
    pub folder: Guid,
    /// The share's path on disk.
    pub root: &'a Path,
    pub staging: &'a StagingArea,
    /// A read-only membership: local changes are undone, not versioned
    /// (see [`Revert`]).
    pub revert: bool,
    /// Only these paths (None: the whole folder).
    pub scope: Option<&'a Scope>,
}

/// What undoes a local change on a read-only member: nothing is
/// originated there, the replicated version is put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// Install the held version again; `keep_local`: the local file is
    /// kept in ConflictAndDeleted (an edit), else it is gone (a delete).
    Reinstall { uid: Uid, keep_local: bool },
    /// A placed file or directory moved locally: move it back.
    MoveBack { from: String, uid: Uid },
    /// A file created locally: removed (kept in ConflictAndDeleted);
    /// listed children before their directory.
    Remove { path: String },
}

/// The database with a batch of uncommitted changes over it: what the
/// originator checks names and parents against within one batch.
struct Overlay<'a> {
    base: StoredReplica<'a>,
    batch: &'a BTreeMap<Uid, Update>,
}

impl ReplicaRead for Overlay<'_> {
    type Error = StoreError;
    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, StoreError> {
        self.base.known_vector(folder)
    }
    fn update(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        match self.batch.get(uid) {
            Some(u) => Ok(Some(u.clone())),
            None => self.base.update(uid),
        }
    }
    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, StoreError> {
        if let Some(u) = self.batch.values().find(|u| u.present && u.parent == *parent && names_equal(&u.name, name)) {
            return Ok(Some(u.uid));
        }
        // A stored child the batch moved, renamed or deleted no longer holds the name.
        Ok(self.base.live_child_named(parent, name)?.filter(|uid| !self.batch.contains_key(uid)))
    }
    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, StoreError> {
        let mut out: Vec<Uid> = self.base.live_children(dir)?.into_iter().filter(|u| !self.batch.contains_key(u)).collect();
        out.extend(self.batch.values().filter(|u| u.present && u.parent == *dir).map(|u| u.uid));
        out.sort();
        Ok(out)
    }
    fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.base.held_aside(uid)
    }
    fn all_held_aside(&self, folder: &Guid) -> Result<Vec<Update>, StoreError> {
        self.base.all_held_aside(folder)
    }
    fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, StoreError> {
        self.base.held_aside_under(parent)
    }
}

/// A batch being built: updates by UID, their staged temporaries, and the
/// placed records to write once they are committed.
#[derive(Default)]
struct Batch {
    updates: BTreeMap<Uid, Update>,
    changes: Vec<LocalChange>,
    placed: Vec<PlacedChange>,
}

/// A scan's working state.
struct Walk<'p> {
    placed: &'p HashMap<Uid, Placed>,
    skip: &'p HashSet<Uid>,
    /// Placed files by inode, with their birth time.
    by_inode: HashMap<u64, (Uid, i64)>,
    originator: Originator,
    db_guid: Guid,
    report: ScanReport,
    all_placed: Vec<PlacedChange>,
    batch: Batch,
    /// Placed UIDs found on disk (or, in a limited scan, named in a
    /// listed directory and not looked at).
    found: HashSet<Uid>,
    /// Directories listed in full: a placed child missing from one is
    /// gone (a failed listing hides nothing).
    listed: HashSet<Uid>,
    /// A limited scan's placed files by (parent, name in lower case).
    by_name: HashMap<(Uid, String), Uid>,
    /// Directories to list: (path, UID, whole subtree).
    queue: VecDeque<(String, Uid, bool)>,
    /// New files whose name a file not yet found holds (that file): made
    /// after the deletions, or a new version of it.
    deferred: Vec<(Entry, Uid)>,
    temps: u64,
}

/// One file or directory the walk is deciding about.
struct Entry {
    rel: String,
    parent: Uid,
    name: String,
    is_dir: bool,
    seen: Seen,
    staged: StagedLocal,
    temp: PathBuf,
    /// Listed as part of a whole subtree (not only for the scope's paths).
    whole: bool,
}

impl Scan<'_> {
    /// Walks the folder, commits what changed, and returns the placed
    /// records to apply (to the placed store and the placer's map). UIDs
    /// in `skip` (a placement pending) are left alone.
    pub fn run(
        &self,
        db: &mut Database,
        placed: &HashMap<Uid, Placed>,
        skip: &HashSet<Uid>,
        reader: &mut dyn LocalReader,
        now: &mut dyn FnMut() -> u64,
    ) -> Result<(ScanReport, Vec<PlacedChange>), ScanError> {
        let root_uid = Uid::root_of(self.folder);
        std::fs::metadata(self.root).map_err(|source| ScanError::Root { path: self.root.into(), source })?;
        let db_guid = match db.database_guid()? {
            Some(g) => g,
            None => crate::random::new_guid().map_err(|e| ScanError::Random(e.to_string()))?,
        };
        let mut w = Walk {
            placed,
            skip,
            by_inode: placed.iter().filter_map(|(uid, p)| p.seen.map(|s| (s.inode, (*uid, s.btime_ns)))).collect(),
            originator: db.resume_originator(self.folder, db_guid)?,
            db_guid,
            report: ScanReport::default(),
            all_placed: Vec::new(),
            batch: Batch::default(),
            found: HashSet::new(),
            listed: HashSet::new(),
            by_name: match self.scope {
                Some(_) => placed.iter().map(|(uid, p)| ((p.parent, p.name.to_lowercase()), *uid)).collect(),
                None => HashMap::new(),
            },
            queue: VecDeque::from([(String::new(), root_uid, self.scope.is_none())]),
            deferred: Vec::new(),
            temps: 0,
        };
        self.walk(db, &mut w, reader, now)?;
        // A file saved over one now gone is that file's new version.
        let mut creates = Vec::new();
        for (e, by) in std::mem::take(&mut w.deferred) {
            if self.replaces(db, &w, &e, by)? {
                w.found.insert(by);
                self.decide(db, &mut w, Some(by), e, now(), false)?;
            } else {
                creates.push(e);
            }
        }
        self.deletions(db, &mut w, now)?;
        for e in creates {
            self.decide(db, &mut w, None, e, now(), false)?;
        }
        // The deferred directories' contents.
        self.walk(db, &mut w, reader, now)?;
        self.commit(db, &mut w)?;
        Ok((w.report, w.all_placed))
    }

    fn fail(&self, report: &mut ScanReport, why: String) {
        tracing::warn!(folder = %self.folder, "scan: {why}");
        report.failed += 1;
        report.last_error = Some(why);
    }

    /// Whether the new file `e`, whose name `by` holds, is `by`'s new
    /// version: `by` (a file) is gone from where it was, and `e` is a file.
    fn replaces(&self, db: &Database, w: &Walk<'_>, e: &Entry, by: Uid) -> Result<bool, ScanError> {
        if e.is_dir || w.found.contains(&by) || w.skip.contains(&by) || !w.placed.contains_key(&by) {
            return Ok(false);
        }
        let held = Overlay { base: StoredReplica::new(db, self.group), batch: &w.batch.updates };
        Ok(held.update(&by)?.is_some_and(|u| u.present && u.attributes & FILE_ATTRIBUTE_DIRECTORY == 0))
    }

    /// Queues a directory's listing when the scan goes below it: a whole
    /// subtree, or on the way to a path of the scope.
    fn descend(&self, w: &mut Walk<'_>, rel: &str, uid: Uid, whole: bool) {
        if whole || self.scope.is_none_or_leads(rel) {
            w.queue.push_back((rel.to_string(), uid, whole));
        }
    }

    fn walk(&self, db: &mut Database, w: &mut Walk<'_>, reader: &mut dyn LocalReader, now: &mut dyn FnMut() -> u64) -> Result<(), ScanError> {
        while let Some((dir_rel, dir_uid, whole)) = w.queue.pop_front() {
            let dir_path = if dir_rel.is_empty() { self.root.to_path_buf() } else { self.root.join(&dir_rel) };
            let mut names = Vec::new();
            match std::fs::read_dir(&dir_path) {
                Ok(rd) => {
                    let mut complete = true;
                    for e in rd {
                        match e {
                            Ok(e) => names.push(e.file_name()),
                            Err(e) => {
                                complete = false;
                                self.fail(&mut w.report, format!("{}: {e}", dir_path.display()));
                            }
                        }
                    }
                    if complete {
                        w.listed.insert(dir_uid);
                    }
                }
                Err(e) => {
                    self.fail(&mut w.report, format!("{}: {e}", dir_path.display()));
                    continue;
                }
            }
            names.sort();
            for os_name in names {
                let Some(name) = os_name.to_str().map(str::to_string) else {
                    let why = format!("{}: the name is not UTF-8; not replicated", dir_path.join(&os_name).display());
                    self.fail(&mut w.report, why);
                    continue;
                };
                if dir_rel.is_empty() && names_equal(&name, crate::meet::path::PRIVATE_NAME) {
                    continue;
                }
                let rel = if dir_rel.is_empty() { name.clone() } else { format!("{dir_rel}/{name}") };
                if let (Some(scope), false) = (self.scope, whole) {
                    if !scope.names(&rel) && !scope.leads_to(&rel) {
                        // Not recorded as changed: still there, unread.
                        if let Some(uid) = w.by_name.get(&(dir_uid, name.to_lowercase())) {
                            w.found.insert(*uid);
                        }
                        continue;
                    }
                }
                // Gone since the listing: the next scan sees it gone.
                let Ok(md) = std::fs::symlink_metadata(self.root.join(&rel)) else { continue };
                if !md.is_file() && !md.is_dir() {
                    continue;
                }
                if let Err(e) = crate::meet::path::check_name(0, &name) {
                    self.fail(&mut w.report, format!("{}: {e}; not replicated", self.root.join(&rel).display()));
                    continue;
                }
                w.report.files += 1;
                let seen = Seen::of(&md);
                // The same inode and birth time: the same file (a reused
                // inode is born again).
                let known = w
                    .by_inode
                    .get(&seen.inode)
                    .filter(|(_, born)| *born == seen.btime_ns || *born == 0 || seen.btime_ns == 0)
                    .map(|(u, _)| *u)
                    .filter(|u| !w.found.contains(u));
                if let Some(uid) = known {
                    w.found.insert(uid);
                    let p = &w.placed[&uid];
                    let unchanged = p.seen == Some(seen) && p.parent == dir_uid && p.name == name;
                    if unchanged || w.skip.contains(&uid) {
                        if md.is_dir() {
                            self.descend(w, &rel, uid, whole);
                        }
                        continue;
                    }
                }
                w.temps += 1;
                let temp = self.staging.dir().join(format!(".scan-{}-{}.tmp", std::process::id(), w.temps));
                let staged = match reader.stage(&rel, &temp) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp);
                        if e.status == Some(NtStatus::SHARING_VIOLATION) {
                            w.report.busy += 1;
                            w.report.busy_paths.push(rel.clone());
                        } else {
                            self.fail(&mut w.report, format!("[{}] {rel}: {}", self.root.display(), e.reason));
                        }
                        if let (Some(uid), true) = (known, md.is_dir()) {
                            self.descend(w, &rel, uid, whole);
                        }
                        continue;
                    }
                };
                let e = Entry { rel, parent: dir_uid, name, is_dir: md.is_dir(), seen, staged, temp, whole };
                self.decide(db, w, known, e, now(), true)?;
            }
        }
        Ok(())
    }

    /// Adds one staged entry to the batch (or defers it); queues a
    /// directory's contents.
    fn decide(&self, db: &mut Database, w: &mut Walk<'_>, known: Option<Uid>, e: Entry, now: u64, may_defer: bool) -> Result<(), ScanError> {
        match self.change(db, w, known, &e, now) {
            Ok(kind) => {
                match kind {
                    (_, Kind::Created) => w.report.created += 1,
                    (_, Kind::Modified) => w.report.modified += 1,
                    (_, Kind::Moved) => w.report.moved += 1,
                    (_, Kind::Same) => {}
                }
                if e.is_dir {
                    // A new directory's content is all new.
                    self.descend(w, &e.rel, kind.0, e.whole || kind.1 == Kind::Created);
                }
            }
            Err(Refused::NameHeldBy(by)) if may_defer && known.is_none() && !w.found.contains(&by) => w.deferred.push((e, by)),
            Err(why) => {
                let _ = std::fs::remove_file(&e.temp);
                self.fail(&mut w.report, format!("[{}] {}: {why}", self.root.display(), e.rel));
                if let (Some(uid), true) = (known, e.is_dir) {
                    self.descend(w, &e.rel, uid, e.whole);
                }
            }
        }
        if w.batch.changes.len() >= BATCH {
            self.commit(db, w)?;
        }
        Ok(())
    }

    /// Placed but not found: tombstones, children first. Gone means
    /// missing from a listed directory, or under a directory that is; a
    /// directory that could not be read (or was not listed) hides nothing.
    fn deletions(&self, db: &mut Database, w: &mut Walk<'_>, now: &mut dyn FnMut() -> u64) -> Result<(), ScanError> {
        let placed = w.placed;
        let root_uid = Uid::root_of(self.folder);
        let gone_from_listed = |uid: &Uid| -> bool {
            let mut at = *uid;
            for _ in 0..4096 {
                let Some(p) = placed.get(&at) else { return false };
                if w.found.contains(&at) || w.skip.contains(&at) {
                    return false;
                }
                if w.listed.contains(&p.parent) {
                    return true;
                }
                if !placed.contains_key(&p.parent) {
                    // A record whose directory is not placed: gone when a
                    // whole, readable folder did not show it.
                    return self.scope.is_none() && p.parent != root_uid && w.listed.contains(&root_uid);
                }
                at = p.parent;
            }
            false
        };
        let chain = |uid: &Uid| -> Vec<Uid> {
            let (mut out, mut at) = (Vec::new(), *uid);
            while let Some(p) = placed.get(&at) {
                out.push(p.parent);
                at = p.parent;
                if out.len() > 4096 {
                    break;
                }
            }
            out
        };
        let mut gone: Vec<(usize, Uid)> = Vec::new();
        for uid in placed.keys() {
            if gone_from_listed(uid) {
                gone.push((chain(uid).len(), *uid));
            }
        }
        gone.sort_by_key(|(d, u)| (std::cmp::Reverse(*d), *u));
        for (_, uid) in gone {
            let held = Overlay { base: StoredReplica::new(db, self.group), batch: &w.batch.updates };
            if !held.update(&uid)?.is_some_and(|u| u.present) {
                // Already a tombstone (or unknown): only the record goes.
                w.batch.placed.push(PlacedChange::Remove(self.folder, uid));
                continue;
            }
            if self.revert {
                w.report.reverts.push(Revert::Reinstall { uid, keep_local: false });
                continue;
            }
            let replaces = db.update(&uid)?.map(|u| u.gvsn);
            match w.originator.delete(&held, uid, now()) {
                Ok(t) => {
                    w.batch.updates.insert(uid, t.clone());
                    w.batch.changes.push(LocalChange { update: t, staged_temp: None, replaces });
                    w.batch.placed.push(PlacedChange::Remove(self.folder, uid));
                    w.report.deleted += 1;
                }
                Err(e) => self.fail(&mut w.report, format!("[{}] deleting {uid}: {e}", self.root.display())),
            }
            if w.batch.changes.len() >= BATCH {
                self.commit(db, w)?;
            }
        }
        Ok(())
    }

    /// Decides what one staged file is: the same version, a move, a
    /// modification or a create; adds it to the batch.
    fn change(&self, db: &Database, w: &mut Walk<'_>, known: Option<Uid>, e: &Entry, now: u64) -> Result<(Uid, Kind), Refused> {
        let held = Overlay { base: StoredReplica::new(db, self.group), batch: &w.batch.updates };
        let current = match known {
            Some(uid) => held.update(&uid)?.filter(|u| u.present),
            None => None,
        };
        let staged = &e.staged;
        let (mut update, kind, replaces) = match current {
            Some(cur) => {
                let old_seen = w.placed.get(&cur.uid).and_then(|p| p.seen);
                let write_same = staged.is_dir || old_seen.is_some_and(|s| s.mtime_ns == e.seen.mtime_ns);
                // The creation time the current version was staged with
                // (its update's may be later, see below).
                let staged_create = staged_creation_time(&self.staging.path_of(&cur.gvsn)).unwrap_or(cur.create_time);
                let content_same = cur.hash == staged.hash
                    && cur.attributes == staged.attributes
                    && staged_create == staged.create_time
                    && write_same;
                let place_same = cur.parent == e.parent && cur.name == e.name;
                if (cur.attributes ^ staged.attributes) & FILE_ATTRIBUTE_DIRECTORY != 0 {
                    // A file and a directory on one inode in turn: not the same file.
                    return Err(Refused::Other("changed between file and directory".into()));
                }
                if content_same && place_same {
                    let _ = std::fs::remove_file(&e.temp);
                    let p = Placed { gvsn: cur.gvsn, parent: e.parent, name: e.name.clone(), seen: Some(e.seen) };
                    w.batch.placed.push(PlacedChange::Put(self.folder, cur.uid, p));
                    return Ok((cur.uid, Kind::Same));
                }
                if self.revert {
                    let _ = std::fs::remove_file(&e.temp);
                    w.report.reverts.push(if place_same {
                        Revert::Reinstall { uid: cur.uid, keep_local: !e.is_dir }
                    } else {
                        Revert::MoveBack { from: e.rel.clone(), uid: cur.uid }
                    });
                    return Ok((cur.uid, Kind::Same));
                }
                let u = if place_same {
                    w.originator.modify(&held, cur.uid, staged.attributes, staged.hash, now)?
                } else {
                    w.originator.move_to(&held, cur.uid, e.parent, &e.name, now)?
                };
                let replaces = db.update(&cur.uid).map_err(|e| Refused::Other(e.to_string()))?.map(|o| o.gvsn);
                // §3.3.4.6.2 orders versions by createTime before the
                // clock: a new version with an earlier one (a client set
                // the creation time back) would lose to the one it
                // replaces on every partner. The update keeps the later
                // time; the file's own travels in the staged metadata,
                // which is what the meet sets.
                let mut u = u;
                u.create_time = cur.create_time.max(staged.create_time);
                (u, if place_same { Kind::Modified } else { Kind::Moved }, replaces)
            }
            None if self.revert => {
                let _ = std::fs::remove_file(&e.temp);
                w.report.reverts.push(Revert::Remove { path: e.rel.clone() });
                // Its children are listed after it (removed before it).
                w.temps += 1;
                return Ok((Uid::new(Guid::NIL, w.temps), Kind::Same));
            }
            None => {
                let file = NewFile { attributes: staged.attributes, create_time: staged.create_time, hash: staged.hash };
                (w.originator.create(&held, e.parent, &e.name, file, now)?, Kind::Created, None)
            }
        };
        // A move that also changed the content is one version.
        update.attributes = staged.attributes;
        update.hash = staged.hash;
        if kind == Kind::Created {
            update.create_time = staged.create_time;
        }
        let uid = update.uid;
        let p = Placed { gvsn: update.gvsn, parent: e.parent, name: e.name.clone(), seen: Some(e.seen) };
        w.batch.placed.push(PlacedChange::Put(self.folder, uid, p));
        w.batch.updates.insert(uid, update.clone());
        w.batch.changes.push(LocalChange { update, staged_temp: Some(e.temp.clone()), replaces });
        Ok((uid, kind))
    }

    fn commit(&self, db: &mut Database, w: &mut Walk<'_>) -> Result<(), ScanError> {
        let b = std::mem::take(&mut w.batch);
        if !b.changes.is_empty() {
            let changes = LocalChanges {
                database_guid: w.db_guid,
                group: self.group,
                folder: self.folder,
                changes: b.changes,
                originator: OriginatorState { next_version: w.originator.next_version(), last_clock: w.originator.last_clock() },
            };
            db.commit_local_changes(self.staging, &changes)?;
        }
        w.all_placed.extend(b.placed);
        Ok(())
    }
}

/// Why one file's change was not made.
#[derive(Debug)]
enum Refused {
    /// Its name is held by another live file (maybe one deleted or moved
    /// away, found later in the walk).
    NameHeldBy(Uid),
    Other(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NameHeldBy(by) => write!(f, "the name is held by {by}"),
            Refused::Other(s) => f.write_str(s),
        }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Other(e.to_string())
    }
}

impl From<ChangeError<StoreError>> for Refused {
    fn from(e: ChangeError<StoreError>) -> Self {
        match e {
            ChangeError::Refused(LocalChangeError::NameTaken { by, .. }) => Refused::NameHeldBy(by),
            other => Refused::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Created,
    Modified,
    Moved,
    Same,
}

trait ScopeExt {
    fn is_none_or_leads(&self, rel: &str) -> bool;
}

impl ScopeExt for Option<&Scope> {
    fn is_none_or_leads(&self, rel: &str) -> bool {
        self.map_or(true, |s| s.leads_to(rel))
    }
}

#[cfg(test)]
mod tests;

/// The creation time in a staged file's metadata record (None when the
/// file is gone or unreadable).
fn staged_creation_time(path: &Path) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let mut r = crate::staging::marshal::MarshalReader::new(crate::staging::frsx::FrsxReader::new(std::io::BufReader::new(f)));
    match r.next().ok()?? {
        crate::staging::marshal::Event::Metadata(m) => Some(m.creation_time.max(0) as u64),
        _ => None,
    }
}
