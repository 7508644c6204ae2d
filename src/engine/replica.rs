//! What the engine reads of a member's replicated state: one fallible
//! trait with owned answers, so a store that can fail (the TDB) and one
//! that cannot (the simulation's, tests' maps) look the same, and a failed
//! read is an error, never "nothing there".

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::ids::{Guid, Uid};
use super::rules::names_equal;
use super::update::Update;
use super::version_vector::VersionVector;

/// A member's replicated state as the installer and the sessions read it.
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
}

/// A map of updates by UID answers by linear scans (tests, small sets; a
/// real store keeps indexes by parent). Nothing is held aside; the known
/// vector is every GVSN in the map.
impl<S: BuildHasher> ReplicaRead for HashMap<Uid, Update, S> {
    type Error = std::convert::Infallible;

    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, Self::Error> {
        let mut v = VersionVector::new();
        for u in self.values().filter(|u| u.content_set_id == *folder) {
            v.insert(u.gvsn);
        }
        Ok(v)
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, Self::Error> {
        Ok(self.get(uid).cloned())
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Self::Error> {
        Ok(self
            .values()
            .find(|u| u.present && u.parent == *parent && names_equal(&u.name, name))
            .map(|u| u.uid))
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Self::Error> {
        let mut v: Vec<Uid> = self
            .values()
            .filter(|u| u.present && u.parent == *dir)
            .map(|u| u.uid)
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    fn held_aside(&self, _uid: &Uid) -> Result<Option<Update>, Self::Error> {
        Ok(None)
    }

    fn all_held_aside(&self, _folder: &Guid) -> Result<Vec<Update>, Self::Error> {
        Ok(Vec::new())
    }
}
