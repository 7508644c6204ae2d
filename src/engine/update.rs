//! The update record (MS-FRS2 §2.2.1.4.4 FRS_UPDATE) and the configuration
//! objects it lives in: replication group, replicated folder, member.
//!
//! An update is the whole replicated state of one file at one version; the
//! engine stores the maximal update per UID (§3.3.4.6.2).

use thiserror::Error;

use super::ids::{Guid, Gvsn, Uid};

/// A Windows FILETIME: 100-nanosecond ticks since 1601-01-01 UTC. Used for
/// `fence`, `clock` and `createTime` (§2.2.1.4.4) and for local wall time.
pub type FileTime = u64;

/// FILETIME ticks per second.
pub const TICKS_PER_SECOND: u64 = 10_000_000;

/// FILETIME ticks per day.
pub const TICKS_PER_DAY: u64 = 86_400 * TICKS_PER_SECOND;

/// `FRS_UPDATE_FLAG_CLOCK_DECREMENTED` (§2.2.1.1.18): the originator's clock
/// went backwards (dirty shutdown); receivers ignore every other flag bit.
pub const FLAG_CLOCK_DECREMENTED: u32 = 0x10;

/// `FILE_ATTRIBUTE_DIRECTORY` (MS-FSCC §2.6): the bit the conflict order and
/// the well-formedness rule look at (§3.3.4.6.2).
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;

/// The longest file name NTFS accepts, in UTF-16 code units. The wire field
/// is `WCHAR[260+1]` (§2.2.1.4.4) but a path component cannot exceed 255.
pub const MAX_NAME_UTF16: usize = 255;

/// Fence values as Windows uses them (`DfsrIdRecordInfo.Fence` in the DFS-R
/// WMI provider; MS-FRS2 only says "the fence clock"). A higher fence wins
/// before anything else (§3.3.4.6.2), which is how initial sync and
/// authoritative restore make one side win.
pub mod fence {
    use super::FileTime;
    /// A member doing its initial (non-authoritative) sync: loses.
    pub const INITIAL_SYNC: FileTime = 0;
    /// The primary member during initial sync.
    pub const INITIAL_PRIMARY: FileTime = 1;
    /// Every ordinary change.
    pub const DEFAULT: FileTime = 2;
    /// Administratively fenced (authoritative).
    pub const FENCED: FileTime = 3;
}

/// Why a file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The empty name.
    #[error("file name is empty")]
    Empty,
    /// `.` or `..`.
    #[error("file name {0:?} is reserved")]
    Dot(String),
    /// A separator or other character not allowed in a component.
    #[error("file name {name:?} contains forbidden character {ch:?}")]
    ForbiddenChar {
        /// The name.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// More than [`MAX_NAME_UTF16`] UTF-16 code units.
    #[error("file name is {units} UTF-16 units long, more than 255")]
    TooLong {
        /// Length in UTF-16 code units.
        units: usize,
    },
}

/// Checks one path component as it can appear in `FRS_UPDATE.name`: not
/// empty, not `.`/`..`, no `/`, `\`, `:` (a stream separator), NUL or other
/// control character, at most 255 UTF-16 code units. Anything else is left
/// to the file system; a partner must not make us walk out of a folder.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dot(name.to_string()));
    }
    if let Some(ch) = name
        .chars()
        .find(|&c| matches!(c, '/' | '\\' | ':') || c.is_control())
    {
        return Err(NameError::ForbiddenChar {
            name: name.to_string(),
            ch,
        });
    }
    let units = name.encode_utf16().count();
    if units > MAX_NAME_UTF16 {
        return Err(NameError::TooLong { units });
    }
    Ok(())
}

/// Why an update record is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpdateError {
    /// The name is not a valid component.
    #[error("update {uid}: {source}")]
    Name {
        /// The update's UID.
        uid: Uid,
        /// What is wrong with the name.
        #[source]
        source: NameError,
    },
    /// `nameConflict` set on a live update (§2.2.1.4.4: "MUST be 0 if
    /// present is 1").
    #[error("update {0}: nameConflict set while present")]
    NameConflictWhilePresent(Uid),
    /// A file update using a reserved UID version (§3.3.4.6.2).
    #[error("update {0}: UID version is reserved")]
    ReservedUid(Uid),
}

