//! The FrsTransport server (MS-FRS2 §3.2): what dfsrd answers on
//! ncacn_ip_tcp.
//!
//! - [`FrsServer`]: the method dispatcher, sans-IO — stub bytes of a call
//!   in, an [`Answer`] (response stub or fault status) out.
//! - [`serve`]: the thin I/O edge — a TCP listener, one
//!   [`ServerConnection`] per connection, requests handed to a per-connection
//!   [`FrsServer`]. Security contexts come from the caller (dfsrd: Samba's
//!   gensec), so this module knows nothing about Samba.
//!
//! # What is answered so far
//! - **CheckConnectivity** (opnum 0): `ERROR_SUCCESS` for any replica set
//!   and connection. The server has no replication configuration yet; once
//!   it has, unknown pairs get `FRS_ERROR_CONNECTION_INVALID`.
//! - **EstablishConnection** (opnum 1, §3.2.4.1.2): the upstream (our)
//!   protocol version is always [`OUR_PROTOCOL_VERSION`]; a downstream
//!   version whose major number is not 5, or the undefined `0x00050001`,
//!   gets `FRS_ERROR_INCOMPATIBLE_VERSION` (0x235A). `upstreamFlags` is 0:
//!   no RDC similarity. As for CheckConnectivity, any replica set and
//!   connection is accepted for now.
//! - **EstablishSession** (opnum 2, §3.2.4.1.3): no content set is
//!   configured yet, so every call gets `FRS_ERROR_CONTENTSET_NOT_FOUND`
//!   (0x2344), as the spec prescribes for an unknown content set.
//! - **Every other opnum** gets the RPC fault `nca_s_op_rng_error`
//!   (0x1C010002), which is what Samba's own servers send for a method
//!   they do not implement (`DCERPC_FAULT_OP_RNG_ERROR` in the pidl
//!   `_NotImplemented` stubs) and what Windows sends for Opnum14NotUsedOnWire.
//!   Stub data that does not decode gets `RPC_X_BAD_STUB_DATA`
//!   (`DCERPC_FAULT_NDR`), as Samba answers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;

use super::dcerpc::pdu::status;
use super::dcerpc::{
    AuthLevel, AuthType, Body, Pdu, PduBuffer, SecurityContext, SecurityFactory, ServerConfig, ServerConnection,
    ServerEvent, SyntaxId,
};
use super::frstrans::{
    interface_guid, protocol_version, EstablishConnectionResponse, Request, Response, StatusResponse, INTERFACE_VERSION,
};
use super::mgmt::{self, mgmt_syntax, MgmtEndpoint};

/// The protocol version this server implements (Windows Server 2012 R2).
pub const OUR_PROTOCOL_VERSION: u32 = protocol_version::WINBLUE_SERVER;

/// MS-FRS2 return values used here (§2.2.3.x, the method error tables).
pub mod frs_error {
    /// `ERROR_SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `FRS_ERROR_CONNECTION_INVALID`.
    pub const CONNECTION_INVALID: u32 = 0x2342;
    /// `FRS_ERROR_CONTENTSET_NOT_FOUND`.
    pub const CONTENTSET_NOT_FOUND: u32 = 0x2344;
    /// `FRS_ERROR_INCOMPATIBLE_VERSION`.
    pub const INCOMPATIBLE_VERSION: u32 = 0x235a;
}

/// The FrsTransport syntax (interface UUID, v1.0).
pub fn frstrans_syntax() -> SyntaxId {
    SyntaxId::new(interface_guid(), INTERFACE_VERSION.0, INTERFACE_VERSION.1)
}

/// How a call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response with this stub data (ending with the method's return value).
    Reply(Vec<u8>),
    /// An RPC fault with this status ([`status`]).
    Fault(u32),
}

/// Whether a downstream partner's protocol version can talk to us
/// (§3.2.4.1.2): same major version (5), and not the undefined 5.1.
pub fn version_compatible(downstream: u32) -> bool {
    downstream >> 16 == OUR_PROTOCOL_VERSION >> 16 && downstream != 0x0005_0001
}

/// The per-connection method dispatcher (sans-IO).
#[derive(Debug, Default)]
pub struct FrsServer {
    /// The partner's protocol version once EstablishConnection succeeded.
    negotiated: Option<u32>,
}

impl FrsServer {
    /// A dispatcher for a new connection.
    pub fn new() -> Self {
        FrsServer::default()
    }

    /// The downstream partner's protocol version, after a successful
    /// EstablishConnection.
    pub fn negotiated_version(&self) -> Option<u32> {
        self.negotiated
    }

