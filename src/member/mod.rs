//! The DFS-R member: the application layer over the engine, the wire, the
//! store, staging and the meet. Today it serves replicated folders and
//! pulls one from a partner on request; the member that keeps its folders
//! in step by itself builds on these.
//!
//! - [`serve`]: the FrsTransport methods as dfsrd answers them (MS-FRS2
//!   §3.2.4.1), over the engine's responder, the store and the staging area.
//! - [`pull`]: pulling a folder from a partner — the engine's session
//!   machine driving a [`crate::net::rpc_client`] association, downloads
//!   into the staging area, the engine's installer's plans into the store.
//! - [`children`]: when dfsrd starts its children (the listener) again.

pub mod children;
pub mod credentials;
pub mod place;
pub mod pre_existing;
pub mod pull;
pub mod run;
pub mod scan;
pub mod vfs_reader;
pub mod serve;
pub mod status;
