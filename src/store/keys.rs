//! The keys of the replication database.
//!
//! Every key is a two-byte ASCII prefix naming the kind of record, then
//! fixed-size binary fields: GUIDs as their 16 wire bytes, versions as
//! **big-endian** u64 so that sorting raw keys sorts by (GUID byte-wise,
//! version) — the MS-FRS2 GVSN order — after a TDB traverse (TDB itself is
//! a hash, unordered). The one exception is the schema record, `schema`.
//!
//! | key                               | value                              |
//! |-----------------------------------|------------------------------------|
//! | `schema`                          | schema version                     |
//! | `u/` uid                          | the update held for that UID       |
//! | `g/` gvsn                         | the UID whose update has that GVSN |
//! | `p/` parent-uid uid               | links: `uid` is a child of parent  |
//! | `P/` parent-uid                   | the first child of parent          |
//! | `f/` folder-guid uid              | links: `uid` is an update of folder|
//! | `F/` folder-guid                  | the first update of folder         |
//! | `v/` group-guid folder-guid       | our known version vector           |
//! | `d/`                              | our database GUID                  |
//! | `o/` folder-guid                  | originator counters of the folder  |
//! | `s/` uid                          | download / staging state           |
//! | `c/` uid gvsn                     | a ConflictAndDeleted record        |
//! | `a/` uid                          | an update held aside (no parent)   |
//! | `b/` folder-guid uid, `B/` folder | list: held aside in the folder     |
//! | `q/` parent-uid uid, `Q/` parent  | list: held aside under the parent  |
//!
//! (uid and gvsn are 24 bytes each: GUID then big-endian version.)
//!
//! TDB has no ordered prefix scan, so the children of a directory and the
//! updates of a folder are each a doubly linked list threaded through
//! their `p/` (`f/`) records, whose values name the previous and next
//! member, from a head record `P/` (`F/`): listing costs one lookup per
//! member and adding or removing one a few, whatever the database's size.

use std::fmt;

use crate::engine::ids::{Guid, Gvsn, Uid};

/// The schema record's key.
pub const SCHEMA: &[u8] = b"schema";

/// The prefix of each kind of record, for prefix scans.
pub mod prefix {
    /// Updates by UID.
    pub const UPDATE: &[u8] = b"u/";
    /// GVSN index.
    pub const GVSN: &[u8] = b"g/";
    /// Parent index: the members of each directory's list.
    pub const PARENT: &[u8] = b"p/";
    /// Parent index: each directory's first child.
    pub const FIRST_CHILD: &[u8] = b"P/";
    /// Folder index: the members of each folder's list.
    pub const FOLDER: &[u8] = b"f/";
    /// Folder index: each folder's first update.
    pub const FIRST_IN_FOLDER: &[u8] = b"F/";
    /// Known version vectors.
    pub const VECTOR: &[u8] = b"v/";
    /// Our database GUID.
    pub const DATABASE: &[u8] = b"d/";
    /// Originator counters.
    pub const ORIGINATOR: &[u8] = b"o/";
    /// Download states.
    pub const DOWNLOAD: &[u8] = b"s/";
    /// ConflictAndDeleted records.
    pub const CONFLICT: &[u8] = b"c/";
    /// Updates held aside until their parent arrives.
    pub const ASIDE: &[u8] = b"a/";
    /// Held-aside list of a folder: members, head.
    pub const ASIDE_IN: &[u8] = b"b/";
    pub const FIRST_ASIDE_IN: &[u8] = b"B/";
    /// Held-aside list under a parent: members, head.
    pub const ASIDE_UNDER: &[u8] = b"q/";
    pub const FIRST_ASIDE_UNDER: &[u8] = b"Q/";
}

