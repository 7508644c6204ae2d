//! The DFS-R wire (MS-FRS2 §2): codecs and protocol state machines, sans-IO
//! (no files, sockets, threads or clocks; `tests/layers.rs` checks). The
//! sockets are in [`crate::net`]; what dfsrd answers and how a folder is
//! pulled are the member's ([`crate::member`]).
//!
//! - [`ndr`]: the NDR20 writer and hostile-input reader, GUIDs, errors.
//! - [`frstrans`]: every MS-FRS2 structure and the request/response stub
//!   data of opnums 0..=17, keyed by opnum in [`frstrans::Request`] and
//!   [`frstrans::Response`]; the FRS return values ([`frstrans::frs_error`])
//!   and version negotiation.
//! - [`dcerpc`]: connection-oriented DCE/RPC (C706 ch. 12, MS-RPCE): PDUs,
//!   the security-context seam, client and server association machines.
//! - [`mgmt`]: the DCE/RPC remote management interface every endpoint
//!   answers (C706 Appendix Q), sans-IO.

pub mod dcerpc;
pub mod frstrans;
pub mod mgmt;
pub mod ndr;

pub use ndr::{Error, Guid};
