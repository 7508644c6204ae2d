//! Ancestral ordering of a received batch (MS-FRS2 §3.3.4.6.2): parents are
//! installed before their children, only the winner per UID is kept, orphans
//! wait for their parent, dangling children are held and directory cycles
//! are broken.
//!
//! The order this module produces, for the installer to follow:
//! 1. tombstones, children before parents (a directory is emptied before it
//!    goes; tombstones also come first so a name freed by a deletion is free
//!    when a live update takes it, as RequestUpdates sends them first);
//! 2. live updates, parents before children (§3.3.4.6.2 dangling-child rule);
//! 3. tombstones of directories that a live update of this batch moves a
//!    child out of, and their tombstoned ancestors, children first.
//!
//! Within a group, ties keep arrival order. Not done here: comparing with
//! the update held per UID ([`super::rules::decide`], filter the batch
//! first), name conflicts (found when installing), and checking that a
//! parent is a directory (the view does not say).
//!
//! Cycles (§3.3.4.6.2 "cycle conflict", which Windows resolves, note `<38>`):
//! a live update that would put a directory under its own descendant. The
//! spec allows resolving one by "creating an update with a fresh GVSN and a
//! higher clock value that retains the old parent" but does not say which
//! member of the cycle. Our rule: of the cycle's updates that belong to this
//! batch, whose UID is installed live and that were not rejected yet, the
//! one **lowest** in the §3.3.4.6.2 order (the weakest change) is not
//! installed; it is returned in [`OrderedBatch::cycle_breaks`] with its
//! installed parent, for the caller to originate the retaining update
//! ([`super::local_change::Originator::break_cycle`]). That update leaves
//! the directory where it is, so `install` is valid whether the caller
//! installs it before or after. The rest is then ordered again (keeping an
//! old parent can close another cycle, broken the same way; each round
//! rejects a new update, so this ends). A cycle with no live installed
//! member (e.g. new directories pointing at each other) has no old parent
//! to retain; its updates, and those below, are held with
//! [`HoldReason::Cycle`].

use std::collections::{HashMap, HashSet};

use super::ids::Uid;
use super::rules::{compare_updates, winner};
use super::update::Update;

/// What the engine already holds for a UID, as far as ordering cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Installed {
    /// The UID of its directory.
    pub parent: Uid,
    /// Live (`true`) or tombstone.
    pub present: bool,
}

/// What [`order_batch`] knows of the installed state: the UIDs of a batch
/// and their ancestors (see [`installed_context`]).
pub type InstalledContext = HashMap<Uid, Installed>;

/// Reads, through `installed`, what [`order_batch`] needs to know of the
/// installed state for `batch`: every UID of the batch and every ancestor
/// of them and of their new parents, each read once. Reading before
/// ordering keeps the ordering pure; a failed read fails the whole batch.
pub fn installed_context<E>(
    batch: &[Update],
    mut installed: impl FnMut(&Uid) -> Result<Option<Installed>, E>,
) -> Result<InstalledContext, E> {
    let mut out = InstalledContext::new();
    let mut seen: HashSet<Uid> = HashSet::new();
    for start in batch.iter().flat_map(|u| [u.uid, u.parent]) {
        let mut cur = start;
        while !cur.is_root() && seen.insert(cur) {
            match installed(&cur)? {
                Some(inst) => {
                    out.insert(cur, inst);
                    cur = inst.parent;
                }
                None => break,
            }
        }
    }
    Ok(out)
}

/// Why a live update cannot be installed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// An ancestor (`missing`) is neither installed nor in the batch: keep
    /// the update until it arrives.
    Orphan {
        /// The first unknown UID up the chain.
        missing: Uid,
    },
    /// An ancestor (`parent`) is a tombstone: a dangling child
    /// (§3.3.4.6.2); the caller decides (wait, or ConflictAndDeleted).
    ParentDeleted {
        /// The tombstoned ancestor.
        parent: Uid,
    },
    /// In, or below, a directory cycle that could not be broken.
    Cycle,
}

/// A live update held back, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The update.
    pub update: Update,
    /// Why it waits.
    pub reason: HoldReason,
}

/// An update not installed because it closed a directory cycle; the caller
/// originates a new update keeping `old_parent` (§3.3.4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleBreak {
    /// The rejected incoming update.
    pub update: Update,
    /// The parent the installed file has now, to retain.
    pub old_parent: Uid,
}

