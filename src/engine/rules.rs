//! The conflict rules (MS-FRS2 §3.3.4.6.2): which of two updates wins, what
//! to do with an incoming update, name conflicts, tombstones and what goes
//! to ConflictAndDeleted.
//!
//! Convergence rests on every member applying the same total order, so these
//! functions are pure and deterministic.

use std::cmp::Ordering;

use thiserror::Error;

use super::ids::{Gvsn, Uid};
use super::update::{FileTime, TombstoneLifetime, Update, FILE_ATTRIBUTE_DIRECTORY};

/// Errors of the rule functions: their preconditions, checked on input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// `decide` was given updates of two different files.
    #[error("incoming update is for {incoming}, held update for {held}")]
    UidMismatch {
        /// The incoming update's UID.
        incoming: Uid,
        /// The held update's UID.
        held: Uid,
    },
    /// The two updates are not in name conflict (§3.3.4.6.2 definition).
    #[error("updates {0} and {1} are not in name conflict")]
    NoNameConflict(Uid, Uid),
    /// A tombstone was requested for a present update.
    #[error("update {0} is present, not a tombstone")]
    NotATombstone(Uid),
}

/// Which createTime wins (§3.3.4.6.2 and its note `<37>`): the current rule
/// is the higher; Windows Server 2003 R2 / 2008 / 2008 R2 without QFE 353495
/// let the lower win. Members with different rules cannot be mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreateTimeRule {
    /// The later creation time supersedes (§3.3.4.6.2 text; default).
    #[default]
    HigherWins,
    /// The earlier creation time supersedes (legacy, note `<37>`).
    LowerWins,
}

/// The §3.3.4.6.2 total order with the default (current) createTime rule.
/// `Greater` means `a` supersedes `b`.
pub fn compare_updates(a: &Update, b: &Update) -> Ordering {
    compare_updates_with(a, b, CreateTimeRule::HigherWins)
}

/// The §3.3.4.6.2 total order: `Greater` means `a` supersedes `b`. Keys in
/// order, each "higher wins":
/// 1. `fence`;
/// 2. the directory attribute (a directory beats a file);
/// 3. `createTime` (direction per `rule`, see [`CreateTimeRule`]);
/// 4. `clock`;
/// 5. `uidDbGuid` (byte-wise, memcmp), 6. `uidVersion`;
/// 7. `gvsnDbGuid` (byte-wise), 8. `gvsnVersion`.
///
/// `Equal` means the same GVSN and UID, which a well-behaved member only
/// produces for the same update (§3.3.4.6.2).
pub fn compare_updates_with(a: &Update, b: &Update, rule: CreateTimeRule) -> Ordering {
    let dir = |u: &Update| u.attributes & FILE_ATTRIBUTE_DIRECTORY != 0;
    let create = match rule {
        CreateTimeRule::HigherWins => a.create_time.cmp(&b.create_time),
        CreateTimeRule::LowerWins => b.create_time.cmp(&a.create_time),
    };
    a.fence
        .cmp(&b.fence)
        .then_with(|| dir(a).cmp(&dir(b)))
        .then(create)
        .then_with(|| a.clock.cmp(&b.clock))
        .then_with(|| a.uid.cmp(&b.uid))
        .then_with(|| a.gvsn.cmp(&b.gvsn))
}

/// The spec order, then, only for updates the spec says cannot both exist
/// (same UID and GVSN, different content), a fixed comparison of the other
/// fields, so that even a misbehaving partner cannot make two members keep
/// different records.
fn total_cmp(a: &Update, b: &Update) -> Ordering {
    compare_updates(a, b)
        .then_with(|| a.present.cmp(&b.present))
        .then_with(|| a.name_conflict.cmp(&b.name_conflict))
        .then_with(|| a.attributes.cmp(&b.attributes))
        .then_with(|| a.hash.cmp(&b.hash))
        .then_with(|| a.parent.cmp(&b.parent))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.content_set_id.cmp(&b.content_set_id))
        .then_with(|| a.rdc_similarity.cmp(&b.rdc_similarity))
        .then_with(|| a.flags.cmp(&b.flags))
}

/// The update that supersedes the other (§3.3.4.6.2); symmetric:
/// `winner(a, b) == winner(b, a)`.
pub fn winner<'a>(a: &'a Update, b: &'a Update) -> &'a Update {
    if total_cmp(a, b) == Ordering::Less {
        b
    } else {
        a
    }
}

