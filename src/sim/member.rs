//! One simulated member: its database, originator, materialized tree,
//! ConflictAndDeleted records and the installer that applies received
//! updates through the engine rules (MS-FRS2 §3.3.4.6.2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::local_change::{LocalChangeError, NewFile, Originator, UpdateLookup};
use crate::engine::ordering::{CycleBreak, HoldReason};
use crate::engine::rules::{
    compare_updates, decide, fold_name, ConflictRecord, Decision, LossReason,
};
use crate::engine::session::{
    LocalStore, MemoryDatabase, UpdateDatabase, UpdateOutcome, UpdateRequestType,
};
use crate::engine::update::{FileTime, Update, FILE_ATTRIBUTE_DIRECTORY, TICKS_PER_SECOND};
use crate::engine::version_vector::VersionVector;

use super::store::Record;
use super::SimError;

/// FILETIME of simulated time 0 (2024-01-01 UTC).
pub const EPOCH_FILETIME: FileTime = 133_485_408_000_000_000;

/// File attributes of a plain file (`FILE_ATTRIBUTE_ARCHIVE`).
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;

/// A member's database: the maximal update per UID and the version vector
/// ([`MemoryDatabase`]), plus the live-child indexes name-conflict checks
/// and subtree deletions need.
#[derive(Debug, Clone)]
pub struct MemberDb {
    folder: Guid,
    db: MemoryDatabase,
    names: HashMap<(Uid, String), Uid>,
    children: HashMap<Uid, BTreeSet<Uid>>,
    withheld: VersionVector,
}

impl MemberDb {
    /// An empty database replicating `folder`.
    pub fn new(folder: Guid) -> Self {
        let mut db = MemoryDatabase::new();
        db.add_folder(folder);
        MemberDb {
            folder,
            db,
            names: HashMap::new(),
            children: HashMap::new(),
            withheld: VersionVector::new(),
        }
    }

    /// The update held for `uid`.
    pub fn get(&self, uid: &Uid) -> Option<&Update> {
        self.db.held(uid)
    }

    /// The version vector.
    pub fn vector(&self) -> VersionVector {
        self.db.known_vector(&self.folder)
    }

    /// Every update held.
    pub fn updates(&self) -> impl Iterator<Item = &Update> {
        self.db.updates(&self.folder)
    }

    /// Live children of `dir`.
    pub fn children(&self, dir: &Uid) -> impl Iterator<Item = &Uid> {
        self.children.get(dir).into_iter().flatten()
    }

    /// `MemoryDatabase::apply`, keeping the indexes; true when stored.
    pub fn apply(&mut self, u: Update) -> bool {
        let old = self
            .db
            .held(&u.uid)
            .filter(|o| o.present)
            .map(|o| (o.parent, fold_name(&o.name)));
        let (uid, parent, key, present) = (u.uid, u.parent, fold_name(&u.name), u.present);
        if !self.db.apply(u) {
            return false;
        }
        if let Some((p, n)) = old {
            self.names.remove(&(p, n));
            if let Some(c) = self.children.get_mut(&p) {
                c.remove(&uid);
                if c.is_empty() {
                    self.children.remove(&p);
                }
            }
        }
        if present {
            self.names.insert((parent, key), uid);
            self.children.entry(parent).or_default().insert(uid);
        }
        true
    }

    /// GVSNs known but not installed (held aside): left out of the vector
    /// served to partners, see [`Member::held`].
    pub fn set_withheld<'a>(&mut self, held: impl Iterator<Item = &'a Update>) {
        let mut v = VersionVector::new();
        for u in held {
            v.insert(u.gvsn);
        }
        self.withheld = v;
    }

    /// Merges `vv` into the known vector (§3.3.4.6).
    pub fn merge(&mut self, vv: &VersionVector) {
        self.db.merge_vector(self.folder, vv);
    }
}

impl UpdateLookup for MemberDb {
    fn update(&self, uid: &Uid) -> Option<&Update> {
        self.db.held(uid)
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Option<Uid> {
        self.names.get(&(*parent, fold_name(name))).copied()
    }
}

impl LocalStore for MemberDb {
    fn known_vector(&self, folder: &Guid) -> VersionVector {
        self.db.known_vector(folder)
    }

