//! Sans-IO association state machines for connection-oriented DCE/RPC
//! (C706 §9.3, ch. 12; MS-RPCE §3.2.2 client, §3.3.3 server): feed
//! received bytes with `receive` (any split), take bytes to send with
//! `poll_transmit`, and events with `poll_event`. No sockets, no clocks.
//!
//! The server mirrors what Samba's `librpc/rpc/dcesrv_core.c` answers:
//! - unknown interface → bind_ack with `provider_rejection` /
//!   `abstract_syntax_not_supported`; no NDR20 → `transfer_syntaxes_not_supported`;
//! - a malformed bind, an invalid auth level, an unknown auth type or a
//!   failed first authentication leg → bind_nak and disconnect;
//! - a call on an association whose auth level is below
//!   [`ServerConfig::min_auth_level`] (including unauthenticated binds) →
//!   fault `nca_s_fault_access_denied` (5), the association stays up
//!   (Samba's `min_auth_level` check in `dcesrv_request`);
//! - a bad or missing verifier → fault access denied / sec_pkg_error and
//!   disconnect; protocol violations → fault `nca_s_proto_error` with
//!   `PFC_DID_NOT_EXECUTE` and disconnect.
//!
//! Each side seals the PDUs it sends in the order it queues them, and the
//! output is a FIFO, so stateful mechanisms stay in sequence.

use std::collections::{HashMap, HashSet, VecDeque};

use super::auth::{SecurityContext, SecurityError};
use super::pdu::{
    self, ack_reason, auth_pad_length, features, nak_reason, pfc, status, stub_offset, AckResult, AuthLevel,
    AuthTrailer, AuthType, Bind, BindAck, BindNak, Body, ContextElement, ContextResult, Fault, Header, PacketType, Pdu,
    PduBuffer, Request, Response, SyntaxId, AUTH_TRAILER_LEN, DEFAULT_MAX_FRAG,
};
use super::vt::{self, VerificationTrailer, VtCommand};
use crate::wire::ndr::Guid;