/// A parsed key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// `schema`.
    Schema,
    /// `u/<uid>`.
    Update(Uid),
    /// `g/<gvsn>`.
    Gvsn(Gvsn),
    /// `p/<parent><child>`.
    Child {
        /// The directory.
        parent: Uid,
        /// The file in it.
        child: Uid,
    },
    /// `P/<parent>`.
    FirstChild(Uid),
    /// `f/<folder><uid>`.
    InFolder {
        /// The replicated folder.
        folder: Guid,
        /// An update of it.
        uid: Uid,
    },
    /// `F/<folder>`.
    FirstInFolder(Guid),
    /// `v/<group><folder>`.
    Vector {
        /// The replication group.
        group: Guid,
        /// The replicated folder.
        folder: Guid,
    },
    /// `d/`.
    DatabaseGuid,
    /// `o/<folder>`.
    Originator(Guid),
    /// `s/<uid>`.
    Download(Uid),
    /// `a/<uid>`.
    Aside(Uid),
    /// `b/<folder><uid>`.
    AsideIn {
        /// The replicated folder.
        folder: Guid,
        /// What is held aside in it.
        uid: Uid,
    },
    /// `B/<folder>`.
    FirstAsideIn(Guid),
    /// `q/<parent><uid>`.
    AsideUnder {
        /// The directory it waits for.
        parent: Uid,
        /// What is held aside.
        uid: Uid,
    },
    /// `Q/<parent>`.
    FirstAsideUnder(Uid),
    /// `c/<uid><gvsn>`.
    Conflict(Uid, Gvsn),
    /// Anything else: a corrupt or foreign key (`check` reports it).
    Unknown(Vec<u8>),
}

fn put_id(out: &mut Vec<u8>, g: &Guid, v: u64) {
    out.extend_from_slice(&g.0);
    out.extend_from_slice(&v.to_be_bytes());
}

fn id_at(b: &[u8]) -> (Guid, u64) {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[..16]);
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[16..24]);
    (Guid(g), u64::from_be_bytes(v))
}

fn guid_at(b: &[u8]) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[..16]);
    Guid(g)
}

