//! One simulated member: its database, originator, materialized tree,
//! ConflictAndDeleted records and the installer that applies received
//! updates through the engine rules (MS-FRS2 §3.3.4.6.2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::convert::Infallible;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::install::{Installer, Lineage, Origin, Step, Why};
use crate::engine::local_change::{ChangeError, LocalChangeError, NewFile, Originator};
use crate::engine::ordering::{CycleBreak, Held};
use crate::engine::replica::ReplicaRead;
use crate::engine::rules::{fold_name, ConflictRecord, LossReason};
use crate::engine::session::{MemoryDatabase, UpdateDatabase, UpdateOutcome, UpdateRequestType};
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

    /// Merges `vv` into the known vector (§3.3.4.6).
    pub fn merge(&mut self, vv: &VersionVector) {
        self.db.merge_vector(self.folder, vv);
    }
}

/// What is stored; nothing is held aside here (that is [`Member`]'s).
impl ReplicaRead for MemberDb {
    type Error = Infallible;

    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, Infallible> {
        Ok(self.db.known_vector(folder))
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
        Ok(self.get(uid).cloned())
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Infallible> {
        Ok(self.names.get(&(*parent, fold_name(name))).copied())
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Infallible> {
        Ok(self.children(dir).copied().collect())
    }

    fn held_aside(&self, _uid: &Uid) -> Result<Option<Update>, Infallible> {
        Ok(None)
    }

    fn all_held_aside(&self, _folder: &Guid) -> Result<Vec<Update>, Infallible> {
        Ok(Vec::new())
    }

    fn held_aside_under(&self, _parent: &Uid) -> Result<Vec<Update>, Infallible> {
        Ok(Vec::new())
    }
}

impl UpdateDatabase for MemberDb {
    type Error = Infallible;

    fn version_vector(&self, folder: &Guid) -> Result<Option<VersionVector>, Infallible> {
        Ok(self.db.version_vector(folder))
    }

    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Result<Vec<Update>, Infallible> {
        self.db.updates_in(folder, vv, kind, after, limit)
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

impl Lineage for Causality {
    fn descends(&self, v: Gvsn, ancestor: Gvsn) -> bool {
        Causality::descends(self, v, ancestor)
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

    /// Stores `u` in the database and the tree, keeping the simulator's
    /// observations (`local`: our own deletion, not a loss).
    fn apply(&mut self, u: Update, local: bool, ctx: &mut Ctx<'_>) -> bool {
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
        self.tree.insert(u.uid, node_of(&u));
        true
    }

    /// Plans with the engine's installer over this member, then carries
    /// the plan out (what the member does through the store and the meet).
    fn plan<T>(
        &mut self,
        ctx: &mut Ctx<'_>,
        f: impl FnOnce(&mut Installer<'_, Member>) -> Result<T, ChangeError<Infallible>>,
    ) -> Result<T, SimError> {
        let now = self.now_ft(ctx.now_ms);
        let (out, plan) = {
            let mut installer = Installer::new(&*self, self.originator.clone(), &*ctx.causality, now);
            let out = f(&mut installer).map_err(|e| match e {
                ChangeError::Refused(e) => SimError::Local(e),
                ChangeError::Read(never) => match never {},
            })?;
            (out, installer.into_plan())
        };
        self.originator = plan.originator;
        for step in plan.steps {
            match step {
                Step::Preserve(rec) => self.record(rec, ctx),
                Step::Install { update, origin } => {
                    let mut local = false;
                    if let Origin::Originated { from, why } = origin {
                        ctx.causality.add(update.gvsn, from);
                        ctx.stats.cycle_breaks += u64::from(why == Why::CycleBreak);
                        local = why == Why::LocalDelete;
                    }
                    self.apply(update, local, ctx);
                }
                Step::Hold(u) => {
                    ctx.stats.held += 1;
                    self.pending.push(Record::Hold(u.clone()));
                    self.held.insert(u.uid, u);
                }
                Step::Release(u) => {
                    if self.held.remove(&u.uid).is_some() {
                        self.pending.push(Record::Unhold(u.uid));
                    }
                    let mut vv = VersionVector::new();
                    vv.insert(u.gvsn);
                    self.merge(vv);
                }
            }
        }
        Ok(out)
    }

    // ---- local operations -------------------------------------------------

    fn local_update(&mut self, u: Update, base: Option<Gvsn>, ctx: &mut Ctx<'_>) {
        if let Some(b) = base {
            ctx.causality.add(u.gvsn, b);
        }
        ctx.stats.ops_applied += 1;
        self.apply(u, true, ctx);
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
        let u = self.plan(ctx, |i| i.delete_locally(uid))?;
        ctx.stats.ops_applied += 1;
        Ok(u)
    }

    // ---- received updates ------------------------------------------------

    /// Installs one received update with the engine's installer, then
    /// retries what is held aside; the outcome is for
    /// [`crate::engine::session::PartnerSync::on_update_processed`].
    pub fn install_received(&mut self, u: Update, ctx: &mut Ctx<'_>) -> Result<UpdateOutcome, SimError> {
        self.plan(ctx, |i| {
            let o = i.receive(u)?;
            i.retry_unblocked()?;
            Ok(o)
        })
    }

    /// The session's [`crate::engine::session::Action::Hold`].
    pub fn on_held(&mut self, held: Vec<Held>, ctx: &mut Ctx<'_>) -> Result<(), SimError> {
        self.plan(ctx, |i| {
            for h in held {
                i.held(h.update, h.reason)?;
                i.retry_unblocked()?;
            }
            Ok(())
        })
    }

    /// The session's [`crate::engine::session::Action::CycleBreaks`].
    pub fn on_cycle_breaks(&mut self, breaks: Vec<CycleBreak>, ctx: &mut Ctx<'_>) -> Result<(), SimError> {
        self.plan(ctx, |i| {
            for b in breaks {
                i.cycle_break(b)?;
                i.retry_unblocked()?;
            }
            Ok(())
        })
    }

    /// Installs held updates whose parent has arrived and forgets the
    /// superseded ones; true when anything changed.
    pub fn retry_held(&mut self, ctx: &mut Ctx<'_>) -> Result<bool, SimError> {
        self.plan(ctx, |i| i.retry_held())
    }

    /// Held updates that would still win over what is installed.
    pub fn unresolved(&self) -> Vec<Update> {
        match crate::engine::install::unresolved(self, &self.folder) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// The session's [`crate::engine::session::Action::MergeKnownVector`].
    pub fn merge(&mut self, vv: VersionVector) {
        self.db.merge(&vv);
        self.pending.push(Record::Merge(vv));
    }
}

impl ReplicaRead for Member {
    type Error = Infallible;

    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, Infallible> {
        self.db.known_vector(folder)
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
        self.db.update(uid)
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Infallible> {
        self.db.live_child_named(parent, name)
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Infallible> {
        self.db.live_children(dir)
    }

    fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
        Ok(self.held.get(uid).cloned())
    }

    fn all_held_aside(&self, _folder: &Guid) -> Result<Vec<Update>, Infallible> {
        Ok(self.held.values().cloned().collect())
    }

    fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, Infallible> {
        Ok(self.held.values().filter(|u| u.parent == *parent).cloned().collect())
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
