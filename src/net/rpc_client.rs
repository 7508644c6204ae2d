//! The thin I/O edge of an FrsTransport client: one TCP connection, one
//! [`ClientConnection`] association, calls started and completed by call
//! id so that several can be outstanding at once (an AsyncPoll waits while
//! RequestUpdates and downloads proceed, §3.3.4.5).

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::wire::dcerpc::{AuthLevel, ClientConfig, ClientConnection, ClientEvent, SecurityContext};
use crate::wire::frstrans::frstrans_syntax;

/// Why the connection failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcClientError {
    /// Connecting or reading/writing the socket.
    #[error("{peer}: {source}")]
    Io {
        /// Where to.
        peer: String,
        /// Why.
        source: std::io::Error,
    },
    /// The DCE/RPC association failed (a protocol error, a refused bind).
    #[error("{peer}: {reason}")]
    Rpc {
        /// Where to.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Nothing arrived in time.
    #[error("{peer}: no answer within {0:?}", .timeout)]
    Timeout {
        /// Where to.
        peer: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The server closed the connection.
    #[error("{peer}: connection closed by the server")]
    Closed {
        /// Where to.
        peer: String,
    },
}

/// A completed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The response stub data.
    Reply(Vec<u8>),
    /// An RPC fault status.
    Fault(u32),
}

/// A bound FrsTransport association over TCP.
pub struct RpcClient {
    peer: String,
    sock: TcpStream,
    conn: ClientConnection,
    buf: Vec<u8>,
    /// Bytes of stub data sent and received (for progress reports).
    pub stub_bytes: u64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("peer", &self.peer).finish()
    }
}

impl RpcClient {
    /// Connects to `host:port` and binds FrsTransport at `level` with
    /// `security` (required above [`AuthLevel::NONE`]); waits up to
    /// `timeout` for the bind to complete.
    pub fn connect(
        host: &str,
        port: u16,
        security: Option<Box<dyn SecurityContext>>,
        level: AuthLevel,
        timeout: Duration,
    ) -> Result<Self, RpcClientError> {
        Self::connect_with_mss(host, port, security, level, timeout, None)
    }

    /// [`Self::connect`] with TCP segments limited to `mss` bytes both ways
    /// (for packet captures, see `ffi::tcp`).
    pub fn connect_with_mss(
        host: &str,
        port: u16,
        security: Option<Box<dyn SecurityContext>>,
        level: AuthLevel,
        timeout: Duration,
        mss: Option<u32>,
    ) -> Result<Self, RpcClientError> {
        let peer = format!("{host}:{port}");
        let io = |source| RpcClientError::Io { peer: peer.clone(), source };
        let sock = match mss {
            Some(m) => crate::ffi::tcp::connect_with_mss(host, port, m).map_err(io)?,
            None => TcpStream::connect((host, port)).map_err(io)?,
        };
        sock.set_nodelay(true).map_err(io)?;
        let mut cfg = ClientConfig::new(frstrans_syntax());
        cfg.auth_level = level;
        let conn = ClientConnection::new(cfg, security)
            .map_err(|e| RpcClientError::Rpc { peer: peer.clone(), reason: e.to_string() })?;
        let mut c = RpcClient { peer, sock, conn, buf: vec![0u8; 1 << 18], stub_bytes: 0 };
        let deadline = Instant::now() + timeout;
        loop {
            c.flush()?;
            if c.conn.is_bound() {
                return Ok(c);
            }
            c.read_some(deadline, timeout)?;
            while let Some(ev) = c.conn.poll_event() {
                match ev {
                    ClientEvent::Bound { .. } => return Ok(c),
                    ClientEvent::BindRejected(r) => {
                        return Err(RpcClientError::Rpc { peer: c.peer.clone(), reason: r.to_string() })
                    }
                    ClientEvent::Shutdown => return Err(RpcClientError::Closed { peer: c.peer.clone() }),
                    _ => {}
                }
            }
        }
    }

    /// The peer, `host:port`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Whether an answer (or the end of the connection) is waiting to be
    /// read, without reading it.
    pub fn readable(&self) -> bool {
        if self.sock.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let r = self.sock.peek(&mut b);
        let _ = self.sock.set_nonblocking(false);
        match r {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    /// Starts a call; returns its call id.
    pub fn start(&mut self, opnum: u16, stub: &[u8]) -> Result<u32, RpcClientError> {
        let id = self.conn.call(opnum, stub, None).map_err(|e| self.rpc_err(e))?;
        self.stub_bytes += stub.len() as u64;
        self.flush()?;
        Ok(id)
    }

    /// Waits up to `timeout` for calls to complete; returns those that did
    /// (possibly none when the time ran out and `Ok(vec![])`).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<(u32, Completion)>, RpcClientError> {
        let deadline = Instant::now() + timeout;
        let mut done = Vec::new();
        loop {
            while let Some(ev) = self.conn.poll_event() {
                match ev {
                    ClientEvent::Response { call_id, stub } => {
                        self.stub_bytes += stub.len() as u64;
                        done.push((call_id, Completion::Reply(stub)));
                    }
                    ClientEvent::Fault { call_id, status, .. } => done.push((call_id, Completion::Fault(status))),
                    ClientEvent::Shutdown => return Err(RpcClientError::Closed { peer: self.peer.clone() }),
                    ClientEvent::BindRejected(r) => {
                        return Err(RpcClientError::Rpc { peer: self.peer.clone(), reason: r.to_string() })
                    }
                    ClientEvent::Bound { .. } => {}
                }
            }
            if !done.is_empty() {
                return Ok(done);
            }
            if Instant::now() >= deadline {
                return Ok(done);
            }
            match self.read_some(deadline, timeout) {
                Ok(()) => {}
                Err(RpcClientError::Timeout { .. }) => return Ok(done),
                Err(e) => return Err(e),
            }
            self.flush()?;
        }
    }

    fn rpc_err(&self, e: impl std::fmt::Display) -> RpcClientError {
        RpcClientError::Rpc { peer: self.peer.clone(), reason: e.to_string() }
    }

    /// Sends each queued PDU as a record of its own (`ffi::tcp::send_record`).
    fn flush(&mut self) -> Result<(), RpcClientError> {
        while let Some(pdu) = self.conn.poll_transmit() {
            crate::ffi::tcp::send_record(&self.sock, &pdu)
                .map_err(|source| RpcClientError::Io { peer: self.peer.clone(), source })?;
        }
        Ok(())
    }

    fn read_some(&mut self, deadline: Instant, timeout: Duration) -> Result<(), RpcClientError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RpcClientError::Timeout { peer: self.peer.clone(), timeout });
        }
        let io = |source| RpcClientError::Io { peer: self.peer.clone(), source };
        self.sock.set_read_timeout(Some(left)).map_err(io)?;
        let n = match self.sock.read(&mut self.buf) {
            Ok(0) => return Err(RpcClientError::Closed { peer: self.peer.clone() }),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(RpcClientError::Timeout { peer: self.peer.clone(), timeout })
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let data = self.buf[..n].to_vec();
        self.conn.receive(&data).map_err(|e| self.rpc_err(e))?;
        Ok(())
    }
}
