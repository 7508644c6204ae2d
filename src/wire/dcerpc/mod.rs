//! Connection-oriented DCE/RPC (C706 ch. 12 with the MS-RPCE §2.2.2
//! extensions), the transport of MS-FRS2 (ncacn_ip_tcp, packet privacy),
//! sans-IO.
//!
//! - [`pdu`]: every CO PDU encoded and decoded, the auth trailer, and
//!   [`pdu::PduBuffer`] to cut a stream into fragments.
//! - [`auth`]: [`auth::SecurityContext`], the seam to Samba's gensec (the
//!   exact seal/sign byte ranges are documented there), and a toy
//!   implementation for tests.
//! - [`client`]: the client association state machine — bind,
//!   alter_context and auth3 legs, calls, reassembly of responses.
//! - [`server`]: the server association state machine — negotiation,
//!   Samba's refusals, reassembly of requests, responses and faults.
//! - [`association`]: what both machines share — the error type, an
//!   association's security state, signing/sealing stub fragments.
//! - [`vt`]: the security verification trailer (MS-RPCE §2.2.2.13) that
//!   clients append to request stubs and servers check and strip.

pub mod association;
pub mod auth;
pub mod client;
pub mod pdu;
pub mod server;
pub mod vt;

#[cfg(test)]
mod tests;

pub use auth::{SecurityContext, SecurityError, Update};
pub use client::{BindRejection, ClientConfig, ClientConnection, ClientEvent};
pub use server::{BindAuth, SecurityFactory, ServerConfig, ServerConnection, ServerEvent};
pub use pdu::{AuthLevel, AuthTrailer, AuthType, Body, Header, PacketType, Pdu, PduBuffer, SyntaxId};
