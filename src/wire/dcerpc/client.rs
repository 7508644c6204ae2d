//! The client side of a connection-oriented DCE/RPC association (C706
//! §9.3, ch. 12; MS-RPCE §3.2.2), sans-IO: feed received bytes with
//! [`ClientConnection::receive`] (any split), take bytes to send with
//! `poll_transmit`, and events with `poll_event`. No sockets, no clocks.
//!
//! The bind, the alter_context and rpc_auth_3 legs are driven from the
//! security context's `done` as Samba's client does; requests carry a
//! verification trailer (MS-RPCE §2.2.2.13) at packet level and above.

use std::collections::{HashMap, HashSet, VecDeque};

use super::association::{concat_frames, open_stub_fragment, push_stub_fragments, Auth, Error, Result, StubKind};
use super::auth::SecurityContext;
use super::pdu::{
    features, pfc, AckResult, AuthLevel, AuthTrailer, Bind, BindAck, Body, ContextElement, Header, Pdu, PduBuffer,
    SyntaxId, DEFAULT_MAX_FRAG,
};
use super::vt::{self, VerificationTrailer, VtCommand};
use crate::wire::ndr::Guid;

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
    /// A bind_nak with its reason ([`super::pdu::nak_reason`]).
    Nak(u16),
    /// The presentation context was refused.
    Context {
        /// The result.
        result: AckResult,
        /// The provider reason ([`super::pdu::ack_reason`]).
        reason: u16,
    },
    /// A fault instead of an alter_context_resp (e.g. access denied).
    Fault(u32),
}

impl std::fmt::Display for BindRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::pdu::status;
        match self {
            BindRejection::Nak(r) => write!(f, "bind refused (bind_nak, reason {r})"),
            BindRejection::Context { result, reason } => write!(f, "interface refused ({result:?}, reason {reason})"),
            BindRejection::Fault(status::SEC_PKG_ERROR) => {
                f.write_str("the login was not accepted (RPC_S_SEC_PKG_ERROR: a wrong password or an unknown account)")
            }
            BindRejection::Fault(status::ACCESS_DENIED) => f.write_str("access denied"),
            BindRejection::Fault(s) => write!(f, "bind failed with fault {s:#x}"),
        }
    }
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
        /// The status ([`super::pdu::status`]).
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

#[cfg(test)]
mod tests;