/// A batch sorted out for installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderedBatch {
    /// To install, in this order (see the module documentation).
    pub install: Vec<Update>,
    /// Updates beaten by another update of the same UID in the batch.
    pub superseded: Vec<Update>,
    /// Live updates that must wait (orphans, dangling children, cycles).
    pub held: Vec<Held>,
    /// Updates rejected to break a cycle.
    pub cycle_breaks: Vec<CycleBreak>,
}

/// Walk status of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Reachable from a root through live nodes, at this depth.
    Ready(u64),
    /// Not installable because of an ancestor.
    Blocked(HoldReason),
}

/// What a UID is during the walk.
enum Node {
    Root,
    Live(Uid),
    Dead,
    Unknown,
}

struct Graph<'a> {
    /// Winners by UID (index into `items`).
    batch: &'a HashMap<Uid, usize>,
    items: &'a [(usize, Update)],
    view: &'a InstalledContext,
    /// UIDs whose batch update was rejected to break a cycle: they stay
    /// where they are installed.
    rejected: &'a HashMap<Uid, Uid>,
}

impl Graph<'_> {
    /// The node for `uid`, with its effective parent when live.
    fn node(&self, uid: &Uid) -> Node {
        if uid.is_root() {
            return Node::Root;
        }
        if let Some(old_parent) = self.rejected.get(uid) {
            return Node::Live(*old_parent);
        }
        if let Some(&i) = self.batch.get(uid) {
            let u = &self.items[i].1;
            return if u.present {
                Node::Live(u.parent)
            } else {
                Node::Dead
            };
        }
        match self.view.get(uid).copied() {
            Some(inst) if inst.present => Node::Live(inst.parent),
            Some(_) => Node::Dead,
            None => Node::Unknown,
        }
    }

    /// Computes the status of `start` (a live node), memoizing every node
    /// on the way; iterative, so chains of any depth are fine. Cycles found
    /// are appended to `cycles`.
    fn resolve(&self, start: Uid, memo: &mut HashMap<Uid, Status>, cycles: &mut Vec<Vec<Uid>>) {
        let mut path: Vec<Uid> = Vec::new();
        let mut on_path: HashMap<Uid, usize> = HashMap::new();
        let mut cur = start;
        // Status of the last node pushed, once known.
        let mut status = loop {
            if let Some(s) = memo.get(&cur) {
                break *s;
            }
            let parent = match self.node(&cur) {
                Node::Live(p) => p,
                // Only `start` gets here (parents are classified before
                // being pushed): a folder root, or a caller error.
                Node::Root => {
                    memo.insert(cur, Status::Ready(0));
                    return;
                }
                Node::Dead | Node::Unknown => {
                    memo.insert(cur, Status::Blocked(HoldReason::Orphan { missing: cur }));
                    return;
                }
            };
            on_path.insert(cur, path.len());
            path.push(cur);
            if let Some(s) = memo.get(&parent) {
                break child_status(*s);
            }
            match self.node(&parent) {
                Node::Root => break Status::Ready(1),
                Node::Unknown => break Status::Blocked(HoldReason::Orphan { missing: parent }),
                Node::Dead => break Status::Blocked(HoldReason::ParentDeleted { parent }),
                Node::Live(_) => {
                    if let Some(&pos) = on_path.get(&parent) {
                        let members: Vec<Uid> = path.drain(pos..).collect();
                        for m in &members {
                            memo.insert(*m, Status::Blocked(HoldReason::Cycle));
                        }
                        cycles.push(members);
                        break Status::Blocked(HoldReason::Cycle);
                    }
                    cur = parent;
                }
            }
        };
        // `status` belongs to the last node of `path` (if any); unwind.
        while let Some(uid) = path.pop() {
            memo.insert(uid, status);
            status = child_status(status);
        }
    }
}

/// A child's status given its parent's.
fn child_status(parent: Status) -> Status {
    match parent {
        Status::Ready(d) => Status::Ready(d + 1),
        blocked => blocked,
    }
}

