//! Placing what the database holds into the share, through the meet:
//! every live version the installer stored is installed (or moved, then
//! installed) at its path, every tombstone of something on disk removed.
//! What is placed is recorded ([`crate::store::placed`]) only after the
//! meet did it, so a crash repeats an install and never skips one; a file
//! a client holds open (SHARING_VIOLATION) stays pending and is retried
//! on the next round, with no manual step.
//!
//! Order (the ancestral order of §3.3.4.6.2 on disk): live versions
//! parents first (by depth), then removals children first. A name taken
//! on disk by another file is freed first when that file is itself due
//! to move or go; otherwise the occupant lost a name conflict and the meet
//! keeps it in ConflictAndDeleted.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::engine::ids::{Guid, Uid};
use crate::engine::update::Update;
use crate::meet::MeetError;
use crate::samba::ntstatus::NtStatus;
use crate::store::placed::{Placed, PlacedChange, PlacedError, PlacedStore, Seen};
use crate::store::{Database, StagingArea, StoreError};

/// The meet as the placer uses it: installs, removes and moves in one
/// share (dfsrd's member calls [`crate::meet`] in its own process; tests
/// use a recorder).
pub trait Meet {
    fn install(&mut self, share: &str, path: &str, staged: &str, uid: &str, lost: bool) -> Result<(), MeetError>;
    fn remove(&mut self, share: &str, path: &str, uid: &str) -> Result<(), MeetError>;
    fn move_path(&mut self, share: &str, from: &str, to: &str) -> Result<(), MeetError>;
    /// The stat of what is now at `path`, recorded so the scan does not
    /// take the install for a local change (None: unknown).
    fn seen(&mut self, share: &str, path: &str) -> Option<Seen>;
}

/// The real meet, in this process (which must be Samba-initialised:
/// dfsrd's member child).
#[derive(Debug, Default)]
pub struct InProcessMeet {
    /// Share paths by name, looked up once: `seen` runs after every
    /// install, and the member's smb.conf does not change while it runs.
    roots: HashMap<String, Option<String>>,
}

impl Meet for InProcessMeet {
    fn install(&mut self, share: &str, path: &str, staged: &str, uid: &str, lost: bool) -> Result<(), MeetError> {
        crate::meet::install_started();
        let flags = if lost { crate::meet::FLAG_LOST_TO_CONFLICT } else { 0 };
        let r = crate::meet::install(share, path, staged, uid, flags);
        crate::meet::install_finished(r.as_ref().map_or_else(|e| e.status, |_| NtStatus::OK));
        r
    }
    fn remove(&mut self, share: &str, path: &str, uid: &str) -> Result<(), MeetError> {
        crate::meet::remove(share, path, uid, 0)
    }
    fn move_path(&mut self, share: &str, from: &str, to: &str) -> Result<(), MeetError> {
        crate::meet::move_path(share, from, to, 0)
    }
    fn seen(&mut self, share: &str, path: &str) -> Option<Seen> {
        let root = self.roots.entry(share.to_string()).or_insert_with(|| crate::ffi::meet_vfs::share_path(share)).as_ref()?;
        std::fs::symlink_metadata(std::path::Path::new(&root).join(path)).ok().map(|md| Seen::of(&md))
    }
}

/// Why placing stopped (a failed install of one file is not this: it is
/// counted and retried).
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Placed(#[from] PlacedError),
}

/// What one round placed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceReport {
    pub installed: u64,
    pub moved: u64,
    pub removed: u64,
    /// Kept for a later round: open by a client (SHARING_VIOLATION).
    pub deferred: u64,
    /// Failed for another reason (logged; retried on a later round).
    pub failed: u64,
    /// Installed over a file that lost a conflict (kept aside by the meet).
    pub conflicts: u64,
    /// The last failure, for `status`.
    pub last_error: Option<String>,
}

/// One replicated folder in one share: its placed versions, held in
/// memory, and the UIDs still to look at.
#[derive(Debug)]
pub struct FolderPlacer {
    pub group: Guid,
    pub folder: Guid,
    pub share: String,
    placed: HashMap<Uid, Placed>,
    pending: BTreeSet<Uid>,
    /// UIDs whose previous version lost a conflict in a plan (the meet
    /// keeps the replaced file).
    lost: HashSet<Uid>,
    /// Directories an entry left this round (their times are restored).
    emptied: BTreeSet<Uid>,
    /// Installed again even if placed at their version (a read-only
    /// member's local change undone).
    dirty: HashSet<Uid>,
    /// Placed UIDs by (parent, name): who holds a name on disk.
    by_name: HashMap<(Uid, String), Uid>,
}

