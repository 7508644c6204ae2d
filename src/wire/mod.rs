//! The DFS-R wire (MS-FRS2 §2): NDR encoding of the frstrans interface,
//! sans-IO. Transport and security live at the edges.
//!
//! - [`ndr`]: the NDR20 writer and hostile-input reader, GUIDs, errors.
//! - [`frstrans`]: every MS-FRS2 structure and the request/response stub
//!   data of opnums 0..=17, keyed by opnum in [`frstrans::Request`] and
//!   [`frstrans::Response`].
//! - [`dcerpc`]: connection-oriented DCE/RPC (C706 ch. 12, MS-RPCE): PDUs,
//!   the security-context seam, client and server association machines.
//! - [`mgmt`]: the DCE/RPC remote management interface every endpoint
//!   answers (C706 Appendix Q), sans-IO.
//! - [`rpc_server`]: the FrsTransport server — the method dispatcher
//!   (sans-IO) and the thin TCP edge dfsrd serves it on.

pub mod dcerpc;
pub mod frstrans;
pub mod mgmt;
pub mod ndr;
pub mod rpc_server;

pub use ndr::{Error, Guid};
