//! The engine's session traits over the TDB store: what the FrsTransport
//! server answers from ([`ServedGroup`], `UpdateDatabase`) and what a
//! client syncing from a partner consults ([`PulledFolder`], `LocalStore`).
//!
//! The session traits cannot fail, but a read of the store can. A failed
//! read must never look like "nothing there" — a client would merge a
//! partner vector it has not got the updates of — so [`ServedGroup`]
//! remembers the first error and the caller turns the whole answer into a
//! failure ([`ServedGroup::take_error`]).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::session::{LocalStore, UpdateDatabase, UpdateRequestType};
use crate::engine::update::Update;
use crate::engine::version_vector::VersionVector;

use super::database::{Database, StoreError};

/// How many updates one store read fetches while looking for a page.
const CHUNK: usize = 512;

/// One replication group of the store as a RequestUpdates /
/// RequestVersionVector server sees it: a folder is served when its known
/// vector exists.
pub struct ServedGroup<'a> {
    db: &'a Database,
    group: Guid,
    error: RefCell<Option<StoreError>>,
}

impl<'a> ServedGroup<'a> {
    /// A view of `group` in `db`.
    pub fn new(db: &'a Database, group: Guid) -> Self {
        ServedGroup { db, group, error: RefCell::new(None) }
    }

    /// The first store error since the last call, if any: the answer
    /// built meanwhile must not be sent.
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.borrow_mut().take()
    }

    fn fail(&self, e: StoreError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// The update held with exactly this GVSN, in `folder`.
    pub fn update_with_gvsn(&self, folder: &Guid, gvsn: &Gvsn) -> Result<Option<Update>, StoreError> {
        Ok(self.db.update_by_gvsn(gvsn)?.filter(|u| u.content_set_id == *folder))
    }

    /// The update held for `uid`, in `folder`.
    pub fn update(&self, folder: &Guid, uid: &Uid) -> Result<Option<Update>, StoreError> {
        Ok(self.db.update(uid)?.filter(|u| u.content_set_id == *folder))
    }
}

impl UpdateDatabase for ServedGroup<'_> {
    fn version_vector(&self, folder: &Guid) -> Option<VersionVector> {
        self.db.folder_vector(&self.group, folder).unwrap_or_else(|e| {
            self.fail(e);
            None
        })
    }

    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Vec<Update> {
        let mut out = Vec::new();
        let mut rest = vv.clone();
        if let Some(a) = after {
            rest.remove_through(&a);
        }
        // The store's GVSN index spans every folder: read in chunks and
        // keep this folder's updates of the wanted kind.
        while out.len() < limit && !rest.is_empty() {
            let chunk = match self.db.by_gvsn(&rest, CHUNK) {
                Ok(c) => c,
                Err(e) => {
                    self.fail(e);
                    return Vec::new();
                }
            };
            let Some(last) = chunk.last().map(|u| u.gvsn) else { break };
            let full = chunk.len() == CHUNK;
            for u in chunk {
                if u.content_set_id == *folder && kind.matches(&u) && out.len() < limit {
                    out.push(u);
                }
            }
            if !full {
                break;
            }
            rest.remove_through(&last);
        }
        out
    }
}

/// One replicated folder of the store as a client pulling from a partner
/// sees it: the known vector and the updates held, cached in memory (the
/// session asks for references) and written through to the store.
pub struct PulledFolder {
    group: Guid,
    folder: Guid,
    known: VersionVector,
    held: HashMap<Uid, Update>,
}

impl PulledFolder {
    /// Loads `folder` of `group` from `db` (empty when never replicated).
    pub fn load(db: &Database, group: Guid, folder: Guid) -> Result<Self, StoreError> {
        let known = db.known_vector(&group, &folder)?;
        let held = db.folder_updates(&folder)?.into_iter().map(|u| (u.uid, u)).collect();
        Ok(PulledFolder { group, folder, known, held })
    }

    /// The folder.
    pub fn folder(&self) -> Guid {
        self.folder
    }

    /// Updates held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Stores `u` as what we hold for its UID, its GVSN known, in one
    /// transaction; then in the cache.
    pub fn store(&mut self, db: &mut Database, u: &Update) -> Result<(), StoreError> {
        let (group, folder) = (self.group, self.folder);
        db.transaction(|tx| -> Result<(), StoreError> {
            tx.put_update(u)?;
            tx.add_known(&group, &folder, u.gvsn)
        })?;
        self.known.insert(u.gvsn);
        self.held.insert(u.uid, u.clone());
        Ok(())
    }

    /// Merges a partner's vector into our known vector (§3.3.4.6).
    pub fn merge(&mut self, db: &mut Database, vv: &VersionVector) -> Result<(), StoreError> {
        let mut merged = self.known.clone();
        merged.merge(vv);
        let (group, folder) = (self.group, self.folder);
        db.transaction(|tx| tx.set_known_vector(&group, &folder, &merged))?;
        self.known = merged;
        Ok(())
    }
}

impl LocalStore for PulledFolder {
    fn known_vector(&self, folder: &Guid) -> VersionVector {
        if *folder == self.folder {
            self.known.clone()
        } else {
            VersionVector::new()
        }
    }

    fn held(&self, uid: &Uid) -> Option<&Update> {
        self.held.get(uid)
    }
}