    fn held(&self, uid: &Uid) -> Option<&Update> {
        self.db.held(uid)
    }
}

impl UpdateDatabase for MemberDb {
    /// Our vector without the GVSNs we hold aside: a partner that merged
    /// them would never ask for them again (see the engine note in the
    /// module documentation).
    fn version_vector(&self, folder: &Guid) -> Option<VersionVector> {
        let vv = self.db.version_vector(folder)?;
        Some(if self.withheld.is_empty() {
            vv
        } else {
            vv.difference(&self.withheld)
        })
    }

    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Vec<Update> {
        self.db.updates_in(folder, vv, kind, after, limit)
    }
}

/// What the sessions see of a member's database: name-conflict tombstones
/// are hidden from `held`, so a present update that beats one in the order
/// reaches the installer (which re-issues the tombstone above it) instead
/// of being dropped by `PartnerSync`'s own `decide` filter. See
/// [`Member::install_remote`] and the engine note in the module
/// documentation.
pub struct SessionView<'a>(pub &'a MemberDb);

impl LocalStore for SessionView<'_> {
    fn known_vector(&self, folder: &Guid) -> VersionVector {
        self.0.known_vector(folder)
    }

    fn held(&self, uid: &Uid) -> Option<&Update> {
        self.0.get(uid).filter(|u| u.present || !u.name_conflict)
    }
}

/// The database with one extra update visible, so the originator can
/// derive a tombstone from an incoming update that was never installed.
struct WithExtra<'a> {
    db: &'a MemberDb,
    extra: &'a Update,
}

impl UpdateLookup for WithExtra<'_> {
    fn update(&self, uid: &Uid) -> Option<&Update> {
        if *uid == self.extra.uid {
            Some(self.extra)
        } else {
            self.db.update(uid)
        }
    }
}

/// One entry of the materialized tree (what the file system holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The directory it is in.
    pub parent: Uid,
    /// Its name there.
    pub name: String,
    /// False once deleted (a tombstone is installed).
    pub present: bool,
    /// A directory.
    pub is_dir: bool,
    /// Content hash.
    pub hash: [u8; 20],
    /// The version installed.
    pub gvsn: Gvsn,
}

/// The simulator's ground truth about which version a change was made
/// from. FRS_UPDATE carries no causal history, so a real member cannot
/// tell a concurrent edit from a later one; the simulator can, and uses
/// it to write LostConflict records only for true conflicts.
#[derive(Debug, Clone, Default)]
pub struct Causality {
    base: HashMap<Gvsn, Gvsn>,
}

impl Causality {
    /// `derived` was made from `base`.
    pub fn add(&mut self, derived: Gvsn, base: Gvsn) {
        self.base.insert(derived, base);
    }

    /// True when `ancestor` is `v` or one of the versions it was made from.
    pub fn descends(&self, v: Gvsn, ancestor: Gvsn) -> bool {
        let mut cur = v;
        for _ in 0..1_000_000 {
            if cur == ancestor {
                return true;
            }
            match self.base.get(&cur) {
                Some(b) => cur = *b,
                None => return false,
            }
        }
        false
    }
}

/// What the simulator observed of one UID on one member (an oracle kept
/// outside the member, so it survives crashes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hist {
    /// The live version before the current one, when one live version
    /// replaced another.
    pub prev_live: Option<Gvsn>,
    /// The live version installed now.
    pub cur_live: Option<Gvsn>,
    /// It was live here at some time.
    pub ever_live: bool,
    /// Its last removal was a local delete (no ConflictAndDeleted entry).
    pub removed_locally: bool,
}

