//! The installer's planner (MS-FRS2 §3.3.4.6.2): turns received updates
//! into the steps that keep a member's replicated state well-formed —
//! installs, removals, moves, updates held aside and retried, dangling
//! children, directory cycles, name conflicts, ConflictAndDeleted records.
//!
//! Sans-IO: it reads the member's state through [`ReplicaRead`] and
//! returns a [`Plan`]; the caller carries the steps out in order (the
//! simulation on its maps; the member through the store, the staging area
//! and the meet) and commits them with the plan's originator, or drops
//! both when anything fails. Reads see the steps planned so far.
//!
//! Rules beyond the §3.3.4.6.2 order, and why:
//! - **Dangling children**: a live update under a deleted directory is
//!   deleted by the member that sees it (a fresh tombstone, ParentDeleted);
//!   the spec only says the set must stay well-formed, and this way every
//!   member ends with it deleted, never with a live child under a deleted
//!   directory.
//! - **Name-conflict tombstones against a later edit**
//!   ([`Decision::ReissueNameConflictTombstone`]): no present update may
//!   supersede a name-conflict tombstone, yet a member that installed the
//!   edit first keeps it by the order. Whichever member sees the two
//!   re-issues the tombstone above the edit, which every member accepts.
//! - **Held aside** ([`Step::Hold`]): an orphan or an unbreakable cycle
//!   waits; its GVSN is not known until it is installed or found
//!   superseded ([`Step::Release`]), so we never serve a vector that
//!   claims it ([`crate::engine::session::UpdateOutcome::Held`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};


use super::ids::{Guid, Gvsn, Uid};
use super::local_change::{ChangeError, LocalChangeError, Originator};
use super::ordering::{CycleBreak, HoldReason};
use super::replica::ReplicaRead;
use super::rules::{compare_updates, decide, names_equal, ConflictRecord, Decision, LossReason};
use super::session::UpdateOutcome;
use super::update::{FileTime, Update};
use super::version_vector::VersionVector;

/// Why an update we originate during installation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// A live descendant of a directory being deleted.
    ParentDeleted,
    /// A live update that arrived under a deleted directory.
    DanglingChild,
    /// The loser of a name conflict.
    NameConflict,
    /// A name-conflict tombstone re-issued above a present update.
    NameConflictReissue,
    /// A received update re-issued with its installed parent.
    CycleBreak,
    /// A local deletion (the file system removed it).
    LocalDelete,
}

/// Where an installed update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Received from a partner.
    Received,
    /// Made by us now, from the version `from`; it replicates like any
    /// local change.
    Originated {
        /// The version it was made from.
        from: Gvsn,
        /// Why.
        why: Why,
    },
}

/// One step of a plan, carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep the live version being replaced in ConflictAndDeleted (before
    /// the install that replaces it).
    Preserve(ConflictRecord),
    /// Store `update` as what we hold for its UID, its GVSN known, and make
    /// the file system match: a live update creates, changes, renames or
    /// moves the file; a tombstone removes it.
    Install {
        /// The update.
        update: Update,
        /// Received or originated.
        origin: Origin,
    },
    /// Keep this live update aside until its parent arrives; its GVSN is
    /// not known yet.
    Hold(Update),
    /// Forget the update kept aside for this UID: it was installed (a
    /// later step) or is superseded. Its GVSN is known from now on.
    Release(Update),
}

/// What a plan needs besides the state.
pub trait Lineage {
    /// True when version `v` was made from `ancestor` (or is it), so
    /// replacing `ancestor` by `v` loses nothing.
    fn descends(&self, v: Gvsn, ancestor: Gvsn) -> bool;
}

/// FRS_UPDATE carries no causal history. A real member judges by the
/// partner's vector: a version the partner knew when it answered was seen
/// by whoever made the partner's current one, so replacing it is not a
/// conflict; a version it did not know was changed concurrently.
impl Lineage for VersionVector {
    fn descends(&self, v: Gvsn, ancestor: Gvsn) -> bool {
        v == ancestor || self.contains(&ancestor)
    }
}