    /// Answers one call: `stub` is the request stub data as the DCE/RPC
    /// layer delivers it (up to 3 trailing zero bytes that aligned a
    /// verification trailer are tolerated, as Samba tolerates them).
    pub fn call(&mut self, opnum: u16, stub: &[u8]) -> Answer {
        let Some(request) = decode_lenient(opnum, stub) else {
            return match opnum {
                0..=2 => Answer::Fault(status::BAD_STUB_DATA),
                _ => Answer::Fault(status::NCA_S_OP_RNG_ERROR),
            };
        };
        let response = match request {
            Request::CheckConnectivity(_) => Response::CheckConnectivity(StatusResponse { status: frs_error::SUCCESS }),
            Request::EstablishConnection(r) => {
                let ok = version_compatible(r.downstream_protocol_version);
                if ok {
                    self.negotiated = Some(r.downstream_protocol_version);
                }
                Response::EstablishConnection(EstablishConnectionResponse {
                    upstream_protocol_version: OUR_PROTOCOL_VERSION,
                    upstream_flags: 0,
                    status: if ok { frs_error::SUCCESS } else { frs_error::INCOMPATIBLE_VERSION },
                })
            }
            Request::EstablishSession(_) => {
                Response::EstablishSession(StatusResponse { status: frs_error::CONTENTSET_NOT_FOUND })
            }
            _ => return Answer::Fault(status::NCA_S_OP_RNG_ERROR),
        };
        Answer::Reply(response.to_bytes())
    }
}

/// Decodes `stub`, retrying without up to 3 trailing zero bytes.
fn decode_lenient(opnum: u16, stub: &[u8]) -> Option<Request> {
    if let Ok(r) = Request::decode(opnum, stub) {
        return Some(r);
    }
    let zeros = stub.iter().rev().take(3).take_while(|b| **b == 0).count();
    (1..=zeros).find_map(|n| Request::decode(opnum, &stub[..stub.len() - n]).ok())
}

// ---------------------------------------------------------------- I/O edge

/// Makes the server's security context for a bind from `peer` to `local`
/// with this auth type and level; `None` refuses the type.
pub type SecurityMaker = dyn FnMut(SocketAddr, SocketAddr, AuthType, AuthLevel) -> Option<Box<dyn SecurityContext>>;

/// Why [`serve`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// Opens the listening socket on `address` (an IP address; empty means
/// all IPv4 addresses) and `port`.
pub fn listen(address: &str, port: u16) -> std::io::Result<TcpListener> {
    let ip: std::net::IpAddr = if address.trim().is_empty() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        address.trim().parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{address:?} is not an IP address"))
        })?
    };
    TcpListener::bind((ip, port))
}

/// What the I/O threads tell the protocol thread.
enum Net {
    Open { id: u64, stream: TcpStream, peer: SocketAddr, local: SocketAddr },
    Data(u64, Vec<u8>),
    Closed(u64),
    AcceptFailed(std::io::Error),
}

struct Conn {
    rpc: ServerConnection,
    frs: FrsServer,
    writer: TcpStream,
    peer: SocketAddr,
    /// Frames seen before the association is bound, to learn the level a
    /// bind asks for before its security context is made (the
    /// connection's factory only gets the auth type; gensec needs both).
    peek: Option<PduBuffer>,
    level: Rc<Cell<AuthLevel>>,
}