/// One FRS_UPDATE (§2.2.1.4.4): the full replicated state of a file at one
/// version. Fields are immutable once created, except the hash
/// (§3.3.4.6.2), so an update is a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Update {
    /// The file exists (`true`) or is a tombstone (`false`).
    pub present: bool,
    /// A tombstone made by losing a name conflict; never revived by a
    /// present update (§3.3.4.6.2).
    pub name_conflict: bool,
    /// File attributes (FILE_ATTRIBUTE_*).
    pub attributes: u32,
    /// The fence clock: highest wins first (§3.3.4.6.2); see [`fence`].
    pub fence: FileTime,
    /// The logical last-change clock.
    pub clock: FileTime,
    /// The file's creation time.
    pub create_time: FileTime,
    /// The replicated folder (content set) the file belongs to.
    pub content_set_id: Guid,
    /// SHA-1 of the file's data and security chunks.
    pub hash: [u8; 20],
    /// RDC similarity hash, zeros when not computed (MS-RDC §3.1.5.4).
    pub rdc_similarity: [u8; 16],
    /// The file's identity for life.
    pub uid: Uid,
    /// This change's identity.
    pub gvsn: Gvsn,
    /// The UID of the containing directory.
    pub parent: Uid,
    /// The file name in its parent.
    pub name: String,
    /// Flag bits; only [`FLAG_CLOCK_DECREMENTED`] means anything.
    pub flags: u32,
}

impl Update {
    /// True when the directory attribute is set.
    pub fn is_directory(&self) -> bool {
        self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0
    }

    /// True when this is the root of its replicated folder (§3.3.4.6.2).
    pub fn is_folder_root(&self) -> bool {
        self.uid == Uid::root_of(self.content_set_id)
    }

    /// True when the originator's clock was decremented (§2.2.1.1.18).
    pub fn clock_decremented(&self) -> bool {
        self.flags & FLAG_CLOCK_DECREMENTED != 0
    }

    /// Checks what a received update must satisfy before the engine looks at
    /// it: a valid name (except for folder roots, whose name is the folder's),
    /// `nameConflict` only on tombstones, no reserved UID other than a root.
    pub fn validate(&self) -> Result<(), UpdateError> {
        if self.present && self.name_conflict {
            return Err(UpdateError::NameConflictWhilePresent(self.uid));
        }
        if self.is_folder_root() {
            return Ok(());
        }
        if super::ids::is_reserved_version(self.uid.version) {
            return Err(UpdateError::ReservedUid(self.uid));
        }
        validate_name(&self.name).map_err(|source| UpdateError::Name {
            uid: self.uid,
            source,
        })
    }
}

/// How long a tombstone is kept before it may be forgotten; Windows'
/// default is 60 days (see `<40>` of MS-FRS2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TombstoneLifetime {
    /// Lifetime in FILETIME ticks.
    pub ticks: u64,
}

impl TombstoneLifetime {
    /// The default, 60 days.
    pub const DEFAULT: TombstoneLifetime = TombstoneLifetime {
        ticks: 60 * TICKS_PER_DAY,
    };

    /// A lifetime of `days` days (saturating).
    pub const fn from_days(days: u64) -> Self {
        TombstoneLifetime {
            ticks: days.saturating_mul(TICKS_PER_DAY),
        }
    }
}

impl Default for TombstoneLifetime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A replication group: the set of members and folders replicating
/// together (configured in AD or locally; MS-FRS2 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationGroup {
    /// The group's GUID.
    pub id: Guid,
    /// Display name.
    pub name: String,
    /// The folders it replicates.
    pub folders: Vec<ReplicatedFolder>,
    /// The members taking part.
    pub members: Vec<Member>,
}

impl ReplicationGroup {
    /// The folder with this content-set GUID.
    pub fn folder(&self, id: &Guid) -> Option<&ReplicatedFolder> {
        self.folders.iter().find(|f| f.id == *id)
    }