impl FolderPlacer {
    /// Loads what is placed; every update of the folder is pending (a
    /// start compares all of it once).
    pub fn load(db: &Database, store: &PlacedStore, group: Guid, folder: Guid, share: &str) -> Result<Self, PlaceError> {
        let placed = store.folder(&folder)?;
        let by_name = placed.iter().map(|(uid, p)| ((p.parent, p.name.clone()), *uid)).collect();
        let mut pending: BTreeSet<Uid> = db.folder_uids(&folder)?.into_iter().collect();
        pending.extend(placed.keys().copied());
        pending.remove(&Uid::root_of(folder));
        Ok(FolderPlacer { group, folder, share: share.to_string(), placed, pending, lost: HashSet::new(), emptied: BTreeSet::new(), dirty: HashSet::new(), by_name })
    }

    /// Compares the whole folder again on the next run: a pull that
    /// failed part-way stored updates it could not report.
    pub fn resync(&mut self, db: &Database) -> Result<(), PlaceError> {
        self.pending.extend(db.folder_uids(&self.folder)?);
        self.pending.remove(&Uid::root_of(self.folder));
        Ok(())
    }

    /// UIDs whose stored version changed (a pull's installs).
    pub fn touch(&mut self, uids: impl IntoIterator<Item = Uid>) {
        self.pending.extend(uids.into_iter().filter(|u| *u != Uid::root_of(self.folder)));
    }

    /// A plan kept `uid`'s previous version as a conflict loser.
    pub fn lost(&mut self, uid: Uid) {
        self.lost.insert(uid);
    }

    /// Files left to place.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What is placed now, by UID.
    pub fn placed(&self) -> &HashMap<Uid, Placed> {
        &self.placed
    }

    /// Puts the held version of `uid` back on the next run (a read-only
    /// member's local change); `keep_local`: the file there now is kept in
    /// ConflictAndDeleted.
    pub fn reinstall(&mut self, uid: Uid, keep_local: bool) {
        self.dirty.insert(uid);
        if keep_local {
            self.lost.insert(uid);
        }
        self.pending.insert(uid);
    }

    /// Where a placed UID is on disk.
    pub fn path_of(&self, uid: &Uid) -> Option<String> {
        self.disk_path(uid)
    }

    /// The UIDs still to place (a scan leaves them alone).
    pub fn pending_uids(&self) -> HashSet<Uid> {
        self.pending.iter().copied().collect()
    }

    /// Takes records a scan wrote to the placed store into the map.
    pub fn record(&mut self, changes: &[PlacedChange]) {
        for c in changes {
            match c {
                PlacedChange::Put(f, uid, p) if *f == self.folder => {
                    self.put_placed(*uid, p.clone());
                }
                PlacedChange::Remove(f, uid) if *f == self.folder => {
                    self.remove_placed(uid);
                }
                _ => {}
            }
        }
    }

    fn put_placed(&mut self, uid: Uid, p: Placed) {
        let key = (p.parent, p.name.clone());
        if let Some(old) = self.placed.insert(uid, p) {
            let old_key = (old.parent, old.name);
            if self.by_name.get(&old_key) == Some(&uid) {
                self.by_name.remove(&old_key);
            }
        }
        self.by_name.insert(key, uid);
    }

    fn remove_placed(&mut self, uid: &Uid) -> Option<Placed> {
        let old = self.placed.remove(uid)?;
        let key = (old.parent, old.name.clone());
        if self.by_name.get(&key) == Some(uid) {
            self.by_name.remove(&key);
        }
        Some(old)
    }

    /// The on-disk path of a placed UID ("" for the folder root).
    fn disk_path(&self, uid: &Uid) -> Option<String> {
        let mut parts = Vec::new();
        let mut at = *uid;
        for _ in 0..4096 {
            if at == Uid::root_of(self.folder) {
                parts.reverse();
                return Some(parts.join("/"));
            }
            let p = self.placed.get(&at)?;
            parts.push(p.name.as_str());
            at = p.parent;
        }
        None
    }

