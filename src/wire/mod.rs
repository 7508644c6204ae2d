//! The DFS-R wire (MS-FRS2 §2): NDR encoding of the frstrans interface,
//! sans-IO. Transport and security live at the edges.
//!
//! - [`ndr`]: the NDR20 writer and hostile-input reader, GUIDs, errors.
//! - [`frstrans`]: every MS-FRS2 structure and the request/response stub
//!   data of opnums 0..=17, keyed by opnum in [`frstrans::Request`] and
//!   [`frstrans::Response`].
//! - [`dcerpc`]: connection-oriented DCE/RPC (C706 ch. 12, MS-RPCE): PDUs,
//!   the security-context seam, client and server association machines.
//! - [`frs_service`]: the FrsTransport methods as dfsrd answers them
//!   (sans-IO dispatcher over the engine's responder and store).
//! - [`rpc_server`]: the thin TCP edge dfsrd serves it on.
//! - [`rpc_client`]: the thin TCP edge of a client association.
//! - [`partner_client`]: pulling a folder from a partner — the engine's
//!   session machine driving [`rpc_client`], downloads into the staging
//!   area, updates into the store.
//! - [`mgmt`]: the DCE/RPC remote management interface every endpoint
//!   answers (C706 Appendix Q), sans-IO.

pub mod dcerpc;
pub mod frs_service;
pub mod frstrans;
pub mod mgmt;
pub mod ndr;
pub mod partner_client;
pub mod rpc_client;
pub mod rpc_server;

pub use ndr::{Error, Guid};