    /// The member with this GUID.
    pub fn member(&self, id: &Guid) -> Option<&Member> {
        self.members.iter().find(|m| m.id == *id)
    }
}

/// A replicated folder (content set, `FRS_CONTENT_SET_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedFolder {
    /// The content-set GUID; also the root's UID database (§3.3.4.6.2).
    pub id: Guid,
    /// Display name.
    pub name: String,
    /// How long tombstones are kept.
    pub tombstone_lifetime: TombstoneLifetime,
}

impl ReplicatedFolder {
    /// A folder with the default 60-day tombstone lifetime.
    pub fn new(id: Guid, name: impl Into<String>) -> Self {
        ReplicatedFolder {
            id,
            name: name.into(),
            tombstone_lifetime: TombstoneLifetime::DEFAULT,
        }
    }

    /// The root's UID, `(folder GUID, 1)` (§3.3.4.6.2).
    pub fn root_uid(&self) -> Uid {
        Uid::root_of(self.id)
    }
}

/// A member of a replication group (a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's GUID.
    pub id: Guid,
    /// The computer name.
    pub name: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plain live file update for tests.
    pub(crate) fn sample(uid: Uid, gvsn: Gvsn, parent: Uid, name: &str) -> Update {
        Update {
            present: true,
            name_conflict: false,
            attributes: 0x20,
            fence: fence::DEFAULT,
            clock: 1000,
            create_time: 500,
            content_set_id: Guid([0xcc; 16]),
            hash: [0; 20],
            rdc_similarity: [0; 16],
            uid,
            gvsn,
            parent,
            name: name.to_string(),
            flags: 0,
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(validate_name("."), Err(NameError::Dot(_))));
        assert!(matches!(validate_name(".."), Err(NameError::Dot(_))));
        for bad in ["a/b", "a\\b", "a:b", "a\0b", "a\nb", "\u{7f}", "\u{1f}"] {
            assert!(
                matches!(validate_name(bad), Err(NameError::ForbiddenChar { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_name("...").is_ok());
        assert!(validate_name("Ünïcødé ✓.txt").is_ok());
        assert!(validate_name(&"a".repeat(255)).is_ok());
        assert_eq!(
            validate_name(&"a".repeat(256)),
            Err(NameError::TooLong { units: 256 })
        );
        // 128 astral characters are 256 UTF-16 units.
        assert_eq!(
            validate_name(&"😀".repeat(128)),
            Err(NameError::TooLong { units: 256 })
        );
    }

    #[test]
    fn update_validation() {
        let db = Guid([1; 16]);
        let mut u = sample(
            Uid::new(db, 9),
            Gvsn::new(db, 9),
            Uid::root_of(Guid([0xcc; 16])),
            "f",
        );
        assert!(u.validate().is_ok());
        u.name_conflict = true;
        assert_eq!(
            u.validate(),
            Err(UpdateError::NameConflictWhilePresent(u.uid))
        );
        u.name_conflict = false;
        u.uid.version = 3;
        assert_eq!(u.validate(), Err(UpdateError::ReservedUid(u.uid)));
        u.uid.version = 9;
        u.name = "a/b".into();
        assert!(matches!(u.validate(), Err(UpdateError::Name { .. })));
        // A folder root may carry any name.
        u.uid = Uid::root_of(u.content_set_id);
        assert!(u.validate().is_ok());
    }

    #[test]
    fn folder_defaults() {
        let f = ReplicatedFolder::new(Guid([3; 16]), "docs");
        assert_eq!(f.tombstone_lifetime.ticks, 60 * 86_400 * 10_000_000);
        assert_eq!(f.root_uid(), Uid::new(Guid([3; 16]), 1));
        let g = ReplicationGroup {
            id: Guid([4; 16]),
            name: "rg".into(),
            folders: vec![f.clone()],
            members: vec![Member {
                id: Guid([5; 16]),
                name: "dc1".into(),
            }],
        };
        assert_eq!(g.folder(&f.id), Some(&f));
        assert!(g.member(&Guid([5; 16])).is_some());
        assert!(g.member(&Guid([6; 16])).is_none());
    }
}
