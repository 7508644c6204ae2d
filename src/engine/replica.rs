//! What the engine reads of a member's replicated state: one fallible
//! trait with owned answers, so a store that can fail (the TDB store) and
//! one that cannot (the simulation's, a map in tests) look the same, and a
//! failed read is an error, never "nothing there". The installer, the
//! originator of local changes and the client session machine read
//! through it.

use std::collections::BTreeMap;
use std::convert::Infallible;

use super::ids::{Guid, Uid};
use super::rules::names_equal;
use super::update::Update;
use super::version_vector::VersionVector;

/// A member's replicated state as the installer reads it.
pub trait ReplicaRead {
    /// Why a read failed (`std::convert::Infallible` for memory).
    type Error: std::error::Error + 'static;

    /// The GVSNs we know for `folder` (empty when never replicated).
    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, Self::Error>;

    /// The update we hold for `uid` (live or tombstone), if any.
    fn update(&self, uid: &Uid) -> Result<Option<Update>, Self::Error>;

    /// The live child of `parent` whose name equals `name`
    /// case-insensitively (§3.3.4.6.2).
    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Self::Error>;

    /// The live children of `dir`, sorted by UID.
    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Self::Error>;

    /// The live update kept aside for `uid` until its parent arrives
    /// (orphans, unbreakable cycles), if any.
    fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, Self::Error>;

    /// Every update kept aside in `folder`, sorted by UID.
    fn all_held_aside(&self, folder: &Guid) -> Result<Vec<Update>, Self::Error>;

    /// The updates kept aside whose parent is `parent`, sorted by UID:
    /// what an install of `parent` may unblock.
    fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, Self::Error>;
}

/// Updates by UID as a replica with nothing held aside and no vector: for
/// tests and for one-off views (the one version a tombstone is made
/// from). Sibling look-ups scan every entry.
impl ReplicaRead for BTreeMap<Uid, Update> {
    type Error = Infallible;

    fn known_vector(&self, _folder: &Guid) -> Result<VersionVector, Infallible> {
        Ok(VersionVector::new())
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
        Ok(self.get(uid).cloned())
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Infallible> {
        Ok(self
            .values()
            .find(|u| u.present && u.parent == *parent && names_equal(&u.name, name))
            .map(|u| u.uid))
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Infallible> {
        Ok(self.values().filter(|u| u.present && u.parent == *dir).map(|u| u.uid).collect())
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