/// What to do with an incoming update given the one held for its UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The incoming update supersedes (or nothing is held): install it.
    Install,
    /// The held update supersedes the incoming one: drop it.
    SkipSuperseded,
    /// One of the two is a name-conflict tombstone and the other a present
    /// update that beats it in the order. No present update may supersede
    /// a name-conflict tombstone (§3.3.4.6.2), yet a member that holds the
    /// present update keeps it by the order: left alone, the members would
    /// never agree. The installer re-issues the name-conflict tombstone
    /// above the present update (`install::Installer::receive`).
    ReissueNameConflictTombstone,
    /// The same update (same ordering keys): nothing to do.
    Same,
}

/// Decides on an `incoming` update against the update `held` for the same
/// UID (§3.3.4.6.2: keep one maximal update per UID).
pub fn decide(incoming: &Update, held: Option<&Update>) -> Result<Decision, RuleError> {
    let Some(held) = held else {
        return Ok(Decision::Install);
    };
    if incoming.uid != held.uid {
        return Err(RuleError::UidMismatch {
            incoming: incoming.uid,
            held: held.uid,
        });
    }
    Ok(match compare_updates(incoming, held) {
        Ordering::Equal => Decision::Same,
        Ordering::Less if incoming.name_conflict && !incoming.present && held.present => {
            Decision::ReissueNameConflictTombstone
        }
        Ordering::Less => Decision::SkipSuperseded,
        Ordering::Greater if held.name_conflict && !held.present && incoming.present => {
            Decision::ReissueNameConflictTombstone
        }
        Ordering::Greater => Decision::Install,
    })
}

/// Folds one character for name comparison: its simple (1:1) uppercase
/// mapping when that is a single BMP character, else itself.
///
/// §3.3.4.6.2 asks for a case-insensitive comparison without language
/// rules. Windows compares names through a per-UTF-16-unit upcase table
/// (NTFS `$UpCase`), so we do the same: simple uppercase mapping, no
/// special casing (`ß` stays `ß`), nothing outside the BMP, no locale (the
/// Turkish dotless `ı` upcases to `I` as in the table). This differs from
/// Unicode's CaseFolding.txt only on a few characters (e.g. `ı`, `ſ`).
pub fn fold_char(c: char) -> char {
    if (c as u32) < 0x80 {
        return c.to_ascii_uppercase();
    }
    if (c as u32) > 0xFFFF {
        return c;
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) if (u as u32) <= 0xFFFF => u,
        _ => c,
    }
}

/// The folded form of a name: equal folded forms mean the names collide.
pub fn fold_name(name: &str) -> String {
    name.chars().map(fold_char).collect()
}

/// Case-insensitive name equality as in [`fold_char`], without allocating.
pub fn names_equal(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// True when `a` and `b` are in name conflict (§3.3.4.6.2): same parent, both
/// present, equal names (case-insensitively), different UIDs. Files and
/// directories alike.
pub fn in_name_conflict(a: &Update, b: &Update) -> bool {
    a.parent == b.parent
        && a.present
        && b.present
        && a.uid != b.uid
        && names_equal(&a.name, &b.name)
}

/// Why something was moved to ConflictAndDeleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// A concurrent change of the same file won (§3.3.4.6.2 order).
    LostConflict,
    /// Another file with the same name in the same directory won.
    NameConflict,
    /// The file was deleted.
    Deleted,
    /// The file's directory was deleted.
    ParentDeleted,
}

/// A ConflictAndDeleted accounting record: what was lost, why and when, so
/// an administrator can find and restore it (the manifest Windows keeps).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConflictRecord {
    /// The lost file's UID.
    pub uid: Uid,
    /// The version that was lost.
    pub gvsn: Gvsn,
    /// Its name.
    pub name: String,
    /// Its directory's UID.
    pub parent: Uid,
    /// Why it was lost.
    pub reason: LossReason,
    /// When (local FILETIME).
    pub at: FileTime,
}

impl ConflictRecord {
    /// The record for losing `lost` for `reason` at `at`.
    pub fn new(lost: &Update, reason: LossReason, at: FileTime) -> Self {
        ConflictRecord {
            uid: lost.uid,
            gvsn: lost.gvsn,
            name: lost.name.clone(),
            parent: lost.parent,
            reason,
            at,
        }
    }
}

