//! What the engine reads of a member's replicated state: one fallible
//! trait with owned answers, so a store that can fail and one that cannot
//! (the simulation's) look the same, and a failed read is an error, never
//! "nothing there". The installer reads through it; the session machines
//! and the TDB store still use the older `session::LocalStore` (issue 13,
//! point 4).

use super::ids::{Guid, Uid};
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
}
