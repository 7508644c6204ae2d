//! What dfsrd's RPC server hands the calls of an association to: one
//! [`RpcService`] per connection, made from state shared by all of them.
//! The server ([`super::rpc_server`]) knows the sockets and DCE/RPC; the
//! service knows what the methods answer (dfsrd: the member's
//! FrsTransport service), so the edge does not depend on the application.

use std::net::SocketAddr;

use crate::wire::dcerpc::{AuthLevel, AuthType};

/// Who is calling: the peer and what its association authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The association's mechanism ([`AuthType::NONE`] without auth).
    pub auth_type: AuthType,
    /// The association's level.
    pub auth_level: AuthLevel,
    /// The authenticated account (`DOMAIN\user`), when the mechanism says.
    pub user: Option<String>,
}

/// One complete, verified request of the served interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// Operation number.
    pub opnum: u16,
    /// The request's stub data, unsealed, without the verification trailer.
    pub stub: &'a [u8],
    /// Who asks.
    pub caller: &'a Caller,
    /// The server's monotonic clock, in milliseconds.
    pub now: u64,
}

/// How a call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this stub data.
    Reply(Vec<u8>),
    /// An RPC fault with this status (`wire::dcerpc::pdu::status`).
    Fault(u32),
    /// The answer comes later, from [`RpcService::next_completion`], in
    /// the order of the pending calls.
    Pending,
}

/// The per-connection answerer of the served interface. Everything runs
/// on the server's protocol thread, one event at a time.
pub trait RpcService: Sized {
    /// What every connection's service answers from (dfsrd: the database,
    /// the staging area, who may replicate).
    type Shared;

    /// The service of a new connection.
    fn open(shared: &Self::Shared) -> Self;

    /// Answers one call.
    fn answer(&mut self, shared: &Self::Shared, call: &Call<'_>) -> Outcome;

    /// Time passed (or the shared state may have changed) while calls are
    /// pending: a chance to complete them.
    fn tick(&mut self, shared: &Self::Shared, now: u64);

    /// The stub data of the next completed pending call, oldest first.
    fn next_completion(&mut self) -> Option<Vec<u8>>;
}
