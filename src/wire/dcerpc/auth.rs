//! The security provider seam (MS-RPCE §3.3.1.5.2, §2.2.2.11): what the
//! association state machines in [`super::client`] and [`super::server`]
//! ask of a security context. The production implementation wraps Samba's
//! gensec through FFI (not here); [`toy`] is a deterministic test double.
//!
//! # Byte ranges (exactly as Samba's `dcerpc_pkt_auth.c`)
//!
//! An authenticated request/response fragment looks like
//!
//! ```text
//! 0        16              P                   T          T+8          F
//! | header | body header   | stub | auth pad   | sec_trailer| auth_value |
//! ```
//!
//! with `P` = 24 (40 for a request with object UUID), `T` = `F -
//! auth_length - 8`, `F` = `frag_length`. Before signing or sealing, the
//! sender has already written the final `frag_length` and `auth_length`
//! into the header and the complete `sec_trailer` (type, level,
//! `auth_pad_length`, context id); the `auth_value` is the signature.
//!
//! - **seal** (privacy): `gensec_seal_packet(data = pdu + P, length = T -
//!   P, whole_pdu = pdu, pdu_length = T + 8)` — the stub *and* its padding
//!   are encrypted in place; the signature covers `pdu[..T + 8]` (the whole
//!   PDU up to and including the `sec_trailer`) when header signing is on,
//!   else only `pdu[P..T]`. Here: [`SecurityContext::seal`] with `pdu =
//!   &mut frame[..T + 8]` and `payload = P..T`.
//! - **sign** (integrity / packet): `gensec_sign_packet` with the same
//!   ranges, nothing encrypted: [`SecurityContext::sign`].
//! - **unseal / check** on receipt: the same ranges of the received frame
//!   (`raw_packet->length - auth.credentials.length` = `T + 8`), the
//!   signature being `frame[T + 8..F]`: [`SecurityContext::unseal`],
//!   [`SecurityContext::check`]. After unsealing, the caller drops the last
//!   `auth_pad_length` bytes of `P..T`.
//!
//! Whether the mechanism actually includes the header in its checksum
//! is the mechanism's business (NTLMSSP only after
//! `GENSEC_FEATURE_SIGN_PKT_HEADER` was negotiated via
//! `PFC_SUPPORT_HEADER_SIGN`, see [`SecurityContext::enable_header_signing`];
//! Kerberos always signs what it is given).

use std::ops::Range;

use super::pdu::AuthType;

/// Failures of the security provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// The provider failed with an NTSTATUS (e.g. `NT_STATUS_LOGON_FAILURE`).
    #[error("security provider failed: NTSTATUS {0:#010x}")]
    Status(u32),
    /// A signature did not verify (tampering, wrong key, or reordering).
    #[error("signature check failed")]
    BadSignature,
    /// A signature of the wrong length.
    #[error("signature of {found} bytes, {expected} expected")]
    SignatureLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        found: usize,
    },
    /// Signing, sealing or a session key was asked for before the context
    /// was established.
    #[error("security context not established")]
    NotEstablished,
    /// The mechanism has no session key.
    #[error("no session key")]
    NoSessionKey,
}

/// The outcome of one authentication leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Token to send to the peer (may be empty).
    pub token: Vec<u8>,
    /// Whether the context is established (`NT_STATUS_OK` rather than
    /// `NT_STATUS_MORE_PROCESSING_REQUIRED`).
    pub done: bool,
}

/// A security context as the connection uses it, modelled on gensec
/// (`gensec_update`, `gensec_{seal,unseal,sign,check}_packet`,
/// `gensec_sig_size`, `gensec_have_feature`, `gensec_session_key`).
///
/// Calls are strictly ordered: the connection signs/seals PDUs in the order
/// they are sent and checks/unseals them in the order received, so stateful
/// mechanisms (NTLMSSP sequence numbers, RC4) stay in step.
pub trait SecurityContext {
    /// The `auth_type` this context speaks ([`AuthType::NTLMSSP`], ...).
    fn auth_type(&self) -> AuthType;

    /// One leg: consumes the peer's token (empty for the client's first
    /// call) and returns the token to send. The client drives the flow
    /// from `done` as Samba does: not done → alter_context; done with a
    /// token → rpc_auth_3; done without token → bound.
    fn update(&mut self, token_in: &[u8]) -> Result<Update, SecurityError>;

    /// Signature length for `payload_len` bytes of (padded) stub data;
    /// must be constant for a given length.
    fn sig_size(&self, payload_len: usize) -> usize;

