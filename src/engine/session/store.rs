//! What the server session machine needs from our database, as a trait,
//! and an in-memory database for tests and tools.
//!
//! - [`UpdateDatabase`]: the server side (§3.2.4.1.4, §3.2.4.1.5): our
//!   version vector per folder and the updates whose GVSN lies in a vector.
//! - The client side reads through [`crate::engine::replica::ReplicaRead`],
//!   which [`MemoryDatabase`] implements too.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ops::Bound;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::replica::ReplicaRead;
use crate::engine::rules::{decide, names_equal, Decision};
use crate::engine::update::Update;
use crate::engine::version_vector::VersionVector;

use super::messages::UpdateRequestType;

/// Our replicated state as a RequestUpdates / RequestVersionVector server
/// sees it.
pub trait UpdateDatabase {
    /// Why a read failed (`std::convert::Infallible` for memory).
    type Error: std::error::Error + 'static;

    /// Our version vector for `folder`, `None` when we do not replicate it
    /// (→ `FRS_ERROR_CONTENTSET_NOT_FOUND`).
    fn version_vector(&self, folder: &Guid) -> Result<Option<VersionVector>, Self::Error>;

    /// The updates held (one per UID, the maximal one) of `folder` whose
    /// GVSN is in `vv`, of the given kind, with GVSN strictly above `after`
    /// when given, in ascending GVSN order (byte-wise GUID, then version),
    /// at most `limit` of them.
    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Result<Vec<Update>, Self::Error>;
}

/// One folder of a [`MemoryDatabase`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FolderDb {
    by_gvsn: BTreeMap<Gvsn, Uid>,
    by_uid: BTreeMap<Uid, Update>,
    vv: VersionVector,
}

/// An in-memory database: per folder, the maximal update per UID indexed by
/// GVSN, and the folder's version vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryDatabase {
    folders: BTreeMap<Guid, FolderDb>,
}

impl MemoryDatabase {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts replicating `folder` (an empty vector).
    pub fn add_folder(&mut self, folder: Guid) {
        self.folders.entry(folder).or_default();
    }

    /// Stores `update` if it supersedes what is held for its UID
    /// (§3.3.4.6.2); its GVSN becomes known either way. Returns whether it
    /// was stored. The folder is created when missing.
    pub fn apply(&mut self, update: Update) -> bool {
        let f = self.folders.entry(update.content_set_id).or_default();
        f.vv.insert(update.gvsn);
        let install = matches!(
            decide(&update, f.by_uid.get(&update.uid)),
            Ok(Decision::Install)
        );
        if install {
            if let Some(old) = f.by_uid.get(&update.uid) {
                f.by_gvsn.remove(&old.gvsn);
            }
            f.by_gvsn.insert(update.gvsn, update.uid);
            f.by_uid.insert(update.uid, update);
        }
        install
    }

    /// Merges `vv` into the folder's known vector (§3.3.4.6).
    pub fn merge_vector(&mut self, folder: Guid, vv: &VersionVector) {
        self.folders.entry(folder).or_default().vv.merge(vv);
    }

    /// The UIDs of live updates of `folder`.
    pub fn live_uids(&self, folder: &Guid) -> Vec<Uid> {
        self.folders
            .get(folder)
            .map(|f| {
                f.by_uid
                    .values()
                    .filter(|u| u.present)
                    .map(|u| u.uid)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every update held for `folder`, by UID.
    pub fn updates(&self, folder: &Guid) -> impl Iterator<Item = &Update> {
        self.folders
            .get(folder)
            .into_iter()
            .flat_map(|f| f.by_uid.values())
    }

    /// The update held with exactly this GVSN.
    pub fn by_gvsn(&self, folder: &Guid, gvsn: &Gvsn) -> Option<&Update> {
        let f = self.folders.get(folder)?;
        f.by_uid.get(f.by_gvsn.get(gvsn)?)
    }
}

impl UpdateDatabase for MemoryDatabase {
    type Error = Infallible;

    fn version_vector(&self, folder: &Guid) -> Result<Option<VersionVector>, Infallible> {
        Ok(MemoryDatabase::version_vector(self, folder))
    }

    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Result<Vec<Update>, Infallible> {
        let mut out = Vec::new();
        let Some(f) = self.folders.get(folder) else {
            return Ok(out);
        };
        for (db, range) in vv.iter() {
            if out.len() >= limit {
                break;
            }
            let hi = Gvsn::new(db, range.last);
            if after.is_some_and(|a| a >= hi) {
                continue;
            }
            let lo = Gvsn::new(db, range.first);
            let start = match after {
                Some(a) if a >= lo => Bound::Excluded(a),
                _ => Bound::Included(lo),
            };
            for uid in f
                .by_gvsn
                .range((start, Bound::Included(hi)))
                .map(|(_, u)| u)
            {
                if out.len() >= limit {
                    break;
                }
                if let Some(u) = f.by_uid.get(uid) {
                    if kind.matches(u) {
                        out.push(u.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}

impl MemoryDatabase {
    /// Our version vector for `folder`, `None` when not replicated.
    pub fn version_vector(&self, folder: &Guid) -> Option<VersionVector> {
        self.folders.get(folder).map(|f| f.vv.clone())
    }
}

impl MemoryDatabase {
    /// The vector of GVSNs we know for `folder` (empty when none).
    pub fn known_vector(&self, folder: &Guid) -> VersionVector {
        self.folders.get(folder).map(|f| f.vv.clone()).unwrap_or_default()
    }

    /// The update we hold for `uid`, in any folder.
    pub fn held(&self, uid: &Uid) -> Option<&Update> {
        self.folders.values().find_map(|f| f.by_uid.get(uid))
    }

    fn live_in<'a>(&'a self, dir: &'a Uid) -> impl Iterator<Item = &'a Update> + 'a {
        self.folders
            .values()
            .flat_map(|f| f.by_uid.values())
            .filter(move |u| u.present && u.parent == *dir)
    }
}

/// Sibling look-ups scan the folder: fine for tests and tools.
impl ReplicaRead for MemoryDatabase {
    type Error = Infallible;

    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, Infallible> {
        Ok(MemoryDatabase::known_vector(self, folder))
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, Infallible> {
        Ok(self.held(uid).cloned())
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, Infallible> {
        Ok(self.live_in(parent).find(|u| names_equal(&u.name, name)).map(|u| u.uid))
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, Infallible> {
        let mut out: Vec<Uid> = self.live_in(dir).map(|u| u.uid).collect();
        out.sort_unstable();
        Ok(out)
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
