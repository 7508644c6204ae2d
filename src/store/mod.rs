//! Persistence of the replication engine's state in a TDB file
//! (`<state directory>/dfsr/dfsr.tdb`): updates by UID with their GVSN
//! index and the lists of each directory's children and each folder's
//! updates (linked through their records, so a listing costs what it
//! lists), known version vectors, our database GUID and
//! originator counters, download/staging state, ConflictAndDeleted
//! records, and updates held aside until their parent arrives (listed by
//! folder and by the parent they wait for). Every logical change is one TDB transaction, so a crash
//! (even mid-commit) leaves all of it or none.
//!
//! - [`keys`]: the key layout (prefix + fixed-size binary ids, big-endian
//!   versions so sorted keys are in GVSN order).
//! - [`codec`]: the versioned binary value encoding, hostile-input safe.
//! - [`database`]: the [`Database`], its transactions, reads, `check` and
//!   `dump`.
//! - [`folder_view`]: the engine's read traits over the database (a served
//!   group for the server, a stored replica for pulls and installs) and
//!   the writes of a pull (a received update, a merged vector).
//! - [`staging_area`]: where staged files live, named by version.
//! - [`staged_file`]: staged files written from local files (the I/O half of
//!   [`crate::staging::writer`]).
//! - [`config_store`]: the replication configuration (groups, folders,
//!   members, connections, memberships) that `dfsrctl replication` edits.
//! - [`placed`]: what the meet has placed in each share (version, parent,
//!   name), to know what is left to install, move or remove.
//! - [`local_commit`]: local changes committed with their staged files
//!   (placed first, removed again if the transaction fails).

pub mod codec;
pub mod config_store;
pub mod database;
pub mod folder_view;
pub mod keys;
pub mod journal;
pub mod local_commit;
pub mod placed;
pub mod staged_file;
pub mod staging_area;
#[cfg(test)]
mod tests;

pub use codec::{DecodeError, DownloadState, OriginatorState, RecordType};
pub use database::{
    Counts, Database, DumpEntry, DumpError, Inconsistency, StoreError, Transaction, DIR_NAME, FILE_NAME, SCHEMA_VERSION,
};
pub use folder_view::{merge_known, ServedGroup, StoredReplica};
pub use keys::Key;
pub use staging_area::StagingArea;