/// Per-member observations, by UID.
pub type History = HashMap<Uid, Hist>;

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Local operations that produced updates.
    pub ops_applied: u64,
    /// Local operations the originator refused (name taken, cycle, …).
    pub ops_refused: u64,
    /// LostConflict records written.
    pub conflicts: u64,
    /// NameConflict records written.
    pub name_conflicts: u64,
    /// Deleted records written.
    pub deleted: u64,
    /// ParentDeleted records written.
    pub parent_deleted: u64,
    /// Cycle breaks originated.
    pub cycle_breaks: u64,
    /// Moves refused locally as a cycle.
    pub cycles_refused: u64,
    /// Crash-restarts.
    pub crashes: u64,
    /// Messages sent.
    pub messages: u64,
    /// Messages lost (drops, partitions, broken connections).
    pub dropped: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Updates put aside (orphans, cycles).
    pub held: u64,
    /// Session errors (stray responses) ignored.
    pub stray: u64,
}

/// What the installer needs from the simulator.
pub struct Ctx<'a> {
    /// Simulated time (ms).
    pub now_ms: u64,
    /// Ground truth of derivations.
    pub causality: &'a mut Causality,
    /// This member's observations.
    pub history: &'a mut History,
    /// Counters.
    pub stats: &'a mut Stats,
}

/// Where an update's parent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParentState {
    Ok,
    Dead,
    Unknown,
    NotDir,
}

/// One member of the replication group, one replicated folder.
#[derive(Debug, Clone)]
pub struct Member {
    /// Index in the simulation.
    pub index: usize,
    /// The folder replicated.
    pub folder: Guid,
    /// Its database.
    pub db: MemberDb,
    /// Originates its updates.
    pub originator: Originator,
    /// The materialized tree, by UID (tombstoned entries kept, not
    /// present).
    pub tree: HashMap<Uid, Node>,
    /// ConflictAndDeleted records.
    pub conflicts: Vec<ConflictRecord>,
    /// Updates put aside until their parent arrives.
    pub held: BTreeMap<Uid, Update>,
    /// Offset of its clock from simulated time (FILETIME ticks).
    pub skew: u64,
    pending: Vec<Record>,
    counters: (u64, FileTime),
}

impl Member {
    /// A fresh member with database GUID `db` replicating `folder`.
    pub fn new(index: usize, db: Guid, folder: Guid, skew: u64) -> Self {
        let originator = Originator::new(db, folder);
        Member {
            index,
            folder,
            db: MemberDb::new(folder),
            counters: (originator.next_version(), originator.last_clock()),
            originator,
            tree: HashMap::new(),
            conflicts: Vec::new(),
            held: BTreeMap::new(),
            skew,
            pending: Vec::new(),
        }
    }

    /// A member restarted from its committed records.
    pub fn restore(index: usize, db: Guid, folder: Guid, skew: u64, records: Vec<Record>) -> Self {
        let mut m = Member::new(index, db, folder, skew);
        for r in records {
            match r {
                Record::Apply(u) => {
                    if m.db.apply(u.clone()) {
                        m.tree.insert(u.uid, node_of(&u));
                    }
                }
                Record::Merge(vv) => m.db.merge(&vv),
                Record::Counters {
                    next_version,
                    last_clock,
                } => {
                    m.originator = Originator::resume(db, folder, next_version, last_clock);
                    m.counters = (next_version, last_clock);
                }
                Record::Conflict(c) => m.conflicts.push(c),
                Record::Hold(u) => {
                    m.held.insert(u.uid, u);
                }
                Record::Unhold(uid) => {
                    m.held.remove(&uid);
                }
            }
        }
        m.db.set_withheld(m.held.values());
        m
    }

    /// The member's clock as a FILETIME.
    pub fn now_ft(&self, now_ms: u64) -> FileTime {
        EPOCH_FILETIME + now_ms * (TICKS_PER_SECOND / 1000) + self.skew
    }

    /// The records of the current transaction, with the originator's
    /// counters when they moved; the caller commits them.
    pub fn take_batch(&mut self) -> Vec<Record> {
        let c = (self.originator.next_version(), self.originator.last_clock());
        if c != self.counters {
            self.counters = c;
            self.pending.push(Record::Counters {
                next_version: c.0,
                last_clock: c.1,
            });
        }
        std::mem::take(&mut self.pending)
    }