    /// Encrypts `pdu[payload]` in place and returns the signature
    /// (`sig_size(payload.len())` bytes). `pdu` is the fragment up to and
    /// including the `sec_trailer`; see the module docs for the ranges.
    fn seal(&mut self, pdu: &mut [u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError>;

    /// Decrypts `pdu[payload]` in place after verifying `sig`.
    fn unseal(&mut self, pdu: &mut [u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError>;

    /// Returns the signature over `pdu` (see the module docs).
    fn sign(&mut self, pdu: &[u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError>;

    /// Verifies `sig` over `pdu`.
    fn check(&mut self, pdu: &[u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError>;

    /// Whether the mechanism can sign the PDU header
    /// (`GENSEC_FEATURE_SIGN_PKT_HEADER`).
    fn supports_header_signing(&self) -> bool {
        false
    }

    /// Called when both sides agreed on header signing (`PFC_SUPPORT_HEADER_SIGN`
    /// in bind and bind_ack, MS-RPCE §3.3.1.5.2.2).
    fn enable_header_signing(&mut self) {}

    /// The session key (`gensec_session_key`), when the mechanism has one.
    fn session_key(&self) -> Result<Vec<u8>, SecurityError> {
        Err(SecurityError::NoSessionKey)
    }

    /// On the server, once authenticated: the client's account as
    /// `DOMAIN\user`.
    fn peer_user(&self) -> Option<String> {
        None
    }
}

/// A deterministic, *insecure* security context for tests: fixed token
/// scripts, XOR "encryption" and a 16-byte checksum signature with a
/// sequence number, so placement, padding, ordering and byte ranges are
/// exercised without cryptography.
pub mod toy {
    use super::*;

    /// Which token script to run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Flow {
        /// NTLMSSP-like: bind(NEGOTIATE) → bind_ack(CHALLENGE) →
        /// auth3(AUTHENTICATE).
        ThreeLeg,
        /// SPNEGO/Kerberos-like: bind(INIT) → bind_ack(RESP1) →
        /// alter_context(MIC) → alter_context_resp(MIC-ACK).
        MultiLeg,
    }

    /// Which side.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Role {
        /// Client.
        Client,
        /// Server.
        Server,
    }

    /// Signature length of the toy mechanism.
    pub const SIG_SIZE: usize = 16;

    /// The toy context.
    #[derive(Debug, Clone)]
    pub struct ToyContext {
        role: Role,
        flow: Flow,
        step: u32,
        established: bool,
        header_signing: bool,
        send_seq: u32,
        recv_seq: u32,
        /// Key mixed into the XOR stream and checksum; both sides must
        /// agree (a wrong key makes every check fail).
        pub key: u8,
        /// What the server accepts as the final client token (to test
        /// authentication failures).
        pub accept_password: bool,
    }

    impl ToyContext {
        /// A fresh context.
        pub fn new(role: Role, flow: Flow) -> Self {
            ToyContext {
                role,
                flow,
                step: 0,
                established: false,
                header_signing: false,
                send_seq: 0,
                recv_seq: 0,
                key: 0x5a,
                accept_password: true,
            }
        }

        /// Whether header signing was enabled.
        pub fn header_signing(&self) -> bool {
            self.header_signing
        }

        fn signed_range(&self, pdu_len: usize, payload: &Range<usize>) -> Range<usize> {
            if self.header_signing {
                0..pdu_len
            } else {
                payload.clone()
            }
        }

        fn checksum(&self, data: &[u8], seq: u32) -> Vec<u8> {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(self.key);
            for &b in data {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            let mut sig = Vec::with_capacity(SIG_SIZE);
            sig.extend_from_slice(b"TOYS");
            sig.extend_from_slice(&seq.to_le_bytes());
            sig.extend_from_slice(&h.to_le_bytes());
            sig
        }

        fn xor(&self, data: &mut [u8], seq: u32) {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= self.key ^ (i as u8).wrapping_mul(31) ^ (seq as u8);
            }
        }

        fn verify(&self, pdu: &[u8], payload: &Range<usize>, sig: &[u8], seq: u32) -> Result<(), SecurityError> {
            if sig.len() != SIG_SIZE {
                return Err(SecurityError::SignatureLength { expected: SIG_SIZE, found: sig.len() });
            }
            let range = self.signed_range(pdu.len(), payload);
            let data = pdu.get(range).ok_or(SecurityError::BadSignature)?;
            if self.checksum(data, seq) != sig {
                return Err(SecurityError::BadSignature);
            }
            Ok(())
        }

        fn ready(&self, payload: &Range<usize>, len: usize) -> Result<(), SecurityError> {
            if !self.established {
                return Err(SecurityError::NotEstablished);
            }
            if payload.start > payload.end || payload.end > len {
                return Err(SecurityError::Status(INVALID_PARAMETER));
            }
            Ok(())
        }
    }

    /// `NT_STATUS_LOGON_FAILURE`.
    const LOGON_FAILURE: u32 = 0xc000_006d;
    /// `NT_STATUS_INVALID_PARAMETER`.
    const INVALID_PARAMETER: u32 = 0xc000_000d;

    impl SecurityContext for ToyContext {
        fn auth_type(&self) -> AuthType {
            match self.flow {
                Flow::ThreeLeg => AuthType::NTLMSSP,
                Flow::MultiLeg => AuthType::SPNEGO,
            }
        }

        fn update(&mut self, token_in: &[u8]) -> Result<Update, SecurityError> {
            let step = self.step;
            self.step += 1;
            let (expect, out, done): (&[u8], &[u8], bool) = match (self.flow, self.role, step) {
                (Flow::ThreeLeg, Role::Client, 0) => (b"", b"NEGOTIATE", false),
                (Flow::ThreeLeg, Role::Client, 1) => (b"CHALLENGE", b"AUTHENTICATE", true),
                (Flow::ThreeLeg, Role::Server, 0) => (b"NEGOTIATE", b"CHALLENGE", false),
                (Flow::ThreeLeg, Role::Server, 1) => (b"AUTHENTICATE", b"", true),
                (Flow::MultiLeg, Role::Client, 0) => (b"", b"INIT", false),
                (Flow::MultiLeg, Role::Client, 1) => (b"RESP1", b"MIC", false),
                (Flow::MultiLeg, Role::Client, 2) => (b"MIC-ACK", b"", true),
                (Flow::MultiLeg, Role::Server, 0) => (b"INIT", b"RESP1", false),
                (Flow::MultiLeg, Role::Server, 1) => (b"MIC", b"MIC-ACK", true),
                _ => return Err(SecurityError::Status(INVALID_PARAMETER)),
            };
            if token_in != expect || (done && self.role == Role::Server && !self.accept_password) {
                return Err(SecurityError::Status(LOGON_FAILURE));
            }
            self.established = done;
            Ok(Update { token: out.to_vec(), done })
        }

        fn sig_size(&self, _payload_len: usize) -> usize {
            SIG_SIZE
        }

        fn seal(&mut self, pdu: &mut [u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError> {
            self.ready(&payload, pdu.len())?;
            let seq = self.send_seq;
            self.send_seq = self.send_seq.wrapping_add(1);
            let range = self.signed_range(pdu.len(), &payload);
            let sig = self.checksum(&pdu[range], seq);
            self.xor(&mut pdu[payload], seq);
            Ok(sig)
        }

        fn unseal(&mut self, pdu: &mut [u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError> {
            self.ready(&payload, pdu.len())?;
            let seq = self.recv_seq;
            self.recv_seq = self.recv_seq.wrapping_add(1);
            let mut copy = pdu.to_vec();
            self.xor(&mut copy[payload.clone()], seq);
            self.verify(&copy, &payload, sig, seq)?;
            pdu[payload.clone()].copy_from_slice(&copy[payload]);
            Ok(())
        }

        fn sign(&mut self, pdu: &[u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError> {
            self.ready(&payload, pdu.len())?;
            let seq = self.send_seq;
            self.send_seq = self.send_seq.wrapping_add(1);
            Ok(self.checksum(&pdu[self.signed_range(pdu.len(), &payload)], seq))
        }

        fn check(&mut self, pdu: &[u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError> {
            self.ready(&payload, pdu.len())?;
            let seq = self.recv_seq;
            self.recv_seq = self.recv_seq.wrapping_add(1);
            self.verify(pdu, &payload, sig, seq)
        }

        fn supports_header_signing(&self) -> bool {
            true
        }

        fn enable_header_signing(&mut self) {
            self.header_signing = true;
        }

        fn session_key(&self) -> Result<Vec<u8>, SecurityError> {
            if self.established {
                Ok(vec![self.key; 16])
            } else {
                Err(SecurityError::NotEstablished)
            }
        }
    }
}