/// Serves FrsTransport on `listener` until the listener fails.
///
/// Sockets are read by one thread per connection and accepted by one
/// more; all protocol work — DCE/RPC, the security contexts made by
/// `security`, the dispatcher — happens on the calling thread, one event
/// at a time, so a security provider that is not thread-safe (gensec) is
/// only ever used from that thread.
pub fn serve(listener: TcpListener, security: Box<SecurityMaker>) -> Result<(), ServeError> {
    let local_port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::sync_channel::<Net>(64);
    std::thread::Builder::new().name("rpc-accept".into()).spawn(move || accept_loop(listener, tx))?;
    let security = Rc::new(RefCell::new(security));
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_group = 0x0001_2b34u32;
    for ev in rx {
        match ev {
            Net::AcceptFailed(e) => return Err(e.into()),
            Net::Open { id, stream, peer, local } => {
                tracing::info!(%peer, "rpc: connection");
                let level = Rc::new(Cell::new(AuthLevel::NONE));
                let (lvl, maker) = (Rc::clone(&level), Rc::clone(&security));
                let factory: SecurityFactory = Box::new(move |auth_type| {
                    let ctx = (maker.borrow_mut())(peer, local, auth_type, lvl.get());
                    if ctx.is_none() {
                        tracing::warn!(%peer, auth_type = auth_type.0, level = lvl.get().0, "rpc: no security context");
                    }
                    ctx
                });
                let mut cfg = ServerConfig::new(served_interfaces());
                cfg.secondary_address = local_port.to_string();
                cfg.assoc_group_id = next_group;
                next_group = next_group.wrapping_add(1).max(1);
                let rpc = ServerConnection::new(cfg, factory);
                let peek = Some(PduBuffer::new());
                conns.insert(id, Conn { rpc, frs: FrsServer::new(), writer: stream, peer, peek, level });
            }
            Net::Data(id, data) => {
                let Some(c) = conns.get_mut(&id) else { continue };
                if handle_data(c, &data) {
                    if let Some(c) = conns.remove(&id) {
                        let _ = c.writer.shutdown(Shutdown::Both);
                        tracing::info!(peer = %c.peer, "rpc: connection closed by the server");
                    }
                }
            }
            Net::Closed(id) => {
                if let Some(c) = conns.remove(&id) {
                    tracing::info!(peer = %c.peer, "rpc: connection closed");
                }
            }
        }
    }
    Ok(())
}

/// The interfaces of dfsrd's endpoint: FrsTransport and the remote
/// management interface every DCE/RPC endpoint answers ([`mgmt`]).
fn served_interfaces() -> Vec<SyntaxId> {
    vec![frstrans_syntax(), mgmt_syntax()]
}

/// The endpoint's management interface (principal name: the host name).
fn mgmt_endpoint() -> &'static MgmtEndpoint {
    static ENDPOINT: std::sync::OnceLock<MgmtEndpoint> = std::sync::OnceLock::new();
    ENDPOINT.get_or_init(|| MgmtEndpoint::new(served_interfaces(), mgmt::local_host_name()))
}

/// Learns the auth level of binds and alter_contexts not yet processed.
fn peek_level(c: &mut Conn, data: &[u8]) {
    let Some(buf) = c.peek.as_mut() else { return };
    buf.push(data);
    while let Ok(Some((_, frame))) = buf.next_frame() {
        if let Ok(Pdu { body: Body::Bind(_) | Body::AlterContext(_), auth: Some(t), .. }) = Pdu::decode(&frame) {
            c.level.set(t.auth_level);
        }
    }
}

/// Feeds received bytes to the association, answers what is complete,
/// and sends the output. Returns whether to close the connection.
fn handle_data(c: &mut Conn, data: &[u8]) -> bool {
    peek_level(c, data);
    let mut close = false;
    if let Err(e) = c.rpc.receive(data) {
        tracing::warn!(peer = %c.peer, error = %e, "rpc: refused");
        close = true;
    }
    while let Some(ev) = c.rpc.poll_event() {
        match ev {
            ServerEvent::Bound { auth_type, auth_level, .. } => {
                c.peek = None;
                tracing::info!(peer = %c.peer, auth_type = auth_type.0, auth_level = auth_level.0, "rpc: bound");
            }
            ServerEvent::Request { call_id, opnum, stub, interface, .. } if interface == mgmt_syntax() => {
                let sent = match mgmt_endpoint().call(opnum, &stub) {
                    mgmt::Answer::Reply(out) => {
                        tracing::info!(peer = %c.peer, opnum, "rpc: mgmt call");
                        c.rpc.respond(call_id, &out)
                    }
                    mgmt::Answer::Fault(f) => {
                        tracing::info!(peer = %c.peer, opnum, fault = format_args!("{f:#x}"), "rpc: mgmt call faulted");
                        c.rpc.fault(call_id, f)
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(peer = %c.peer, error = %e, "rpc: cannot answer");
                }
            }
            ServerEvent::Request { call_id, opnum, stub, .. } => {
                let answer = c.frs.call(opnum, &stub);
                let sent = match &answer {
                    Answer::Reply(out) => {
                        let st = Response::decode(opnum, out).map(|r| r.status()).unwrap_or_default();
                        tracing::info!(peer = %c.peer, opnum, status = format_args!("{st:#x}"), "rpc: call");
                        c.rpc.respond(call_id, out)
                    }
                    Answer::Fault(f) => {
                        tracing::info!(peer = %c.peer, opnum, fault = format_args!("{f:#x}"), "rpc: call faulted");
                        c.rpc.fault(call_id, *f)
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(peer = %c.peer, error = %e, "rpc: cannot answer");
                }
            }
            ServerEvent::Orphaned { call_id } | ServerEvent::Cancel { call_id } => {
                tracing::debug!(peer = %c.peer, call_id, "rpc: call orphaned or cancelled");
            }
        }
    }
    let out = c.rpc.drain_transmit();
    if !out.is_empty() {
        if let Err(e) = c.writer.write_all(&out) {
            tracing::warn!(peer = %c.peer, error = %e, "rpc: send failed");
            close = true;
        }
    }
    close || c.rpc.is_closing()
}

fn accept_loop(listener: TcpListener, tx: mpsc::SyncSender<Net>) {
    let mut next_id = 0u64;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e)
                if e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::ConnectionAborted =>
            {
                continue
            }
            Err(e) => {
                let _ = tx.send(Net::AcceptFailed(e));
                return;
            }
        };
        next_id += 1;
        let id = next_id;
        let (Ok(local), Ok(reader)) = (stream.local_addr(), stream.try_clone()) else { continue };
        let _ = stream.set_nodelay(true);
        if tx.send(Net::Open { id, stream, peer, local }).is_err() {
            return;
        }
        let tx2 = tx.clone();
        let spawned =
            std::thread::Builder::new().name(format!("rpc-conn-{id}")).spawn(move || read_loop(id, reader, tx2));
        if spawned.is_err() {
            // Without a reader the connection is dead: the protocol
            // thread drops it (and the socket).
            let _ = tx.send(Net::Closed(id));
        }
    }
}

