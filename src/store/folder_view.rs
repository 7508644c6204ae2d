//! The engine's read traits over the TDB store: what the FrsTransport
//! server answers from ([`ServedGroup`], `UpdateDatabase`) and what the
//! engine reads of a member's state while it pulls and installs
//! ([`StoredReplica`], `ReplicaRead`).
//!
//! Both fail with the store's error: a failed read must never look like
//! "nothing there" (a client would merge a partner vector it has not got
//! the updates of).

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::replica::ReplicaRead;
use crate::engine::rules::names_equal;
use crate::engine::session::{UpdateDatabase, UpdateRequestType};
use crate::engine::update::Update;
use crate::engine::version_vector::VersionVector;

use super::database::{Database, StoreError};
use super::keys::Key;

/// How many updates one store read fetches while looking for a page.
const CHUNK: usize = 512;

/// One replication group of the store as a RequestUpdates /
/// RequestVersionVector server sees it: a folder is served when its known
/// vector exists.
pub struct ServedGroup<'a> {
    db: &'a Database,
    group: Guid,
}

impl<'a> ServedGroup<'a> {
    /// A view of `group` in `db`.
    pub fn new(db: &'a Database, group: Guid) -> Self {
        ServedGroup { db, group }
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
    type Error = StoreError;

    fn version_vector(&self, folder: &Guid) -> Result<Option<VersionVector>, StoreError> {
        self.db.folder_vector(&self.group, folder)
    }

    fn updates_in(
        &self,
        folder: &Guid,
        vv: &VersionVector,
        kind: UpdateRequestType,
        after: Option<Gvsn>,
        limit: usize,
    ) -> Result<Vec<Update>, StoreError> {
        let mut out = Vec::new();
        let mut rest = vv.clone();
        if let Some(a) = after {
            rest.remove_through(&a);
        }
        // The store's GVSN index spans every folder: read in chunks and
        // keep this folder's updates of the wanted kind.
        while out.len() < limit && !rest.is_empty() {
            let chunk = self.db.by_gvsn(&rest, CHUNK)?;
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
        Ok(out)
    }
}

/// One replication group of the store as the engine reads a member's
/// replicated state ([`ReplicaRead`]): reads go to the database as they
/// come, nothing is loaded ahead. Build one per event over `&Database`;
/// writes go through [`Database::transaction`] in between.
///
/// Updates held aside are the store's `a/` records (see
/// [`super::Transaction::put_held_aside`]), which a pull's installer plans
/// keep. A name look-up reads every child of the directory: a name index
/// would make it one read.
pub struct StoredReplica<'a> {
    db: &'a Database,
    group: Guid,
}

impl<'a> StoredReplica<'a> {
    /// The view of `group` in `db`.
    pub fn new(db: &'a Database, group: Guid) -> Self {
        StoredReplica { db, group }
    }

    /// The live children of `dir` with their updates, sorted by UID.
    fn live_updates_in(&self, dir: &Uid) -> Result<Vec<Update>, StoreError> {
        let mut out = Vec::new();
        for uid in self.db.children(dir)? {
            match self.db.update(&uid)? {
                Some(u) if u.present && u.parent == *dir => out.push(u),
                Some(_) => {}
                None => {
                    return Err(StoreError::Inconsistent {
                        path: self.db.path().into(),
                        key: Key::Child { parent: *dir, child: uid }.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }
}

impl ReplicaRead for StoredReplica<'_> {
    type Error = StoreError;

    fn known_vector(&self, folder: &Guid) -> Result<VersionVector, StoreError> {
        self.db.known_vector(&self.group, folder)
    }

    fn update(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.db.update(uid)
    }

    fn live_child_named(&self, parent: &Uid, name: &str) -> Result<Option<Uid>, StoreError> {
        Ok(self.live_updates_in(parent)?.into_iter().find(|u| names_equal(&u.name, name)).map(|u| u.uid))
    }

    fn live_children(&self, dir: &Uid) -> Result<Vec<Uid>, StoreError> {
        Ok(self.live_updates_in(dir)?.into_iter().map(|u| u.uid).collect())
    }

    fn held_aside(&self, uid: &Uid) -> Result<Option<Update>, StoreError> {
        self.db.held_aside(uid)
    }

    fn all_held_aside(&self, folder: &Guid) -> Result<Vec<Update>, StoreError> {
        self.db.held_aside_in(folder)
    }

    fn held_aside_under(&self, parent: &Uid) -> Result<Vec<Update>, StoreError> {
        self.db.held_aside_under(parent)
    }
}

/// Merges a partner's vector into our known vector of `folder` (§3.3.4.6).
pub fn merge_known(db: &mut Database, group: &Guid, folder: &Guid, vv: &VersionVector) -> Result<(), StoreError> {
    db.transaction(|tx| {
        let mut merged = tx.known_vector(group, folder)?;
        merged.merge(vv);
        tx.set_known_vector(group, folder, &merged)
    })
}
