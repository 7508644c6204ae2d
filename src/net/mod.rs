//! Sockets and threads of the MS-FRS2 wire: the thin I/O edges around the
//! sans-IO DCE/RPC machines of [`crate::wire`].
//!
//! - [`rpc_server`]: dfsrd's TCP listener; one protocol thread runs every
//!   association and hands requests to a per-connection service.
//! - [`rpc_service`]: that service's seam ([`rpc_service::RpcService`]),
//!   which the member's FrsTransport service implements, so this edge does
//!   not depend on the application.
//! - [`rpc_client`]: the TCP edge of one client association.

pub mod rpc_client;
pub mod rpc_server;
pub mod rpc_service;