/// Orders a received batch against the installed state (§3.3.4.6.2); see
/// the module documentation for the order, the holds and the cycle rule.
/// Every input update ends in exactly one of the four outputs. `view`
/// must hold what [`installed_context`] reads for the batch.
pub fn order_batch(batch: Vec<Update>, view: &InstalledContext) -> OrderedBatch {
    let mut out = OrderedBatch::default();

    // Keep the winner per UID (§3.3.4.6.2), remembering arrival order.
    let mut items: Vec<(usize, Update)> = Vec::with_capacity(batch.len());
    let mut by_uid: HashMap<Uid, usize> = HashMap::with_capacity(batch.len());
    for (n, u) in batch.into_iter().enumerate() {
        match by_uid.get(&u.uid) {
            Some(&i) => {
                if std::ptr::eq(winner(&items[i].1, &u), &u) {
                    let old = std::mem::replace(&mut items[i], (n, u));
                    out.superseded.push(old.1);
                } else {
                    out.superseded.push(u);
                }
            }
            None => {
                by_uid.insert(u.uid, items.len());
                items.push((n, u));
            }
        }
    }

    // Walk the live updates; break cycles and walk again until none is new.
    let mut rejected: HashMap<Uid, Uid> = HashMap::new();
    let mut stuck: HashSet<Uid> = HashSet::new();
    let memo = loop {
        let graph = Graph {
            batch: &by_uid,
            items: &items,
            view,
            rejected: &rejected,
        };
        let mut memo: HashMap<Uid, Status> = HashMap::new();
        for s in &stuck {
            memo.insert(*s, Status::Blocked(HoldReason::Cycle));
        }
        let mut cycles = Vec::new();
        for (_, u) in &items {
            if u.present && !rejected.contains_key(&u.uid) {
                graph.resolve(u.uid, &mut memo, &mut cycles);
            }
        }
        let mut progressed = false;
        for cycle in cycles {
            let candidate = cycle
                .iter()
                .filter(|uid| !rejected.contains_key(uid))
                .filter_map(|uid| {
                    let i = *by_uid.get(uid)?;
                    let inst = view.get(uid).filter(|i| i.present)?;
                    Some((&items[i].1, inst.parent))
                })
                .min_by(|a, b| compare_updates(a.0, b.0));
            match candidate {
                Some((u, old_parent)) => {
                    rejected.insert(u.uid, old_parent);
                    progressed = true;
                }
                None => stuck.extend(cycle),
            }
        }
        if !progressed {
            break memo;
        }
    };

    // Tombstone depth among the batch's tombstones (children first).
    let tomb_depth = tombstone_depths(&items, &by_uid);

    // Tombstones that a live, installable update moves a child out of.
    let mut late: HashSet<Uid> = HashSet::new();
    for (_, u) in &items {
        if !u.present || rejected.contains_key(&u.uid) {
            continue;
        }
        if !matches!(memo.get(&u.uid), Some(Status::Ready(_))) {
            continue;
        }
        if let Some(inst) = view.get(&u.uid) {
            if inst.parent != u.parent {
                let mut t = inst.parent;
                // Mark it and its tombstoned ancestors in the batch.
                while let Some(&i) = by_uid.get(&t) {
                    let tu = &items[i].1;
                    if tu.present || !late.insert(t) {
                        break;
                    }
                    t = tu.parent;
                }
            }
        }
    }

    let mut early_t = Vec::new();
    let mut late_t = Vec::new();
    let mut live = Vec::new();
    for (n, u) in items {
        if let Some(old_parent) = rejected.get(&u.uid) {
            out.cycle_breaks.push(CycleBreak {
                old_parent: *old_parent,
                update: u,
            });
        } else if !u.present {
            let d = tomb_depth.get(&u.uid).copied().unwrap_or(0);
            if late.contains(&u.uid) {
                late_t.push((d, n, u));
            } else {
                early_t.push((d, n, u));
            }
        } else {
            match memo.get(&u.uid) {
                Some(Status::Ready(d)) => live.push((*d, n, u)),
                Some(Status::Blocked(reason)) => out.held.push(Held {
                    update: u,
                    reason: *reason,
                }),
                None => out.held.push(Held {
                    update: u,
                    reason: HoldReason::Cycle,
                }),
            }
        }
    }
    early_t.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    late_t.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    live.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out.install.extend(early_t.into_iter().map(|t| t.2));
    out.install.extend(live.into_iter().map(|t| t.2));
    out.install.extend(late_t.into_iter().map(|t| t.2));
    out
}