/// Where an update's parent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParentState {
    Ok,
    Dead,
    Unknown,
    NotDir,
}

/// The steps planned, and the originator that made the new updates in
/// them (commit it with the steps, or drop both).
#[derive(Debug, Clone)]
pub struct Plan {
    /// In order.
    pub steps: Vec<Step>,
    /// Our originator after the plan.
    pub originator: Originator,
}

/// Plans installs for one replicated folder over `R`, seeing its own
/// steps.
pub struct Installer<'a, R: ReplicaRead> {
    replica: &'a R,
    lineage: &'a dyn Lineage,
    folder: Guid,
    now: FileTime,
    originator: Originator,
    steps: Vec<Step>,
    /// Updates stored by the steps so far (the latest per UID).
    stored: HashMap<Uid, Update>,
    /// Held-aside state changed by the steps (None: released).
    aside: HashMap<Uid, Option<Update>>,
    /// Versions originated by the steps, by the version they were made from.
    made_from: HashMap<Gvsn, Gvsn>,
    /// UIDs stored or held by the steps since the last retry: only what is
    /// held under them, or for them, can have been unblocked.
    touched: BTreeSet<Uid>,
}

type Res<T, R> = Result<T, ChangeError<<R as ReplicaRead>::Error>>;

impl<'a, R: ReplicaRead> Installer<'a, R> {
    /// A planner for `originator`'s folder at local time `now`.
    pub fn new(
        replica: &'a R,
        originator: Originator,
        lineage: &'a dyn Lineage,
        now: FileTime,
    ) -> Self {
        Installer {
            replica,
            lineage,
            folder: originator.content_set(),
            now,
            originator,
            steps: Vec::new(),
            stored: HashMap::new(),
            aside: HashMap::new(),
            made_from: HashMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The steps and the originator.
    pub fn into_plan(self) -> Plan {
        Plan {
            steps: self.steps,
            originator: self.originator,
        }
    }

    /// The steps planned so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    // ---- reads through the steps ------------------------------------------

    fn read<T>(r: Result<T, R::Error>) -> Res<T, R> {
        r.map_err(ChangeError::Read)
    }

    fn update(&self, uid: &Uid) -> Res<Option<Update>, R> {
        match self.stored.get(uid) {
            Some(u) => Ok(Some(u.clone())),
            None => Self::read(self.replica.update(uid)),
        }
    }

    fn held_aside(&self, uid: &Uid) -> Res<Option<Update>, R> {
        match self.aside.get(uid) {
            Some(u) => Ok(u.clone()),
            None => Self::read(self.replica.held_aside(uid)),
        }
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Res<Option<Uid>, R> {
        let planned = self
            .stored
            .values()
            .filter(|u| u.present && u.parent == *parent && names_equal(&u.name, name))
            .map(|u| u.uid)
            .min();
        if planned.is_some() {
            return Ok(planned);
        }
        // A stored child the steps changed would have matched above.
        Ok(Self::read(self.replica.live_child_named(parent, name))?
            .filter(|c| !self.stored.contains_key(c)))
    }

    fn live_children(&self, dir: &Uid) -> Res<Vec<Uid>, R> {
        let mut v: Vec<Uid> = Self::read(self.replica.live_children(dir))?
            .into_iter()
            .filter(|c| {
                self.stored
                    .get(c)
                    .map_or(true, |u| u.present && u.parent == *dir)
            })
            .collect();
        let known: HashSet<Uid> = v.iter().copied().collect();
        v.extend(
            self.stored
                .values()
                .filter(|u| u.present && u.parent == *dir && !known.contains(&u.uid))
                .map(|u| u.uid),
        );
        v.sort_unstable();
        Ok(v)
    }

    fn parent_state(&self, p: &Uid) -> Res<ParentState, R> {
        if *p == Uid::root_of(self.folder) {
            return Ok(ParentState::Ok);
        }
        Ok(match self.update(p)? {
            None => ParentState::Unknown,
            Some(u) if !u.present => ParentState::Dead,
            Some(u) if !u.is_directory() => ParentState::NotDir,
            Some(_) => ParentState::Ok,
        })
    }

    /// True when `new_parent` is `uid` or below it in the live tree.
    fn would_cycle(&self, uid: Uid, new_parent: Uid) -> Res<bool, R> {
        let root = Uid::root_of(self.folder);
        let mut cur = new_parent;
        let mut seen = HashSet::new();
        while cur != root {
            if cur == uid || !seen.insert(cur) {
                return Ok(true);
            }
            match self.update(&cur)?.filter(|u| u.present) {
                Some(u) => cur = u.parent,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    fn descends(&self, v: Gvsn, ancestor: Gvsn) -> bool {
        let mut cur = v;
        // Versions originated by this plan chain to older ones.
        for _ in 0..=self.made_from.len() {
            if cur == ancestor {
                return true;
            }
            match self.made_from.get(&cur) {
                Some(b) => cur = *b,
                None => break,
            }
        }
        self.lineage.descends(cur, ancestor)
    }

    // ---- steps --------------------------------------------------------------

    fn install(&mut self, update: Update, origin: Origin) {
        if let Origin::Originated { from, .. } = origin {
            self.made_from.insert(update.gvsn, from);
        }
        self.stored.insert(update.uid, update.clone());
        self.touched.insert(update.uid);
        self.steps.push(Step::Install { update, origin });
    }

    /// Installs `u`, first preserving the live version it replaces when
    /// `loss` says so.
    fn replace(&mut self, u: Update, origin: Origin, loss: Option<LossReason>) -> Res<(), R> {
        if let Some(reason) = loss {
            if let Some(old) = self.update(&u.uid)?.filter(|o| o.present) {
                self.steps
                    .push(Step::Preserve(ConflictRecord::new(&old, reason, self.now)));
            }
        }
        self.install(u, origin);
        Ok(())
    }

    /// A tombstone from us for the live `of` (whose held version may be
    /// another, or none).
    fn tombstone(&mut self, of: &Update) -> Res<Update, R> {
        let one = BTreeMap::from([(of.uid, of.clone())]);
        Ok(self.originator.delete(&one, of.uid, self.now).map_err(LocalChangeError::from)?)
    }

    /// Tombstones every live descendant of `dir`, children first (a
    /// directory is emptied before it goes).
    fn delete_descendants(&mut self, dir: Uid, loss: Option<LossReason>, why: Why) -> Res<(), R> {
        let mut order = Vec::new();
        let mut stack: Vec<(Uid, bool)> = self
            .live_children(&dir)?
            .into_iter()
            .map(|c| (c, false))
            .collect();
        while let Some((u, expanded)) = stack.pop() {
            if expanded {
                order.push(u);
            } else {
                stack.push((u, true));
                stack.extend(self.live_children(&u)?.into_iter().map(|c| (c, false)));
            }
        }
        for x in order {
            let Some(held) = self.update(&x)?.filter(|u| u.present) else {
                continue;
            };
            let t = self.tombstone(&held)?;
            self.replace(
                t,
                Origin::Originated {
                    from: held.gvsn,
                    why,
                },
                loss,
            )?;
        }
        Ok(())
    }

    // ---- entry points ------------------------------------------------------

    /// Plans one received update (§3.3.4.6.2); the outcome is for
    /// [`crate::engine::session::PartnerSync::on_update_processed`]:
    ///
    /// - `decide` against the held update: superseded / same → Superseded;
    /// - a tombstone: live descendants are tombstoned first (ParentDeleted),
    ///   the replaced live file goes to ConflictAndDeleted (Deleted, or
    ///   NameConflict for a name-conflict tombstone);
    /// - a live update whose parent is unknown is held aside (Held);
    ///   whose parent is deleted is a dangling child: we originate its
    ///   tombstone (see the module documentation);
    /// - a live update that would close a directory cycle is re-issued with
    ///   the installed parent (`Originator::break_cycle`);
    /// - a live sibling with the same name: the loser of
    ///   `resolve_name_conflict` gets a name-conflict tombstone;
    /// - otherwise installed; a replaced live version it was not made from
    ///   is a concurrent edit that lost (LostConflict).
    pub fn receive(&mut self, w: Update) -> Res<UpdateOutcome, R> {
        if w.content_set_id != self.folder || w.validate().is_err() {
            return Ok(UpdateOutcome::Failed);
        }
        let held = self.update(&w.uid)?;
        match decide(&w, held.as_ref()) {
            Ok(Decision::Install) => {}
            Ok(Decision::ReissueNameConflictTombstone) => {
                self.reissue_name_conflict_tombstone(&w, held)?;
                return Ok(UpdateOutcome::Installed);
            }
            Ok(Decision::SkipSuperseded | Decision::Same) => return Ok(UpdateOutcome::Superseded),
            Err(_) => return Ok(UpdateOutcome::Failed),
        }
        let held_live = held.filter(|h| h.present);
        if !w.present {
            if held_live.as_ref().is_some_and(|h| h.is_directory()) {
                self.delete_descendants(
                    w.uid,
                    Some(LossReason::ParentDeleted),
                    Why::ParentDeleted,
                )?;
            }
            let reason = if w.name_conflict {
                LossReason::NameConflict
            } else {
                LossReason::Deleted
            };
            self.replace(w, Origin::Received, Some(reason))?;
            return Ok(UpdateOutcome::Installed);
        }
        match self.parent_state(&w.parent)? {
            ParentState::Ok => {}
            ParentState::Unknown => {
                self.hold(w)?;
                return Ok(UpdateOutcome::Held);
            }
            ParentState::NotDir => return Ok(UpdateOutcome::Failed),
            ParentState::Dead => {
                self.dangle(w, held_live)?;
                return Ok(UpdateOutcome::Installed);
            }
        }
        if let Some(h) = &held_live {
            if self.would_cycle(w.uid, w.parent)? {
                let brk = CycleBreak {
                    update: w,
                    old_parent: h.parent,
                };
                self.break_cycle(&brk, h.clone())?;
                return Ok(UpdateOutcome::Installed);
            }
        }
        let sibling = match self
            .live_child_named(&w.parent, &w.name)?
            .filter(|s| *s != w.uid)
        {
            Some(s) => self.update(&s)?,
            None => None,
        };
        if let Some(sib) = sibling {
            let res = self.originator.resolve_name_conflict(&w, &sib, self.now)?;
            let w_wins = res.winner == w.uid;
            let (loser, loser_is_dir, from) = if w_wins {
                (sib.uid, sib.is_directory(), sib.gvsn)
            } else {
                (w.uid, held_live.as_ref().is_some_and(|h| h.is_directory()), w.gvsn)
            };
            if loser_is_dir {
                self.delete_descendants(loser, Some(LossReason::ParentDeleted), Why::ParentDeleted)?;
            }
            self.steps.push(Step::Preserve(res.record));
            self.install(
                res.loser_tombstone,
                Origin::Originated {
                    from,
                    why: Why::NameConflict,
                },
            );
            if w_wins {
                self.install_live(w, held_live);
            }
            return Ok(UpdateOutcome::Installed);
        }
        self.install_live(w, held_live);
        Ok(UpdateOutcome::Installed)
    }

    /// [`Decision::ReissueNameConflictTombstone`]: `w` and the held update
    /// are a name-conflict tombstone and a present update that beats it in
    /// the order (either way round). The UID stays deleted by the name
    /// conflict: a new name-conflict tombstone from us, above the present
    /// update, which every member accepts.
    fn reissue_name_conflict_tombstone(&mut self, w: &Update, held: Option<Update>) -> Res<(), R> {
        let held_live = held.filter(|h| h.present);
        let base = if w.present {
            w.clone()
        } else {
            held_live.clone().unwrap_or_else(|| w.clone())
        };
        if !base.present {
            return Ok(());
        }
        let mut t = self.tombstone(&base)?;
        t.name_conflict = true;
        if held_live.as_ref().is_some_and(|h| h.is_directory()) {
            self.delete_descendants(w.uid, Some(LossReason::ParentDeleted), Why::ParentDeleted)?;
        }
        let loss = held_live.is_some().then_some(LossReason::NameConflict);
        self.replace(
            t,
            Origin::Originated {
                from: w.gvsn,
                why: Why::NameConflictReissue,
            },
            loss,
        )
    }

    fn install_live(&mut self, w: Update, held_live: Option<Update>) {
        let lost = held_live
            .as_ref()
            .is_some_and(|h| h.gvsn != w.gvsn && !self.descends(w.gvsn, h.gvsn));
        if let (true, Some(h)) = (lost, &held_live) {
            self.steps.push(Step::Preserve(ConflictRecord::new(
                h,
                LossReason::LostConflict,
                self.now,
            )));
        }
        self.install(w, Origin::Received);
    }

    /// A live update under a deleted directory: originate its tombstone.
    fn dangle(&mut self, w: Update, held_live: Option<Update>) -> Res<(), R> {
        let t = self.tombstone(&w)?;
        if held_live.as_ref().is_some_and(|h| h.is_directory()) {
            self.delete_descendants(w.uid, Some(LossReason::ParentDeleted), Why::ParentDeleted)?;
        }
        if held_live.is_none() {
            self.steps.push(Step::Preserve(ConflictRecord::new(
                &w,
                LossReason::ParentDeleted,
                self.now,
            )));
        }
        self.replace(
            t,
            Origin::Originated {
                from: w.gvsn,
                why: Why::DanglingChild,
            },
            Some(LossReason::ParentDeleted),
        )
    }

    fn break_cycle(&mut self, brk: &CycleBreak, held_live: Update) -> Res<(), R> {
        let one = BTreeMap::from([(held_live.uid, held_live.clone())]);
        let u = self.originator.break_cycle(&one, brk, self.now).map_err(LocalChangeError::from)?;
        self.made_from.insert(u.gvsn, brk.update.gvsn);
        let lost = u.gvsn != held_live.gvsn && !self.descends(u.gvsn, held_live.gvsn);
        if lost {
            self.steps.push(Step::Preserve(ConflictRecord::new(
                &held_live,
                LossReason::LostConflict,
                self.now,
            )));
        }
        self.install(
            u,
            Origin::Originated {
                from: brk.update.gvsn,
                why: Why::CycleBreak,
            },
        );
        Ok(())
    }

    /// The session's [`crate::engine::session::Action::CycleBreaks`]: the
    /// ordering chose `brk.update` as the weakest of a cycle; re-issue it
    /// with the installed parent (§3.3.4.6.2 "retains the old parent"), or
    /// plan it as received when we no longer hold it live.
    pub fn cycle_break(&mut self, brk: CycleBreak) -> Res<(), R> {
        let held = self.update(&brk.update.uid)?;
        if !matches!(decide(&brk.update, held.as_ref()), Ok(Decision::Install)) {
            return Ok(());
        }
        match held.filter(|h| h.present) {
            Some(h) => {
                let brk = CycleBreak {
                    old_parent: h.parent,
                    update: brk.update,
                };
                self.break_cycle(&brk, h)
            }
            None => self.receive(brk.update).map(|_| ()),
        }
    }

    /// The session's [`crate::engine::session::Action::Hold`]: dangling
    /// children are resolved now (see [`Self::receive`]); orphans and
    /// unbreakable cycles are held aside.
    pub fn held(&mut self, u: Update, reason: HoldReason) -> Res<(), R> {
        match reason {
            HoldReason::ParentDeleted { .. } => self.receive(u).map(|_| ()),
            HoldReason::Orphan { .. } | HoldReason::Cycle => self.hold(u),
        }
    }

    fn hold(&mut self, u: Update) -> Res<(), R> {
        if let Some(h) = self.held_aside(&u.uid)? {
            if compare_updates(&u, &h) != std::cmp::Ordering::Greater {
                return Ok(());
            }
        }
        // Its parent may have been stored since the sender decided to
        // hold it: the next retry looks at it once.
        self.touched.insert(u.uid);
        self.aside.insert(u.uid, Some(u.clone()));
        self.steps.push(Step::Hold(u));
        Ok(())
    }

    fn release(&mut self, u: Update) {
        self.aside.insert(u.uid, None);
        self.steps.push(Step::Release(u));
    }

    /// Retries everything held aside: installs those whose parent is
    /// there now, releases the superseded; true when anything changed. A
    /// sweep (start-up, quiescence); after installs,
    /// [`Self::retry_unblocked`] is enough.
    pub fn retry_held(&mut self) -> Res<bool, R> {
        let mut any = false;
        loop {
            self.touched.clear();
            let mut waiting = Self::read(self.replica.all_held_aside(&self.folder))?;
            waiting.retain(|u| !self.aside.contains_key(&u.uid));
            waiting.extend(self.aside.values().flatten().cloned());
            waiting.sort_unstable_by_key(|u| u.uid);
            let progressed = self.retry(waiting)?;
            any |= progressed;
            if !progressed {
                return Ok(any);
            }
        }
    }

    /// Retries only what the installs since the last retry can have
    /// unblocked: updates held under a UID stored since, or for it (the
    /// held one may be superseded now). Reads what is held under those
    /// UIDs, not everything held; true when anything changed.
    pub fn retry_unblocked(&mut self) -> Res<bool, R> {
        let mut any = false;
        while !self.touched.is_empty() {
            let touched = std::mem::take(&mut self.touched);
            let mut waiting: BTreeMap<Uid, Update> = BTreeMap::new();
            for t in &touched {
                for u in Self::read(self.replica.held_aside_under(t))? {
                    waiting.insert(u.uid, u);
                }
                if let Some(u) = Self::read(self.replica.held_aside(t))? {
                    waiting.insert(u.uid, u);
                }
            }
            // What the steps kept aside or released overrides the store.
            waiting.retain(|uid, _| !self.aside.contains_key(uid));
            for u in self.aside.values().flatten() {
                if touched.contains(&u.parent) || touched.contains(&u.uid) {
                    waiting.insert(u.uid, u.clone());
                }
            }
            any |= self.retry(waiting.into_values().collect())?;
        }
        Ok(any)
    }

    /// One pass over `waiting` (sorted by UID); true when anything changed.
    fn retry(&mut self, waiting: Vec<Update>) -> Res<bool, R> {
        let mut progressed = false;
        for u in waiting {
            let stored = self.update(&u.uid)?;
            match decide(&u, stored.as_ref()) {
                Ok(Decision::Install) => {
                    if u.present && self.parent_state(&u.parent)? == ParentState::Unknown {
                        continue;
                    }
                }
                Ok(Decision::ReissueNameConflictTombstone) => {}
                _ => {
                    self.release(u);
                    progressed = true;
                    continue;
                }
            }
            self.release(u.clone());
            self.receive(u)?;
            progressed = true;
        }
        Ok(progressed)
    }

    /// A local deletion of `uid`: tombstones for everything below it,
    /// children first, then its own (what the file system did).
    pub fn delete_locally(&mut self, uid: Uid) -> Res<Update, R> {
        // The originator refuses the root, an unknown or a deleted file
        // before a whole subtree is planned (a failed plan is dropped
        // anyway; this only saves the work).
        let held = self.update(&uid)?;
        let one: BTreeMap<Uid, Update> = held.iter().map(|u| (u.uid, u.clone())).collect();
        self.originator.clone().delete(&one, uid, self.now).map_err(LocalChangeError::from)?;
        let held = held.ok_or(LocalChangeError::UnknownUid(uid))?;
        self.delete_descendants(uid, None, Why::LocalDelete)?;
        let t = self.tombstone(&held)?;
        self.install(
            t.clone(),
            Origin::Originated {
                from: held.gvsn,
                why: Why::LocalDelete,
            },
        );
        Ok(t)
    }
}

/// Whether anything is held aside that would still win over what is
/// stored (a check for quiescence).
pub fn unresolved<R: ReplicaRead>(replica: &R, folder: &Guid) -> Result<Vec<Update>, R::Error> {
    let mut out = Vec::new();
    for u in replica.all_held_aside(folder)? {
        if matches!(
            decide(&u, replica.update(&u.uid)?.as_ref()),
            Ok(Decision::Install)
        ) {
            out.push(u);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    use super::*;
    use crate::engine::update::tests::sample;
    use crate::engine::update::FILE_ATTRIBUTE_DIRECTORY;

    const CS: Guid = Guid([0xcc; 16]);
    const DB: Guid = Guid([0x0d; 16]);

    /// Stored updates and updates held aside, counting sweeps.
    #[derive(Default)]
    struct Replica {
        stored: BTreeMap<Uid, Update>,
        aside: BTreeMap<Uid, Update>,
        sweeps: Cell<usize>,
    }

    impl ReplicaRead for Replica {
        type Error = Infallible;
        fn known_vector(&self, _: &Guid) -> Result<VersionVector, Infallible> {
            Ok(VersionVector::new())
        }
        fn update(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
            self.stored.update(uid)
        }
        fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Infallible> {
            self.stored.live_child_named(parent, name)
        }
        fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Infallible> {
            self.stored.live_children(dir)
        }
        fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
            Ok(self.aside.get(uid).cloned())
        }
        fn all_held_aside(&self, _: &Guid) -> Result<Vec<Update>, Infallible> {
            self.sweeps.set(self.sweeps.get() + 1);
            Ok(self.aside.values().cloned().collect())
        }
        fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, Infallible> {
            Ok(self.aside.values().filter(|u| u.parent == *parent).cloned().collect())
        }
    }

    fn upd(v: u64, parent: Uid, dir: bool) -> Update {
        let mut u = sample(Uid::new(Guid([1; 16]), v), Gvsn::new(Guid([2; 16]), v), parent, &format!("n{v}"));
        if dir {
            u.attributes = FILE_ATTRIBUTE_DIRECTORY;
        }
        u
    }

    fn installed(plan: &Plan) -> Vec<Uid> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::Install { update, .. } => Some(update.uid),
                _ => None,
            })
            .collect()
    }

    /// An install releases what waited under it (and below that), reading
    /// only what is held under the UIDs it stored: no sweep of everything
    /// held aside.
    #[test]
    fn an_install_releases_its_waiting_children_without_a_sweep() {
        let root = Uid::root_of(CS);
        let dir = upd(10, root, true);
        let sub = upd(11, dir.uid, true);
        let file = upd(12, sub.uid, false);
        let elsewhere = upd(13, Uid::new(Guid([1; 16]), 99), false);
        let mut r = Replica::default();
        for u in [&sub, &file, &elsewhere] {
            r.aside.insert(u.uid, u.clone());
        }
        let vv = VersionVector::new();
        let mut i = Installer::new(&r, Originator::new(DB, CS), &vv, 1);
        assert_eq!(i.receive(dir.clone()).unwrap(), UpdateOutcome::Installed);
        assert!(i.retry_unblocked().unwrap());
        let plan = i.into_plan();
        assert_eq!(installed(&plan), vec![dir.uid, sub.uid, file.uid]);
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::Release(u) if u.uid == elsewhere.uid)));
        assert_eq!(r.sweeps.get(), 0, "retry_unblocked swept everything held");
    }

    /// An update held while its parent is already stored is installed at
    /// the next retry (the sender's ordering was older than the store).
    #[test]
    fn an_update_held_under_a_stored_parent_is_installed_at_the_next_retry() {
        let root = Uid::root_of(CS);
        let dir = upd(10, root, true);
        let file = upd(12, dir.uid, false);
        let mut r = Replica::default();
        r.stored.insert(dir.uid, dir.clone());
        let vv = VersionVector::new();
        let mut i = Installer::new(&r, Originator::new(DB, CS), &vv, 1);
        i.held(file.clone(), HoldReason::Orphan { missing: dir.uid }).unwrap();
        assert!(i.retry_unblocked().unwrap());
        assert_eq!(installed(&i.into_plan()), vec![file.uid]);
    }
}
