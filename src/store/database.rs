//! The replication database: one TDB file holding every update we keep,
//! its indexes, the known version vectors, our originator counters, the
//! download state of each update and the ConflictAndDeleted records.
//!
//! All writes of one logical change go through [`Database::transaction`],
//! a TDB transaction: a reader (or a restart after a crash, even one in the
//! middle of the commit, thanks to TDB's recovery area) sees all of the
//! change or none of it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use trivialdb::{Flags, Tdb};

use super::codec::{self, DecodeError, DownloadState, Links, OriginatorState, RecordType};
use super::keys::{self, prefix, Key, List};
use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::rules::ConflictRecord;
use crate::engine::update::Update;
use crate::engine::version_vector::{VersionRange, VersionVector};

/// The directory, inside Samba's state directory, that holds the file.
pub const DIR_NAME: &str = "dfsr";
/// The database's file name inside [`DIR_NAME`].
pub const FILE_NAME: &str = "dfsr.tdb";
/// Layout of the set of records; bump when keys or their meaning change
/// and add a step to `UPGRADES`.
pub const SCHEMA_VERSION: u32 = 2;
/// TDB hash buckets, fixed when the file is created. TDB's default (131)
/// makes chains thousands of records long at a million updates (each with
/// two index records); 100 003 buckets cost 400 KB of file.
pub const HASH_SIZE: u32 = 100_003;
/// Private to dfsrd (root): the database says which files exist where.
const CREATE_MODE: u32 = 0o600;
/// `by_gvsn` fetches versions one by one until this many were missing,
/// then traverses the GVSN index for the rest.
const POINT_LOOKUP_MAX: u64 = 65_536;

/// Why the database could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// tdb_open failed (missing directory, not a TDB, permissions …).
    #[error("{path}: cannot open the replication database: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What open reported.
        source: io::Error,
    },
    /// A TDB call failed.
    #[error("{path}: TDB {op} failed: {source}")]
    Tdb {
        /// The file.
        path: PathBuf,
        /// Which operation.
        op: &'static str,
        /// TDB's error.
        source: trivialdb::Error,
    },
    /// The file was written by a newer samba-dfsr; refusing protects it.
    #[error("{path}: replication database schema {found} is newer than the supported {supported}")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// An older schema for which no upgrade step exists.
    #[error("{path}: replication database schema {found} cannot be upgraded to {supported}")]
    NoUpgrade {
        /// The file.
        path: PathBuf,
        /// Its schema.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// Records but no schema record: not a database we wrote.
    #[error("{path}: the replication database has records but no schema record")]
    MissingSchema {
        /// The file.
        path: PathBuf,
    },
    /// A record that does not decode.
    #[error("{path}: record {key}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The record's key, readable.
        key: String,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// An index entry points at an update that does not carry it.
    #[error("{path}: index entry {key} is inconsistent; run `dfsrctl db check`")]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// The index key, readable.
        key: String,
    },
    /// Two different UIDs with one GVSN: a GVSN names one change.
    #[error("{path}: GVSN {gvsn} of {uid} is already held by {by}")]
    GvsnTaken {
        /// The file.
        path: PathBuf,
        /// The GVSN.
        gvsn: Gvsn,
        /// The update being stored.
        uid: Uid,
        /// The update holding it.
        by: Uid,
    },
}

/// An open replication database. TDB allows one handle per file per
/// process: open it once and share it.
pub struct Database {
    path: PathBuf,
    tdb: Tdb,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path).finish()
    }
}

/// One upgrade step from the schema it names to the next; run in one
/// transaction.
type UpgradeStep = fn(&mut Transaction<'_>) -> Result<(), StoreError>;
const UPGRADES: &[(u32, UpgradeStep)] = &[(1, thread_index_lists)];

/// Schema 1 → 2: the parent index was bare `p/` keys, listed by a traverse
/// of the file; schema 2 threads each directory's children and each
/// folder's updates into linked lists. Rebuilt from the updates.
fn thread_index_lists(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    let keys: Vec<Key> = tx.tdb.keys().map(|k| Key::parse(&k)).collect();
    for k in &keys {
        if let Key::Child { .. } = k {
            tx.delete(k)?;
        }
    }
    for k in &keys {
        if let Key::Update(uid) = k {
            if let Some(u) = tx.update(uid)? {
                tx.link(List::Children(u.parent), u.uid)?;
                tx.link(List::Folder(u.content_set_id), u.uid)?;
            }
        }
    }
    Ok(())
}

/// Reads shared by [`Database`] and [`Transaction`].
struct View<'a> {
    tdb: &'a Tdb,
    path: &'a Path,
}

