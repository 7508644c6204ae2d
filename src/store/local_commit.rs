//! Committing local changes with their staged files: the protocol that
//! keeps the database and the staging area in step (first used by
//! `dfsrctl db seed`; the member's change capture commits the same way).
//!
//! 1. Each staged file was written under a temporary name in the staging
//!    area; it is renamed to its version's name ([`StagingArea::path_of`])
//!    before the transaction, refusing a name that exists (someone else's
//!    content).
//! 2. One transaction then stores the updates, merges their versions into
//!    the folder's known vector, and stores our originator counter; every
//!    other folder's counter is raised to it, since one database GUID
//!    numbers the changes of all folders.
//! 3. If anything fails, the temporaries and the placed files are removed:
//!    the database and the staging area are as before.

use super::{Database, OriginatorState, StagingArea, StoreError};
use crate::engine::ids::{Guid, Gvsn};
use crate::engine::local_change::Originator;
use crate::engine::update::Update;
use std::path::PathBuf;

/// One local change: the update and its staged file under a temporary
/// name (None for a tombstone, which has no content).
#[derive(Debug, Clone)]
pub struct LocalChange {
    pub update: Update,
    pub staged_temp: Option<PathBuf>,
    /// The version this change replaces, None for a new UID: the commit
    /// is refused if the database holds something else for the UID.
    pub replaces: Option<Gvsn>,
}

/// Changes of one folder made by our originator.
#[derive(Debug, Clone)]
pub struct LocalChanges {
    /// Our database GUID; stored if the database has none yet.
    pub database_guid: Guid,
    pub group: Guid,
    pub folder: Guid,
    pub changes: Vec<LocalChange>,
    /// The folder's originator counter after these changes.
    pub originator: OriginatorState,
}

/// Why a commit of local changes was refused; nothing was kept.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{path}: a staged file of that version exists already")]
    StagedExists { path: PathBuf },
    #[error("{path}: {source}")]
    Staging { path: PathBuf, source: std::io::Error },
    #[error("{uid}: the database holds {held:?}, the change replaces {expected:?}")]
    Changed { uid: crate::engine::ids::Uid, held: Option<Gvsn>, expected: Option<Gvsn> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Database {
    /// Commits `c` with its staged files (see the module doc).
    pub fn commit_local_changes(&mut self, area: &StagingArea, c: &LocalChanges) -> Result<(), CommitError> {
        let remove_temps = || {
            for t in c.changes.iter().filter_map(|ch| ch.staged_temp.as_ref()) {
                let _ = std::fs::remove_file(t);
            }
        };
        let remove_placed = |placed: &[PathBuf]| {
            for p in placed {
                let _ = std::fs::remove_file(p);
            }
        };
        let mut placed = Vec::new();
        for ch in &c.changes {
            let Some(temp) = &ch.staged_temp else { continue };
            let dest = area.path_of(&ch.update.gvsn);
            let r = if dest.exists() {
                Err(CommitError::StagedExists { path: dest.clone() })
            } else {
                std::fs::rename(temp, &dest).map_err(|source| CommitError::Staging { path: dest.clone(), source })
            };
            if let Err(e) = r {
                remove_temps();
                remove_placed(&placed);
                return Err(e);
            }
            placed.push(dest);
        }
        let path = self.path().to_path_buf();
        let others = match self.originators() {
            Ok(o) => o,
            Err(e) => {
                remove_placed(&placed);
                return Err(e.into());
            }
        };
        let committed = self.transaction(|tx| -> Result<(), CommitError> {
            if tx.database_guid()?.is_none() {
                tx.set_database_guid(&c.database_guid)?;
            }
            let mut vector = tx.known_vector(&c.group, &c.folder)?;
            for ch in &c.changes {
                let u = &ch.update;
                let held = tx.update(&u.uid)?.map(|old| old.gvsn);
                if held != ch.replaces {
                    // A new UID that is taken means a reused counter.
                    return Err(match (held, ch.replaces) {
                        (Some(_), None) => StoreError::GvsnTaken { path: path.clone(), gvsn: u.gvsn, uid: u.uid, by: u.uid }.into(),
                        _ => CommitError::Changed { uid: u.uid, held, expected: ch.replaces },
                    });
                }
                tx.put_update(u)?;
                vector.insert(u.gvsn);
            }
            tx.set_known_vector(&c.group, &c.folder, &vector)?;
            tx.set_originator(&c.folder, &c.originator)?;
            for (f, s) in &others {
                if *f != c.folder && s.next_version < c.originator.next_version {
                    tx.set_originator(f, &OriginatorState { next_version: c.originator.next_version, last_clock: s.last_clock })?;
                }
            }
            Ok(())
        });
        if committed.is_err() {
            remove_placed(&placed);
        }
        committed
    }
}

impl Database {
    /// Our originator for `folder` as the database left it: our database
    /// GUID (`fresh` when none is stored yet) and counters above what any
    /// folder handed out, since one database GUID numbers every folder's
    /// changes. Store it back with [`super::Transaction::commit_originator`].
    pub fn resume_originator(&self, folder: Guid, fresh: Guid) -> Result<Originator, StoreError> {
        let db_guid = self.database_guid()?.unwrap_or(fresh);
        let all = self.originators()?;
        let next = all.iter().map(|(_, s)| s.next_version).max().unwrap_or(0);
        let clock = all.iter().map(|(_, s)| s.last_clock).max().unwrap_or(0);
        Ok(Originator::resume(db_guid, folder, next, clock))
    }
}

impl super::Transaction<'_> {
    /// Stores `o`'s counters for its folder (and its database GUID when
    /// none is stored), raising every other folder's counter to it.
    pub fn commit_originator(&mut self, o: &Originator) -> Result<(), StoreError> {
        if self.database_guid()?.is_none() {
            self.set_database_guid(&o.db())?;
        }
        let state = OriginatorState { next_version: o.next_version(), last_clock: o.last_clock() };
        self.set_originator(&o.content_set(), &state)?;
        for (f, s) in self.originators()? {
            if f != o.content_set() && s.next_version < state.next_version {
                self.set_originator(&f, &OriginatorState { next_version: state.next_version, last_clock: s.last_clock })?;
            }
        }
        Ok(())
    }
}
