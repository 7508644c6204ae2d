//! The FrsTransport server (MS-FRS2 §3.2): what dfsrd answers on
//! ncacn_ip_tcp.
//!
//! [`serve`] is the thin I/O edge — a TCP listener, one
//! [`ServerConnection`] per connection, FrsTransport requests handed to a
//! per-connection [`RpcService`] (dfsrd: the member's FrsTransport
//! service, `member::serve::FrsService`), the management interface
//! answered here. Security contexts come from the caller (dfsrd: Samba's
//! gensec), so this module knows nothing about Samba, and what the
//! methods answer is the service's.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::wire::dcerpc::{
    AuthLevel, AuthType, BindAuth, SecurityContext, SecurityFactory, ServerConfig, ServerConnection, ServerEvent,
    SyntaxId,
};
use crate::wire::mgmt::{self, mgmt_syntax, MgmtEndpoint};

use super::rpc_service::{Call, Caller, Outcome, RpcService};
pub use crate::wire::frstrans::frstrans_syntax;

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

/// Where the listener binds, as smbd would: the addresses of
/// `dfsr:rpc address` when set (comma- or space-separated); else, with
/// `bind interfaces only`, each address of smb.conf's `interfaces`; else
/// all IPv4 addresses (empty string).
pub fn listen_addresses(explicit: &str, bind_interfaces_only: bool, interfaces: &[String]) -> Vec<String> {
    let given: Vec<String> = explicit.split([',', ' ', '\t']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect();
    if !given.is_empty() {
        return given;
    }
    if bind_interfaces_only && !interfaces.is_empty() {
        let mut v: Vec<String> = Vec::new();
        for a in interfaces {
            if !v.contains(a) {
                v.push(a.clone());
            }
        }
        return v;
    }
    vec![String::new()]
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

struct Conn<S> {
    rpc: ServerConnection,
    service: S,
    /// Who the association authenticated as (anonymous until bound).
    caller: Caller,
    /// AsyncPoll calls waiting for a completion, oldest first.
    polls: VecDeque<u32>,
    writer: TcpStream,
    peer: SocketAddr,
}

/// How often connections look for database changes and time-outs (the
/// CHANGE_NOTIFY completions of AsyncPoll).
const TICK: Duration = Duration::from_millis(500);

/// How long writing an answer to one peer may block (then the connection
/// is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves FrsTransport on `listener` until the listener fails, each
/// connection's calls answered by an `S` made from `shared`.
///
/// Sockets are read by one thread per connection and accepted by one
/// more; all protocol work — DCE/RPC, the security contexts made by
/// `security`, the services and what they share — happens on the calling
/// thread, one event at a time, so a security provider that is not
/// thread-safe (gensec) is only ever used from that thread.
pub fn serve<S: RpcService>(
    listeners: Vec<TcpListener>,
    security: Box<SecurityMaker>,
    shared: S::Shared,
) -> Result<(), ServeError> {
    let Some(first) = listeners.first() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no listening socket").into());
    };
    let local_port = first.local_addr()?.port();
    let (tx, rx) = mpsc::sync_channel::<Net>(64);
    let open = Arc::new(AtomicUsize::new(0));
    // Connection ids are unique across the listeners.
    let ids = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for listener in listeners {
        let (tx, open, ids) = (tx.clone(), Arc::clone(&open), Arc::clone(&ids));
        std::thread::Builder::new().name("rpc-accept".into()).spawn(move || accept_loop(listener, tx, open, ids))?;
    }
    drop(tx);
    let security = Rc::new(RefCell::new(security));
    let mut conns: HashMap<u64, Conn<S>> = HashMap::new();
    let mut next_group = 0x0001_2b34u32;
    let start = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        let ev = match rx.recv_timeout(TICK) {
            Ok(ev) => Some(ev),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let now = start.elapsed().as_millis() as u64;
        match ev {
            None => {}
            Some(Net::AcceptFailed(e)) => return Err(e.into()),
            Some(Net::Open { id, stream, peer, local }) => {
                tracing::info!(%peer, "rpc: connection");
                let maker = Rc::clone(&security);
                let factory: SecurityFactory = Box::new(move |asked: &BindAuth| {
                    let ctx = (maker.borrow_mut())(peer, local, asked.auth_type, asked.auth_level);
                    if ctx.is_none() {
                        let (auth_type, level) = (asked.auth_type.0, asked.auth_level.0);
                        tracing::warn!(%peer, auth_type, level, "rpc: no security context");
                    }
                    ctx
                });
                let mut cfg = ServerConfig::new(served_interfaces());
                cfg.secondary_address = local_port.to_string();
                cfg.assoc_group_id = next_group;
                next_group = next_group.wrapping_add(1).max(1);
                let rpc = ServerConnection::new(cfg, factory);
                let service = S::open(&shared);
                let caller = Caller { peer, auth_type: AuthType::NONE, auth_level: AuthLevel::NONE, user: None };
                conns.insert(id, Conn { rpc, service, caller, polls: VecDeque::new(), writer: stream, peer });
            }
            Some(Net::Data(id, data)) => {
                let Some(c) = conns.get_mut(&id) else { continue };
                if handle_data(c, &data, &shared, now) {
                    if let Some(c) = conns.remove(&id) {
                        open.fetch_sub(1, Ordering::Relaxed);
                        let _ = c.writer.shutdown(Shutdown::Both);
                        tracing::info!(peer = %c.peer, "rpc: connection closed by the server");
                    }
                }
            }
            Some(Net::Closed(id)) => {
                if let Some(c) = conns.remove(&id) {
                    open.fetch_sub(1, Ordering::Relaxed);
                    tracing::info!(peer = %c.peer, "rpc: connection closed");
                }
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let mut dead = Vec::new();
            for (id, c) in conns.iter_mut() {
                if !c.polls.is_empty() {
                    c.service.tick(&shared, now);
                    if complete_polls(c) {
                        dead.push(*id);
                    }
                }
            }
            for id in dead {
                if let Some(c) = conns.remove(&id) {
                    open.fetch_sub(1, Ordering::Relaxed);
                    let _ = c.writer.shutdown(Shutdown::Both);
                }
            }
        }
    }
    Ok(())
}

/// Sends the AsyncPoll completions that are ready; returns whether the
/// connection failed.
fn complete_polls<S: RpcService>(c: &mut Conn<S>) -> bool {
    let mut sent = false;
    while !c.polls.is_empty() {
        let Some(stub) = c.service.next_completion() else { break };
        let Some(call_id) = c.polls.pop_front() else { break };
        tracing::info!(peer = %c.peer, call_id, "rpc: AsyncPoll completed");
        if let Err(e) = c.rpc.respond(call_id, &stub) {
            tracing::warn!(peer = %c.peer, error = %e, "rpc: cannot answer");
        }
        sent = true;
    }
    sent && flush(c)
}

/// Writes what the association has to send, each PDU as a record of its
/// own (`ffi::tcp::send_record`: never sharing a segment with another, as
/// packet analyzers decrypting one sealed PDU per frame need); returns
/// whether that failed.
fn flush<S>(c: &mut Conn<S>) -> bool {
    while let Some(pdu) = c.rpc.poll_transmit() {
        if let Err(e) = crate::ffi::tcp::send_record(&c.writer, &pdu) {
            tracing::warn!(peer = %c.peer, error = %e, "rpc: send failed");
            return true;
        }
    }
    false
}

/// The interfaces of dfsrd's endpoint: FrsTransport and the remote
/// management interface every DCE/RPC endpoint answers ([`mgmt`]).
fn served_interfaces() -> Vec<SyntaxId> {
    vec![frstrans_syntax(), mgmt_syntax()]
}

/// The endpoint's management interface (principal name: the host name).
fn mgmt_endpoint() -> &'static MgmtEndpoint {
    static ENDPOINT: std::sync::OnceLock<MgmtEndpoint> = std::sync::OnceLock::new();
    ENDPOINT.get_or_init(|| MgmtEndpoint::new(served_interfaces(), local_host_name()))
}

/// Feeds received bytes to the association, answers what is complete,
/// and sends the output. Returns whether to close the connection.
fn handle_data<S: RpcService>(c: &mut Conn<S>, data: &[u8], shared: &S::Shared, now: u64) -> bool {
    let mut close = false;
    if let Err(e) = c.rpc.receive(data) {
        tracing::warn!(peer = %c.peer, error = %e, "rpc: refused");
        close = true;
    }
    while let Some(ev) = c.rpc.poll_event() {
        match ev {
            ServerEvent::Bound { auth_type, auth_level, user, .. } => {
                tracing::info!(peer = %c.peer, auth_type = auth_type.0, auth_level = auth_level.0, "rpc: bound");
                c.caller = Caller { peer: c.peer, auth_type, auth_level, user };
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
                let outcome = c.service.answer(shared, &Call { opnum, stub: &stub, caller: &c.caller, now });
                let sent = match &outcome {
                    Outcome::Reply(out) => {
                        // Every FrsTransport response ends with its DWORD return value.
                        let st = out.len().checked_sub(4).map_or(0, |i| {
                            u32::from_le_bytes([out[i], out[i + 1], out[i + 2], out[i + 3]])
                        });
                        tracing::info!(peer = %c.peer, opnum, status = format_args!("{st:#x}"), "rpc: call");
                        c.rpc.respond(call_id, out)
                    }
                    Outcome::Fault(f) => {
                        tracing::info!(peer = %c.peer, opnum, fault = format_args!("{f:#x}"), "rpc: call faulted");
                        c.rpc.fault(call_id, *f)
                    }
                    Outcome::Pending => {
                        tracing::debug!(peer = %c.peer, call_id, "rpc: AsyncPoll waiting");
                        c.polls.push_back(call_id);
                        Ok(())
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
    // A call may have completed a waiting AsyncPoll (a replaced poll, an
    // UpdateCancel bumping the generation).
    let failed = complete_polls(c);
    // Flush before closing: a refusal's fault must reach the peer.
    let flush_failed = flush(c);
    close || failed || flush_failed || c.rpc.is_closing()
}

/// Connections served at once; more are closed at accept (each costs two
/// descriptors, a thread and up to 16 open staged files).
pub const MAX_CONNECTIONS: usize = 256;

fn accept_loop(listener: TcpListener, tx: mpsc::SyncSender<Net>, open: Arc<AtomicUsize>, ids: Arc<std::sync::atomic::AtomicU64>) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e)
                if e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::ConnectionAborted =>
            {
                continue
            }
            // Out of descriptors or memory: shed load, do not die.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) => {
                tracing::warn!(error = %e, "rpc: accept failed; retrying in 100 ms");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => {
                let _ = tx.send(Net::AcceptFailed(e));
                return;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::warn!(%peer, max = MAX_CONNECTIONS, "rpc: too many connections; refused");
            drop(stream);
            continue;
        }
        let id = ids.fetch_add(1, Ordering::Relaxed) + 1;
        let (Ok(local), Ok(reader)) = (stream.local_addr(), stream.try_clone()) else { continue };
        open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        // Answers are written from the protocol thread: a peer that stops
        // reading must not hold up the other connections for long.
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
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

/// The local host name (the kernel's `hostname`), dfsrd's principal name
/// for `inq_princ_name`; `localhost` if it cannot be read.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().replace('\0', ""))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_binds_where_smbd_would() {
        let ifaces = vec!["10.0.0.1".to_string(), "127.0.0.1".to_string(), "10.0.0.1".to_string()];
        assert_eq!(listen_addresses("", true, &ifaces), ["10.0.0.1", "127.0.0.1"]);
        assert_eq!(listen_addresses("", false, &ifaces), [""], "all IPv4 unless bind interfaces only");
        assert_eq!(listen_addresses(" 192.0.2.7, ::1 ", true, &ifaces), ["192.0.2.7", "::1"], "dfsr:rpc address wins");
        assert_eq!(listen_addresses("", true, &[]), [""]);
    }

    #[test]
    fn local_host_name_is_usable() {
        let h = local_host_name();
        assert!(!h.is_empty() && !h.contains('\0') && !h.contains('\n'));
    }
}