impl Key {
    /// The raw key.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(50);
        match self {
            Key::Schema => out.extend_from_slice(SCHEMA),
            Key::Update(u) => {
                out.extend_from_slice(prefix::UPDATE);
                put_id(&mut out, &u.db, u.version);
            }
            Key::Gvsn(g) => {
                out.extend_from_slice(prefix::GVSN);
                put_id(&mut out, &g.db, g.version);
            }
            Key::Child { parent, child } => {
                out.extend_from_slice(prefix::PARENT);
                put_id(&mut out, &parent.db, parent.version);
                put_id(&mut out, &child.db, child.version);
            }
            Key::FirstChild(parent) => {
                out.extend_from_slice(prefix::FIRST_CHILD);
                put_id(&mut out, &parent.db, parent.version);
            }
            Key::InFolder { folder, uid } => {
                out.extend_from_slice(prefix::FOLDER);
                out.extend_from_slice(&folder.0);
                put_id(&mut out, &uid.db, uid.version);
            }
            Key::FirstInFolder(folder) => {
                out.extend_from_slice(prefix::FIRST_IN_FOLDER);
                out.extend_from_slice(&folder.0);
            }
            Key::Vector { group, folder } => {
                out.extend_from_slice(prefix::VECTOR);
                out.extend_from_slice(&group.0);
                out.extend_from_slice(&folder.0);
            }
            Key::DatabaseGuid => out.extend_from_slice(prefix::DATABASE),
            Key::Originator(f) => {
                out.extend_from_slice(prefix::ORIGINATOR);
                out.extend_from_slice(&f.0);
            }
            Key::Download(u) => {
                out.extend_from_slice(prefix::DOWNLOAD);
                put_id(&mut out, &u.db, u.version);
            }
            Key::Aside(u) => {
                out.extend_from_slice(prefix::ASIDE);
                put_id(&mut out, &u.db, u.version);
            }
            Key::AsideIn { folder, uid } => {
                out.extend_from_slice(prefix::ASIDE_IN);
                out.extend_from_slice(&folder.0);
                put_id(&mut out, &uid.db, uid.version);
            }
            Key::FirstAsideIn(folder) => {
                out.extend_from_slice(prefix::FIRST_ASIDE_IN);
                out.extend_from_slice(&folder.0);
            }
            Key::AsideUnder { parent, uid } => {
                out.extend_from_slice(prefix::ASIDE_UNDER);
                put_id(&mut out, &parent.db, parent.version);
                put_id(&mut out, &uid.db, uid.version);
            }
            Key::FirstAsideUnder(parent) => {
                out.extend_from_slice(prefix::FIRST_ASIDE_UNDER);
                put_id(&mut out, &parent.db, parent.version);
            }
            Key::Conflict(u, g) => {
                out.extend_from_slice(prefix::CONFLICT);
                put_id(&mut out, &u.db, u.version);
                put_id(&mut out, &g.db, g.version);
            }
            Key::Unknown(raw) => out.extend_from_slice(raw),
        }
        out
    }

    /// Parses a raw key; never fails (odd keys are [`Key::Unknown`]).
    pub fn parse(raw: &[u8]) -> Key {
        if raw == SCHEMA {
            return Key::Schema;
        }
        let (p, rest) = raw.split_at(raw.len().min(2));
        let id = |b: &[u8]| id_at(b);
        match (p, rest.len()) {
            (prefix::UPDATE, 24) => {
                let (g, v) = id(rest);
                Key::Update(Uid::new(g, v))
            }
            (prefix::GVSN, 24) => {
                let (g, v) = id(rest);
                Key::Gvsn(Gvsn::new(g, v))
            }
            (prefix::PARENT, 48) => {
                let (pg, pv) = id(rest);
                let (cg, cv) = id(&rest[24..]);
                Key::Child { parent: Uid::new(pg, pv), child: Uid::new(cg, cv) }
            }
            (prefix::FIRST_CHILD, 24) => {
                let (g, v) = id(rest);
                Key::FirstChild(Uid::new(g, v))
            }
            (prefix::FOLDER, 40) => {
                let (g, v) = id(&rest[16..]);
                Key::InFolder { folder: guid_at(rest), uid: Uid::new(g, v) }
            }
            (prefix::FIRST_IN_FOLDER, 16) => Key::FirstInFolder(guid_at(rest)),
            (prefix::VECTOR, 32) => Key::Vector { group: guid_at(rest), folder: guid_at(&rest[16..]) },
            (prefix::DATABASE, 0) => Key::DatabaseGuid,
            (prefix::ORIGINATOR, 16) => Key::Originator(guid_at(rest)),
            (prefix::DOWNLOAD, 24) => {
                let (g, v) = id(rest);
                Key::Download(Uid::new(g, v))
            }
            (prefix::ASIDE, 24) => {
                let (g, v) = id(rest);
                Key::Aside(Uid::new(g, v))
            }
            (prefix::ASIDE_IN, 40) => {
                let (g, v) = id(&rest[16..]);
                Key::AsideIn { folder: guid_at(rest), uid: Uid::new(g, v) }
            }
            (prefix::FIRST_ASIDE_IN, 16) => Key::FirstAsideIn(guid_at(rest)),
            (prefix::ASIDE_UNDER, 48) => {
                let (pg, pv) = id(rest);
                let (g, v) = id(&rest[24..]);
                Key::AsideUnder { parent: Uid::new(pg, pv), uid: Uid::new(g, v) }
            }
            (prefix::FIRST_ASIDE_UNDER, 24) => {
                let (g, v) = id(rest);
                Key::FirstAsideUnder(Uid::new(g, v))
            }
            (prefix::CONFLICT, 48) => {
                let (ug, uv) = id(rest);
                let (gg, gv) = id(&rest[24..]);
                Key::Conflict(Uid::new(ug, uv), Gvsn::new(gg, gv))
            }
            _ => Key::Unknown(raw.to_vec()),
        }
    }

}

/// One of the database's index lists (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// The updates whose parent is this directory (live or tombstones).
    Children(Uid),
    /// The updates of this replicated folder.
    Folder(Guid),
    /// The updates held aside in this folder.
    AsideIn(Guid),
    /// The updates held aside until this directory arrives.
    AsideUnder(Uid),
}

impl List {
    /// The key of its head record.
    pub fn head(self) -> Key {
        match self {
            List::Children(parent) => Key::FirstChild(parent),
            List::Folder(folder) => Key::FirstInFolder(folder),
            List::AsideIn(folder) => Key::FirstAsideIn(folder),
            List::AsideUnder(parent) => Key::FirstAsideUnder(parent),
        }
    }

    /// The key of `uid`'s record as a member.
    pub fn member(self, uid: Uid) -> Key {
        match self {
            List::Children(parent) => Key::Child { parent, child: uid },
            List::Folder(folder) => Key::InFolder { folder, uid },
            List::AsideIn(folder) => Key::AsideIn { folder, uid },
            List::AsideUnder(parent) => Key::AsideUnder { parent, uid },
        }
    }

