//! Sockets and threads of the MS-FRS2 wire: the thin I/O edges around the
//! sans-IO DCE/RPC machines of [`crate::wire`].
//!
//! - [`rpc_server`]: dfsrd's TCP listener; one protocol thread runs every
//!   association and hands requests to the member's FrsTransport service
//!   ([`crate::member::serve`]).
//! - [`rpc_client`]: the TCP edge of one client association.

pub mod rpc_client;
pub mod rpc_server;