impl View<'_> {
    fn tdb_err(&self, op: &'static str) -> impl FnOnce(trivialdb::Error) -> StoreError + '_ {
        move |source| StoreError::Tdb { path: self.path.into(), op, source }
    }

    /// The error for a record under `key` that does not decode (the key
    /// is only formatted then: gets run for every update read).
    fn decode_err(&self, key: &Key, source: DecodeError) -> StoreError {
        StoreError::Decode { path: self.path.into(), key: key.to_string(), source }
    }

    fn fetch(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        self.tdb.fetch(&key.encode()).map_err(self.tdb_err("fetch"))
    }

    fn get<T>(&self, key: Key, decode: fn(&[u8]) -> Result<T, DecodeError>) -> Result<Option<T>, StoreError> {
        match self.fetch(&key)? {
            Some(b) => decode(&b).map(Some).map_err(|e| self.decode_err(&key, e)),
            None => Ok(None),
        }
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.get(Key::Update(*uid), codec::decode_update)
    }

    fn gvsn_owner(&self, gvsn: &Gvsn) -> Result<Option<Uid>, StoreError> {
        self.get(Key::Gvsn(*gvsn), codec::decode_gvsn_index)
    }

    /// The update the GVSN index names for `gvsn`, checked to carry it.
    fn update_by_gvsn(&self, gvsn: &Gvsn) -> Result<Option<Update>, StoreError> {
        let Some(uid) = self.gvsn_owner(gvsn)? else { return Ok(None) };
        match self.update(&uid)? {
            Some(u) if u.gvsn == *gvsn => Ok(Some(u)),
            _ => Err(StoreError::Inconsistent { path: self.path.into(), key: Key::Gvsn(*gvsn).to_string() }),
        }
    }

    fn known_vector(&self, group: &Guid, folder: &Guid) -> Result<VersionVector, StoreError> {
        Ok(self.get(Key::Vector { group: *group, folder: *folder }, codec::decode_vector)?.unwrap_or_default())
    }

    /// Every key starting with `p`, sorted (TDB traverses in hash order).
    fn keys_with_prefix(&self, p: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.tdb.keys().filter(|k| k.starts_with(p)).collect();
        out.sort_unstable();
        out
    }

    fn links(&self, list: List, uid: Uid) -> Result<Option<Links>, StoreError> {
        self.get(list.member(uid), codec::decode_links)
    }

    /// The members of `list`, sorted: one lookup per member. A link to a
    /// missing member or a loop is [`StoreError::Inconsistent`].
    fn members(&self, list: List) -> Result<Vec<Uid>, StoreError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut at = self.get(list.head(), codec::decode_list_head)?;
        while let Some(uid) = at {
            let broken = || StoreError::Inconsistent { path: self.path.into(), key: list.member(uid).to_string() };
            if !seen.insert(uid) {
                return Err(broken());
            }
            at = self.links(list, uid)?.ok_or_else(broken)?.next;
            out.push(uid);
        }
        out.sort_unstable();
        Ok(out)
    }

    fn by_gvsn(&self, vector: &VersionVector, limit: usize) -> Result<Vec<Update>, StoreError> {
        // Versions one by one, in GVSN order (vector.iter() is), while they
        // are mostly there: a page of a big initial sync costs about
        // `limit` lookups. Where the vector is sparse in what we hold (more
        // than POINT_LOOKUP_MAX misses), the rest comes from one traverse
        // of the GVSN index instead.
        let mut out = Vec::new();
        let mut misses = 0u64;
        for (db, r) in vector.iter() {
            for v in r.first..=r.last {
                if out.len() >= limit {
                    return Ok(out);
                }
                let g = Gvsn::new(db, v);
                match self.update_by_gvsn(&g)? {
                    Some(u) => out.push(u),
                    None => misses += 1,
                }
                if misses > POINT_LOOKUP_MAX {
                    let mut rest = vector.clone();
                    rest.remove_through(&g);
                    let more = self.scan_by_gvsn(&rest, limit - out.len())?;
                    out.extend(more);
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// [`Self::by_gvsn`] by a traverse of the GVSN index.
    fn scan_by_gvsn(&self, vector: &VersionVector, limit: usize) -> Result<Vec<Update>, StoreError> {
        let mut out = Vec::new();
        // Raw g/ keys sort in GVSN order (big-endian versions).
        for k in self.keys_with_prefix(prefix::GVSN) {
            if out.len() >= limit {
                break;
            }
            if let Key::Gvsn(g) = Key::parse(&k) {
                if vector.contains(&g) {
                    if let Some(u) = self.update_by_gvsn(&g)? {
                        out.push(u);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Cancels the TDB transaction unless committed (also on a panic).
pub struct Transaction<'a> {
    tdb: &'a mut Tdb,
    path: &'a Path,
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

/// Releases an all-record lock.
struct AllLocked<'a>(&'a Tdb);

impl Drop for AllLocked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlockall();
    }
}

impl Database {
    /// Opens the database read-write, creating the file (mode 0600) when
    /// missing. The directory must exist: the caller makes
    /// `<state directory>/dfsr`.
    pub fn open(path: &Path) -> Result<Database, StoreError> {
        Self::open_with(path, true)
    }

    /// Opens an existing database; a missing file is an error (for tools
    /// that only look, like `dfsrctl db check`).
    pub fn open_existing(path: &Path) -> Result<Database, StoreError> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, create: bool) -> Result<Database, StoreError> {
        let empty = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => true,
            Err(source) => return Err(StoreError::Open { path: path.into(), source }),
        };
        // With O_CREAT tdb_open rewrites a file whose header is not a TDB's
        // as a new database: only allow that for a missing or empty file.
        let flags = if empty { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDWR };
        // Default flags: the default hash function and synced transactions
        // (trivialdb 0.1.10 maps Flags::NoSync to TDB_SEQNUM anyway).
        let tdb = Tdb::open(path, Some(HASH_SIZE), Flags::empty(), flags, CREATE_MODE)
            .ok_or_else(|| StoreError::Open { path: path.into(), source: io::Error::last_os_error() })?;
        let mut db = Database { path: path.into(), tdb };
        db.check_schema()?;
        Ok(db)
    }

    /// Writes the schema of a new database, refuses a newer one, upgrades
    /// an older one step by step.
    fn check_schema(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let found = self.transaction(|tx| -> Result<Option<u32>, StoreError> {
            match tx.view().get(Key::Schema, codec::decode_schema)? {
                Some(v) => Ok(Some(v)),
                None if tx.tdb.keys().next().is_none() => {
                    tx.store(&Key::Schema, &codec::encode_schema(SCHEMA_VERSION))?;
                    Ok(None)
                }
                None => Err(StoreError::MissingSchema { path: path.clone() }),
            }
        })?;
        let Some(mut v) = found else { return Ok(()) };
        if v > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path, found: v, supported: SCHEMA_VERSION });
        }
        while v < SCHEMA_VERSION {
            let Some((_, step)) = UPGRADES.iter().find(|(from, _)| *from == v) else {
                return Err(StoreError::NoUpgrade { path, found: v, supported: SCHEMA_VERSION });
            };
            self.transaction(|tx| {
                step(tx)?;
                tx.store(&Key::Schema, &codec::encode_schema(v + 1))
            })?;
            v += 1;
        }
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn view(&self) -> View<'_> {
        View { tdb: &self.tdb, path: &self.path }
    }

    fn lock_all(&self) -> Result<AllLocked<'_>, StoreError> {
        // Write lock: trivialdb can only release that kind.
        self.tdb.lockall().map_err(self.view().tdb_err("lockall"))?;
        Ok(AllLocked(&self.tdb))
    }

    /// Runs `f` in one TDB transaction and commits when it returns `Ok`;
    /// on `Err` (or a panic) nothing it wrote is kept. Use one per logical
    /// change: an update with its indexes, the vector, the counters.
    pub fn transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    {
        let path = self.path.as_path();
        self.tdb.transaction_start().map_err(|source| StoreError::Tdb {
            path: path.into(),
            op: "transaction start",
            source,
        })?;
        let mut tx = Transaction { tdb: &mut self.tdb, path, open: true };
        let out = f(&mut tx)?;
        // A failed commit is cancelled by tdb itself.
        tx.open = false;
        tx.tdb.transaction_commit().map_err(|source| StoreError::Tdb {
            path: path.into(),
            op: "transaction commit",
            source,
        })?;
        Ok(out)
    }

    /// The update held for `uid`.
    pub fn update(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.view().update(uid)
    }

    /// The update carrying `gvsn`, if we hold it.
    pub fn update_by_gvsn(&self, gvsn: &Gvsn) -> Result<Option<Update>, StoreError> {
        self.view().update_by_gvsn(gvsn)
    }

    /// The updates whose GVSN is in `vector`, in GVSN order (GUID
    /// byte-wise, then version), at most `limit`: what the server side of
    /// RequestUpdates sends (MS-FRS2 §3.3.4.6.1); the caller prunes its
    /// vector with `remove_through` for the next batch.
    pub fn by_gvsn(&self, vector: &VersionVector, limit: usize) -> Result<Vec<Update>, StoreError> {
        let _lock = self.lock_all()?;
        self.view().by_gvsn(vector, limit)
    }

    /// [`Self::by_gvsn`] for versions `first..=last` of one database.
    pub fn by_gvsn_range(&self, db: Guid, first: u64, last: u64, limit: usize) -> Result<Vec<Update>, StoreError> {
        let mut v = VersionVector::new();
        if let Some(r) = VersionRange::new(first, last) {
            v.insert_range(db, r);
        }
        self.by_gvsn(&v, limit)
    }

    /// The UIDs whose update names `parent` as its directory (live or
    /// tombstones), sorted: one lookup per child.
    pub fn children(&self, parent: &Uid) -> Result<Vec<Uid>, StoreError> {
        let _lock = self.lock_all()?;
        self.view().members(List::Children(*parent))
    }

    /// What we know of (group, folder); empty when never stored.
    pub fn known_vector(&self, group: &Guid, folder: &Guid) -> Result<VersionVector, StoreError> {
        self.view().known_vector(group, folder)
    }

    /// The known vector of (group, folder), `None` when the folder was
    /// never stored: whether we replicate it at all.
    pub fn folder_vector(&self, group: &Guid, folder: &Guid) -> Result<Option<VersionVector>, StoreError> {
        self.view().get(Key::Vector { group: *group, folder: *folder }, codec::decode_vector)
    }

    /// The UIDs of every update held of `folder`, sorted: one lookup per
    /// update of the folder.
    pub fn folder_uids(&self, folder: &Guid) -> Result<Vec<Uid>, StoreError> {
        let _lock = self.lock_all()?;
        self.view().members(List::Folder(*folder))
    }

    /// Every update held of `folder`, by UID, read under one lock.
    pub fn folder_updates(&self, folder: &Guid) -> Result<Vec<Update>, StoreError> {
        let _lock = self.lock_all()?;
        let view = self.view();
        let mut out = Vec::new();
        for uid in view.members(List::Folder(*folder))? {
            match view.update(&uid)? {
                Some(u) => out.push(u),
                None => {
                    return Err(StoreError::Inconsistent {
                        path: self.path.clone(),
                        key: List::Folder(*folder).member(uid).to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// What is held aside for `uid`, if anything.
    pub fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.view().get(Key::Aside(*uid), codec::decode_update)
    }

    /// Everything held aside in `list`, by UID, read under one lock.
    fn held_aside_of(&self, list: List) -> Result<Vec<Update>, StoreError> {
        let _lock = self.lock_all()?;
        let view = self.view();
        let mut out = Vec::new();
        for uid in view.members(list)? {
            match view.get(Key::Aside(uid), codec::decode_update)? {
                Some(u) => out.push(u),
                None => return Err(StoreError::Inconsistent { path: self.path.clone(), key: list.member(uid).to_string() }),
            }
        }
        Ok(out)
    }

    /// Everything held aside in `folder`, by UID.
    pub fn held_aside_in(&self, folder: &Guid) -> Result<Vec<Update>, StoreError> {
        self.held_aside_of(List::AsideIn(*folder))
    }

    /// Everything held aside until `parent` arrives, by UID.
    pub fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, StoreError> {
        self.held_aside_of(List::AsideUnder(*parent))
    }

    /// Our database GUID, once set.
    pub fn database_guid(&self) -> Result<Option<Guid>, StoreError> {
        self.view().get(Key::DatabaseGuid, codec::decode_database_guid)
    }

    /// The counters to `Originator::resume` a folder with.
    pub fn originator(&self, folder: &Guid) -> Result<Option<OriginatorState>, StoreError> {
        self.view().get(Key::Originator(*folder), codec::decode_originator)
    }

    /// Every folder's originator counters. Versions come from one
    /// database GUID for all folders, so a new folder starts above all of
    /// them.
    pub fn originators(&self) -> Result<Vec<(Guid, OriginatorState)>, StoreError> {
        let keys = {
            let _lock = self.lock_all()?;
            self.view().keys_with_prefix(prefix::ORIGINATOR)
        };
        let view = self.view();
        let mut out = Vec::new();
        for raw in keys {
            if let Key::Originator(f) = Key::parse(&raw) {
                if let Some(s) = view.get(Key::Originator(f), codec::decode_originator)? {
                    out.push((f, s));
                }
            }
        }
        Ok(out)
    }

    /// Where the content of `uid` stands.
    pub fn download(&self, uid: &Uid) -> Result<Option<DownloadState>, StoreError> {
        self.view().get(Key::Download(*uid), codec::decode_download)
    }

    /// All ConflictAndDeleted records, by UID then GVSN.
    pub fn conflicts(&self) -> Result<Vec<ConflictRecord>, StoreError> {
        let _lock = self.lock_all()?;
        let view = self.view();
        let mut out = Vec::new();
        for k in view.keys_with_prefix(prefix::CONFLICT) {
            let key = Key::parse(&k);
            if let Some(c) = view.get(key, codec::decode_conflict)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// How many records of each kind there are.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let _lock = self.lock_all()?;
        let mut c = Counts::default();
        for k in self.tdb.keys() {
            match Key::parse(&k) {
                Key::Update(_) => c.updates += 1,
                Key::Gvsn(_) => c.gvsn_index += 1,
                Key::Child { .. } => c.parent_index += 1,
                Key::InFolder { .. } => c.folder_index += 1,
                Key::Download(_) => c.downloads += 1,
                Key::Conflict(..) => c.conflicts += 1,
                Key::Aside(_) => c.held_aside += 1,
                _ => c.other += 1,
            }
        }
        Ok(c)
    }

    /// Reads every record, under an all-record lock so a writer cannot
    /// commit half-way through, and reports what does not fit: undecodable
    /// or unknown records, index entries without their update, updates
    /// without their index entries. Empty means consistent.
    pub fn check(&self) -> Result<Vec<Inconsistency>, StoreError> {
        let _lock = self.lock_all()?;
        let view = self.view();
        let mut found = Vec::new();
        // uid → (gvsn, parent, folder)
        let mut updates: HashMap<Uid, (Gvsn, Uid, Guid)> = HashMap::new();
        let mut gvsn_index: HashMap<Gvsn, Uid> = HashMap::new();
        // uid → (parent, folder) of what is held aside
        let mut asides: HashMap<Uid, (Uid, Guid)> = HashMap::new();
        let mut heads: HashMap<List, Uid> = HashMap::new();
        let mut members: HashMap<List, HashMap<Uid, Links>> = HashMap::new();
        let mut schema = false;
        // Streamed in hash order (a million updates are five million
        // keys); the findings are sorted at the end.
        for raw in self.tdb.keys() {
            let key = Key::parse(&raw);
            let Some(value) = view.fetch(&key)? else { continue };
            let bad = |error| Inconsistency::Undecodable { key: key.clone(), error };
            match &key {
                Key::Schema => match codec::decode_schema(&value) {
                    Ok(_) => schema = true,
                    Err(e) => found.push(bad(e)),
                },
                Key::Update(uid) => match codec::decode_update(&value) {
                    Ok(u) if u.uid != *uid => {
                        found.push(Inconsistency::UpdateUnderWrongKey { key: *uid, holds: u.uid })
                    }
                    Ok(u) => {
                        updates.insert(u.uid, (u.gvsn, u.parent, u.content_set_id));
                    }
                    Err(e) => found.push(bad(e)),
                },
                Key::Gvsn(g) => match codec::decode_gvsn_index(&value) {
                    Ok(uid) => {
                        gvsn_index.insert(*g, uid);
                    }
                    Err(e) => found.push(bad(e)),
                },
                Key::Aside(uid) => match codec::decode_update(&value) {
                    Ok(u) if u.uid != *uid => {
                        found.push(Inconsistency::UpdateUnderWrongKey { key: *uid, holds: u.uid })
                    }
                    Ok(u) => {
                        asides.insert(u.uid, (u.parent, u.content_set_id));
                    }
                    Err(e) => found.push(bad(e)),
                },
                Key::Child { .. }
                | Key::InFolder { .. }
                | Key::FirstChild(_)
                | Key::FirstInFolder(_)
                | Key::AsideIn { .. }
                | Key::FirstAsideIn(_)
                | Key::AsideUnder { .. }
                | Key::FirstAsideUnder(_) => {
                    let Some((list, member)) = List::of_key(&key) else { continue };
                    match member {
                        Some(uid) => match codec::decode_links(&value) {
                            Ok(l) => {
                                members.entry(list).or_default().insert(uid, l);
                            }
                            Err(e) => found.push(bad(e)),
                        },
                        None => match codec::decode_list_head(&value) {
                            Ok(first) => {
                                heads.insert(list, first);
                            }
                            Err(e) => found.push(bad(e)),
                        },
                    }
                }
                Key::Vector { .. } => {
                    if let Err(e) = codec::decode_vector(&value) {
                        found.push(bad(e));
                    }
                }
                Key::DatabaseGuid => {
                    if let Err(e) = codec::decode_database_guid(&value) {
                        found.push(bad(e));
                    }
                }
                Key::Originator(_) => {
                    if let Err(e) = codec::decode_originator(&value) {
                        found.push(bad(e));
                    }
                }
                Key::Download(_) => {
                    if let Err(e) = codec::decode_download(&value) {
                        found.push(bad(e));
                    }
                }
                Key::Conflict(..) => {
                    if let Err(e) = codec::decode_conflict(&value) {
                        found.push(bad(e));
                    }
                }
                Key::Unknown(_) => found.push(Inconsistency::UnknownKey { key: key.clone() }),
            }
        }
        if !schema {
            found.push(Inconsistency::MissingSchema);
        }
        let mut index_problems = Vec::new();
        for (gvsn, uid) in &gvsn_index {
            match updates.get(uid) {
                None => index_problems.push(Inconsistency::DanglingGvsnIndex { gvsn: *gvsn, uid: *uid }),
                Some((actual, ..)) if actual != gvsn => {
                    index_problems.push(Inconsistency::StaleGvsnIndex { gvsn: *gvsn, uid: *uid, actual: *actual })
                }
                Some(_) => {}
            }
        }
        for (list, of) in &members {
            for uid in of.keys() {
                let problem = match (list, updates.get(uid)) {
                    (List::Children(parent), None) => Inconsistency::DanglingChild { parent: *parent, child: *uid },
                    (List::Children(parent), Some((_, actual, _))) if actual != parent => {
                        Inconsistency::StaleChild { parent: *parent, child: *uid, actual: *actual }
                    }
                    (List::Folder(folder), None) => Inconsistency::DanglingFolderEntry { folder: *folder, uid: *uid },
                    (List::Folder(folder), Some((_, _, actual))) if actual != folder => {
                        Inconsistency::StaleFolderEntry { folder: *folder, uid: *uid, actual: *actual }
                    }
                    (List::Children(_) | List::Folder(_), Some(_)) => continue,
                    (List::AsideIn(folder), _) => match asides.get(uid) {
                        Some((_, f)) if f == folder => continue,
                        Some(_) => Inconsistency::StaleIndexEntry { key: list.member(*uid), why: "held aside in another folder" },
                        None => Inconsistency::StaleIndexEntry { key: list.member(*uid), why: "nothing is held aside for it" },
                    },
                    (List::AsideUnder(parent), _) => match asides.get(uid) {
                        Some((p, _)) if p == parent => continue,
                        Some(_) => Inconsistency::StaleIndexEntry { key: list.member(*uid), why: "held aside under another parent" },
                        None => Inconsistency::StaleIndexEntry { key: list.member(*uid), why: "nothing is held aside for it" },
                    },
                };
                index_problems.push(problem);
            }
        }
        let is_member = |list: List, uid: &Uid| members.get(&list).is_some_and(|m| m.contains_key(uid));
        for (uid, (gvsn, parent, folder)) in &updates {
            if gvsn_index.get(gvsn) != Some(uid) {
                index_problems.push(Inconsistency::MissingGvsnIndex { uid: *uid, gvsn: *gvsn });
            }
            if !is_member(List::Children(*parent), uid) {
                index_problems.push(Inconsistency::MissingChild { parent: *parent, child: *uid });
            }
            if !is_member(List::Folder(*folder), uid) {
                index_problems.push(Inconsistency::MissingFolderEntry { folder: *folder, uid: *uid });
            }
        }
        for (uid, (parent, folder)) in &asides {
            for list in [List::AsideIn(*folder), List::AsideUnder(*parent)] {
                if !is_member(list, uid) {
                    index_problems.push(Inconsistency::StaleIndexEntry { key: Key::Aside(*uid), why: "missing from a held-aside list" });
                }
            }
        }
        let lists: std::collections::HashSet<List> = heads.keys().chain(members.keys()).copied().collect();
        let empty = HashMap::new();
        for list in lists {
            if let Some(problem) = list_problem(heads.get(&list).copied(), members.get(&list).unwrap_or(&empty)) {
                index_problems.push(Inconsistency::BrokenList { head: list.head(), problem });
            }
        }
        found.extend(index_problems);
        // TDB and hash maps iterate in any order; report in a stable one.
        found.sort_by_cached_key(|i| i.to_string());
        Ok(found)
    }

    /// Calls `visit` with every record, sorted by raw key (so updates by
    /// UID, the GVSN index in GVSN order). Keys are listed under a lock;
    /// records are then read one by one, each consistent by itself (a
    /// record deleted meanwhile is skipped), so a slow reader of the dump
    /// does not hold up dfsrd.
    pub fn dump_with<E>(&self, mut visit: impl FnMut(&DumpEntry) -> Result<(), E>) -> Result<usize, E>
    where
        E: From<StoreError>,
    {
        let keys = {
            let _lock = self.lock_all()?;
            let mut k: Vec<Vec<u8>> = self.tdb.keys().collect();
            k.sort_unstable();
            k
        };
        let view = self.view();
        let mut n = 0;
        for raw in keys {
            let key = Key::parse(&raw);
            let Some(value) = view.fetch(&key)? else { continue };
            let entry = DumpEntry::decode(key, &value);
            visit(&entry)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes every record as one JSON object per line (see
    /// [`DumpEntry::json`]); returns how many.
    pub fn dump(&self, out: &mut dyn io::Write) -> Result<usize, DumpError> {
        self.dump_with(|e| -> Result<(), DumpError> {
            writeln!(out, "{}", e.json())?;
            Ok(())
        })
    }
}

/// Why `dump` stopped.
#[derive(Debug, Error)]
pub enum DumpError {
    /// Reading the database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output.
    #[error("writing the dump: {0}")]
    Write(#[from] io::Error),
}

impl Transaction<'_> {
    fn view(&self) -> View<'_> {
        View { tdb: self.tdb, path: self.path }
    }

    fn store(&mut self, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        let path = self.path;
        self.tdb.store(&key.encode(), value, None).map_err(|source| StoreError::Tdb {
            path: path.into(),
            op: "store",
            source,
        })
    }

    fn delete(&mut self, key: &Key) -> Result<(), StoreError> {
        match self.tdb.delete(&key.encode()) {
            Ok(()) | Err(trivialdb::Error::NoExist) => Ok(()),
            Err(source) => Err(StoreError::Tdb { path: self.path.into(), op: "delete", source }),
        }
    }

    /// The update held for `uid`, as of this transaction.
    pub fn update(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.view().update(uid)
    }

    /// Stores `u` as the update of its UID with its index entries, and
    /// removes the index entries of the update it replaces (an old GVSN,
    /// an old parent). Returns the replaced update. A GVSN already held by
    /// another UID is refused: a GVSN names one change.
    pub fn put_update(&mut self, u: &Update) -> Result<Option<Update>, StoreError> {
        let old = self.update(&u.uid)?;
        if let Some(owner) = self.view().gvsn_owner(&u.gvsn)? {
            if owner != u.uid {
                return Err(StoreError::GvsnTaken { path: self.path.into(), gvsn: u.gvsn, uid: u.uid, by: owner });
            }
        }
        if let Some(o) = &old {
            if o.gvsn != u.gvsn && self.view().gvsn_owner(&o.gvsn)? == Some(u.uid) {
                self.delete(&Key::Gvsn(o.gvsn))?;
            }
            if o.parent != u.parent {
                self.unlink(List::Children(o.parent), u.uid)?;
            }
            if o.content_set_id != u.content_set_id {
                self.unlink(List::Folder(o.content_set_id), u.uid)?;
            }
        }
        self.store(&Key::Update(u.uid), &codec::encode_update(u))?;
        self.store(&Key::Gvsn(u.gvsn), &codec::encode_gvsn_index(&u.uid))?;
        self.link(List::Children(u.parent), u.uid)?;
        self.link(List::Folder(u.content_set_id), u.uid)?;
        Ok(old)
    }

    /// Forgets `uid` (an expired tombstone): its update, its index
    /// entries and its download state. Returns what was held.
    pub fn remove_update(&mut self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        let Some(old) = self.update(uid)? else { return Ok(None) };
        if self.view().gvsn_owner(&old.gvsn)? == Some(*uid) {
            self.delete(&Key::Gvsn(old.gvsn))?;
        }
        self.unlink(List::Children(old.parent), *uid)?;
        self.unlink(List::Folder(old.content_set_id), *uid)?;
        self.delete(&Key::Download(*uid))?;
        self.delete(&Key::Update(*uid))?;
        Ok(Some(old))
    }

    /// What we know of (group, folder), as of this transaction.
    pub fn known_vector(&self, group: &Guid, folder: &Guid) -> Result<VersionVector, StoreError> {
        self.view().known_vector(group, folder)
    }

    /// Replaces the known vector of (group, folder).
    pub fn set_known_vector(&mut self, group: &Guid, folder: &Guid, v: &VersionVector) -> Result<(), StoreError> {
        self.store(&Key::Vector { group: *group, folder: *folder }, &codec::encode_vector(v))
    }

    /// Adds one GVSN to the known vector of (group, folder).
    pub fn add_known(&mut self, group: &Guid, folder: &Guid, gvsn: Gvsn) -> Result<(), StoreError> {
        let mut v = self.known_vector(group, folder)?;
        v.insert(gvsn);
        self.set_known_vector(group, folder, &v)
    }

    /// Our database GUID, as of this transaction.
    pub fn database_guid(&self) -> Result<Option<Guid>, StoreError> {
        self.view().get(Key::DatabaseGuid, codec::decode_database_guid)
    }

    /// Sets our database GUID (once, when the database is made).
    pub fn set_database_guid(&mut self, g: &Guid) -> Result<(), StoreError> {
        self.store(&Key::DatabaseGuid, &codec::encode_database_guid(g))
    }

    /// A folder's originator counters, as of this transaction.
    pub fn originator(&self, folder: &Guid) -> Result<Option<OriginatorState>, StoreError> {
        self.view().get(Key::Originator(*folder), codec::decode_originator)
    }

    /// Persists a folder's originator counters; do it in the transaction
    /// that stores the updates they numbered.
    pub fn set_originator(&mut self, folder: &Guid, s: &OriginatorState) -> Result<(), StoreError> {
        self.store(&Key::Originator(*folder), &codec::encode_originator(s))
    }

    /// Where the content of `uid` stands, as of this transaction.
    pub fn download(&self, uid: &Uid) -> Result<Option<DownloadState>, StoreError> {
        self.view().get(Key::Download(*uid), codec::decode_download)
    }

    /// Records where the content of `uid` stands.
    pub fn set_download(&mut self, uid: &Uid, s: &DownloadState) -> Result<(), StoreError> {
        self.store(&Key::Download(*uid), &codec::encode_download(s))
    }

    /// Forgets the download state of `uid`.
    pub fn clear_download(&mut self, uid: &Uid) -> Result<(), StoreError> {
        self.delete(&Key::Download(*uid))
    }

    /// Every folder's originator counters, as of this transaction.
    pub fn originators(&self) -> Result<Vec<(Guid, OriginatorState)>, StoreError> {
        let view = self.view();
        let mut out = Vec::new();
        for raw in view.keys_with_prefix(prefix::ORIGINATOR) {
            if let Key::Originator(f) = Key::parse(&raw) {
                if let Some(s) = view.get(Key::Originator(f), codec::decode_originator)? {
                    out.push((f, s));
                }
            }
        }
        Ok(out)
    }

    /// Keeps `u` aside until its parent arrives (an orphan, an unbreakable
    /// cycle; the engine's `Step::Hold`), in its folder's and its parent's
    /// held-aside lists; replaces what was held aside for its UID.
    pub fn put_held_aside(&mut self, u: &Update) -> Result<(), StoreError> {
        self.remove_held_aside(&u.uid)?;
        self.store(&Key::Aside(u.uid), &codec::encode_update(u))?;
        self.link(List::AsideIn(u.content_set_id), u.uid)?;
        self.link(List::AsideUnder(u.parent), u.uid)
    }

    /// Forgets what is held aside for `uid` (the engine's `Step::Release`);
    /// returns it.
    pub fn remove_held_aside(&mut self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        let Some(old) = self.view().get(Key::Aside(*uid), codec::decode_update)? else { return Ok(None) };
        self.unlink(List::AsideIn(old.content_set_id), *uid)?;
        self.unlink(List::AsideUnder(old.parent), *uid)?;
        self.delete(&Key::Aside(*uid))?;
        Ok(Some(old))
    }

    /// Adds a ConflictAndDeleted record (keyed by UID and lost GVSN).
    pub fn add_conflict(&mut self, c: &ConflictRecord) -> Result<(), StoreError> {
        self.store(&Key::Conflict(c.uid, c.gvsn), &codec::encode_conflict(c))
    }

    /// The UIDs whose update names `parent`, as of this transaction.
    pub fn children(&self, parent: &Uid) -> Result<Vec<Uid>, StoreError> {
        self.view().members(List::Children(*parent))
    }

    fn set_links(&mut self, list: List, uid: Uid, l: &Links) -> Result<(), StoreError> {
        self.store(&list.member(uid), &codec::encode_links(l))
    }

    /// The links of a member that `uid`'s links name, which must exist.
    fn neighbour(&self, list: List, uid: Uid) -> Result<Links, StoreError> {
        self.view().links(list, uid)?.ok_or_else(|| StoreError::Inconsistent {
            path: self.path.into(),
            key: list.member(uid).to_string(),
        })
    }

    /// Adds `uid` at the front of `list` (nothing when it is a member).
    fn link(&mut self, list: List, uid: Uid) -> Result<(), StoreError> {
        if self.view().links(list, uid)?.is_some() {
            return Ok(());
        }
        let first = self.view().get(list.head(), codec::decode_list_head)?;
        if let Some(f) = first {
            let mut l = self.neighbour(list, f)?;
            l.prev = Some(uid);
            self.set_links(list, f, &l)?;
        }
        self.set_links(list, uid, &Links { prev: None, next: first })?;
        self.store(&list.head(), &codec::encode_list_head(&uid))
    }

    /// Takes `uid` out of `list` (nothing when it is not a member).
    fn unlink(&mut self, list: List, uid: Uid) -> Result<(), StoreError> {
        let Some(me) = self.view().links(list, uid)? else { return Ok(()) };
        match me.prev {
            Some(p) => {
                let mut l = self.neighbour(list, p)?;
                l.next = me.next;
                self.set_links(list, p, &l)?;
            }
            None => match me.next {
                Some(n) => self.store(&list.head(), &codec::encode_list_head(&n))?,
                None => self.delete(&list.head())?,
            },
        }
        if let Some(n) = me.next {
            let mut l = self.neighbour(list, n)?;
            l.prev = me.prev;
            self.set_links(list, n, &l)?;
        }
        self.delete(&list.member(uid))
    }
}

/// What is wrong with one index list, if anything: walked from its head,
/// each member's `prev` must name the one before and every member must be
/// reached exactly once.
fn list_problem(first: Option<Uid>, members: &HashMap<Uid, Links>) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let (mut prev, mut at) = (None, first);
    while let Some(uid) = at {
        let Some(l) = members.get(&uid) else {
            return Some(format!("links to {uid}, which is not a member"));
        };
        if !seen.insert(uid) {
            return Some(format!("loops back to {uid}"));
        }
        if l.prev != prev {
            return Some(format!("{uid} names another previous member"));
        }
        (prev, at) = (Some(uid), l.next);
    }
    let lost = members.len() - seen.len();
    (lost > 0).then(|| format!("{lost} members are not reached from the head"))
}

/// Record counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `u/` records.
    pub updates: usize,
    /// `g/` records.
    pub gvsn_index: usize,
    /// `p/` records.
    pub parent_index: usize,
    /// `f/` records.
    pub folder_index: usize,
    /// `s/` records.
    pub downloads: usize,
    /// `c/` records.
    pub conflicts: usize,
    /// `a/` records.
    pub held_aside: usize,
    /// Everything else (schema, list heads, vectors, counters, unknown
    /// keys).
    pub other: usize,
}

/// One thing `check` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// A record whose value does not decode.
    Undecodable {
        /// Its key.
        key: Key,
        /// Why.
        error: DecodeError,
    },
    /// A key of no known kind.
    UnknownKey {
        /// The key.
        key: Key,
    },
    /// No schema record.
    MissingSchema,
    /// `u/<key>` holds the update of another UID.
    UpdateUnderWrongKey {
        /// The UID in the key.
        key: Uid,
        /// The UID in the record.
        holds: Uid,
    },
    /// `g/<gvsn>` names a UID that has no update.
    DanglingGvsnIndex {
        /// The GVSN.
        gvsn: Gvsn,
        /// The UID it names.
        uid: Uid,
    },
    /// `g/<gvsn>` names a UID whose update has another GVSN now.
    StaleGvsnIndex {
        /// The GVSN.
        gvsn: Gvsn,
        /// The UID it names.
        uid: Uid,
        /// That update's GVSN.
        actual: Gvsn,
    },
    /// An update without its `g/` entry.
    MissingGvsnIndex {
        /// The update.
        uid: Uid,
        /// Its GVSN.
        gvsn: Gvsn,
    },
    /// `p/<parent><child>` for a child with no update.
    DanglingChild {
        /// The directory.
        parent: Uid,
        /// The missing child.
        child: Uid,
    },
    /// `p/<parent><child>` though the child's update names another parent.
    StaleChild {
        /// The directory in the key.
        parent: Uid,
        /// The child.
        child: Uid,
        /// The parent its update names.
        actual: Uid,
    },
    /// An update without its `p/` entry.
    MissingChild {
        /// The parent its update names.
        parent: Uid,
        /// The update.
        child: Uid,
    },
    /// `f/<folder><uid>` for a UID with no update.
    DanglingFolderEntry {
        /// The folder.
        folder: Guid,
        /// The missing update.
        uid: Uid,
    },
    /// `f/<folder><uid>` though the update is of another folder.
    StaleFolderEntry {
        /// The folder in the key.
        folder: Guid,
        /// The update.
        uid: Uid,
        /// The folder its update names.
        actual: Guid,
    },
    /// An update without its `f/` entry.
    MissingFolderEntry {
        /// The folder its update names.
        folder: Guid,
        /// The update.
        uid: Uid,
    },
    /// A held-aside record or list entry that does not match the other.
    StaleIndexEntry {
        /// The record.
        key: Key,
        /// What is wrong.
        why: &'static str,
    },
    /// An index list whose links do not chain from its head.
    BrokenList {
        /// The list's head key.
        head: Key,
        /// What is wrong.
        problem: String,
    },
}

impl std::fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inconsistency::Undecodable { key, error } => write!(f, "{key}: undecodable: {error}"),
            Inconsistency::UnknownKey { key } => write!(f, "{key}: unknown key"),
            Inconsistency::MissingSchema => write!(f, "schema: missing"),
            Inconsistency::UpdateUnderWrongKey { key, holds } => {
                write!(f, "{}: holds the update of {holds}", Key::Update(*key))
            }
            Inconsistency::DanglingGvsnIndex { gvsn, uid } => {
                write!(f, "{}: points to {uid}, which has no readable update ({})", Key::Gvsn(*gvsn), Key::Update(*uid))
            }
            Inconsistency::StaleGvsnIndex { gvsn, uid, actual } => {
                write!(f, "{}: points to {uid}, whose update has GVSN {actual}", Key::Gvsn(*gvsn))
            }
            Inconsistency::MissingGvsnIndex { uid, gvsn } => {
                write!(f, "{}: its GVSN index entry {} is missing", Key::Update(*uid), Key::Gvsn(*gvsn))
            }
            Inconsistency::DanglingChild { parent, child } => {
                write!(
                    f,
                    "{}: the child has no readable update ({})",
                    Key::Child { parent: *parent, child: *child },
                    Key::Update(*child)
                )
            }
            Inconsistency::StaleChild { parent, child, actual } => {
                write!(f, "{}: the child's update names parent {actual}", Key::Child { parent: *parent, child: *child })
            }
            Inconsistency::MissingChild { parent, child } => write!(
                f,
                "{}: its parent index entry {} is missing",
                Key::Update(*child),
                Key::Child { parent: *parent, child: *child }
            ),
            Inconsistency::DanglingFolderEntry { folder, uid } => write!(
                f,
                "{}: the update is not readable ({})",
                Key::InFolder { folder: *folder, uid: *uid },
                Key::Update(*uid)
            ),
            Inconsistency::StaleFolderEntry { folder, uid, actual } => {
                write!(f, "{}: the update is of folder {actual}", Key::InFolder { folder: *folder, uid: *uid })
            }
            Inconsistency::MissingFolderEntry { folder, uid } => write!(
                f,
                "{}: its folder index entry {} is missing",
                Key::Update(*uid),
                Key::InFolder { folder: *folder, uid: *uid }
            ),
            Inconsistency::StaleIndexEntry { key, why } => write!(f, "{key}: {why}"),
            Inconsistency::BrokenList { head, problem } => write!(f, "{head}: the index list is broken: {problem}"),
        }
    }
}

/// One record as `dump` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpEntry {
    /// The key.
    pub key: Key,
    /// The record type's name (from the key).
    pub kind: &'static str,
    /// The decoded value, or why it did not decode.
    pub value: Result<serde_json::Value, DecodeError>,
    /// The raw value's size.
    pub len: usize,
    /// The raw value, kept for undecodable records.
    pub raw: Vec<u8>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An update as JSON (GUIDs as text, UIDs and GVSNs as `guid:version`).
pub fn update_json(u: &Update) -> serde_json::Value {
    serde_json::json!({
        "uid": u.uid.to_string(),
        "gvsn": u.gvsn.to_string(),
        "parent": u.parent.to_string(),
        "name": u.name,
        "present": u.present,
        "name_conflict": u.name_conflict,
        "attributes": u.attributes,
        "fence": u.fence,
        "clock": u.clock,
        "create_time": u.create_time,
        "content_set_id": u.content_set_id.to_string(),
        "hash": hex(&u.hash),
        "rdc_similarity": hex(&u.rdc_similarity),
        "flags": u.flags,
    })
}

impl DumpEntry {
    fn decode(key: Key, value: &[u8]) -> DumpEntry {
        use serde_json::json;
        let (kind, value_json) = match &key {
            Key::Schema => (RecordType::Schema.name(), codec::decode_schema(value).map(|v| json!(v))),
            Key::Update(_) => (RecordType::Update.name(), codec::decode_update(value).map(|u| update_json(&u))),
            Key::Gvsn(_) => {
                (RecordType::GvsnIndex.name(), codec::decode_gvsn_index(value).map(|u| json!({"uid": u.to_string()})))
            }
            Key::Aside(_) => (RecordType::Update.name(), codec::decode_update(value).map(|u| update_json(&u))),
            Key::Child { .. } | Key::InFolder { .. } | Key::AsideIn { .. } | Key::AsideUnder { .. } => (
                RecordType::ListLinks.name(),
                codec::decode_links(value).map(|l| {
                    let id = |u: Option<Uid>| u.map(|u| u.to_string());
                    json!({"prev": id(l.prev), "next": id(l.next)})
                }),
            ),
            Key::FirstChild(_) | Key::FirstInFolder(_) | Key::FirstAsideIn(_) | Key::FirstAsideUnder(_) => (
                RecordType::ListHead.name(),
                codec::decode_list_head(value).map(|u| json!({"first": u.to_string()})),
            ),
            Key::Vector { .. } => (
                RecordType::Vector.name(),
                codec::decode_vector(value).map(|v| {
                    json!(v
                        .to_wire()
                        .iter()
                        .map(|(g, low, high)| json!({"db": g.to_string(), "low": low, "high": high}))
                        .collect::<Vec<_>>())
                }),
            ),
            Key::DatabaseGuid => {
                (RecordType::DatabaseGuid.name(), codec::decode_database_guid(value).map(|g| json!(g.to_string())))
            }
            Key::Originator(_) => (
                RecordType::Originator.name(),
                codec::decode_originator(value)
                    .map(|s| json!({"next_version": s.next_version, "last_clock": s.last_clock})),
            ),
            Key::Download(_) => (
                RecordType::Download.name(),
                codec::decode_download(value).map(|s| match s {
                    DownloadState::Pending => json!({"state": "pending"}),
                    DownloadState::Downloading { offset } => json!({"state": "downloading", "offset": offset}),
                    DownloadState::Staged { path, hash } => {
                        json!({"state": "staged", "path": path.to_string_lossy(), "hash": hex(&hash)})
                    }
                    DownloadState::Installed => json!({"state": "installed"}),
                    DownloadState::Failed { reason, retries } => {
                        json!({"state": "failed", "reason": reason, "retries": retries})
                    }
                }),
            ),
            Key::Conflict(..) => (
                RecordType::Conflict.name(),
                codec::decode_conflict(value).map(|c| {
                    json!({
                        "uid": c.uid.to_string(), "gvsn": c.gvsn.to_string(), "name": c.name,
                        "parent": c.parent.to_string(), "reason": codec::loss_reason_name(c.reason), "at": c.at,
                    })
                }),
            ),
            Key::Unknown(_) => ("unknown", Ok(serde_json::Value::Null)),
        };
        let raw = if value_json.is_err() || matches!(key, Key::Unknown(_)) { value.to_vec() } else { Vec::new() };
        DumpEntry { key, kind, value: value_json, len: value.len(), raw }
    }

    /// `{"key": …, "type": …, "value": …}`, or with `"error"` and the raw
    /// value in hex instead of `"value"` for a record that does not decode.
    pub fn json(&self) -> serde_json::Value {
        match &self.value {
            Ok(v) if !matches!(self.key, Key::Unknown(_)) => {
                serde_json::json!({"key": self.key.to_string(), "type": self.kind, "value": v})
            }
            Ok(_) => serde_json::json!({"key": self.key.to_string(), "type": self.kind, "raw": hex(&self.raw)}),
            Err(e) => serde_json::json!({
                "key": self.key.to_string(), "type": self.kind, "error": e.to_string(), "raw": hex(&self.raw)
            }),
        }
    }

    /// One line for people: key, type, then the value compactly.
    pub fn text(&self) -> String {
        match &self.value {
            Ok(serde_json::Value::Null) if matches!(self.key, Key::Unknown(_)) => {
                format!("{}\t{}\t{}", self.key, self.kind, hex(&self.raw))
            }
            Ok(serde_json::Value::Null) => format!("{}\t{}", self.key, self.kind),
            Ok(v) => format!("{}\t{}\t{v}", self.key, self.kind),
            Err(e) => format!("{}\t{}\tUNDECODABLE: {e} ({} bytes)", self.key, self.kind, self.len),
        }
    }
}

/// The key of the schema record, for tools that inject or inspect it.
pub const SCHEMA_KEY: &[u8] = keys::SCHEMA;
