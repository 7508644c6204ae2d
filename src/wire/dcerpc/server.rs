//! The server side of a connection-oriented DCE/RPC association (C706
//! §9.3, ch. 12; MS-RPCE §3.3.3), sans-IO: feed received bytes with
//! [`ServerConnection::receive`] (any split), take bytes to send with
//! `poll_transmit`, and events with `poll_event`. No sockets, no clocks.
//!
//! It mirrors what Samba's `librpc/rpc/dcesrv_core.c` answers:
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

use std::collections::{HashMap, HashSet, VecDeque};

use super::association::{concat_frames, open_stub_fragment, push_stub_fragments, Auth, Error, Result, StubKind};
use super::auth::SecurityContext;
use super::pdu::{
    ack_reason, features, nak_reason, pfc, status, AckResult, AuthLevel, AuthType, Bind, BindAck, BindNak, Body,
    ContextElement, ContextResult, Fault, Header, PacketType, Pdu, PduBuffer, SyntaxId, DEFAULT_MAX_FRAG,
};
use super::vt::{self, VerificationTrailer};
use crate::wire::ndr::Guid;


/// What an authenticated bind asks for, from its auth trailer: the
/// security context is made for exactly this (gensec starts a mechanism
/// for a type and a level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAuth {
    /// The mechanism (`auth_type`).
    pub auth_type: AuthType,
    /// The level, already checked to be connect..=privacy.
    pub auth_level: AuthLevel,
    /// The `auth_context_id` every later trailer must carry.
    pub context_id: u32,
}

/// Creates the server's security context when an authenticated bind
/// arrives, from what it asks for; `None` refuses it (bind_nak
/// `invalid_auth_type`). Called at most once per association, before the
/// first authentication leg.
pub type SecurityFactory = Box<dyn FnMut(&BindAuth) -> Option<Box<dyn SecurityContext>>>;

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
    /// A server association awaiting a bind. `factory` creates the
    /// security context an authenticated bind asks for.
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
            let asked = BindAuth { auth_type: t.auth_type, auth_level: t.auth_level, context_id: t.context_id };
            let Some(ctx) = (self.factory)(&asked) else {
                return Err(nak("unsupported auth type", nak_reason::INVALID_AUTH_TYPE));
            };
            let mut a = Auth {
                ctx,
                auth_type: asked.auth_type,
                level: asked.auth_level,
                context_id: asked.context_id,
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

#[cfg(test)]
mod tests;
