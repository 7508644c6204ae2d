//! Connection-oriented DCE/RPC (C706 ch. 12 with the MS-RPCE §2.2.2
//! extensions), the transport of MS-FRS2 (ncacn_ip_tcp, packet privacy),
//! sans-IO.
//!
//! - [`pdu`]: every CO PDU encoded and decoded, the auth trailer, and
//!   [`pdu::PduBuffer`] to cut a stream into fragments.
//! - [`auth`]: [`auth::SecurityContext`], the seam to Samba's gensec (the
//!   exact seal/sign byte ranges are documented there), and a toy
//!   implementation for tests.
//! - [`connection`]: client and server association state machines —
//!   bind/alter/auth3 flows, fragmentation, reassembly, faults.
//! - [`vt`]: the security verification trailer (MS-RPCE §2.2.2.13) that
//!   clients append to request stubs and servers check and strip.

pub mod auth;
pub mod connection;
pub mod pdu;
pub mod vt;

#[cfg(test)]
mod tests;

pub use auth::{SecurityContext, SecurityError, Update};
pub use connection::{
    BindRejection, ClientConfig, ClientConnection, ClientEvent, SecurityFactory, ServerConfig, ServerConnection,
    ServerEvent,
};
pub use pdu::{AuthLevel, AuthTrailer, AuthType, Body, Header, PacketType, Pdu, PduBuffer, SyntaxId};