    /// The path the database gives a live update, when its parent is on
    /// disk.
    fn target_path(&self, u: &Update) -> Option<String> {
        let parent = self.disk_path(&u.parent)?;
        Some(if parent.is_empty() { u.name.clone() } else { format!("{parent}/{}", u.name) })
    }

    fn depth(&self, db: &Database, uid: &Uid) -> Result<usize, StoreError> {
        let mut d = 0;
        let mut at = *uid;
        while at != Uid::root_of(self.folder) && d < 4096 {
            match db.update(&at)? {
                Some(u) => at = u.parent,
                None => break,
            }
            d += 1;
        }
        Ok(d)
    }

    /// Places what is pending; records what the meet did in `store`.
    pub fn run(
        &mut self,
        db: &Database,
        staging: &StagingArea,
        store: &mut PlacedStore,
        meet: &mut dyn Meet,
    ) -> Result<PlaceReport, PlaceError> {
        let mut report = PlaceReport::default();
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for uid in std::mem::take(&mut self.pending) {
            match db.update(&uid)? {
                Some(u) if u.present => live.push((self.depth(db, &uid)?, u)),
                // A tombstone, or not in the database at all: the placed
                // record alone says where it is on disk.
                _ if self.placed.contains_key(&uid) => gone.push((self.depth(db, &uid)?, uid)),
                _ => {}
            }
        }
        live.sort_by_key(|(d, _)| *d);
        gone.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
        let mut changes = Vec::new();
        let mut due: HashMap<Uid, Option<Update>> = live.iter().map(|(_, u)| (u.uid, Some(u.clone()))).collect();
        due.extend(gone.iter().map(|(_, uid)| (*uid, None)));
        // Directories an entry was placed in, for their times.
        let mut filled = BTreeSet::new();
        for (_, u) in &live {
            self.place_live(u, &due, staging, meet, &mut changes, &mut report, 0);
            if changes.len() >= 256 {
                filled.extend(parents_of(&changes));
                store.apply(&changes)?;
                changes.clear();
            }
        }
        for (_, uid) in &gone {
            self.place_gone(*uid, meet, &mut changes, &mut report);
        }
        filled.extend(parents_of(&changes));
        self.restore_directory_times(db, staging, meet, filled, &mut changes)?;
        store.apply(&changes)?;
        Ok(report)
    }

    /// A directory's last write time moves when entries are added or
    /// removed in it; the directories this round changed get their own
    /// metadata again from their staged file (the meet keeps a directory
    /// in place and only sets it), so they match the upstream's.
    fn restore_directory_times(
        &mut self,
        db: &Database,
        staging: &StagingArea,
        meet: &mut dyn Meet,
        filled: BTreeSet<Uid>,
        changes: &mut Vec<PlacedChange>,
    ) -> Result<(), PlaceError> {
        let parents: BTreeSet<Uid> = filled
            .into_iter()
            .chain(std::mem::take(&mut self.emptied))
            .filter(|p| *p != Uid::root_of(self.folder))
            .collect();
        for dir in parents {
            let (Some(p), Some(path)) = (self.placed.get(&dir).cloned(), self.disk_path(&dir)) else { continue };
            let Some(u) = db.update(&dir)? else { continue };
            let staged = staging.path_of(&p.gvsn);
            if !u.present || u.gvsn != p.gvsn || !staged.exists() {
                continue;
            }
            match meet.install(&self.share, &path, &staged.to_string_lossy(), &dir.to_string(), false) {
                Ok(()) => {
                    let again = Placed { seen: meet.seen(&self.share, &path), ..p };
                    self.put_placed(dir, again.clone());
                    changes.push(PlacedChange::Put(self.folder, dir, again));
                }
                Err(e) => tracing::debug!(share = self.share.as_str(), "member: restoring the times of {path}: {}", e.reason),
            }
        }
        Ok(())
    }

    fn failed(&mut self, uid: Uid, e: MeetError, report: &mut PlaceReport) {
        self.pending.insert(uid);
        if e.status == NtStatus::SHARING_VIOLATION {
            report.deferred += 1;
        } else {
            report.failed += 1;
        }
        report.last_error = Some(e.reason);
    }