    /// The list a key heads or is a member of, and the member's UID.
    pub fn of_key(key: &Key) -> Option<(List, Option<Uid>)> {
        match *key {
            Key::FirstChild(parent) => Some((List::Children(parent), None)),
            Key::Child { parent, child } => Some((List::Children(parent), Some(child))),
            Key::FirstInFolder(folder) => Some((List::Folder(folder), None)),
            Key::InFolder { folder, uid } => Some((List::Folder(folder), Some(uid))),
            Key::FirstAsideIn(folder) => Some((List::AsideIn(folder), None)),
            Key::AsideIn { folder, uid } => Some((List::AsideIn(folder), Some(uid))),
            Key::FirstAsideUnder(parent) => Some((List::AsideUnder(parent), None)),
            Key::AsideUnder { parent, uid } => Some((List::AsideUnder(parent), Some(uid))),
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    /// Readable: `u/<guid>:<version>`, `p/<parent>/<child>`, unknown keys
    /// in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Schema => f.write_str("schema"),
            Key::Update(u) => write!(f, "u/{u}"),
            Key::Gvsn(g) => write!(f, "g/{g}"),
            Key::Child { parent, child } => write!(f, "p/{parent}/{child}"),
            Key::FirstChild(parent) => write!(f, "P/{parent}"),
            Key::InFolder { folder, uid } => write!(f, "f/{folder}/{uid}"),
            Key::FirstInFolder(folder) => write!(f, "F/{folder}"),
            Key::Vector { group, folder } => write!(f, "v/{group}/{folder}"),
            Key::DatabaseGuid => f.write_str("d/"),
            Key::Originator(g) => write!(f, "o/{g}"),
            Key::Download(u) => write!(f, "s/{u}"),
            Key::Aside(u) => write!(f, "a/{u}"),
            Key::AsideIn { folder, uid } => write!(f, "b/{folder}/{uid}"),
            Key::FirstAsideIn(folder) => write!(f, "B/{folder}"),
            Key::AsideUnder { parent, uid } => write!(f, "q/{parent}/{uid}"),
            Key::FirstAsideUnder(parent) => write!(f, "Q/{parent}"),
            Key::Conflict(u, g) => write!(f, "c/{u}/{g}"),
            Key::Unknown(raw) => {
                f.write_str("0x")?;
                raw.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let u = Uid::new(Guid([1; 16]), 9);
        let g = Gvsn::new(Guid([2; 16]), u64::MAX);
        for k in [
            Key::Schema,
            Key::Update(u),
            Key::Gvsn(g),
            Key::Child { parent: u, child: Uid::new(Guid([3; 16]), 10) },
            Key::FirstChild(u),
            Key::InFolder { folder: Guid([7; 16]), uid: u },
            Key::FirstInFolder(Guid([7; 16])),
            Key::Aside(u),
            Key::AsideIn { folder: Guid([7; 16]), uid: u },
            Key::FirstAsideIn(Guid([7; 16])),
            Key::AsideUnder { parent: u, uid: Uid::new(Guid([3; 16]), 10) },
            Key::FirstAsideUnder(u),
            Key::Vector { group: Guid([4; 16]), folder: Guid([5; 16]) },
            Key::DatabaseGuid,
            Key::Originator(Guid([6; 16])),
            Key::Download(u),
            Key::Conflict(u, g),
        ] {
            assert_eq!(Key::parse(&k.encode()), k, "{k}");
        }
        for odd in [&b""[..], b"u", b"u/", b"u/123", b"x/0123456789012345678901234", b"schem"] {
            assert_eq!(Key::parse(odd), Key::Unknown(odd.to_vec()));
        }
        assert_eq!(Key::Unknown(vec![0xab, 1]).to_string(), "0xab01");
    }

    #[test]
    fn raw_gvsn_keys_sort_in_gvsn_order() {
        let gs = [
            Gvsn::new(Guid([1; 16]), 256),
            Gvsn::new(Guid([1; 16]), 255),
            Gvsn::new(Guid([0; 16]), u64::MAX),
            Gvsn::new(Guid([1; 16]), 1 << 40),
        ];
        let mut raw: Vec<Vec<u8>> = gs.iter().map(|g| Key::Gvsn(*g).encode()).collect();
        raw.sort();
        let back: Vec<Gvsn> = raw
            .iter()
            .map(|r| match Key::parse(r) {
                Key::Gvsn(g) => g,
                k => panic!("{k}"),
            })
            .collect();
        let mut want = gs.to_vec();
        want.sort();
        assert_eq!(back, want);
    }
}