/// The outcome of resolving a name conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConflictResolution {
    /// The UID that keeps the name.
    pub winner: Uid,
    /// The new update for the loser: fresh GVSN, higher clock, present=0,
    /// nameConflict=1 (§3.3.4.6.2). To be installed and replicated.
    pub loser_tombstone: Update,
    /// What was lost, for ConflictAndDeleted.
    pub record: ConflictRecord,
}

/// Resolves a name conflict between `a` and `b` (§3.3.4.6.2): the update
/// lower in the total order loses and gets a new update with `new_gvsn`
/// (from our database), a clock above both updates and above `local_clock`,
/// present=0 and nameConflict=1. Directories are handled like files (the
/// pre-QFE behaviour of note `<39>`; merging directories is not done).
pub fn resolve_name_conflict(
    a: &Update,
    b: &Update,
    new_gvsn: Gvsn,
    local_clock: FileTime,
    now: FileTime,
) -> Result<NameConflictResolution, RuleError> {
    if !in_name_conflict(a, b) {
        return Err(RuleError::NoNameConflict(a.uid, b.uid));
    }
    let win = winner(a, b);
    let lose = if std::ptr::eq(win, a) { b } else { a };
    let clock = a.clock.max(b.clock).saturating_add(1).max(local_clock);
    let mut tomb = lose.clone();
    tomb.gvsn = new_gvsn;
    tomb.clock = clock;
    tomb.present = false;
    tomb.name_conflict = true;
    tomb.flags = 0;
    Ok(NameConflictResolution {
        winner: win.uid,
        record: ConflictRecord::new(lose, LossReason::NameConflict, now),
        loser_tombstone: tomb,
    })
}

/// A tombstone (an update with present=0) and when it may be forgotten.
/// Kept so a late present update of the same UID does not resurrect a
/// deleted file; dropped after the folder's lifetime (default 60 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The present=0 update.
    pub update: Update,
    /// Local time the tombstone was installed.
    pub deleted_at: FileTime,
    /// How long it is kept.
    pub lifetime: TombstoneLifetime,
}

impl Tombstone {
    /// Wraps a present=0 update; an error for a present one.
    pub fn new(
        update: Update,
        deleted_at: FileTime,
        lifetime: TombstoneLifetime,
    ) -> Result<Self, RuleError> {
        if update.present {
            return Err(RuleError::NotATombstone(update.uid));
        }
        Ok(Tombstone {
            update,
            deleted_at,
            lifetime,
        })
    }

    /// The first instant at which the tombstone may be purged.
    pub fn expires_at(&self) -> FileTime {
        self.deleted_at.saturating_add(self.lifetime.ticks)
    }