    #[allow(clippy::too_many_arguments)]
    fn place_live(
        &mut self,
        u: &Update,
        due: &HashMap<Uid, Option<Update>>,
        staging: &StagingArea,
        meet: &mut dyn Meet,
        changes: &mut Vec<PlacedChange>,
        report: &mut PlaceReport,
        nesting: u32,
    ) {
        let Some(target) = self.target_path(u) else {
            // Its parent is not on disk (yet): a later round.
            self.pending.insert(u.uid);
            return;
        };
        let uid_text = u.uid.to_string();
        let now = self.placed.get(&u.uid).cloned();
        let dirty = self.dirty.remove(&u.uid);
        if !dirty && now.as_ref().is_some_and(|p| p.gvsn == u.gvsn && p.parent == u.parent && p.name == u.name) {
            return;
        }
        // Someone else on disk at the target?
        let occupant = self.by_name.get(&(u.parent, u.name.clone())).copied().filter(|o| *o != u.uid);
        let mut lost = self.lost.remove(&u.uid);
        if let Some(o) = occupant {
            match due.get(&o) {
                // It is going or moving away: free the name first (a few
                // levels deep; a ring of renames is broken by a conflict).
                Some(None) => self.place_gone(o, meet, changes, report),
                Some(Some(next)) if nesting < 4 && self.target_path(next).is_some_and(|t| t != target) => {
                    self.place_live(next, due, staging, meet, changes, report, nesting + 1)
                }
                // It stays: it lost the name to this one.
                _ => {
                    lost = true;
                    self.remove_placed(&o);
                    changes.push(PlacedChange::Remove(self.folder, o));
                }
            }
        }
        if let Some(p) = &now {
            if (p.parent, p.name.as_str()) != (u.parent, u.name.as_str()) {
                let Some(from) = self.disk_path(&u.uid) else { return };
                if let Err(e) = meet.move_path(&self.share, &from, &target) {
                    return self.failed(u.uid, e, report);
                }
                report.moved += 1;
                let moved = Placed { gvsn: p.gvsn, parent: u.parent, name: u.name.clone(), seen: meet.seen(&self.share, &target) };
                self.put_placed(u.uid, moved.clone());
                changes.push(PlacedChange::Put(self.folder, u.uid, moved));
                if p.gvsn == u.gvsn {
                    return;
                }
            }
        }
        let staged = staging.path_of(&u.gvsn);
        if !staged.exists() {
            // Same version moved, or content not staged here: nothing to
            // write (a move was done above when needed).
            if now.is_none() {
                report.failed += 1;
                report.last_error = Some(format!("{}: the staged file of {} is missing", staged.display(), u.gvsn));
                self.pending.insert(u.uid);
            }
            return;
        }
        match meet.install(&self.share, &target, &staged.to_string_lossy(), &uid_text, lost) {
            Ok(()) => {
                report.installed += 1;
                if lost {
                    report.conflicts += 1;
                }
                let p = Placed { gvsn: u.gvsn, parent: u.parent, name: u.name.clone(), seen: meet.seen(&self.share, &target) };
                self.put_placed(u.uid, p.clone());
                changes.push(PlacedChange::Put(self.folder, u.uid, p));
            }
            Err(e) => {
                if lost {
                    self.lost.insert(u.uid);
                }
                if dirty {
                    self.dirty.insert(u.uid);
                }
                self.failed(u.uid, e, report)
            }
        }
    }

    fn place_gone(&mut self, uid: Uid, meet: &mut dyn Meet, changes: &mut Vec<PlacedChange>, report: &mut PlaceReport) {
        let Some(path) = self.disk_path(&uid) else { return };
        let uid_text = uid.to_string();
        match meet.remove(&self.share, &path, &uid_text) {
            Ok(()) => report.removed += 1,
            // Already gone from disk: nothing left to remove.
            Err(e) if e.status == NtStatus::OBJECT_NAME_NOT_FOUND || e.status == NtStatus::OBJECT_PATH_NOT_FOUND => {}
            Err(e) => return self.failed(uid, e, report),
        }
        if let Some(p) = self.remove_placed(&uid) {
            self.emptied.insert(p.parent);
        }
        changes.push(PlacedChange::Remove(self.folder, uid));
    }
}

/// The directories the placed records of `changes` are in.
fn parents_of(changes: &[PlacedChange]) -> impl Iterator<Item = Uid> + '_ {
    changes.iter().filter_map(|c| match c {
        PlacedChange::Put(_, _, p) => Some(p.parent),
        PlacedChange::Remove(..) => None,
    })
}

#[cfg(test)]
mod tests;