/// For each tombstone of the batch, how many tombstoned ancestors of the
/// batch it has (by the `parent` it was deleted from). Iterative and
/// cycle-safe.
fn tombstone_depths(items: &[(usize, Update)], by_uid: &HashMap<Uid, usize>) -> HashMap<Uid, u64> {
    let mut depth: HashMap<Uid, u64> = HashMap::new();
    for (_, u) in items {
        if u.present || depth.contains_key(&u.uid) {
            continue;
        }
        let mut path = vec![u.uid];
        let mut seen: HashSet<Uid> = HashSet::from([u.uid]);
        let mut base = 0u64;
        let mut cur = u.parent;
        loop {
            if let Some(d) = depth.get(&cur) {
                base = d + 1;
                break;
            }
            match by_uid.get(&cur) {
                Some(&i) if !items[i].1.present && seen.insert(cur) => {
                    path.push(cur);
                    cur = items[i].1.parent;
                }
                _ => break,
            }
        }
        // The last element of `path` is the topmost at depth `base`.
        for (k, uid) in path.iter().rev().enumerate() {
            depth.insert(*uid, base + k as u64);
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::{Guid, Gvsn};
    use crate::engine::update::tests::sample;
    use crate::engine::update::FILE_ATTRIBUTE_DIRECTORY;
    use proptest::prelude::*;

    const CS: Guid = Guid([0xcc; 16]);

    fn root() -> Uid {
        Uid::root_of(CS)
    }

    fn uid(n: u64) -> Uid {
        Uid::new(Guid([1; 16]), n)
    }

    fn dir(n: u64, parent: Uid, clock: u64) -> Update {
        let mut u = sample(
            uid(n),
            Gvsn::new(Guid([2; 16]), 1000 + clock),
            parent,
            &format!("d{n}"),
        );
        u.attributes = FILE_ATTRIBUTE_DIRECTORY;
        u.clock = clock;
        u
    }

    fn tomb(n: u64, parent: Uid, clock: u64) -> Update {
        let mut u = dir(n, parent, clock);
        u.present = false;
        u
    }

    fn live(parent: Uid) -> Installed {
        Installed {
            parent,
            present: true,
        }
    }

    fn uids(v: &[Update]) -> Vec<u64> {
        v.iter().map(|u| u.uid.version).collect()
    }

    /// Every live update's parent is the root, installed, or earlier.
    fn assert_ancestral(out: &OrderedBatch, view: &HashMap<Uid, Installed>) {
        let mut seen: HashSet<Uid> = HashSet::new();
        for u in &out.install {
            if u.present {
                assert!(
                    u.parent.is_root()
                        || seen.contains(&u.parent)
                        || view.get(&u.parent).is_some_and(|i| i.present),
                    "{} installed before its parent {}",
                    u.uid,
                    u.parent
                );
                seen.insert(u.uid);
            }
        }
    }

    /// The context holds the batch's UIDs and their installed ancestors,
    /// each read once, and stops at what is not installed.
    #[test]
    fn context_reads_batch_uids_and_ancestors_once() {
        let view: HashMap<Uid, Installed> =
            HashMap::from([(uid(11), live(root())), (uid(12), live(uid(11))), (uid(13), live(uid(12))), (uid(19), live(root()))]);
        // 14 is new under 13; 15 is installed nowhere and new under 17 (unknown).
        let batch = vec![dir(14, uid(13), 1), dir(15, uid(17), 1), dir(13, uid(12), 2)];
        let mut reads = Vec::new();
        let context = installed_context(&batch, |u| {
            reads.push(*u);
            Ok::<_, ()>(view.get(u).copied())
        })
        .unwrap();
        let mut keys: Vec<u64> = context.keys().map(|u| u.version).collect();
        keys.sort();
        assert_eq!(keys, vec![11, 12, 13]);
        let unique: HashSet<Uid> = reads.iter().copied().collect();
        assert_eq!(unique.len(), reads.len(), "a UID was read twice: {reads:?}");
        assert!(!reads.contains(&uid(19)), "an unrelated UID was read");
        // A failed read fails the whole context.
        assert_eq!(installed_context(&batch, |_| Err::<Option<Installed>, _>("down")), Err("down"));
    }

    #[test]
    fn parents_before_children() {
        let view = HashMap::new();
        let batch = vec![dir(11, uid(10), 1), dir(12, uid(11), 1), dir(10, root(), 1)];
        let out = order_batch(batch, &view);
        assert_eq!(uids(&out.install), vec![10, 11, 12]);
        assert_ancestral(&out, &view);
        assert!(out.held.is_empty() && out.superseded.is_empty() && out.cycle_breaks.is_empty());
    }

    #[test]
    fn installed_parent_counts() {
        let view = HashMap::from([(uid(10), live(root()))]);
        let out = order_batch(vec![dir(11, uid(10), 1)], &view);
        assert_eq!(uids(&out.install), vec![11]);
    }

    #[test]
    fn only_the_winner_per_uid() {
        let view = HashMap::new();
        let old = dir(10, root(), 1);
        let new = dir(10, root(), 5);
        let out = order_batch(vec![new.clone(), old.clone(), dir(11, uid(10), 1)], &view);
        assert_eq!(out.install, vec![new.clone(), dir(11, uid(10), 1)]);
        assert_eq!(out.superseded, vec![old.clone()]);
        let out = order_batch(vec![old.clone(), new.clone()], &view);
        assert_eq!(out.install, vec![new]);
        assert_eq!(out.superseded, vec![old]);
    }

    #[test]
    fn orphans_wait_for_their_parent() {
        let view = HashMap::new();
        let out = order_batch(vec![dir(11, uid(10), 1), dir(12, uid(11), 1)], &view);
        assert!(out.install.is_empty());
        assert_eq!(out.held.len(), 2);
        assert!(out
            .held
            .iter()
            .all(|h| h.reason == HoldReason::Orphan { missing: uid(10) }));
        // The parent arrives later: re-run with the held updates.
        let mut next: Vec<Update> = out.held.into_iter().map(|h| h.update).collect();
        next.push(dir(10, root(), 1));
        let out = order_batch(next, &view);
        assert_eq!(uids(&out.install), vec![10, 11, 12]);
    }

    #[test]
    fn dangling_children_are_held() {
        let view = HashMap::from([(uid(10), live(root()))]);
        let out = order_batch(vec![dir(11, uid(10), 1), tomb(10, root(), 2)], &view);
        assert_eq!(uids(&out.install), vec![10]);
        assert_eq!(out.held.len(), 1);
        assert_eq!(
            out.held[0].reason,
            HoldReason::ParentDeleted { parent: uid(10) }
        );
        // Also below an installed tombstone.
        let view = HashMap::from([(
            uid(10),
            Installed {
                parent: root(),
                present: false,
            },
        )]);
        let out = order_batch(vec![dir(11, uid(10), 1), dir(12, uid(11), 1)], &view);
        assert!(out.install.is_empty());
        assert!(out
            .held
            .iter()
            .all(|h| h.reason == HoldReason::ParentDeleted { parent: uid(10) }));
    }

    #[test]
    fn tombstones_children_first_then_live() {
        let view = HashMap::from([
            (uid(10), live(root())),
            (uid(11), live(uid(10))),
            (uid(12), live(uid(11))),
        ]);
        let batch = vec![
            tomb(10, root(), 2),
            tomb(11, uid(10), 2),
            tomb(12, uid(11), 2),
            dir(13, root(), 1),
        ];
        let out = order_batch(batch, &view);
        assert_eq!(uids(&out.install), vec![12, 11, 10, 13]);
    }

    #[test]
    fn tombstone_after_a_child_moves_out() {
        // 12 lives in 11 in 10; 10 and 11 are deleted while 12 moves to root.
        let view = HashMap::from([
            (uid(10), live(root())),
            (uid(11), live(uid(10))),
            (uid(12), live(uid(11))),
            (uid(20), live(root())),
        ]);
        let batch = vec![
            tomb(10, root(), 2),
            tomb(11, uid(10), 2),
            dir(12, root(), 3),
            tomb(20, root(), 2),
        ];
        let out = order_batch(batch, &view);
        assert_eq!(uids(&out.install), vec![20, 12, 11, 10]);
    }

    #[test]
    fn two_cycle_is_broken_on_the_weaker_update() {
        // 10 and 11 are under the root; one partner moved 10 under 11, the
        // batch also moves 11 under 10 (the stronger change, clock 5).
        let view = HashMap::from([(uid(10), live(root())), (uid(11), live(root()))]);
        let a = dir(10, uid(11), 3);
        let b = dir(11, uid(10), 5);
        let out = order_batch(vec![a.clone(), b.clone()], &view);
        assert_eq!(
            out.cycle_breaks,
            vec![CycleBreak {
                update: a,
                old_parent: root()
            }]
        );
        assert_eq!(out.install, vec![b]);
        assert!(out.held.is_empty());
    }

    #[test]
    fn three_cycle() {
        let view = HashMap::from([
            (uid(10), live(root())),
            (uid(11), live(root())),
            (uid(12), live(root())),
        ]);
        // 10 -> 11 -> 12 -> 10; 12 has the lowest clock.
        let batch = vec![
            dir(10, uid(11), 7),
            dir(11, uid(12), 6),
            dir(12, uid(10), 4),
        ];
        let out = order_batch(batch, &view);
        assert_eq!(out.cycle_breaks.len(), 1);
        assert_eq!(out.cycle_breaks[0].update.uid, uid(12));
        assert_eq!(out.cycle_breaks[0].old_parent, root());
        // 12 stays under root: 11 goes under 12, then 10 under 11.
        assert_eq!(uids(&out.install), vec![11, 10]);
        assert_ancestral(&out, &view);
    }

    #[test]
    fn breaking_a_cycle_can_expose_another() {
        // P and Q under root, R under P; the batch makes R -> Q -> P -> R.
        let (p, q, r) = (uid(10), uid(11), uid(12));
        let view = HashMap::from([(p, live(root())), (q, live(root())), (r, live(p))]);
        let batch = vec![dir(12, q, 1), dir(11, p, 2), dir(10, r, 3)];
        let out = order_batch(batch, &view);
        // R (weakest) keeps its old parent P, which closes P -> R -> P; then
        // P is the only candidate left and keeps the root.
        let broken: Vec<(Uid, Uid)> = out
            .cycle_breaks
            .iter()
            .map(|c| (c.update.uid, c.old_parent))
            .collect();
        assert_eq!(broken, vec![(r, p), (p, root())]);
        assert_eq!(uids(&out.install), vec![11]);
        assert!(out.held.is_empty());
    }

    #[test]
    fn cycle_against_installed_tree() {
        // 11 is installed under 10; the batch moves 10 under 11.
        let view = HashMap::from([(uid(10), live(root())), (uid(11), live(uid(10)))]);
        let a = dir(10, uid(11), 9);
        let out = order_batch(vec![a.clone(), dir(12, uid(10), 1)], &view);
        assert_eq!(
            out.cycle_breaks,
            vec![CycleBreak {
                update: a,
                old_parent: root()
            }]
        );
        assert_eq!(uids(&out.install), vec![12]);
    }

    #[test]
    fn cycle_of_new_directories_is_held() {
        let view = HashMap::new();
        let batch = vec![
            dir(10, uid(11), 1),
            dir(11, uid(10), 1),
            dir(12, uid(11), 1),
        ];
        let out = order_batch(batch, &view);
        assert!(out.install.is_empty() && out.cycle_breaks.is_empty());
        assert_eq!(out.held.len(), 3);
        assert!(out.held.iter().all(|h| h.reason == HoldReason::Cycle));
    }

    #[test]
    fn self_cycle_over_a_tombstone_is_held() {
        // 27 is an installed tombstone; the batch revives it under itself.
        let view = HashMap::from([(
            uid(27),
            Installed {
                parent: root(),
                present: false,
            },
        )]);
        let out = order_batch(vec![dir(27, uid(27), 0), dir(20, uid(27), 0)], &view);
        assert!(out.install.is_empty() && out.cycle_breaks.is_empty());
        assert_eq!(out.held.len(), 2);
        assert!(out.held.iter().all(|h| h.reason == HoldReason::Cycle));
    }

    #[test]
    fn deep_chain_without_recursion() {
        const N: u64 = 10_000;
        let view = HashMap::new();
        // Children first in the batch, the worst case.
        let batch: Vec<Update> = (0..N)
            .rev()
            .map(|i| dir(100 + i, if i == 0 { root() } else { uid(99 + i) }, 1))
            .collect();
        let out = order_batch(batch.clone(), &view);
        assert_eq!(out.install.len() as u64, N);
        assert_eq!(uids(&out.install), (100..100 + N).collect::<Vec<_>>());
        // The same chain with its root missing: all orphans.
        let out = order_batch(batch[..batch.len() - 1].to_vec(), &view);
        assert_eq!(out.held.len() as u64, N - 1);
        assert!(out
            .held
            .iter()
            .all(|h| h.reason == HoldReason::Orphan { missing: uid(100) }));
        // Deleting the whole chain: deepest first.
        let tombs: Vec<Update> = (0..N)
            .map(|i| tomb(100 + i, if i == 0 { root() } else { uid(99 + i) }, 2))
            .collect();
        let out = order_batch(tombs, &view);
        assert_eq!(uids(&out.install), (100..100 + N).rev().collect::<Vec<_>>());
        // A cycle through the whole chain: installed flat, moved into a ring.
        let view: HashMap<Uid, Installed> = (0..N).map(|i| (uid(100 + i), live(root()))).collect();
        let ring: Vec<Update> = (0..N)
            .map(|i| dir(100 + i, uid(100 + (i + 1) % N), 10 + i))
            .collect();
        let out = order_batch(ring, &view);
        assert_eq!(out.cycle_breaks.len(), 1);
        assert_eq!(
            out.cycle_breaks[0].update.uid,
            uid(100),
            "lowest clock loses"
        );
        assert_eq!(out.install.len() as u64, N - 1);
        assert_ancestral(&out, &view);
    }

    proptest! {
        // Keep failures in the test output, not in files outside the module.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Random trees and moves over 12 UIDs: every update lands in exactly
        /// one output, installs are ancestral, and nothing installed is held.
        #[test]
        fn partitions_and_orders(
            installed in prop::collection::vec((0u64..13, any::<bool>()), 12),
            moves in prop::collection::vec((0u64..12, 0u64..13, any::<bool>(), 0u64..4), 0..20),
        ) {
            let parent_of = |p: u64| if p == 12 { root() } else { uid(20 + p) };
            // Installed: only a forest (parent index smaller), so the view is sane.
            let view: HashMap<Uid, Installed> = installed
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 != 2)
                .map(|(i, &(p, present))| {
                    let parent = if p < i as u64 { uid(20 + p) } else { root() };
                    (uid(20 + i as u64), Installed { parent, present })
                })
                .collect();
            let batch: Vec<Update> = moves
                .iter()
                .map(|&(n, p, present, clock)| {
                    let mut u = dir(20 + n, parent_of(p), clock);
                    u.present = present;
                    u
                })
                .collect();
            let total = batch.len();
            // What installed_context reads is all the ordering looks at.
            let context = installed_context(&batch, |u| Ok::<_, ()>(view.get(u).copied())).unwrap();
            prop_assert!(context.iter().all(|(u, i)| view.get(u) == Some(i)));
            prop_assert_eq!(order_batch(batch.clone(), &context), order_batch(batch.clone(), &view));
            let out = order_batch(batch, &view);
            prop_assert_eq!(
                out.install.len() + out.superseded.len() + out.held.len() + out.cycle_breaks.len(),
                total
            );
            let mut once: HashSet<Uid> = HashSet::new();
            for u in out.install.iter().chain(out.held.iter().map(|h| &h.update))
                .chain(out.cycle_breaks.iter().map(|c| &c.update))
            {
                prop_assert!(once.insert(u.uid), "UID {} twice", u.uid);
            }
            // Nothing is held without cause.
            let installed_uids: HashSet<Uid> = out.install.iter().map(|u| u.uid).collect();
            for (&(n, p, present, _), _) in moves.iter().zip(0..) {
                if present && p == 12 {
                    prop_assert!(
                        installed_uids.contains(&uid(20 + n))
                            || out.superseded.iter().any(|s| s.uid == uid(20 + n)),
                        "a live child of the root was not installed"
                    );
                }
            }
            for h in &out.held {
                if let HoldReason::Orphan { missing } = h.reason {
                    prop_assert!(!view.contains_key(&missing));
                    prop_assert!(!moves.iter().any(|&(n, ..)| uid(20 + n) == missing));
                }
            }
            // Ancestral: effective parent installed, root, or earlier.
            let breaks: HashMap<Uid, Uid> =
                out.cycle_breaks.iter().map(|c| (c.update.uid, c.old_parent)).collect();
            let mut seen: HashSet<Uid> = HashSet::new();
            for u in &out.install {
                if u.present {
                    let ok = u.parent.is_root()
                        || seen.contains(&u.parent)
                        || (!once.contains(&u.parent) || breaks.contains_key(&u.parent))
                            && view.get(&u.parent).is_some_and(|i| i.present);
                    prop_assert!(ok, "{} before its parent {}", u.uid, u.parent);
                    seen.insert(u.uid);
                }
            }
        }
    }
}