    /// True once `now` has reached the end of the lifetime.
    pub fn expired(&self, now: FileTime) -> bool {
        now >= self.expires_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::Guid;
    use crate::engine::update::tests::sample;
    use crate::engine::update::TICKS_PER_DAY;
    use proptest::prelude::*;

    fn g(n: u8) -> Guid {
        Guid([n; 16])
    }

    fn base() -> Update {
        sample(
            Uid::new(g(1), 9),
            Gvsn::new(g(1), 9),
            Uid::root_of(g(0xcc)),
            "a.txt",
        )
    }

    #[test]
    fn each_key_in_order() {
        let a = base();
        let mut b = base();
        b.gvsn.version = 10;
        assert_eq!(compare_updates(&b, &a), Ordering::Greater);
        b.gvsn.db = g(0);
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Less,
            "gvsn GUID before version"
        );
        b.uid.version = 10;
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Greater,
            "uid before gvsn"
        );
        b.uid.db = g(0);
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Less,
            "uid GUID before version"
        );
        b.clock = a.clock + 1;
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Greater,
            "clock before uid"
        );
        b.create_time = a.create_time - 1;
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Less,
            "createTime: higher wins"
        );
        assert_eq!(
            compare_updates_with(&b, &a, CreateTimeRule::LowerWins),
            Ordering::Greater,
            "legacy createTime rule"
        );
        b.attributes |= FILE_ATTRIBUTE_DIRECTORY;
        assert_eq!(
            compare_updates(&b, &a),
            Ordering::Greater,
            "directory beats file"
        );
        b.fence = a.fence - 1;
        assert_eq!(compare_updates(&b, &a), Ordering::Less, "fence first");
        assert_eq!(compare_updates(&a, &a.clone()), Ordering::Equal);
    }

    #[test]
    fn guid_keys_are_bytewise() {
        let mut a = base();
        let mut b = base();
        a.uid.db = "00000001-0000-0000-0000-000000000000".parse().unwrap();
        b.uid.db = "00000100-0000-0000-0000-000000000000".parse().unwrap();
        assert_eq!(compare_updates(&a, &b), Ordering::Greater);
    }

    #[test]
    fn decisions() {
        let held = base();
        assert_eq!(decide(&held, None), Ok(Decision::Install));
        assert_eq!(decide(&held, Some(&held)), Ok(Decision::Same));
        let mut newer = base();
        newer.clock += 1;
        newer.gvsn.version = 20;
        assert_eq!(decide(&newer, Some(&held)), Ok(Decision::Install));
        assert_eq!(decide(&held, Some(&newer)), Ok(Decision::SkipSuperseded));
        let mut other = base();
        other.uid.version = 99;
        assert!(matches!(
            decide(&other, Some(&held)),
            Err(RuleError::UidMismatch { .. })
        ));
    }

    #[test]
    fn name_conflict_tombstone_is_never_revived() {
        let mut tomb = base();
        tomb.present = false;
        tomb.name_conflict = true;
        let mut revive = base();
        revive.clock = tomb.clock + 100;
        revive.gvsn.version = 50;
        assert_eq!(
            decide(&revive, Some(&tomb)),
            Ok(Decision::ReissueNameConflictTombstone)
        );
        // A later deletion may still replace it.
        revive.present = false;
        assert_eq!(decide(&revive, Some(&tomb)), Ok(Decision::Install));
    }

    /// Engine fix (issue 13): the other way round. A member that installed
    /// a later edit before the name-conflict tombstone arrived used to
    /// drop the tombstone as superseded, while members holding the
    /// tombstone refused the edit: both kept their own forever.
    #[test]
    fn name_conflict_tombstone_meets_a_later_edit_held() {
        let mut tomb = base();
        tomb.present = false;
        tomb.name_conflict = true;
        let mut edit = base();
        edit.clock = tomb.clock + 100;
        edit.gvsn.version = 50;
        assert_eq!(
            decide(&tomb, Some(&edit)),
            Ok(Decision::ReissueNameConflictTombstone)
        );
        // A plain tombstone is superseded by the later edit as before.
        tomb.name_conflict = false;
        assert_eq!(decide(&tomb, Some(&edit)), Ok(Decision::SkipSuperseded));
    }

    #[test]
    fn name_folding() {
        assert!(names_equal("Readme.TXT", "README.txt"));
        assert!(names_equal("Ärger", "äRGER"));
        assert!(names_equal("ΣΊΣΥΦΟΣ", "σίσυφος"));
        assert!(names_equal("σ", "ς"), "final sigma upcases to Σ");
        assert!(!names_equal("straße", "STRASSE"), "no full case mapping");
        assert!(names_equal("ı", "I"), "upcase table, no Turkish locale");
        assert!(!names_equal("a", "ab"));
        assert!(
            !names_equal("𐐨", "𐐀"),
            "nothing outside the BMP, as Windows"
        );
        assert_eq!(fold_name("Ab"), "AB");
    }

    #[test]
    fn name_conflict_resolution() {
        let a = base();
        let mut b = base();
        b.uid = Uid::new(g(2), 9);
        b.gvsn = Gvsn::new(g(2), 9);
        b.name = "A.TXT".into();
        b.clock = 2000;
        assert!(in_name_conflict(&a, &b));
        let res = resolve_name_conflict(&a, &b, Gvsn::new(g(7), 33), 0, 5555).unwrap();
        assert_eq!(res.winner, b.uid, "higher clock wins the name");
        let t = &res.loser_tombstone;
        assert_eq!(t.uid, a.uid);
        assert_eq!(t.gvsn, Gvsn::new(g(7), 33));
        assert!(!t.present && t.name_conflict);
        assert_eq!(t.clock, 2001);
        assert_eq!(res.record.reason, LossReason::NameConflict);
        assert_eq!(res.record.at, 5555);
        assert_eq!(res.record.gvsn, a.gvsn);
        // Symmetric.
        let res2 = resolve_name_conflict(&b, &a, Gvsn::new(g(7), 33), 0, 5555).unwrap();
        assert_eq!(res, res2);
        // Local clock dominates when larger.
        let res3 = resolve_name_conflict(&a, &b, Gvsn::new(g(7), 33), 9999, 1).unwrap();
        assert_eq!(res3.loser_tombstone.clock, 9999);
        // Not a conflict: different parent, or one is deleted.
        let mut c = b.clone();
        c.parent = Uid::new(g(3), 10);
        assert!(!in_name_conflict(&a, &c));
        assert!(resolve_name_conflict(&a, &c, Gvsn::new(g(7), 1), 0, 0).is_err());
        c = b.clone();
        c.present = false;
        assert!(!in_name_conflict(&a, &c));
        assert!(!in_name_conflict(&a, &a.clone()), "same UID");
    }

    #[test]
    fn tombstone_expiry() {
        let mut u = base();
        assert_eq!(
            Tombstone::new(u.clone(), 0, TombstoneLifetime::DEFAULT),
            Err(RuleError::NotATombstone(u.uid))
        );
        u.present = false;
        let t = Tombstone::new(u.clone(), 1_000, TombstoneLifetime::default()).unwrap();
        assert!(!t.expired(1_000 + 60 * TICKS_PER_DAY - 1));
        assert!(t.expired(1_000 + 60 * TICKS_PER_DAY));
        let short = Tombstone::new(u, u64::MAX - 5, TombstoneLifetime::from_days(1)).unwrap();
        assert_eq!(short.expires_at(), u64::MAX);
        assert!(!short.expired(u64::MAX - 1));
    }

    #[test]
    fn conflict_record_fields() {
        let u = base();
        let r = ConflictRecord::new(&u, LossReason::ParentDeleted, 42);
        assert_eq!(
            (r.uid, r.gvsn, r.parent, r.at),
            (u.uid, u.gvsn, u.parent, 42)
        );
        assert_eq!(r.name, "a.txt");
    }

    /// Small domains so that ties on early keys are frequent.
    fn arb_update() -> impl Strategy<Value = Update> {
        (
            (0u64..3, any::<bool>(), 0u64..3, 0u64..3),
            (1u8..3, 9u64..11, 1u8..3, 9u64..11),
            (any::<bool>(), 0u8..2),
        )
            .prop_map(
                |((fence, dir, ct, clock), (ud, uv, gd, gv), (present, h))| {
                    let mut u = base();
                    u.fence = fence;
                    u.attributes = if dir { FILE_ATTRIBUTE_DIRECTORY } else { 0x20 };
                    u.create_time = ct;
                    u.clock = clock;
                    u.uid = Uid::new(g(ud), uv);
                    u.gvsn = Gvsn::new(g(gd), gv);
                    u.present = present;
                    u.hash = [h; 20];
                    u
                },
            )
    }

    proptest! {
        // Keep failures in the test output, not in files outside the module.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn order_is_total(a in arb_update(), b in arb_update(), c in arb_update()) {
            // Antisymmetric.
            prop_assert_eq!(compare_updates(&a, &b), compare_updates(&b, &a).reverse());
            // Transitive.
            if compare_updates(&a, &b) != Ordering::Greater
                && compare_updates(&b, &c) != Ordering::Greater
            {
                prop_assert_ne!(compare_updates(&a, &c), Ordering::Greater);
            }
            // Total on keys: Equal only for the same UID and GVSN.
            if compare_updates(&a, &b) == Ordering::Equal {
                prop_assert_eq!((a.uid, a.gvsn), (b.uid, b.gvsn));
            }
            for rule in [CreateTimeRule::HigherWins, CreateTimeRule::LowerWins] {
                prop_assert_eq!(
                    compare_updates_with(&a, &b, rule),
                    compare_updates_with(&b, &a, rule).reverse()
                );
            }
        }

        #[test]
        fn winner_is_symmetric(a in arb_update(), b in arb_update()) {
            prop_assert_eq!(winner(&a, &b), winner(&b, &a));
            let w = winner(&a, &b);
            prop_assert_ne!(compare_updates(w, &a), Ordering::Less);
            prop_assert_ne!(compare_updates(w, &b), Ordering::Less);
        }

        #[test]
        fn name_equality_is_an_equivalence(a in "[a-zA-ZäÄσςΣıI]{0,4}", b in "[a-zA-ZäÄσςΣıI]{0,4}") {
            prop_assert!(names_equal(&a, &a));
            prop_assert_eq!(names_equal(&a, &b), names_equal(&b, &a));
            prop_assert_eq!(names_equal(&a, &b), fold_name(&a) == fold_name(&b));
        }
    }
}
