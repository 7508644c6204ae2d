//! What the client and server association machines ([`super::client`],
//! [`super::server`]) share: the error type, the security state of an
//! association, and cutting a stub into signed or sealed fragments and
//! opening them again (Samba's `dcerpc_ncacn_push_pkt_auth` /
//! `dcerpc_ncacn_pull_pkt_auth`).
//!
//! Each side seals the PDUs it sends in the order it queues them, and the
//! output is a FIFO, so stateful mechanisms stay in sequence.

use std::collections::VecDeque;

use super::auth::{SecurityContext, SecurityError};
use super::pdu::{
    self, auth_pad_length, pfc, stub_offset, AuthLevel, AuthTrailer, AuthType, Body, Header, PacketType, Pdu,
    Request, Response, AUTH_TRAILER_LEN,
};
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
    /// More partial calls than [`super::ServerConfig::max_pending_calls`].
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
pub(super) struct Auth {
    pub(super) ctx: Box<dyn SecurityContext>,
    pub(super) auth_type: AuthType,
    pub(super) level: AuthLevel,
    pub(super) context_id: u32,
    pub(super) done: bool,
    pub(super) failed: bool,
}

impl Auth {
    pub(super) fn trailer(&self, value: Vec<u8>) -> AuthTrailer {
        AuthTrailer {
            auth_type: self.auth_type,
            auth_level: self.level,
            pad_length: 0,
            reserved: 0,
            context_id: self.context_id,
            value,
        }
    }

    pub(super) fn check_fields(&self, t: &AuthTrailer) -> Result<()> {
        if t.auth_type != self.auth_type || t.auth_level != self.level || t.context_id != self.context_id {
            return Err(Error::AuthMismatch(t.auth_type, t.auth_level, t.context_id));
        }
        Ok(())
    }
}

/// What goes in one stub-carrying PDU besides the stub.
#[derive(Clone, Copy)]
pub(super) enum StubKind {
    Request { opnum: u16, object: Option<Guid> },
    Response,
}

/// Fragments `stub` into request/response PDUs of at most `max_frag`
/// bytes and signs/seals them, as Samba's `dcerpc_guess_sizes` +
/// `dcerpc_ncacn_push_pkt_auth` do.
pub(super) fn push_stub_fragments(
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
pub(super) fn open_stub_fragment(frame: &mut [u8], h: &Header, pdu: &Pdu, auth: Option<&mut Auth>) -> Result<Vec<u8>> {
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

/// Concatenates queued frames with one allocation (a byte-wise
/// `flatten().collect()` cost a quarter of a sealed transfer's CPU).
pub(super) fn concat_frames(q: &mut VecDeque<Vec<u8>>) -> Vec<u8> {
    if q.len() == 1 {
        return q.pop_front().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(q.iter().map(Vec::len).sum());
    for f in q.drain(..) {
        out.extend_from_slice(&f);
    }
    out
}
