//! Changes made on this member, turned into new updates (MS-FRS2 §2.2.1.4.4,
//! §3.3.4.6.2): each gets a fresh GVSN from our database and a clock that
//! never goes backwards, so it supersedes what we held and replicates.
//!
//! The [`Originator`] is the only place versions and clocks of our database
//! are made; its two counters must be persisted (see
//! [`Originator::resume`]).

use std::collections::HashSet;

use thiserror::Error;

use super::ids::{Guid, Gvsn, Uid, Vsn, FIRST_FREE_VERSION};
use super::ordering::CycleBreak;
use super::replica::ReplicaRead;
use super::rules::{self, NameConflictResolution, RuleError};
use super::update::{
    fence, validate_name, FileTime, NameError, Update, FILE_ATTRIBUTE_DIRECTORY,
    FLAG_CLOCK_DECREMENTED,
};

/// Why a local change was refused. Each names the UID at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocalChangeError {
    /// No update is held for this UID.
    #[error("unknown UID {0}")]
    UnknownUid(Uid),
    /// The file is a tombstone.
    #[error("{0} is deleted")]
    Deleted(Uid),
    /// The folder root cannot be renamed, moved or deleted.
    #[error("{0} is the replicated folder root")]
    Root(Uid),
    /// The new name is not a valid component.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// The parent is not held.
    #[error("parent {0} is unknown")]
    ParentUnknown(Uid),
    /// The parent is a tombstone.
    #[error("parent {0} is deleted")]
    ParentDeleted(Uid),
    /// The parent is a file.
    #[error("parent {0} is not a directory")]
    ParentNotDirectory(Uid),
    /// The parent belongs to another replicated folder.
    #[error("parent {0} is in another replicated folder")]
    ForeignParent(Uid),
    /// A live sibling already has that name (case-insensitively).
    #[error("name {name:?} is taken in {parent} by {by}")]
    NameTaken {
        /// The directory.
        parent: Uid,
        /// The name.
        name: String,
        /// The sibling holding it.
        by: Uid,
    },
    /// A directory cannot move under itself or a descendant (§3.3.4.6.2
    /// cycle conflict, refused at the source).
    #[error("moving {uid} under {parent} would make a cycle")]
    MoveIntoDescendant {
        /// What was moved.
        uid: Uid,
        /// The requested parent.
        parent: Uid,
    },
    /// The held parent chain loops: the store is corrupt.
    #[error("the parent chain of {0} loops")]
    AncestryLoop(Uid),
    /// A modification would turn a file into a directory or back.
    #[error("{0}: the directory attribute cannot change")]
    DirectoryAttributeChange(Uid),
    /// All 2^64 versions were used.
    #[error("version numbers of database {0} are exhausted")]
    VersionsExhausted(Guid),
    /// A conflict rule's precondition failed.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// A change that could not be made: the replicated state could not be
/// read, or the change is refused.
#[derive(Debug, PartialEq, Eq, Error)]
pub enum ChangeError<E: std::error::Error + 'static> {
    /// Reading the member's state failed: nothing may be carried out.
    #[error("reading the replicated state: {0}")]
    Read(#[source] E),
    /// The change is refused (or versions are exhausted, the tree broken).
    #[error(transparent)]
    Refused(#[from] LocalChangeError),
}

/// The refusal, where reads cannot fail (memory).
impl From<ChangeError<std::convert::Infallible>> for LocalChangeError {
    fn from(e: ChangeError<std::convert::Infallible>) -> Self {
        match e {
            ChangeError::Refused(e) => e,
            ChangeError::Read(never) => match never {},
        }
    }
}

/// What a read-then-change of the originator returns.
type Changed<T, R> = Result<T, ChangeError<<R as ReplicaRead>::Error>>;

/// What a create needs besides the parent and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// FILE_ATTRIBUTE_* (the directory bit makes a directory).
    pub attributes: u32,
    /// Creation time from the file system.
    pub create_time: FileTime,
    /// SHA-1 of the staged data and security chunks.
    pub hash: [u8; 20],
}

/// Originates updates for one replicated folder on this member: allocates
/// versions of our database (starting above the reserved 0..=8,
/// §3.3.4.6.2) and a monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originator {
    db: Guid,
    content_set: Guid,
    next_version: Vsn,
    last_clock: FileTime,
}