fn read_loop(id: u64, mut stream: TcpStream, tx: mpsc::SyncSender<Net>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(Net::Data(id, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = tx.send(Net::Closed(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frstrans::{CheckConnectivityRequest, EstablishConnectionRequest, EstablishSessionRequest};
    use crate::wire::Guid;

    fn reply(a: Answer, opnum: u16) -> Response {
        match a {
            Answer::Reply(b) => Response::decode(opnum, &b).expect("a decodable response"),
            Answer::Fault(f) => panic!("fault {f:#x}"),
        }
    }

    #[test]
    fn check_connectivity_succeeds() {
        let mut s = FrsServer::new();
        let req = Request::CheckConnectivity(CheckConnectivityRequest::default()).to_bytes();
        assert_eq!(reply(s.call(0, &req), 0).status(), 0);
        // The alignment zeros before a verification trailer are tolerated.
        let mut padded = req.clone();
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(reply(s.call(0, &padded), 0).status(), 0);
    }

    #[test]
    fn establish_connection_negotiates() {
        let mut s = FrsServer::new();
        for (v, ok) in [
            (protocol_version::LONGHORN_SERVER, true),
            (protocol_version::WIN8_SERVER, true),
            (protocol_version::WINBLUE_SERVER, true),
            (0x0005_0005, true),
            (0x0005_0001, false),
            (0x0004_0002, false),
            (0x0006_0000, false),
        ] {
            let req = Request::EstablishConnection(EstablishConnectionRequest {
                replica_set_id: Guid::default(),
                connection_id: Guid::default(),
                downstream_protocol_version: v,
                downstream_flags: 0,
            });
            let Response::EstablishConnection(r) = reply(s.call(1, &req.to_bytes()), 1) else { panic!("wrong type") };
            assert_eq!(r.upstream_protocol_version, OUR_PROTOCOL_VERSION, "{v:#x}");
            assert_eq!(r.upstream_flags, 0);
            assert_eq!(r.status, if ok { 0 } else { frs_error::INCOMPATIBLE_VERSION }, "{v:#x}");
        }
        assert_eq!(s.negotiated_version(), Some(0x0005_0005));
    }

    #[test]
    fn unknown_content_set_and_unimplemented_opnums() {
        let mut s = FrsServer::new();
        let req = Request::EstablishSession(EstablishSessionRequest::default()).to_bytes();
        assert_eq!(reply(s.call(2, &req), 2).status(), frs_error::CONTENTSET_NOT_FOUND);
        assert_eq!(s.call(2, &[1, 2, 3]), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(s.call(5, &[0; 4]), Answer::Fault(status::NCA_S_OP_RNG_ERROR));
        assert_eq!(s.call(14, &[]), Answer::Fault(status::NCA_S_OP_RNG_ERROR));
        assert_eq!(s.call(99, &[]), Answer::Fault(status::NCA_S_OP_RNG_ERROR));
    }
}