    /// Live UIDs of the tree (directories only when `dirs`), sorted.
    pub fn live(&self, dirs: Option<bool>) -> Vec<Uid> {
        let mut v: Vec<Uid> = self
            .tree
            .iter()
            .filter(|(_, n)| n.present && dirs.map_or(true, |d| n.is_dir == d))
            .map(|(u, _)| *u)
            .collect();
        v.sort_unstable();
        v
    }

    /// True when `uid` is live in the tree.
    pub fn is_live(&self, uid: &Uid) -> bool {
        self.tree.get(uid).is_some_and(|n| n.present)
    }

    /// The path of a live entry, `None` when it or an ancestor is not live.
    pub fn path_of(&self, uid: &Uid) -> Option<String> {
        let root = Uid::root_of(self.folder);
        let mut parts = Vec::new();
        let mut cur = *uid;
        let mut seen = HashSet::new();
        while cur != root {
            if !seen.insert(cur) {
                return None;
            }
            let n = self.tree.get(&cur).filter(|n| n.present)?;
            parts.push(n.name.as_str());
            cur = n.parent;
        }
        parts.reverse();
        Some(format!("/{}", parts.join("/")))
    }

    /// Path → (UID, hash, is directory) of every live entry; an entry whose
    /// ancestry is broken is listed under `?<uid>`.
    pub fn paths(&self) -> BTreeMap<String, (Uid, [u8; 20], bool)> {
        self.tree
            .iter()
            .filter(|(_, n)| n.present)
            .map(|(u, n)| {
                let p = self.path_of(u).unwrap_or_else(|| format!("?{u}"));
                (p, (*u, n.hash, n.is_dir))
            })
            .collect()
    }

    fn parent_state(&self, p: &Uid) -> ParentState {
        if *p == Uid::root_of(self.folder) {
            return ParentState::Ok;
        }
        match self.db.get(p) {
            None => ParentState::Unknown,
            Some(u) if !u.present => ParentState::Dead,
            Some(u) if !u.is_directory() => ParentState::NotDir,
            Some(_) => ParentState::Ok,
        }
    }

    fn record(&mut self, rec: ConflictRecord, ctx: &mut Ctx<'_>) {
        match rec.reason {
            LossReason::LostConflict => ctx.stats.conflicts += 1,
            LossReason::NameConflict => ctx.stats.name_conflicts += 1,
            LossReason::Deleted => ctx.stats.deleted += 1,
            LossReason::ParentDeleted => ctx.stats.parent_deleted += 1,
        }
        self.pending.push(Record::Conflict(rec.clone()));
        self.conflicts.push(rec);
    }

    /// Stores `u` in the database and the tree; when it replaces a live
    /// version and `loss` is given, that version goes to ConflictAndDeleted.
    fn apply(
        &mut self,
        u: Update,
        loss: Option<LossReason>,
        local: bool,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let old = self.db.get(&u.uid).filter(|o| o.present).cloned();
        self.pending.push(Record::Apply(u.clone()));
        if !self.db.apply(u.clone()) {
            return false;
        }
        let h = ctx.history.entry(u.uid).or_default();
        if u.present {
            h.prev_live = match (&old, h.cur_live) {
                (Some(o), _) if o.gvsn != u.gvsn => Some(o.gvsn),
                (Some(_), _) => h.prev_live,
                (None, _) => None,
            };
            h.cur_live = Some(u.gvsn);
            h.ever_live = true;
        } else if old.is_some() {
            h.prev_live = None;
            h.cur_live = None;
            h.removed_locally = local;
        }
        if let (Some(o), Some(reason)) = (&old, loss) {
            let at = self.now_ft(ctx.now_ms);
            self.record(ConflictRecord::new(o, reason, at), ctx);
        }
        self.tree.insert(u.uid, node_of(&u));
        true
    }