impl Originator {
    /// A fresh database: the first version is 9, no clock used yet.
    pub fn new(db: Guid, content_set: Guid) -> Self {
        Self::resume(db, content_set, FIRST_FREE_VERSION, 0)
    }

    /// Restarts from persisted counters; a `next_version` in the reserved
    /// range is raised to 9.
    pub fn resume(db: Guid, content_set: Guid, next_version: Vsn, last_clock: FileTime) -> Self {
        Originator {
            db,
            content_set,
            next_version: next_version.max(FIRST_FREE_VERSION),
            last_clock,
        }
    }

    /// Our database GUID.
    pub fn db(&self) -> Guid {
        self.db
    }

    /// The replicated folder.
    pub fn content_set(&self) -> Guid {
        self.content_set
    }

    /// The next version to hand out (persist it).
    pub fn next_version(&self) -> Vsn {
        self.next_version
    }

    /// The last clock handed out (persist it).
    pub fn last_clock(&self) -> FileTime {
        self.last_clock
    }

    /// A fresh GVSN of our database.
    pub fn allocate_gvsn(&mut self) -> Result<Gvsn, LocalChangeError> {
        let v = self.next_version;
        self.next_version = v
            .checked_add(1)
            .ok_or(LocalChangeError::VersionsExhausted(self.db))?;
        Ok(Gvsn::new(self.db, v))
    }

    /// The next clock value at wall time `now`: `now` when it moved forward,
    /// else last+1 with `decremented = true` when `now` went backwards
    /// (`FRS_UPDATE_FLAG_CLOCK_DECREMENTED`, §2.2.1.1.18).
    pub fn tick(&mut self, now: FileTime) -> (FileTime, bool) {
        self.tick_above(now, 0)
    }

    /// Like [`Self::tick`] but also above `floor` (the clock of the update
    /// being superseded, so the new one wins §3.3.4.6.2's clock key).
    fn tick_above(&mut self, now: FileTime, floor: FileTime) -> (FileTime, bool) {
        let decremented = now < self.last_clock;
        let clock = now
            .max(self.last_clock.saturating_add(1))
            .max(floor.saturating_add(1));
        self.last_clock = clock;
        (clock, decremented)
    }

    /// Gives `u` a fresh GVSN and a clock above `floor`.
    fn stamp(
        &mut self,
        u: &mut Update,
        now: FileTime,
        floor: FileTime,
    ) -> Result<(), LocalChangeError> {
        u.gvsn = self.allocate_gvsn()?;
        let (clock, decremented) = self.tick_above(now, floor);
        u.clock = clock;
        u.flags = if decremented {
            FLAG_CLOCK_DECREMENTED
        } else {
            0
        };
        Ok(())
    }

    /// The held live update for `uid`, not the root.
    fn live<R: ReplicaRead + ?Sized>(&self, held: &R, uid: &Uid) -> Changed<Update, R> {
        if *uid == Uid::root_of(self.content_set) {
            return Err(LocalChangeError::Root(*uid).into());
        }
        let u = held
            .update(uid)
            .map_err(ChangeError::Read)?
            .ok_or(LocalChangeError::UnknownUid(*uid))?;
        if !u.present {
            return Err(LocalChangeError::Deleted(*uid).into());
        }
        Ok(u)
    }