/// Why an association failed. Variants other than [`Error::Closed`],
/// [`Error::UnknownCall`] and [`Error::Config`] are the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A malformed PDU.
    #[error("malformed PDU: {0}")]
    Pdu(#[from] pdu::Error),
    /// The security provider failed (bad signature, failed leg, ...).
    #[error("security: {0}")]
    Security(#[from] SecurityError),
    /// A PDU type that is not valid in the current state.
    #[error("unexpected {ptype:?} PDU while {state}")]
    UnexpectedPdu {
        /// What arrived.
        ptype: PacketType,
        /// The state.
        state: &'static str,
    },
    /// A reply whose call id is not the one awaited.
    #[error("call id {found} where {expected} was expected")]
    CallIdMismatch {
        /// Awaited call id.
        expected: u32,
        /// Received call id.
        found: u32,
    },
    /// A fragment of a call that is not outstanding, a first fragment of a
    /// call already in progress, or a middle fragment without a first one.
    #[error("fragment out of sequence for call {0}")]
    FragmentSequence(u32),
    /// The reassembled stub would exceed the configured limit.
    #[error("call {call_id}: stub exceeds the {limit}-byte limit")]
    TooLarge {
        /// The call.
        call_id: u32,
        /// The limit.
        limit: usize,
    },
    /// More partial calls than [`ServerConfig::max_pending_calls`].
    #[error("more than {0} calls in progress")]
    TooManyCalls(usize),
    /// A fragment longer than the negotiated maximum.
    #[error("fragment of {len} bytes exceeds the negotiated {max}")]
    FragmentTooLong {
        /// `frag_length`.
        len: usize,
        /// Negotiated maximum.
        max: usize,
    },
    /// An authenticated PDU without trailer, or a trailer at level none.
    #[error("auth trailer {}", if *.0 { "missing" } else { "not expected" })]
    AuthPresence(bool),
    /// The trailer's type, level or context id differs from the
    /// association's (MS-RPCE §3.3.1.5.2.2).
    #[error("auth trailer (type {0:?}, level {1:?}, context {2}) does not match the association")]
    AuthMismatch(AuthType, AuthLevel, u32),
    /// Requests before authentication completed, or after it failed.
    #[error("authentication not complete")]
    NotAuthenticated,
    /// A bind_ack/alter_context_resp that does not answer what was asked.
    #[error("bad bind_ack: {0}")]
    BadBindAck(&'static str),
    /// A second bind, or a bind the server refused (server side).
    #[error("bind refused: {0}")]
    BindRefused(&'static str),
    /// The association is closed; no more input is accepted.
    #[error("association closed")]
    Closed,
    /// `respond`/`fault`/`orphan` for a call that is not pending (caller's fault).
    #[error("no pending call {0}")]
    UnknownCall(u32),
    /// Invalid configuration (caller's fault).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

/// Result of the association state machines.
pub type Result<T> = std::result::Result<T, Error>;

/// The security state of an association.
struct Auth {
    ctx: Box<dyn SecurityContext>,
    auth_type: AuthType,
    level: AuthLevel,
    context_id: u32,
    done: bool,
    failed: bool,
}

impl Auth {
    fn trailer(&self, value: Vec<u8>) -> AuthTrailer {
        AuthTrailer {
            auth_type: self.auth_type,
            auth_level: self.level,
            pad_length: 0,
            reserved: 0,
            context_id: self.context_id,
            value,
        }
    }

    fn check_fields(&self, t: &AuthTrailer) -> Result<()> {
        if t.auth_type != self.auth_type || t.auth_level != self.level || t.context_id != self.context_id {
            return Err(Error::AuthMismatch(t.auth_type, t.auth_level, t.context_id));
        }
        Ok(())
    }
}

/// What goes in one stub-carrying PDU besides the stub.
#[derive(Clone, Copy)]
enum StubKind {
    Request { opnum: u16, object: Option<Guid> },
    Response,
}

/// Fragments `stub` into request/response PDUs of at most `max_frag`
/// bytes and signs/seals them, as Samba's `dcerpc_guess_sizes` +
/// `dcerpc_ncacn_push_pkt_auth` do.
fn push_stub_fragments(
    out: &mut VecDeque<Vec<u8>>,
    mut auth: Option<&mut Auth>,
    call_id: u32,
    context_id: u16,
    kind: StubKind,
    stub: &[u8],
    max_frag: usize,
) -> Result<()> {
    let (ptype, flags0) = match kind {
        StubKind::Request { object: Some(_), .. } => (PacketType::Request, pfc::OBJECT_UUID),
        StubKind::Request { .. } => (PacketType::Request, 0),
        StubKind::Response => (PacketType::Response, 0),
    };
    let header_len = stub_offset(ptype, flags0).unwrap_or(pdu::REQUEST_HEADER_LEN);
    let protect = auth.as_ref().is_some_and(|a| a.level.protects_pdus());
    let max_data = if let (true, Some(a)) = (protect, auth.as_ref()) {
        let max_len = max_frag.saturating_sub(header_len + AUTH_TRAILER_LEN);
        let sig = a.ctx.sig_size(max_len - max_len % pdu::AUTH_PAD_ALIGNMENT);
        let m = max_len.saturating_sub(sig);
        m - m % pdu::AUTH_PAD_ALIGNMENT
    } else {
        max_frag.saturating_sub(header_len)
    };
    if max_data == 0 {
        return Err(Error::Config("max_xmit_frag too small for the header and verifier"));
    }
    let mut off = 0;
    loop {
        let left = stub.len() - off;
        let n = left.min(max_data);
        let last = n == left;
        let mut flags = flags0;
        if off == 0 {
            flags |= pfc::FIRST;
        }
        if last {
            flags |= pfc::LAST;
        }
        let chunk = &stub[off..off + n];
        let (payload, trailer) = match auth.as_deref_mut() {
            Some(a) if protect => {
                let pad = auth_pad_length(n);
                let mut p = Vec::with_capacity(n + pad);
                p.extend_from_slice(chunk);
                p.resize(n + pad, 0);
                let sig_len = a.ctx.sig_size(p.len());
                let mut t = a.trailer(vec![0; sig_len]);
                t.pad_length = pad as u8;
                (p, Some(t))
            }
            _ => (chunk.to_vec(), None),
        };
        let alloc_hint = u32::try_from(left).unwrap_or(u32::MAX);
        let body = match kind {
            StubKind::Request { opnum, object } => {
                Body::Request(Request { alloc_hint, context_id, opnum, object, stub: payload })
            }
            StubKind::Response => Body::Response(Response { alloc_hint, context_id, cancel_count: 0, stub: payload }),
        };
        let pdu = Pdu { pfc_flags: flags, call_id, body, auth: trailer };
        let mut bytes = pdu.encode()?;
        if let (Some(a), Some(t)) = (auth.as_deref_mut(), pdu.auth.as_ref()) {
            let sig_len = t.value.len();
            let whole = bytes.len() - sig_len;
            let range = header_len..whole - AUTH_TRAILER_LEN;
            let sig = if a.level == AuthLevel::PRIVACY {
                a.ctx.seal(&mut bytes[..whole], range)?
            } else {
                a.ctx.sign(&bytes[..whole], range)?
            };
            if sig.len() != sig_len {
                return Err(SecurityError::SignatureLength { expected: sig_len, found: sig.len() }.into());
            }
            bytes[whole..].copy_from_slice(&sig);
        }
        out.push_back(bytes);
        off += n;
        if last {
            return Ok(());
        }
    }
}

/// Verifies/unseals a received request/response fragment in `frame` and
/// returns the plain stub without auth padding (Samba's
/// `dcerpc_ncacn_pull_pkt_auth`).
fn open_stub_fragment(frame: &mut [u8], h: &Header, pdu: &Pdu, auth: Option<&mut Auth>) -> Result<Vec<u8>> {
    let stub = match &pdu.body {
        Body::Request(r) => &r.stub,
        Body::Response(r) => &r.stub,
        _ => return Err(Error::UnexpectedPdu { ptype: pdu.ptype(), state: "expecting a stub PDU" }),
    };
    let level = auth.as_ref().map_or(AuthLevel::NONE, |a| a.level);
    let Some(t) = &pdu.auth else {
        if level.protects_pdus() {
            return Err(Error::AuthPresence(true));
        }
        return Ok(stub.clone());
    };
    let Some(a) = auth else { return Err(Error::AuthPresence(false)) };
    if level == AuthLevel::NONE {
        return Err(Error::AuthPresence(false));
    }
    a.check_fields(t)?;
    let pad = usize::from(t.pad_length);
    let plain_len = stub.len() - pad; // pad <= stub.len() checked by decode
    if !level.protects_pdus() {
        // Connect level: Samba ignores any signature.
        return Ok(stub[..plain_len].to_vec());
    }
    let start = stub_offset(pdu.ptype(), h.pfc_flags).unwrap_or(pdu::REQUEST_HEADER_LEN);
    let toff = h.trailer_offset();
    let whole = toff + AUTH_TRAILER_LEN;
    let (head, sig) = frame.split_at_mut(whole);
    if level == AuthLevel::PRIVACY {
        a.ctx.unseal(head, start..toff, sig)?;
        Ok(head[start..start + plain_len].to_vec())
    } else {
        a.ctx.check(head, start..toff, sig)?;
        Ok(stub[..plain_len].to_vec())
    }
}

// ---------------------------------------------------------------- client

/// Client configuration (MS-RPCE §3.2.2.1).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The interface to bind (e.g. FrsTransport v1.0).
    pub interface: SyntaxId,
    /// Presentation context id for the interface.
    pub context_id: u16,
    /// Authentication level; [`AuthLevel::NONE`] binds without security.
    pub auth_level: AuthLevel,
    /// `auth_context_id` of the security context.
    pub auth_context_id: u32,
    /// Offered `max_xmit_frag` and `max_recv_frag`. Requests are cut to
    /// at most this (or the server's smaller `max_recv_frag`); responses
    /// are accepted up to this or the server's announced `max_xmit_frag`,
    /// whichever is larger (Samba's server negotiates at least 2048).
    pub max_frag: u16,
    /// Association group to join (0 = new).
    pub assoc_group_id: u32,
    /// Bind-time features to negotiate ([`features`]), as a second context.
    pub bind_time_features: Option<u16>,
    /// Ask for header signing (`PFC_SUPPORT_HEADER_SIGN`) if the mechanism can.
    pub header_signing: bool,
    /// Largest reassembled response accepted (Samba: 240 MiB).
    pub max_response_size: usize,
    /// Append a verification trailer (MS-RPCE §2.2.2.13) to requests at
    /// packet level and above, as Windows and Samba clients do: BITMASK1
    /// and PCONTEXT until the first response arrives, HEADER2 unless
    /// header signing is in force.
    pub verification_trailer: bool,
}

impl ClientConfig {
    /// Defaults: context 0, no auth, 5840-byte fragments, new association
    /// group, feature negotiation for keep-connection-on-orphan, header
    /// signing wanted, 240 MiB responses.
    pub fn new(interface: SyntaxId) -> Self {
        ClientConfig {
            interface,
            context_id: 0,
            auth_level: AuthLevel::NONE,
            auth_context_id: 0,
            max_frag: DEFAULT_MAX_FRAG,
            assoc_group_id: 0,
            bind_time_features: Some(features::KEEP_CONNECTION_ON_ORPHAN | features::SECURITY_CONTEXT_MULTIPLEXING),
            header_signing: true,
            max_response_size: 0x0f00_0000,
            verification_trailer: true,
        }
    }
}

/// Why a bind did not result in an association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindRejection {
    /// A bind_nak with its reason ([`nak_reason`]).
    Nak(u16),
    /// The presentation context was refused.
    Context {
        /// The result.
        result: AckResult,
        /// The provider reason ([`ack_reason`]).
        reason: u16,
    },
    /// A fault instead of an alter_context_resp (e.g. access denied).
    Fault(u32),
}

/// Client events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The association is ready; queued calls were sent.
    Bound {
        /// Negotiated fragment size for sending.
        max_xmit_frag: u16,
        /// The server's `max_xmit_frag`.
        max_recv_frag: u16,
        /// Association group.
        assoc_group_id: u32,
        /// The server's secondary address.
        secondary_address: String,
        /// Features the server acknowledged, if negotiated.
        features: Option<u16>,
        /// Whether header signing is in force.
        header_signing: bool,
    },
    /// The bind failed; the association is dead and queued calls dropped.
    BindRejected(BindRejection),
    /// A complete response.
    Response {
        /// The call.
        call_id: u32,
        /// Reassembled, unsealed stub data.
        stub: Vec<u8>,
    },
    /// A fault for a call (faults are not verified, as in Samba).
    Fault {
        /// The call (may be unknown, e.g. 0, after a protocol error).
        call_id: u32,
        /// The status ([`status`]).
        status: u32,
        /// `PFC_DID_NOT_EXECUTE` was set.
        did_not_execute: bool,
    },
    /// The server asked to shut the connection down (C706 §12.6.4.11).
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Binding(u32),
    Altering(u32),
    Bound,
    Failed,
}

struct PendingCall {
    call_id: u32,
    opnum: u16,
    object: Option<Guid>,
    stub: Vec<u8>,
}

/// The client side of one association (one connection, one interface).
pub struct ClientConnection {
    cfg: ClientConfig,
    auth: Option<Auth>,
    state: ClientState,
    next_call_id: u32,
    input: PduBuffer,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    queued: VecDeque<PendingCall>,
    calls: HashMap<u32, Option<Vec<u8>>>,
    orphaned: HashSet<u32>,
    max_xmit: usize,
    asked_header_signing: bool,
    header_signing: bool,
    features: Option<u16>,
    secondary_address: String,
    server_max_xmit: u16,
    vt_verified: bool,
}

impl ClientConnection {
    /// Starts an association: queues the bind (with the first token of
    /// `security` if the level is above none). `security` must be given
    /// exactly when `cfg.auth_level > NONE`.
    pub fn new(cfg: ClientConfig, security: Option<Box<dyn SecurityContext>>) -> Result<Self> {
        if cfg.max_frag < 1024 {
            return Err(Error::Config("max_frag below 1024"));
        }
        let mut auth = match (cfg.auth_level, security) {
            (AuthLevel::NONE, None) => None,
            (AuthLevel::NONE, Some(_)) => return Err(Error::Config("security context without auth level")),
            (l, Some(ctx)) if (AuthLevel::CONNECT..=AuthLevel::PRIVACY).contains(&l) => Some(Auth {
                auth_type: ctx.auth_type(),
                ctx,
                level: l,
                context_id: cfg.auth_context_id,
                done: false,
                failed: false,
            }),
            (_, None) => return Err(Error::Config("auth level without security context")),
            _ => return Err(Error::Config("invalid auth level")),
        };
        let mut flags = pfc::FIRST | pfc::LAST | pfc::CONC_MPX;
        let mut trailer = None;
        let mut asked_header_signing = false;
        if let Some(a) = auth.as_mut() {
            let upd = a.ctx.update(&[])?;
            a.done = upd.done;
            if cfg.header_signing && a.ctx.supports_header_signing() {
                flags |= pfc::SUPPORT_HEADER_SIGN;
                asked_header_signing = true;
            }
            trailer = Some(a.trailer(upd.token));
        }
        let mut contexts = vec![ContextElement {
            context_id: cfg.context_id,
            abstract_syntax: cfg.interface,
            transfer_syntaxes: vec![SyntaxId::ndr20()],
        }];
        if let Some(f) = cfg.bind_time_features {
            contexts.push(ContextElement {
                context_id: cfg.context_id.wrapping_add(1),
                abstract_syntax: cfg.interface,
                transfer_syntaxes: vec![SyntaxId::bind_time_features(u64::from(f))],
            });
        }
        let bind = Bind {
            max_xmit_frag: cfg.max_frag,
            max_recv_frag: cfg.max_frag,
            assoc_group_id: cfg.assoc_group_id,
            contexts,
        };
        let mut c = ClientConnection {
            max_xmit: usize::from(cfg.max_frag),
            cfg,
            auth,
            state: ClientState::Failed,
            next_call_id: 1,
            input: PduBuffer::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            queued: VecDeque::new(),
            calls: HashMap::new(),
            orphaned: HashSet::new(),
            asked_header_signing,
            header_signing: false,
            features: None,
            secondary_address: String::new(),
            server_max_xmit: 0,
            vt_verified: false,
        };
        let call_id = c.alloc_call_id();
        let pdu = Pdu { pfc_flags: flags, call_id, body: Body::Bind(bind), auth: trailer };
        c.out.push_back(pdu.encode()?);
        c.state = ClientState::Binding(call_id);
        Ok(c)
    }

    fn alloc_call_id(&mut self) -> u32 {
        let id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1).max(1);
        id
    }

    /// Whether calls can be sent now (queued calls go out on binding).
    pub fn is_bound(&self) -> bool {
        self.state == ClientState::Bound
    }

    /// Whether the association is dead (bind refused or error).
    pub fn is_failed(&self) -> bool {
        self.state == ClientState::Failed
    }

    /// Starts a call and returns its call id. Before the bind completes
    /// the call is queued; once bound its request fragments (each sealed
    /// or signed as configured) go to the output queue at once, so calls
    /// never interleave fragments (Samba's server refuses that) but any
    /// number may be outstanding.
    pub fn call(&mut self, opnum: u16, stub: &[u8], object: Option<Guid>) -> Result<u32> {
        if self.state == ClientState::Failed {
            return Err(Error::Closed);
        }
        let call_id = self.alloc_call_id();
        self.calls.insert(call_id, None);
        if self.state == ClientState::Bound {
            self.send_call(call_id, opnum, object, stub)?;
        } else {
            self.queued.push_back(PendingCall { call_id, opnum, object, stub: stub.to_vec() });
        }
        Ok(call_id)
    }

    fn send_call(&mut self, call_id: u32, opnum: u16, object: Option<Guid>, stub: &[u8]) -> Result<()> {
        let level = self.auth.as_ref().map_or(AuthLevel::NONE, |a| a.level);
        let mut with_vt;
        let mut stub = stub;
        if self.cfg.verification_trailer && level.protects_pdus() {
            let mut t = VerificationTrailer::default();
            if !self.vt_verified {
                let bits = if self.asked_header_signing { vt::CLIENT_SUPPORTS_HEADER_SIGNING } else { 0 };
                t.commands.push(VtCommand { must_process: false, command: vt::Command::Bitmask1(bits) });
                t.commands.push(VtCommand {
                    must_process: false,
                    command: vt::Command::Pcontext {
                        abstract_syntax: self.cfg.interface,
                        transfer_syntax: SyntaxId::ndr20(),
                    },
                });
            }
            if !self.header_signing {
                let h = vt::Header2::request(call_id, self.cfg.context_id, opnum);
                t.commands.push(VtCommand { must_process: false, command: vt::Command::Header2(h) });
            }
            with_vt = stub.to_vec();
            t.append_to(&mut with_vt);
            stub = &with_vt;
        }
        let auth = self.auth.as_mut();
        push_stub_fragments(
            &mut self.out,
            auth,
            call_id,
            self.cfg.context_id,
            StubKind::Request { opnum, object },
            stub,
            self.max_xmit,
        )
    }

    /// Abandons a call: sends `orphaned` (C706 §12.6.4.8) and drops any
    /// response fragments still to come.
    pub fn orphan(&mut self, call_id: u32) -> Result<()> {
        if self.calls.remove(&call_id).is_none() {
            return Err(Error::UnknownCall(call_id));
        }
        if let Some(i) = self.queued.iter().position(|c| c.call_id == call_id) {
            self.queued.remove(i);
            return Ok(());
        }
        self.orphaned.insert(call_id);
        self.out.push_back(Pdu::new(call_id, Body::Orphaned).encode()?);
        Ok(())
    }

    /// Asks the server to cancel a call (`co_cancel`, C706 §12.6.4.6);
    /// the response or fault still arrives.
    pub fn cancel(&mut self, call_id: u32) -> Result<()> {
        if !self.calls.contains_key(&call_id) {
            return Err(Error::UnknownCall(call_id));
        }
        self.out.push_back(Pdu::new(call_id, Body::CoCancel).encode()?);
        Ok(())
    }

    /// The next PDU to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Everything queued for sending, concatenated.
    pub fn drain_transmit(&mut self) -> Vec<u8> {
        concat_frames(&mut self.out)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Feeds received bytes (any split). On error the association is dead
    /// and the connection should be closed.
    pub fn receive(&mut self, data: &[u8]) -> Result<()> {
        if self.state == ClientState::Failed {
            return Err(Error::Closed);
        }
        self.input.push(data);
        loop {
            let frame = match self.input.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.state = ClientState::Failed;
                    return Err(e.into());
                }
            };
            if let Err(e) = self.handle(frame.0, frame.1) {
                self.state = ClientState::Failed;
                return Err(e);
            }
            if self.state == ClientState::Failed {
                return Ok(());
            }
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            ClientState::Binding(_) => "binding",
            ClientState::Altering(_) => "altering context",
            ClientState::Bound => "bound",
            ClientState::Failed => "failed",
        }
    }

    fn handle(&mut self, h: Header, mut frame: Vec<u8>) -> Result<()> {
        let pdu = Pdu::decode(&frame)?;
        let unexpected = Error::UnexpectedPdu { ptype: pdu.ptype(), state: self.state_name() };
        match (self.state, &pdu.body) {
            (ClientState::Binding(id), Body::BindAck(ack))
            | (ClientState::Altering(id), Body::AlterContextResp(ack)) => {
                if pdu.call_id != id {
                    return Err(Error::CallIdMismatch { expected: id, found: pdu.call_id });
                }
                let is_bind = matches!(self.state, ClientState::Binding(_));
                self.on_ack(is_bind, pdu.pfc_flags, ack, pdu.auth.as_ref())
            }
            (ClientState::Binding(id), Body::BindNak(n)) => {
                if pdu.call_id != id {
                    return Err(Error::CallIdMismatch { expected: id, found: pdu.call_id });
                }
                self.fail_bind(BindRejection::Nak(n.reason));
                Ok(())
            }
            (ClientState::Binding(id) | ClientState::Altering(id), Body::Fault(f)) if pdu.call_id == id => {
                self.fail_bind(BindRejection::Fault(f.status));
                Ok(())
            }
            (_, Body::Fault(f)) => {
                self.calls.remove(&pdu.call_id);
                self.orphaned.remove(&pdu.call_id);
                self.events.push_back(ClientEvent::Fault {
                    call_id: pdu.call_id,
                    status: f.status,
                    did_not_execute: pdu.pfc_flags & pfc::DID_NOT_EXECUTE != 0,
                });
                Ok(())
            }
            (_, Body::Shutdown) => {
                self.events.push_back(ClientEvent::Shutdown);
                Ok(())
            }
            (ClientState::Bound, Body::Response(_)) => {
                let call_id = pdu.call_id;
                if !self.calls.contains_key(&call_id) && !self.orphaned.contains(&call_id) {
                    return Err(Error::FragmentSequence(call_id));
                }
                let len = h.frag_length as usize;
                let max = self.max_recv();
                if len > max {
                    return Err(Error::FragmentTooLong { len, max });
                }
                let stub = open_stub_fragment(&mut frame, &h, &pdu, self.auth.as_mut())?;
                if self.orphaned.contains(&call_id) {
                    if pdu.pfc_flags & pfc::LAST != 0 {
                        self.orphaned.remove(&call_id);
                    }
                    return Ok(());
                }
                let slot = self.calls.get_mut(&call_id).ok_or(Error::FragmentSequence(call_id))?;
                let buf = match (slot.as_mut(), pdu.pfc_flags & pfc::FIRST != 0) {
                    (None, true) => slot.insert(Vec::new()),
                    (Some(b), false) => b,
                    _ => return Err(Error::FragmentSequence(call_id)),
                };
                if buf.len() + stub.len() > self.cfg.max_response_size {
                    return Err(Error::TooLarge { call_id, limit: self.cfg.max_response_size });
                }
                buf.extend_from_slice(&stub);
                if pdu.pfc_flags & pfc::LAST != 0 {
                    let stub = self.calls.remove(&call_id).flatten().unwrap_or_default();
                    self.vt_verified = true;
                    self.events.push_back(ClientEvent::Response { call_id, stub });
                }
                Ok(())
            }
            _ => Err(unexpected),
        }
    }

    /// Largest response fragment accepted: what we offered as
    /// `max_recv_frag`, or the `max_xmit_frag` the server announced in its
    /// bind_ack if that is larger. Samba's server (`dcesrv_bind`: `max_req
    /// = MAX(2048, max_req)`, as ours) never negotiates below 2048 and
    /// then sends fragments of that size even to a client that offered
    /// less; Samba's clients accept them, so do we, up to what the server
    /// itself announced.
    fn max_recv(&self) -> usize {
        usize::from(self.cfg.max_frag).max(usize::from(self.server_max_xmit))
    }

    fn fail_bind(&mut self, why: BindRejection) {
        self.state = ClientState::Failed;
        self.queued.clear();
        self.calls.clear();
        self.events.push_back(ClientEvent::BindRejected(why));
    }

    fn on_ack(&mut self, is_bind: bool, flags: u8, ack: &BindAck, trailer: Option<&AuthTrailer>) -> Result<()> {
        let main = ack.results.first().ok_or(Error::BadBindAck("no results"))?;
        if is_bind && ack.results.len() != 1 + usize::from(self.cfg.bind_time_features.is_some()) {
            return Err(Error::BadBindAck("result count differs from the contexts offered"));
        }
        if main.result != AckResult::Acceptance {
            self.fail_bind(BindRejection::Context { result: main.result, reason: main.reason });
            return Ok(());
        }
        if main.transfer_syntax != SyntaxId::ndr20() {
            return Err(Error::BadBindAck("accepted transfer syntax is not NDR20"));
        }
        if is_bind {
            let max = usize::from(self.cfg.max_frag).min(usize::from(ack.max_recv_frag));
            if max < 1024 {
                return Err(Error::BadBindAck("max_recv_frag below 1024"));
            }
            self.max_xmit = max;
            self.secondary_address = ack.secondary_address.clone();
            self.server_max_xmit = ack.max_xmit_frag;
            self.features = ack.results.get(1).filter(|r| r.result == AckResult::NegotiateAck).map(|r| r.reason);
            if self.asked_header_signing && flags & pfc::SUPPORT_HEADER_SIGN != 0 {
                self.header_signing = true;
                if let Some(a) = self.auth.as_mut() {
                    a.ctx.enable_header_signing();
                }
            }
        }
        if let Some(a) = self.auth.as_mut() {
            if !a.done {
                let t = trailer.ok_or(Error::AuthPresence(true))?;
                a.check_fields(t)?;
                let upd = a.ctx.update(&t.value)?;
                a.done = upd.done;
                if !upd.done {
                    let call_id = self.next_call_id;
                    self.next_call_id = self.next_call_id.wrapping_add(1).max(1);
                    let alter = Bind {
                        max_xmit_frag: self.cfg.max_frag,
                        max_recv_frag: self.cfg.max_frag,
                        assoc_group_id: ack.assoc_group_id,
                        contexts: vec![ContextElement {
                            context_id: self.cfg.context_id,
                            abstract_syntax: self.cfg.interface,
                            transfer_syntaxes: vec![SyntaxId::ndr20()],
                        }],
                    };
                    let mut fl = pfc::FIRST | pfc::LAST | pfc::CONC_MPX;
                    if self.asked_header_signing {
                        fl |= pfc::SUPPORT_HEADER_SIGN;
                    }
                    let pdu = Pdu {
                        pfc_flags: fl,
                        call_id,
                        body: Body::AlterContext(alter),
                        auth: Some(a.trailer(upd.token)),
                    };
                    self.out.push_back(pdu.encode()?);
                    self.state = ClientState::Altering(call_id);
                    return Ok(());
                }
                if !upd.token.is_empty() {
                    let call_id = self.next_call_id;
                    self.next_call_id = self.next_call_id.wrapping_add(1).max(1);
                    let pdu = Pdu {
                        pfc_flags: pfc::FIRST | pfc::LAST,
                        call_id,
                        body: Body::Auth3,
                        auth: Some(a.trailer(upd.token)),
                    };
                    self.out.push_back(pdu.encode()?);
                }
            }
        }
        self.state = ClientState::Bound;
        self.events.push_back(ClientEvent::Bound {
            max_xmit_frag: self.max_xmit as u16,
            max_recv_frag: self.server_max_xmit,
            assoc_group_id: ack.assoc_group_id,
            secondary_address: self.secondary_address.clone(),
            features: self.features,
            header_signing: self.header_signing,
        });
        while let Some(c) = self.queued.pop_front() {
            self.send_call(c.call_id, c.opnum, c.object, &c.stub)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- server

/// Creates the server's security context for a bind's `auth_type`; `None`
/// refuses the type (bind_nak `invalid_auth_type`).
pub type SecurityFactory = Box<dyn FnMut(AuthType) -> Option<Box<dyn SecurityContext>>>;

/// Server configuration (MS-RPCE §3.3.1.1).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interfaces (abstract syntaxes with version) served on this endpoint.
    pub interfaces: Vec<SyntaxId>,
    /// Calls on associations below this level get fault access denied
    /// (MS-FRS2 §2.1 requires [`AuthLevel::PRIVACY`]).
    pub min_auth_level: AuthLevel,
    /// Largest fragment the server receives/sends (Samba: 5840).
    pub max_frag: u16,
    /// This association's group id.
    pub assoc_group_id: u32,
    /// The secondary address in bind_ack (the TCP port, e.g. "5722").
    pub secondary_address: String,
    /// Largest reassembled request, and largest total of partially
    /// received requests (Samba: 4 MiB, `DCERPC_NCACN_REQUEST_DEFAULT_MAX_SIZE`).
    pub max_request_size: usize,
    /// Calls being received or awaiting a response, at most.
    pub max_pending_calls: usize,
}

impl ServerConfig {
    /// Defaults: privacy required, 5840-byte fragments, 4 MiB requests,
    /// 64 pending calls.
    pub fn new(interfaces: Vec<SyntaxId>) -> Self {
        ServerConfig {
            interfaces,
            min_auth_level: AuthLevel::PRIVACY,
            max_frag: DEFAULT_MAX_FRAG,
            assoc_group_id: 0x0001_2b34,
            secondary_address: String::new(),
            max_request_size: 0x0040_0000,
            max_pending_calls: 64,
        }
    }
}

/// Server events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The association is established (after the last auth leg).
    Bound {
        /// Accepted presentation contexts.
        contexts: Vec<(u16, SyntaxId)>,
        /// Authentication type ([`AuthType::NONE`] without auth).
        auth_type: AuthType,
        /// Authentication level.
        auth_level: AuthLevel,
        /// The authenticated client account (`DOMAIN\user`), when the
        /// security mechanism says.
        user: Option<String>,
    },
    /// A complete, verified request; answer with
    /// [`ServerConnection::respond`] or [`ServerConnection::fault`].
    Request {
        /// The call.
        call_id: u32,
        /// Presentation context.
        context_id: u16,
        /// The interface of that context.
        interface: SyntaxId,
        /// Operation number.
        opnum: u16,
        /// Object UUID.
        object: Option<Guid>,
        /// Reassembled, unsealed stub data, without the verification
        /// trailer (checked, MS-RPCE §2.2.2.13) but, as in Samba, with the
        /// up to 3 zero bytes that aligned the trailer.
        stub: Vec<u8>,
    },
    /// The client abandoned a call; any answer is dropped.
    Orphaned {
        /// The call.
        call_id: u32,
    },
    /// The client asked to cancel a call (it still needs an answer).
    Cancel {
        /// The call.
        call_id: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitBind,
    Authenticating,
    Bound,
    Closing,
}

struct InRequest {
    context_id: u16,
    opnum: u16,
    object: Option<Guid>,
    stub: Vec<u8>,
}

/// The server side of one association.
pub struct ServerConnection {
    cfg: ServerConfig,
    factory: SecurityFactory,
    auth: Option<Auth>,
    state: ServerState,
    input: PduBuffer,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
    contexts: HashMap<u16, SyntaxId>,
    max_frag: usize,
    receiving: HashMap<u32, InRequest>,
    discarding: HashSet<u32>,
    pending: HashMap<u32, u16>,
    client_header_signing: bool,
}

/// A refusal decided while handling a PDU: what to send, whether to close.
enum Refusal {
    Nak(u16),
    Fault { status: u32, flags: u8, close: bool },
}

impl ServerConnection {
    /// A server association awaiting a bind. `factory` creates security
    /// contexts by auth type.
    pub fn new(cfg: ServerConfig, factory: SecurityFactory) -> Self {
        ServerConnection {
            max_frag: usize::from(cfg.max_frag),
            cfg,
            factory,
            auth: None,
            state: ServerState::AwaitBind,
            input: PduBuffer::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            contexts: HashMap::new(),
            receiving: HashMap::new(),
            discarding: HashSet::new(),
            pending: HashMap::new(),
            client_header_signing: false,
        }
    }

    /// The next PDU to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Everything queued for sending, concatenated.
    pub fn drain_transmit(&mut self) -> Vec<u8> {
        concat_frames(&mut self.out)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether the connection should be closed once the output is sent
    /// (after a bind_nak, a disconnecting fault or [`Self::shutdown`]).
    pub fn is_closing(&self) -> bool {
        self.state == ServerState::Closing
    }

    /// Calls awaiting [`Self::respond`] or [`Self::fault`].
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Feeds received bytes (any split). Errors are the client's fault: the
    /// reply Samba would give (fault or bind_nak) is queued, the
    /// association is closing, and the error says why.
    pub fn receive(&mut self, data: &[u8]) -> Result<()> {
        if self.state == ServerState::Closing {
            return Err(Error::Closed);
        }
        self.input.push(data);
        while self.state != ServerState::Closing {
            let (h, frame) = match self.input.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let call_id = 0;
                    if self.state == ServerState::AwaitBind {
                        self.send_refusal(call_id, 0, Refusal::Nak(nak_reason::PROTOCOL_VERSION_NOT_SUPPORTED));
                    } else {
                        self.send_refusal(
                            call_id,
                            0,
                            Refusal::Fault {
                                status: status::NCA_S_PROTO_ERROR,
                                flags: pfc::DID_NOT_EXECUTE,
                                close: true,
                            },
                        );
                    }
                    return Err(e.into());
                }
            };
            let call_id = h.call_id;
            if let Err((e, refusal)) = self.handle(h, frame) {
                self.send_refusal(call_id, 0, refusal);
                self.state = ServerState::Closing;
                return Err(e);
            }
        }
        Ok(())
    }

    fn send_refusal(&mut self, call_id: u32, context_id: u16, r: Refusal) {
        let (pdu, close) = match r {
            Refusal::Nak(reason) => {
                (Pdu::new(call_id, Body::BindNak(BindNak { reason, versions: vec![(5, 0)] })), true)
            }
            Refusal::Fault { status, flags, close } => {
                let f = Fault { alloc_hint: 24, context_id, cancel_count: 0, flags: 0, status, stub: Vec::new() };
                (Pdu { pfc_flags: pfc::FIRST | pfc::LAST | flags, call_id, body: Body::Fault(f), auth: None }, close)
            }
        };
        if let Ok(b) = pdu.encode() {
            self.out.push_back(b);
        }
        if close {
            self.state = ServerState::Closing;
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            ServerState::AwaitBind => "awaiting bind",
            ServerState::Authenticating => "authenticating",
            ServerState::Bound => "bound",
            ServerState::Closing => "closing",
        }
    }

    fn handle(&mut self, h: Header, frame: Vec<u8>) -> std::result::Result<(), (Error, Refusal)> {
        let proto = |e: Error| {
            (e, Refusal::Fault { status: status::NCA_S_PROTO_ERROR, flags: pfc::DID_NOT_EXECUTE, close: true })
        };
        let pdu = match Pdu::decode(&frame) {
            Ok(p) => p,
            Err(e) if self.state == ServerState::AwaitBind => {
                return Err((e.into(), Refusal::Nak(nak_reason::PROTOCOL_VERSION_NOT_SUPPORTED)))
            }
            Err(e) => return Err(proto(e.into())),
        };
        match (&pdu.body, self.state) {
            (Body::Bind(b), ServerState::AwaitBind) => self.on_bind(&pdu, b),
            (Body::Bind(_), _) => Err((Error::BindRefused("second bind"), Refusal::Nak(nak_reason::NOT_SPECIFIED))),
            (_, ServerState::AwaitBind) => Err((
                Error::UnexpectedPdu { ptype: pdu.ptype(), state: "awaiting bind" },
                Refusal::Nak(nak_reason::PROTOCOL_VERSION_NOT_SUPPORTED),
            )),
            (Body::AlterContext(b), _) => self.on_alter(&pdu, b),
            (Body::Auth3, _) => self.on_auth3(&pdu).map_err(proto),
            (Body::Request(_), _) => self.on_request(h, &pdu, frame),
            (Body::Orphaned, _) => {
                self.receiving.remove(&pdu.call_id);
                self.pending.remove(&pdu.call_id);
                self.events.push_back(ServerEvent::Orphaned { call_id: pdu.call_id });
                Ok(())
            }
            (Body::CoCancel, _) => {
                self.events.push_back(ServerEvent::Cancel { call_id: pdu.call_id });
                Ok(())
            }
            _ => Err(proto(Error::UnexpectedPdu { ptype: pdu.ptype(), state: self.state_name() })),
        }
    }

    /// Negotiates the presentation contexts as Samba does: the bind-time
    /// feature context is acknowledged, exactly one new context may be
    /// accepted per PDU, existing ones are re-acknowledged.
    fn negotiate(
        &mut self,
        contexts: &[ContextElement],
        allow_features: bool,
    ) -> std::result::Result<Vec<ContextResult>, &'static str> {
        let mut results = Vec::with_capacity(contexts.len());
        let mut accepted_new = false;
        let mut saw_features = false;
        for c in contexts {
            let first = c.transfer_syntaxes.first().ok_or("context without transfer syntax")?;
            let reject = |reason| ContextResult {
                result: AckResult::ProviderRejection,
                reason,
                transfer_syntax: SyntaxId::default(),
            };
            if let (true, Some(f)) = (allow_features, first.as_bind_time_features()) {
                if saw_features {
                    return Err("two feature negotiation contexts");
                }
                saw_features = true;
                let ack = f as u16 & features::KEEP_CONNECTION_ON_ORPHAN;
                results.push(ContextResult {
                    result: AckResult::NegotiateAck,
                    reason: ack,
                    transfer_syntax: SyntaxId::default(),
                });
                continue;
            }
            if !self.cfg.interfaces.contains(&c.abstract_syntax) {
                results.push(reject(ack_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED));
                continue;
            }
            let ndr = c.transfer_syntaxes.contains(&SyntaxId::ndr20());
            if let Some(existing) = self.contexts.get(&c.context_id) {
                if *existing != c.abstract_syntax {
                    return Err("context id rebound to another interface");
                }
                results.push(if ndr {
                    ContextResult { result: AckResult::Acceptance, reason: 0, transfer_syntax: SyntaxId::ndr20() }
                } else {
                    reject(ack_reason::TRANSFER_SYNTAXES_NOT_SUPPORTED)
                });
                continue;
            }
            if accepted_new || !ndr {
                results.push(reject(ack_reason::TRANSFER_SYNTAXES_NOT_SUPPORTED));
                continue;
            }
            accepted_new = true;
            self.contexts.insert(c.context_id, c.abstract_syntax);
            results.push(ContextResult {
                result: AckResult::Acceptance,
                reason: 0,
                transfer_syntax: SyntaxId::ndr20(),
            });
        }
        Ok(results)
    }

    fn ack_body(&self, results: Vec<ContextResult>, secondary_address: String) -> BindAck {
        BindAck {
            max_xmit_frag: self.max_frag as u16,
            max_recv_frag: self.max_frag as u16,
            assoc_group_id: self.cfg.assoc_group_id,
            secondary_address,
            results,
        }
    }

    fn bound_event(&mut self) {
        let mut contexts: Vec<(u16, SyntaxId)> = self.contexts.iter().map(|(k, v)| (*k, *v)).collect();
        contexts.sort_by_key(|c| c.0);
        let (auth_type, auth_level) =
            self.auth.as_ref().map_or((AuthType::NONE, AuthLevel::NONE), |a| (a.auth_type, a.level));
        let user = self.auth.as_ref().and_then(|a| a.ctx.peer_user());
        self.state = ServerState::Bound;
        self.events.push_back(ServerEvent::Bound { contexts, auth_type, auth_level, user });
    }

    fn on_bind(&mut self, pdu: &Pdu, b: &Bind) -> std::result::Result<(), (Error, Refusal)> {
        let nak = |why: &'static str, reason: u16| (Error::BindRefused(why), Refusal::Nak(reason));
        // max_recv_frag and max_xmit_frag result in the same value, at
        // least 2048, at most ours, truncated to a multiple of 8.
        let max_req = b.max_xmit_frag.min(b.max_recv_frag).max(2048);
        self.max_frag = usize::from(max_req.min(self.cfg.max_frag) & 0xfff8);
        if b.assoc_group_id != 0 && b.assoc_group_id != self.cfg.assoc_group_id {
            return Err(nak("unknown association group", nak_reason::NOT_SPECIFIED));
        }
        if b.contexts.is_empty() {
            return Err(nak("no presentation contexts", nak_reason::NOT_SPECIFIED));
        }
        let results = self.negotiate(&b.contexts, true).map_err(|w| nak(w, nak_reason::NOT_SPECIFIED))?;
        let mut flags = pfc::FIRST | pfc::LAST;
        if pdu.pfc_flags & pfc::CONC_MPX != 0 {
            flags |= pfc::CONC_MPX;
        }
        let mut trailer = None;
        self.client_header_signing = pdu.pfc_flags & pfc::SUPPORT_HEADER_SIGN != 0;
        if let Some(t) = &pdu.auth {
            if !(AuthLevel::CONNECT..=AuthLevel::PRIVACY).contains(&t.auth_level) {
                return Err(nak("invalid auth level", nak_reason::NOT_SPECIFIED));
            }
            let Some(ctx) = (self.factory)(t.auth_type) else {
                return Err(nak("unsupported auth type", nak_reason::INVALID_AUTH_TYPE));
            };
            let mut a = Auth {
                ctx,
                auth_type: t.auth_type,
                level: t.auth_level,
                context_id: t.context_id,
                done: false,
                failed: false,
            };
            let upd = match a.ctx.update(&t.value) {
                Ok(u) => u,
                Err(e) => return Err((e.into(), Refusal::Nak(nak_reason::NOT_SPECIFIED))),
            };
            a.done = upd.done;
            if pdu.pfc_flags & pfc::SUPPORT_HEADER_SIGN != 0 && a.ctx.supports_header_signing() {
                flags |= pfc::SUPPORT_HEADER_SIGN;
                a.ctx.enable_header_signing();
            }
            if !upd.token.is_empty() {
                trailer = Some(a.trailer(upd.token));
            }
            self.auth = Some(a);
        }
        let ack = self.ack_body(results, self.cfg.secondary_address.clone());
        let out = Pdu { pfc_flags: flags, call_id: pdu.call_id, body: Body::BindAck(ack), auth: trailer };
        let bytes = out.encode().map_err(|e| (e.into(), Refusal::Nak(nak_reason::NOT_SPECIFIED)))?;
        self.out.push_back(bytes);
        if self.auth.as_ref().map_or(true, |a| a.done) {
            self.bound_event();
        } else {
            self.state = ServerState::Authenticating;
        }
        Ok(())
    }

    fn on_alter(&mut self, pdu: &Pdu, b: &Bind) -> std::result::Result<(), (Error, Refusal)> {
        let fault = |e: Error, status: u32| (e, Refusal::Fault { status, flags: pfc::DID_NOT_EXECUTE, close: true });
        let mut trailer = None;
        let mut finished = false;
        match (&pdu.auth, self.auth.as_mut()) {
            (None, a) => {
                if a.is_some_and(|a| !a.done) {
                    return Err(fault(Error::NotAuthenticated, status::ACCESS_DENIED));
                }
            }
            (Some(_), None) => return Err(fault(Error::AuthPresence(false), status::ACCESS_DENIED)),
            (Some(t), Some(a)) => {
                if a.done || a.failed {
                    return Err(fault(Error::NotAuthenticated, status::ACCESS_DENIED));
                }
                if t.auth_type != a.auth_type {
                    return Err(fault(
                        Error::AuthMismatch(t.auth_type, t.auth_level, t.context_id),
                        status::SEC_PKG_ERROR,
                    ));
                }
                if let Err(e) = a.check_fields(t) {
                    return Err(fault(e, status::ACCESS_DENIED));
                }
                let upd = a.ctx.update(&t.value).map_err(|e| fault(e.into(), status::SEC_PKG_ERROR))?;
                a.done = upd.done;
                finished = upd.done;
                if !upd.token.is_empty() {
                    trailer = Some(a.trailer(upd.token));
                }
            }
        }
        if b.contexts.is_empty() {
            return Err(fault(Error::BadBindAck("alter_context without contexts"), status::NCA_S_PROTO_ERROR));
        }
        let results = self
            .negotiate(&b.contexts, false)
            .map_err(|_| fault(Error::BindRefused("bad alter_context"), status::NCA_S_PROTO_ERROR))?;
        let mut flags = pfc::FIRST | pfc::LAST;
        if pdu.pfc_flags & pfc::CONC_MPX != 0 {
            flags |= pfc::CONC_MPX;
        }
        let ack = self.ack_body(results, String::new());
        let out = Pdu { pfc_flags: flags, call_id: pdu.call_id, body: Body::AlterContextResp(ack), auth: trailer };
        let bytes = out.encode().map_err(|e| fault(e.into(), status::NCA_S_PROTO_ERROR))?;
        self.out.push_back(bytes);
        if finished {
            self.bound_event();
        }
        Ok(())
    }

    fn on_auth3(&mut self, pdu: &Pdu) -> Result<()> {
        let a =
            self.auth.as_mut().ok_or(Error::UnexpectedPdu { ptype: PacketType::Auth3, state: "unauthenticated" })?;
        if a.done || a.failed {
            return Err(Error::UnexpectedPdu { ptype: PacketType::Auth3, state: "authenticated" });
        }
        // Like Samba, a failed auth3 gets no reply; the association is
        // marked invalid and the next request is refused.
        let ok = match &pdu.auth {
            Some(t) if a.check_fields(t).is_ok() => matches!(a.ctx.update(&t.value), Ok(u) if u.done),
            _ => false,
        };
        if ok {
            a.done = true;
            self.bound_event();
        } else {
            a.failed = true;
        }
        Ok(())
    }

    fn on_request(&mut self, h: Header, pdu: &Pdu, mut frame: Vec<u8>) -> std::result::Result<(), (Error, Refusal)> {
        let Body::Request(r) = &pdu.body else { return Ok(()) };
        let call_id = pdu.call_id;
        let close = |e: Error, status: u32, flags: u8| (e, Refusal::Fault { status, flags, close: true });
        match self.auth.as_ref() {
            Some(a) if a.failed => return Err(close(Error::NotAuthenticated, status::ACCESS_DENIED, 0)),
            Some(a) if !a.done => {
                return Err(close(Error::NotAuthenticated, status::NCA_S_PROTO_ERROR, pfc::DID_NOT_EXECUTE))
            }
            _ => {}
        }
        if usize::from(h.frag_length) > self.max_frag {
            let e = Error::FragmentTooLong { len: h.frag_length.into(), max: self.max_frag };
            return Err(close(e, status::NCA_S_PROTO_ERROR, 0));
        }
        let first = pdu.pfc_flags & pfc::FIRST != 0;
        let last = pdu.pfc_flags & pfc::LAST != 0;
        if first
            && (self.receiving.contains_key(&call_id)
                || self.pending.contains_key(&call_id)
                || self.discarding.contains(&call_id))
        {
            return Err(close(Error::FragmentSequence(call_id), status::NCA_S_PROTO_ERROR, 0));
        }
        if !first && !self.receiving.contains_key(&call_id) && !self.discarding.contains(&call_id) {
            return Err(close(Error::FragmentSequence(call_id), status::NCA_S_PROTO_ERROR, 0));
        }
        // Verify before anything else so the security context stays in step.
        let stub = open_stub_fragment(&mut frame, &h, pdu, self.auth.as_mut()).map_err(|e| {
            let st = if matches!(e, Error::Security(_)) { status::SEC_PKG_ERROR } else { status::ACCESS_DENIED };
            close(e, st, 0)
        })?;
        if self.discarding.contains(&call_id) {
            if last {
                self.discarding.remove(&call_id);
            }
            return Ok(());
        }
        if first {
            let refuse = if !self.contexts.contains_key(&r.context_id) {
                Some((status::NCA_S_UNKNOWN_IF, pfc::DID_NOT_EXECUTE))
            } else if self.receiving.len() + self.pending.len() >= self.cfg.max_pending_calls {
                Some((status::NCA_S_SERVER_TOO_BUSY, pfc::DID_NOT_EXECUTE))
            } else {
                None
            };
            if r.alloc_hint as usize > self.cfg.max_request_size {
                return Err(close(
                    Error::TooLarge { call_id, limit: self.cfg.max_request_size },
                    status::ACCESS_DENIED,
                    0,
                ));
            }
            if let Some((st, fl)) = refuse {
                self.send_refusal(call_id, r.context_id, Refusal::Fault { status: st, flags: fl, close: false });
                if !last {
                    if self.discarding.len() >= self.cfg.max_pending_calls {
                        let e = Error::TooManyCalls(self.cfg.max_pending_calls);
                        return Err(close(e, status::NCA_S_PROTO_ERROR, 0));
                    }
                    self.discarding.insert(call_id);
                }
                return Ok(());
            }
            self.receiving.insert(
                call_id,
                InRequest { context_id: r.context_id, opnum: r.opnum, object: r.object, stub: Vec::new() },
            );
        }
        // Bound both each call and all partial calls together (Samba allows
        // a single fragmented call at a time).
        let buffered: usize = self.receiving.values().map(|q| q.stub.len()).sum();
        let Some(req) = self.receiving.get_mut(&call_id) else { return Ok(()) };
        if buffered + stub.len() > self.cfg.max_request_size {
            return Err(close(Error::TooLarge { call_id, limit: self.cfg.max_request_size }, status::ACCESS_DENIED, 0));
        }
        req.stub.extend_from_slice(&stub);
        if !last {
            return Ok(());
        }
        let Some(req) = self.receiving.remove(&call_id) else { return Ok(()) };
        let level = self.auth.as_ref().map_or(AuthLevel::NONE, |a| a.level);
        if level < self.cfg.min_auth_level {
            self.send_refusal(
                call_id,
                req.context_id,
                Refusal::Fault { status: status::ACCESS_DENIED, flags: 0, close: false },
            );
            return Ok(());
        }
        let interface = self.contexts.get(&req.context_id).copied().unwrap_or_default();
        let mut stub = req.stub;
        let (len, trailer) = VerificationTrailer::pop(&stub);
        if let Some(t) = trailer {
            let bits = if self.client_header_signing { vt::CLIENT_SUPPORTS_HEADER_SIGNING } else { 0 };
            let h2 = vt::Header2::request(call_id, req.context_id, req.opnum);
            if !t.check(bits, (interface, SyntaxId::ndr20()), &h2) {
                self.send_refusal(
                    call_id,
                    req.context_id,
                    Refusal::Fault { status: status::ACCESS_DENIED, flags: 0, close: false },
                );
                return Ok(());
            }
            stub.truncate(len);
        }
        self.pending.insert(call_id, req.context_id);
        self.events.push_back(ServerEvent::Request {
            call_id,
            context_id: req.context_id,
            interface,
            opnum: req.opnum,
            object: req.object,
            stub,
        });
        Ok(())
    }

    /// Answers a pending call with `stub`, fragmented to the negotiated
    /// size and sealed/signed at the association's level. Calls may be
    /// answered in any order.
    pub fn respond(&mut self, call_id: u32, stub: &[u8]) -> Result<()> {
        if self.state == ServerState::Closing {
            return Err(Error::Closed);
        }
        let context_id = self.pending.remove(&call_id).ok_or(Error::UnknownCall(call_id))?;
        push_stub_fragments(
            &mut self.out,
            self.auth.as_mut(),
            call_id,
            context_id,
            StubKind::Response,
            stub,
            self.max_frag,
        )
    }

    /// Answers a pending call with a fault ([`status`]), unsigned as Samba
    /// sends them.
    pub fn fault(&mut self, call_id: u32, fault_status: u32) -> Result<()> {
        if self.state == ServerState::Closing {
            return Err(Error::Closed);
        }
        let context_id = self.pending.remove(&call_id).ok_or(Error::UnknownCall(call_id))?;
        self.send_refusal(call_id, context_id, Refusal::Fault { status: fault_status, flags: 0, close: false });
        Ok(())
    }

    /// Sends `shutdown` (C706 §12.6.4.11) and closes after the output.
    pub fn shutdown(&mut self) {
        if let Ok(b) = Pdu::new(0, Body::Shutdown).encode() {
            self.out.push_back(b);
        }
        self.state = ServerState::Closing;
    }
}

/// Concatenates queued frames with one allocation (a byte-wise
/// `flatten().collect()` cost a quarter of a sealed transfer's CPU).
fn concat_frames(q: &mut VecDeque<Vec<u8>>) -> Vec<u8> {
    if q.len() == 1 {
        return q.pop_front().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(q.iter().map(Vec::len).sum());
    for f in q.drain(..) {
        out.extend_from_slice(&f);
    }
    out
}