    /// Tombstones every live descendant of `dir`, children first
    /// (a directory is emptied before it goes).
    fn delete_descendants(
        &mut self,
        dir: Uid,
        loss: Option<LossReason>,
        local: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SimError> {
        let mut order = Vec::new();
        let mut stack: Vec<(Uid, bool)> = self.db.children(&dir).map(|c| (*c, false)).collect();
        while let Some((u, expanded)) = stack.pop() {
            if expanded {
                order.push(u);
            } else {
                stack.push((u, true));
                stack.extend(self.db.children(&u).map(|c| (*c, false)));
            }
        }
        for x in order {
            let now = self.now_ft(ctx.now_ms);
            let base = self.db.get(&x).map(|u| u.gvsn);
            let t = self.originator.delete(&self.db, x, now)?;
            if let Some(b) = base {
                ctx.causality.add(t.gvsn, b);
            }
            self.apply(t, loss, local, ctx);
        }
        Ok(())
    }

    // ---- local operations -------------------------------------------------

    fn local_update(&mut self, u: Update, base: Option<Gvsn>, ctx: &mut Ctx<'_>) {
        if let Some(b) = base {
            ctx.causality.add(u.gvsn, b);
        }
        ctx.stats.ops_applied += 1;
        self.apply(u, None, true, ctx);
    }

    /// Creates a file or directory.
    pub fn local_create(
        &mut self,
        parent: Uid,
        name: &str,
        dir: bool,
        hash: [u8; 20],
        ctx: &mut Ctx<'_>,
    ) -> Result<Update, LocalChangeError> {
        let now = self.now_ft(ctx.now_ms);
        let file = NewFile {
            attributes: if dir {
                FILE_ATTRIBUTE_DIRECTORY
            } else {
                FILE_ATTRIBUTE_ARCHIVE
            },
            create_time: now,
            hash,
        };
        let u = self.originator.create(&self.db, parent, name, file, now)?;
        self.local_update(u.clone(), None, ctx);
        Ok(u)
    }

    /// New content for a file.
    pub fn local_modify(
        &mut self,
        uid: Uid,
        hash: [u8; 20],
        ctx: &mut Ctx<'_>,
    ) -> Result<Update, LocalChangeError> {
        let now = self.now_ft(ctx.now_ms);
        let (attrs, base) = match self.db.get(&uid) {
            Some(u) => (u.attributes, u.gvsn),
            None => return Err(LocalChangeError::UnknownUid(uid)),
        };
        let u = self.originator.modify(&self.db, uid, attrs, hash, now)?;
        self.local_update(u.clone(), Some(base), ctx);
        Ok(u)
    }

    /// Rename and/or move.
    pub fn local_move(
        &mut self,
        uid: Uid,
        parent: Uid,
        name: &str,
        ctx: &mut Ctx<'_>,
    ) -> Result<Update, LocalChangeError> {
        let now = self.now_ft(ctx.now_ms);
        let base = self.db.get(&uid).map(|u| u.gvsn);
        let u = self.originator.move_to(&self.db, uid, parent, name, now)?;
        self.local_update(u.clone(), base, ctx);
        Ok(u)
    }

    /// Deletes a file, or a directory with everything below it (children
    /// first, as the file system does).
    pub fn local_delete(&mut self, uid: Uid, ctx: &mut Ctx<'_>) -> Result<Update, SimError> {
        let now = self.now_ft(ctx.now_ms);
        let base = self.db.get(&uid).map(|u| u.gvsn);
        // Validate first, so a refused delete changes nothing.
        let probe = self.originator.clone().delete(&self.db, uid, now)?;
        drop(probe);
        self.delete_descendants(uid, None, true, ctx)?;
        let now = self.now_ft(ctx.now_ms);
        let u = self.originator.delete(&self.db, uid, now)?;
        self.local_update(u.clone(), base, ctx);
        Ok(u)
    }

    // ---- received updates ------------------------------------------------

    /// Installs one received update (§3.3.4.6.2) and reports the outcome
    /// for [`crate::engine::session::PartnerSync::on_update_processed`]:
    ///
    /// - `decide` against the held update: superseded / same → Superseded;
    /// - a tombstone: live descendants are tombstoned first (ParentDeleted),
    ///   the replaced live file goes to ConflictAndDeleted (Deleted, or
    ///   NameConflict for a name-conflict tombstone);
    /// - a live update whose parent is unknown is held until it arrives;
    ///   whose parent is deleted is a dangling child (§3.3.4.6.2): we
    ///   originate its tombstone (ParentDeleted), so every member ends with
    ///   it deleted, never with a live child under a deleted directory;
    /// - a live update that would close a directory cycle is re-issued with
    ///   the installed parent (`Originator::break_cycle`);
    /// - a live sibling with the same name: `resolve_name_conflict`, the
    ///   loser gets a name-conflict tombstone;
    /// - otherwise installed; a replaced live version it was not made from
    ///   is a concurrent edit that lost (LostConflict).
    pub fn install_remote(
        &mut self,
        w: Update,
        ctx: &mut Ctx<'_>,
    ) -> Result<UpdateOutcome, SimError> {
        if w.content_set_id != self.folder || w.validate().is_err() {
            return Ok(UpdateOutcome::Failed);
        }
        let held = self.db.get(&w.uid).cloned();
        match decide(&w, held.as_ref()) {
            Ok(Decision::Install) => {}
            Ok(Decision::SkipSuperseded) if w.name_conflict && !w.present => {
                if let Some(h) = held.filter(|h| h.present) {
                    self.reissue_name_conflict_tombstone(&w, h, ctx)?;
                    return Ok(UpdateOutcome::Installed);
                }
                return Ok(UpdateOutcome::Superseded);
            }
            Ok(Decision::SkipNameConflictTombstone) => {
                self.reissue_over(&w, ctx)?;
                return Ok(UpdateOutcome::Installed);
            }
            Ok(_) => return Ok(UpdateOutcome::Superseded),
            Err(_) => return Ok(UpdateOutcome::Failed),
        }
        let held_live = held.filter(|h| h.present);
        if !w.present {
            if held_live.as_ref().is_some_and(|h| h.is_directory()) {
                self.delete_descendants(w.uid, Some(LossReason::ParentDeleted), false, ctx)?;
            }
            let reason = if w.name_conflict {
                LossReason::NameConflict
            } else {
                LossReason::Deleted
            };
            self.apply(w, Some(reason), false, ctx);
            return Ok(UpdateOutcome::Installed);
        }
        match self.parent_state(&w.parent) {
            ParentState::Ok => {}
            ParentState::Unknown => {
                self.hold(w, ctx);
                return Ok(UpdateOutcome::Installed);
            }
            ParentState::NotDir => return Ok(UpdateOutcome::Failed),
            ParentState::Dead => {
                self.dangle(w, held_live, ctx)?;
                return Ok(UpdateOutcome::Installed);
            }
        }
        if let Some(h) = &held_live {
            if self.would_cycle(w.uid, w.parent) {
                let brk = CycleBreak {
                    update: w,
                    old_parent: h.parent,
                };
                self.break_cycle(&brk, h.clone(), ctx)?;
                return Ok(UpdateOutcome::Installed);
            }
        }
        let sibling = self
            .db
            .live_child_named(&w.parent, &w.name)
            .filter(|s| *s != w.uid)
            .and_then(|s| self.db.get(&s).cloned());
        if let Some(sib) = sibling {
            let now = self.now_ft(ctx.now_ms);
            let res = self.originator.resolve_name_conflict(&w, &sib, now)?;
            let tomb = res.loser_tombstone.clone();
            if res.winner == w.uid {
                ctx.causality.add(tomb.gvsn, sib.gvsn);
                if sib.is_directory() {
                    self.delete_descendants(sib.uid, Some(LossReason::ParentDeleted), false, ctx)?;
                }
                self.apply(tomb, None, false, ctx);
                self.record(res.record, ctx);
                self.install_live(w, held_live, ctx);
            } else {
                ctx.causality.add(tomb.gvsn, w.gvsn);
                if held_live.as_ref().is_some_and(|h| h.is_directory()) {
                    self.delete_descendants(w.uid, Some(LossReason::ParentDeleted), false, ctx)?;
                }
                self.apply(tomb, None, false, ctx);
                self.record(res.record, ctx);
            }
            return Ok(UpdateOutcome::Installed);
        }
        self.install_live(w, held_live, ctx);
        Ok(UpdateOutcome::Installed)
    }

    /// Workaround for an asymmetry of `rules::decide`: a name-conflict
    /// tombstone `w` arriving where a later present update `h` of the same
    /// UID is held loses the §3.3.4.6.2 order, while every member holding
    /// the tombstone refuses `h` ("MUST NOT supersede any update with
    /// nameConflict set to 1 by any update that sets present to 1"): the
    /// members would never agree. We re-issue the name-conflict tombstone
    /// with a fresh GVSN and a clock above `h`, which every member accepts.
    fn reissue_name_conflict_tombstone(
        &mut self,
        w: &Update,
        h: Update,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SimError> {
        let now = self.now_ft(ctx.now_ms);
        let mut t = self.originator.delete(&self.db, h.uid, now)?;
        t.name_conflict = true;
        ctx.causality.add(t.gvsn, w.gvsn);
        if h.is_directory() {
            self.delete_descendants(h.uid, Some(LossReason::ParentDeleted), false, ctx)?;
        }
        self.apply(t, Some(LossReason::NameConflict), false, ctx);
        Ok(())
    }

    /// The other half of the workaround above: a present update `w` that
    /// beats our name-conflict tombstone in the order but may not revive
    /// it; members that hold `w` would keep it, so we re-issue the
    /// name-conflict tombstone above `w`.
    fn reissue_over(&mut self, w: &Update, ctx: &mut Ctx<'_>) -> Result<(), SimError> {
        let now = self.now_ft(ctx.now_ms);
        let mut t = self.originator.delete(
            &WithExtra {
                db: &self.db,
                extra: w,
            },
            w.uid,
            now,
        )?;
        t.name_conflict = true;
        ctx.causality.add(t.gvsn, w.gvsn);
        self.apply(t, None, false, ctx);
        Ok(())
    }

    fn install_live(&mut self, w: Update, held_live: Option<Update>, ctx: &mut Ctx<'_>) {
        let lost = held_live
            .as_ref()
            .is_some_and(|h| h.gvsn != w.gvsn && !ctx.causality.descends(w.gvsn, h.gvsn));
        self.apply(w, lost.then_some(LossReason::LostConflict), false, ctx);
    }

    /// A live update under a deleted directory: originate its tombstone.
    fn dangle(
        &mut self,
        w: Update,
        held_live: Option<Update>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SimError> {
        let now = self.now_ft(ctx.now_ms);
        let t = self.originator.delete(
            &WithExtra {
                db: &self.db,
                extra: &w,
            },
            w.uid,
            now,
        )?;
        ctx.causality.add(t.gvsn, w.gvsn);
        if held_live.as_ref().is_some_and(|h| h.is_directory()) {
            self.delete_descendants(w.uid, Some(LossReason::ParentDeleted), false, ctx)?;
        }
        if held_live.is_none() {
            let at = self.now_ft(ctx.now_ms);
            self.record(ConflictRecord::new(&w, LossReason::ParentDeleted, at), ctx);
        }
        self.apply(t, Some(LossReason::ParentDeleted), false, ctx);
        Ok(())
    }

    /// True when `new_parent` is `uid` or below it in the live tree.
    fn would_cycle(&self, uid: Uid, new_parent: Uid) -> bool {
        let root = Uid::root_of(self.folder);
        let mut cur = new_parent;
        let mut seen = HashSet::new();
        while cur != root {
            if cur == uid || !seen.insert(cur) {
                return true;
            }
            match self.db.get(&cur).filter(|u| u.present) {
                Some(u) => cur = u.parent,
                None => return false,
            }
        }
        false
    }

    fn break_cycle(
        &mut self,
        brk: &CycleBreak,
        held_live: Update,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SimError> {
        let now = self.now_ft(ctx.now_ms);
        let u = self.originator.break_cycle(&self.db, brk, now)?;
        ctx.causality.add(u.gvsn, brk.update.gvsn);
        ctx.stats.cycle_breaks += 1;
        self.install_live(u, Some(held_live), ctx);
        Ok(())
    }

    /// The session's [`crate::engine::session::Action::CycleBreaks`]: the
    /// engine chose `brk.update` as the weakest of a cycle; re-issue it
    /// with the installed parent (§3.3.4.6.2), or install it when the
    /// installed state no longer has it live.
    pub fn on_cycle_break(&mut self, brk: CycleBreak, ctx: &mut Ctx<'_>) -> Result<(), SimError> {
        let held = self.db.get(&brk.update.uid).cloned();
        if !matches!(decide(&brk.update, held.as_ref()), Ok(Decision::Install)) {
            return Ok(());
        }
        match held.filter(|h| h.present) {
            Some(h) => {
                let brk = CycleBreak {
                    old_parent: h.parent,
                    update: brk.update,
                };
                self.break_cycle(&brk, h, ctx)
            }
            None => self.install_remote(brk.update, ctx).map(|_| ()),
        }
    }

    /// The session's [`crate::engine::session::Action::Hold`]: dangling
    /// children are resolved now (see [`Self::install_remote`]); orphans and
    /// unbreakable cycles wait in [`Self::held`].
    pub fn on_held(
        &mut self,
        u: Update,
        reason: HoldReason,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), SimError> {
        match reason {
            HoldReason::ParentDeleted { .. } => self.install_remote(u, ctx).map(|_| ()),
            HoldReason::Orphan { .. } | HoldReason::Cycle => {
                self.hold(u, ctx);
                Ok(())
            }
        }
    }

    fn hold(&mut self, u: Update, ctx: &mut Ctx<'_>) {
        if let Some(h) = self.held.get(&u.uid) {
            if compare_updates(&u, h) != std::cmp::Ordering::Greater {
                return;
            }
        }
        ctx.stats.held += 1;
        self.pending.push(Record::Hold(u.clone()));
        self.held.insert(u.uid, u);
        self.db.set_withheld(self.held.values());
    }

    fn unhold(&mut self, uid: Uid) {
        if self.held.remove(&uid).is_some() {
            self.pending.push(Record::Unhold(uid));
            self.db.set_withheld(self.held.values());
        }
    }

    /// Installs held updates whose parent has arrived and forgets the
    /// superseded ones; true when anything changed.
    pub fn retry_held(&mut self, ctx: &mut Ctx<'_>) -> Result<bool, SimError> {
        let mut any = false;
        loop {
            let mut progressed = false;
            let uids: Vec<Uid> = self.held.keys().copied().collect();
            for uid in uids {
                let Some(u) = self.held.get(&uid).cloned() else {
                    continue;
                };
                if !matches!(decide(&u, self.db.get(&uid)), Ok(Decision::Install)) {
                    self.unhold(uid);
                    progressed = true;
                    continue;
                }
                if u.present && self.parent_state(&u.parent) == ParentState::Unknown {
                    continue;
                }
                self.unhold(uid);
                self.install_remote(u, ctx)?;
                progressed = true;
            }
            any |= progressed;
            if !progressed {
                return Ok(any);
            }
        }
    }

    /// Held updates that would still win over what is installed.
    pub fn unresolved(&self) -> Vec<&Update> {
        self.held
            .values()
            .filter(|u| matches!(decide(u, self.db.get(&u.uid)), Ok(Decision::Install)))
            .collect()
    }

    /// The session's [`crate::engine::session::Action::MergeKnownVector`].
    pub fn merge(&mut self, vv: VersionVector) {
        self.db.merge(&vv);
        self.pending.push(Record::Merge(vv));
    }
}

fn node_of(u: &Update) -> Node {
    Node {
        parent: u.parent,
        name: u.name.clone(),
        present: u.present,
        is_dir: u.is_directory(),
        hash: u.hash,
        gvsn: u.gvsn,
    }
}