    /// Checks that `parent` can hold a child named `name` (other than
    /// `except`, the file being renamed).
    fn check_parent<R: ReplicaRead + ?Sized>(
        &self,
        held: &R,
        parent: &Uid,
        name: &str,
        except: Option<Uid>,
    ) -> Changed<(), R> {
        validate_name(name).map_err(LocalChangeError::from)?;
        if *parent != Uid::root_of(self.content_set) {
            let p = held
                .update(parent)
                .map_err(ChangeError::Read)?
                .ok_or(LocalChangeError::ParentUnknown(*parent))?;
            if p.content_set_id != self.content_set {
                return Err(LocalChangeError::ForeignParent(*parent).into());
            }
            if !p.present {
                return Err(LocalChangeError::ParentDeleted(*parent).into());
            }
            if !p.is_directory() {
                return Err(LocalChangeError::ParentNotDirectory(*parent).into());
            }
        }
        match held.live_child_named(parent, name).map_err(ChangeError::Read)? {
            Some(by) if Some(by) != except => Err(LocalChangeError::NameTaken {
                parent: *parent,
                name: name.to_string(),
                by,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// A new file or directory: a new UID and GVSN, both from one version
    /// of our database (UIDs and GVSNs are separate name spaces, and one
    /// number keeps our own version vector contiguous).
    pub fn create<R: ReplicaRead + ?Sized>(
        &mut self,
        held: &R,
        parent: Uid,
        name: &str,
        file: NewFile,
        now: FileTime,
    ) -> Changed<Update, R> {
        self.check_parent(held, &parent, name, None)?;
        let mut u = Update {
            present: true,
            name_conflict: false,
            attributes: file.attributes,
            fence: fence::DEFAULT,
            clock: 0,
            create_time: file.create_time,
            content_set_id: self.content_set,
            hash: file.hash,
            rdc_similarity: [0; 16],
            uid: Uid::default(),
            gvsn: Gvsn::default(),
            parent,
            name: name.to_string(),
            flags: 0,
        };
        self.stamp(&mut u, now, 0)?;
        u.uid = Uid::new(u.gvsn.db, u.gvsn.version);
        Ok(u)
    }

    /// Starts a new version of a held live file: same UID, fence at least
    /// the default so the change beats an initial-sync record.
    fn next_of(&mut self, old: &Update, now: FileTime) -> Result<Update, LocalChangeError> {
        let mut u = old.clone();
        u.fence = old.fence.max(fence::DEFAULT);
        u.name_conflict = false;
        self.stamp(&mut u, now, old.clock)?;
        Ok(u)
    }

    /// Content or attribute change. The directory bit cannot change.
    pub fn modify<R: ReplicaRead + ?Sized>(
        &mut self,
        held: &R,
        uid: Uid,
        attributes: u32,
        hash: [u8; 20],
        now: FileTime,
    ) -> Changed<Update, R> {
        let old = self.live(held, &uid)?;
        if (old.attributes ^ attributes) & FILE_ATTRIBUTE_DIRECTORY != 0 {
            return Err(LocalChangeError::DirectoryAttributeChange(uid).into());
        }
        let mut u = self.next_of(&old, now)?;
        u.attributes = attributes;
        u.hash = hash;
        Ok(u)
    }

    /// Rename within the same directory.
    pub fn rename<R: ReplicaRead + ?Sized>(
        &mut self,
        held: &R,
        uid: Uid,
        new_name: &str,
        now: FileTime,
    ) -> Changed<Update, R> {
        let parent = self.live(held, &uid)?.parent;
        self.move_to(held, uid, parent, new_name, now)
    }

    /// Move (and possibly rename) into another directory of the folder.
    pub fn move_to<R: ReplicaRead + ?Sized>(
        &mut self,
        held: &R,
        uid: Uid,
        new_parent: Uid,
        new_name: &str,
        now: FileTime,
    ) -> Changed<Update, R> {
        let old = self.live(held, &uid)?;
        self.check_parent(held, &new_parent, new_name, Some(uid))?;
        self.check_not_descendant(held, uid, new_parent)?;
        let mut u = self.next_of(&old, now)?;
        u.parent = new_parent;
        u.name = new_name.to_string();
        Ok(u)
    }

    /// Refuses `new_parent` when it is `uid` or below it.
    fn check_not_descendant<R: ReplicaRead + ?Sized>(
        &self,
        held: &R,
        uid: Uid,
        new_parent: Uid,
    ) -> Changed<(), R> {
        let root = Uid::root_of(self.content_set);
        let mut seen = HashSet::new();
        let mut cur = new_parent;
        while cur != root {
            if cur == uid {
                return Err(LocalChangeError::MoveIntoDescendant {
                    uid,
                    parent: new_parent,
                }
                .into());
            }
            if !seen.insert(cur) {
                return Err(LocalChangeError::AncestryLoop(new_parent).into());
            }
            match held.update(&cur).map_err(ChangeError::Read)? {
                Some(p) => cur = p.parent,
                None => break,
            }
        }
        Ok(())
    }

    /// Deletion: a tombstone (present=0) of the held file. Children are the
    /// caller's business (the file system deletes them first).
    pub fn delete<R: ReplicaRead + ?Sized>(&mut self, held: &R, uid: Uid, now: FileTime) -> Changed<Update, R> {
        let old = self.live(held, &uid)?;
        let mut u = self.next_of(&old, now)?;
        u.present = false;
        Ok(u)
    }

    /// Resolves a name conflict between two held or incoming updates with a
    /// GVSN and clock from us (§3.3.4.6.2; see [`rules::resolve_name_conflict`]).
    pub fn resolve_name_conflict(
        &mut self,
        a: &Update,
        b: &Update,
        now: FileTime,
    ) -> Result<NameConflictResolution, LocalChangeError> {
        if !rules::in_name_conflict(a, b) {
            return Err(RuleError::NoNameConflict(a.uid, b.uid).into());
        }
        let gvsn = self.allocate_gvsn()?;
        let (clock, _) = self.tick_above(now, a.clock.max(b.clock));
        Ok(rules::resolve_name_conflict(a, b, gvsn, clock, now)?)
    }

    /// Breaks a directory cycle found by [`super::ordering::order_batch`]:
    /// the rejected incoming update is re-issued by us with a fresh GVSN, a
    /// clock above it and above what we hold, keeping the installed parent
    /// and name (§3.3.4.6.2 "retains the old parent").
    pub fn break_cycle<R: ReplicaRead + ?Sized>(
        &mut self,
        held: &R,
        brk: &CycleBreak,
        now: FileTime,
    ) -> Changed<Update, R> {
        let uid = brk.update.uid;
        let installed = held
            .update(&uid)
            .map_err(ChangeError::Read)?
            .ok_or(LocalChangeError::UnknownUid(uid))?;
        let mut u = brk.update.clone();
        u.parent = brk.old_parent;
        u.name = installed.name.clone();
        self.stamp(&mut u, now, brk.update.clock.max(installed.clock))?;
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rules::{compare_updates, decide, Decision};
    use std::cmp::Ordering;
    use std::collections::BTreeMap;

    const CS: Guid = Guid([0xcc; 16]);
    const DB: Guid = Guid([0xdb; 16]);

    fn root() -> Uid {
        Uid::root_of(CS)
    }

    fn file() -> NewFile {
        NewFile {
            attributes: 0x20,
            create_time: 77,
            hash: [1; 20],
        }
    }

    fn folder() -> NewFile {
        NewFile {
            attributes: FILE_ATTRIBUTE_DIRECTORY,
            create_time: 77,
            hash: [0; 20],
        }
    }

    fn setup() -> (Originator, BTreeMap<Uid, Update>) {
        (Originator::new(DB, CS), BTreeMap::new())
    }

    fn keep(map: &mut BTreeMap<Uid, Update>, u: &Update) {
        map.insert(u.uid, u.clone());
    }

    #[test]
    fn create_allocates_above_reserved() {
        let (mut o, held) = setup();
        let u = o.create(&held, root(), "a.txt", file(), 100).unwrap();
        assert_eq!(u.uid, Uid::new(DB, 9));
        assert_eq!(u.gvsn, Gvsn::new(DB, 9));
        assert_eq!(u.clock, 100);
        assert!(u.present && !u.name_conflict && u.flags == 0);
        assert_eq!(u.content_set_id, CS);
        assert_eq!(u.fence, fence::DEFAULT);
        assert!(u.validate().is_ok());
        let v = o.create(&held, root(), "b.txt", file(), 100).unwrap();
        assert_eq!(v.uid.version, 10);
        assert_eq!(v.clock, 101, "same wall time still moves the clock");
        assert_eq!(v.flags, 0, "equal time is not a decrement");
        let o2 = Originator::resume(DB, CS, 3, 0);
        assert_eq!(o2.next_version(), 9);
    }

    #[test]
    fn clock_going_backwards_sets_the_flag() {
        let (mut o, mut held) = setup();
        let a = o.create(&held, root(), "a", file(), 1000).unwrap();
        keep(&mut held, &a);
        let b = o.modify(&held, a.uid, 0x20, [2; 20], 500).unwrap();
        assert_eq!(b.clock, 1001);
        assert_eq!(b.flags, FLAG_CLOCK_DECREMENTED);
        assert_eq!(o.tick(2000), (2000, false));
        assert_eq!(o.last_clock(), 2000);
    }

    #[test]
    fn changes_keep_the_uid_and_win() {
        let (mut o, mut held) = setup();
        let d = o.create(&held, root(), "d", folder(), 10).unwrap();
        keep(&mut held, &d);
        let e = o.create(&held, root(), "e", folder(), 11).unwrap();
        keep(&mut held, &e);
        let f = o.create(&held, d.uid, "f", file(), 12).unwrap();
        keep(&mut held, &f);

        let m = o.modify(&held, f.uid, 0x21, [9; 20], 13).unwrap();
        assert_eq!((m.uid, m.hash, m.attributes), (f.uid, [9; 20], 0x21));
        assert_eq!(compare_updates(&m, &f), Ordering::Greater);
        assert_eq!(decide(&m, Some(&f)), Ok(Decision::Install));
        keep(&mut held, &m);

        let r = o.rename(&held, f.uid, "g", 14).unwrap();
        assert_eq!((r.uid, r.parent, r.name.as_str()), (f.uid, d.uid, "g"));
        keep(&mut held, &r);

        let mv = o.move_to(&held, f.uid, e.uid, "h", 15).unwrap();
        assert_eq!((mv.parent, mv.name.as_str()), (e.uid, "h"));
        keep(&mut held, &mv);

        let del = o.delete(&held, f.uid, 16).unwrap();
        assert!(!del.present && !del.name_conflict);
        assert_eq!(del.uid, f.uid);
        assert_eq!(decide(&del, Some(&mv)), Ok(Decision::Install));
        keep(&mut held, &del);
        assert_eq!(
            o.modify(&held, f.uid, 0x20, [0; 20], 17).map_err(LocalChangeError::from),
            Err(LocalChangeError::Deleted(f.uid))
        );
        // GVSNs strictly increase.
        assert!(m.gvsn < r.gvsn && r.gvsn < mv.gvsn && mv.gvsn < del.gvsn);
    }

    #[test]
    fn new_version_beats_a_faster_partner_clock() {
        let (mut o, mut held) = setup();
        let mut f = o.create(&held, root(), "f", file(), 10).unwrap();
        f.clock = 1_000_000; // came back from a partner with a fast clock
        f.fence = fence::INITIAL_SYNC;
        keep(&mut held, &f);
        let m = o.modify(&held, f.uid, 0x20, [3; 20], 20).unwrap();
        assert_eq!(m.clock, 1_000_001);
        assert_eq!(m.fence, fence::DEFAULT);
        assert_eq!(compare_updates(&m, &f), Ordering::Greater);
    }

    #[test]
    fn typed_errors() {
        let (mut o, mut held) = setup();
        let unknown = Uid::new(DB, 999);
        assert_eq!(
            o.modify(&held, unknown, 0, [0; 20], 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::UnknownUid(unknown))
        );
        assert_eq!(
            o.create(&held, unknown, "x", file(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::ParentUnknown(unknown))
        );
        assert_eq!(
            o.create(&held, root(), "", file(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::BadName(NameError::Empty))
        );
        assert!(matches!(
            o.create(&held, root(), "a/b", file(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::BadName(NameError::ForbiddenChar { .. }))
        ));
        let f = o.create(&held, root(), "f", file(), 1).unwrap();
        keep(&mut held, &f);
        assert_eq!(
            o.create(&held, f.uid, "x", file(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::ParentNotDirectory(f.uid))
        );
        assert!(matches!(
            o.create(&held, root(), "F", file(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::NameTaken { by, .. }) if by == f.uid
        ));
        // Renaming to a case variant of its own name is fine.
        assert!(o.rename(&held, f.uid, "F", 2).is_ok());
        assert_eq!(
            o.delete(&held, root(), 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::Root(root()))
        );
        assert!(matches!(
            o.modify(&held, f.uid, FILE_ATTRIBUTE_DIRECTORY, [0; 20], 1).map_err(LocalChangeError::from),
            Err(LocalChangeError::DirectoryAttributeChange(_))
        ));
        let d = o.create(&held, root(), "d", folder(), 1).unwrap();
        keep(&mut held, &d);
        let dead = o.delete(&held, d.uid, 2).unwrap();
        keep(&mut held, &dead);
        assert_eq!(
            o.create(&held, d.uid, "x", file(), 3).map_err(LocalChangeError::from),
            Err(LocalChangeError::ParentDeleted(d.uid))
        );
        let mut other = Originator::new(DB, Guid([0xee; 16]));
        let od = other
            .create(&held, Uid::root_of(Guid([0xee; 16])), "od", folder(), 1)
            .unwrap();
        keep(&mut held, &od);
        assert_eq!(
            o.create(&held, od.uid, "x", file(), 3).map_err(LocalChangeError::from),
            Err(LocalChangeError::ForeignParent(od.uid))
        );
        let mut full = Originator::resume(DB, CS, u64::MAX, 0);
        assert_eq!(
            full.allocate_gvsn().map(|g| g.version),
            Err(LocalChangeError::VersionsExhausted(DB))
        );
    }

    #[test]
    fn move_into_descendant_is_refused() {
        let (mut o, mut held) = setup();
        let a = o.create(&held, root(), "a", folder(), 1).unwrap();
        keep(&mut held, &a);
        let b = o.create(&held, a.uid, "b", folder(), 1).unwrap();
        keep(&mut held, &b);
        let c = o.create(&held, b.uid, "c", folder(), 1).unwrap();
        keep(&mut held, &c);
        assert_eq!(
            o.move_to(&held, a.uid, c.uid, "a", 2).map_err(LocalChangeError::from),
            Err(LocalChangeError::MoveIntoDescendant {
                uid: a.uid,
                parent: c.uid
            })
        );
        assert_eq!(
            o.move_to(&held, a.uid, a.uid, "a", 2).map_err(LocalChangeError::from),
            Err(LocalChangeError::MoveIntoDescendant {
                uid: a.uid,
                parent: a.uid
            })
        );
        assert!(o.move_to(&held, c.uid, root(), "c", 2).is_ok());
        // A corrupt store whose chain loops is reported, not followed forever.
        let mut bad = held.clone();
        bad.get_mut(&a.uid).unwrap().parent = c.uid;
        let x = o.create(&bad, root(), "x", folder(), 3).unwrap();
        keep(&mut bad, &x);
        assert_eq!(
            o.move_to(&bad, x.uid, b.uid, "x", 4).map_err(LocalChangeError::from),
            Err(LocalChangeError::AncestryLoop(b.uid))
        );
    }

    #[test]
    fn name_conflict_via_originator() {
        let (mut o, held) = setup();
        let a = o.create(&held, root(), "n", file(), 10).unwrap();
        let mut b = a.clone();
        b.uid = Uid::new(Guid([0x0b; 16]), 50);
        b.gvsn = Gvsn::new(Guid([0x0b; 16]), 50);
        b.name = "N".into();
        b.clock = 5;
        let res = o.resolve_name_conflict(&a, &b, 20).unwrap();
        assert_eq!(res.winner, a.uid);
        assert_eq!(res.loser_tombstone.uid, b.uid);
        assert_eq!(res.loser_tombstone.gvsn.db, DB);
        assert!(res.loser_tombstone.clock > a.clock.max(b.clock));
        assert!(res.loser_tombstone.name_conflict && !res.loser_tombstone.present);
        assert!(matches!(
            o.resolve_name_conflict(&a, &a, 20),
            Err(LocalChangeError::Rule(RuleError::NoNameConflict(..)))
        ));
    }

    #[test]
    fn cycle_break_retains_old_parent() {
        let (mut o, mut held) = setup();
        let a = o.create(&held, root(), "a", folder(), 1).unwrap();
        keep(&mut held, &a);
        let b = o.create(&held, a.uid, "b", folder(), 1).unwrap();
        keep(&mut held, &b);
        let mut incoming = a.clone();
        incoming.parent = b.uid;
        incoming.name = "moved".into();
        incoming.gvsn = Gvsn::new(Guid([0x0f; 16]), 40);
        incoming.clock = 500;
        let brk = CycleBreak {
            update: incoming.clone(),
            old_parent: root(),
        };
        let u = o.break_cycle(&held, &brk, 100).unwrap();
        assert_eq!((u.uid, u.parent, u.name.as_str()), (a.uid, root(), "a"));
        assert_eq!(u.gvsn.db, DB);
        assert!(u.clock > 500);
        assert_eq!(compare_updates(&u, &incoming), Ordering::Greater);
    }
}
