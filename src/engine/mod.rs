//! The DFS-R replication engine (MS-FRS2 §3.3.4.6), sans-IO: identifiers,
//! version vectors, update records, the conflict rules, ancestral ordering
//! and partner sessions. Nothing here knows about Samba or sockets, and
//! nothing reads a file or a clock (`tests/layers.rs` checks); the
//! simulation that drives it is [`crate::sim`] (feature `sim`).
//!
//! - [`ids`]: GUIDs (wire order, byte-wise order, version 4 from random
//!   bytes), UIDs, GVSNs, reserved versions.
//! - [`version_vector`]: version chain vectors as canonical ranges.
//! - [`update`]: the FRS_UPDATE record, name validation, group / folder /
//!   member configuration.
//! - [`rules`]: the winner order, decisions, name conflicts, tombstones,
//!   ConflictAndDeleted records (§3.3.4.6.2).
//! - [`ordering`]: a received batch in ancestral order, with orphans and
//!   cycles held apart, over the installed context read before it.
//! - [`local_change`]: changes made on this member turned into new updates.
//! - [`replica`]: the one fallible read trait over a member's state (the
//!   installer, the originator and the client session read through it).
//! - [`install`]: the installer's planner — received updates into installs,
//!   removals, holds, retries, cycle breaks, name-conflict and dangling
//!   child resolutions, ConflictAndDeleted records.
//! - [`rng`]: the one deterministic PRNG (SplitMix64).
//! - [`session`]: the partner session machines (client `PartnerSync`,
//!   server `Responder`, §3.2, §3.3).

pub mod ids;
pub mod install;
pub mod local_change;
pub mod ordering;
pub mod replica;
pub mod rng;
pub mod rules;
pub mod session;
pub mod update;
pub mod version_vector;

pub use ids::{Guid, Gvsn, Uid};
pub use update::{FileTime, Update};
pub use version_vector::VersionVector;
