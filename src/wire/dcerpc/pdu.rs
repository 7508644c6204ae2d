//! Connection-oriented DCE/RPC PDUs (C706 ch. 12.6, MS-RPCE §2.2.2):
//! one type per body, [`Pdu::encode`] / [`Pdu::decode`], and
//! [`PduBuffer`] to cut a byte stream into fragments. Sans-IO; the decoder
//! treats its input as hostile (typed errors, no panics, no allocation
//! beyond what the 64 KiB fragment can hold).
//!
//! Layout notes (they match Samba's `librpc/idl/dcerpc.idl`):
//! - Every PDU starts with the 16-byte common header (C706 §12.6.3.1):
//!   `rpc_vers` 5, `rpc_vers_minor` 0, `ptype`, `pfc_flags`, `drep[4]`,
//!   `frag_length`, `auth_length`, `call_id`. Only the little-endian,
//!   ASCII, IEEE data representation `10 00 00 00` is accepted; a
//!   big-endian `drep` is refused with [`Error::BigEndian`].
//! - Alignment is relative to the start of the PDU (Samba pushes the whole
//!   `ncacn_packet` with one NDR context).
//! - When `auth_length` is non-zero the last `auth_length + 8` bytes are the
//!   `sec_trailer` (MS-RPCE §2.2.2.11) and the `auth_value`. For
//!   request/response/fault the stub before it keeps its `auth_pad_length`
//!   padding bytes (they are ciphertext at privacy level), see
//!   [`Request::stub`].

use crate::wire::ndr::{self, Guid, Reader, Writer};

/// Length of the common header (C706 §12.6.3.1).
pub const HEADER_LEN: usize = 16;
/// Length of a `sec_trailer` (MS-RPCE §2.2.2.11), before the auth value.
pub const AUTH_TRAILER_LEN: usize = 8;
/// Padding alignment of authenticated stubs (MS-RPCE §2.2.2.11): Samba
/// and Windows pad the stub to a multiple of 16 before the `sec_trailer`.
pub const AUTH_PAD_ALIGNMENT: usize = 16;
/// Request header length without object UUID (common header + 8).
pub const REQUEST_HEADER_LEN: usize = 24;
/// Response header length (common header + 8).
pub const RESPONSE_HEADER_LEN: usize = 24;
/// Fault header length (common header + 16).
pub const FAULT_HEADER_LEN: usize = 32;
/// The largest fragment Samba's server accepts without negotiation
/// (`DCERPC_FRAG_MAX_SIZE`), also Windows' default `max_xmit_frag`.
pub const DEFAULT_MAX_FRAG: u16 = 5840;
/// The little-endian/ASCII/IEEE data representation (C706 §14.1).
pub const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];

/// `pfc_flags` bits (C706 §12.6.3.1, MS-RPCE §2.2.2.3).
pub mod pfc {
    /// First fragment of a call.
    pub const FIRST: u8 = 0x01;
    /// Last fragment of a call.
    pub const LAST: u8 = 0x02;
    /// On request/response: cancel pending. On bind/bind_ack/alter:
    /// `PFC_SUPPORT_HEADER_SIGN` (MS-RPCE §2.2.2.3).
    pub const PENDING_CANCEL: u8 = 0x04;
    /// Header signing supported (bind, bind_ack, alter_context).
    pub const SUPPORT_HEADER_SIGN: u8 = 0x04;
    /// Concurrent multiplexing supported.
    pub const CONC_MPX: u8 = 0x10;
    /// On fault: the call did not execute.
    pub const DID_NOT_EXECUTE: u8 = 0x20;
    /// `maybe` call semantics.
    pub const MAYBE: u8 = 0x40;
    /// A request carries an object UUID.
    pub const OBJECT_UUID: u8 = 0x80;
}

/// Everything that can be wrong with a received PDU. Every variant is the
/// sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the header or `frag_length` says.
    #[error("truncated PDU: {need} bytes needed, {have} present")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// `rpc_vers`/`rpc_vers_minor` other than 5.0 (C706 §12.6.3.1).
    #[error("unsupported RPC protocol version {major}.{minor}")]
    Version {
        /// `rpc_vers`.
        major: u8,
        /// `rpc_vers_minor`.
        minor: u8,
    },
    /// Big-endian integer representation in `drep` (refused: every peer
    /// that speaks MS-FRS2 is little-endian).
    #[error("big-endian data representation is not supported")]
    BigEndian,
    /// A `drep` other than little-endian/ASCII/IEEE (EBCDIC, VAX/Cray/IBM
    /// floats, non-zero reserved bytes).
    #[error("unsupported data representation {0:02x?}")]
    Drep([u8; 4]),
    /// A connectionless, RTS or undefined packet type.
    #[error("packet type {0} is not a connection-oriented PDU")]
    PacketType(u8),
    /// `frag_length` too small for the header and body it announces.
    #[error("frag_length {frag_length} below the minimum of {min}")]
    FragTooShort {
        /// `frag_length` on the wire.
        frag_length: u16,
        /// Minimum for this PDU.
        min: usize,
    },
    /// The buffer given to [`Pdu::decode`] is not `frag_length` long.
    #[error("frag_length {frag_length} differs from the {actual} bytes given")]
    FragLengthMismatch {
        /// `frag_length` on the wire.
        frag_length: u16,
        /// Bytes given.
        actual: usize,
    },
    /// `auth_length` (plus the 8-byte `sec_trailer`) does not fit after the
    /// body header.
    #[error("auth_length {auth_length} does not fit in frag_length {frag_length}")]
    AuthLength {
        /// `auth_length` on the wire.
        auth_length: u16,
        /// `frag_length` on the wire.
        frag_length: u16,
    },
    /// `auth_pad_length` larger than the data before the trailer, or (for
    /// PDUs without stub) different from the gap before the trailer.
    #[error("auth_pad_length {pad} does not match the {available} bytes before the trailer")]
    AuthPad {
        /// `auth_pad_length` on the wire.
        pad: u8,
        /// Bytes between the body and the trailer.
        available: usize,
    },
    /// An enumerated field holds a value the spec does not define.
    #[error("{what}: undefined value {value}")]
    BadValue {
        /// Which field.
        what: &'static str,
        /// The value on the wire.
        value: u32,
    },
    /// The secondary address is not NUL-terminated or contains a NUL.
    #[error("malformed secondary address")]
    SecondaryAddress,
    /// Bytes after a body that has no room for them.
    #[error("{0} unexpected bytes after the PDU body")]
    TrailingBytes(usize),
    /// An encoded PDU would exceed the 16-bit `frag_length` (sender side).
    #[error("PDU of {0} bytes exceeds the 65535-byte fragment limit")]
    TooLong(usize),
    /// A body field was truncated or malformed.
    #[error("body: {0}")]
    Ndr(#[from] ndr::Error),
}

/// Result of PDU decoding.
pub type Result<T> = std::result::Result<T, Error>;

/// Connection-oriented packet types (C706 §12.6.4, MS-RPCE §2.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `request` (0).
    Request = 0,
    /// `response` (2).
    Response = 2,
    /// `fault` (3).
    Fault = 3,
    /// `bind` (11).
    Bind = 11,
    /// `bind_ack` (12).
    BindAck = 12,
    /// `bind_nak` (13).
    BindNak = 13,
    /// `alter_context` (14).
    AlterContext = 14,
    /// `alter_context_resp` (15).
    AlterContextResp = 15,
    /// `rpc_auth_3` (16, MS-RPCE §2.2.2.10).
    Auth3 = 16,
    /// `shutdown` (17).
    Shutdown = 17,
    /// `co_cancel` (18).
    CoCancel = 18,
    /// `orphaned` (19).
    Orphaned = 19,
}

impl PacketType {
    /// Maps the wire value; connectionless and RTS types are refused.
    pub fn from_u8(v: u8) -> Result<PacketType> {
        Ok(match v {
            0 => PacketType::Request,
            2 => PacketType::Response,
            3 => PacketType::Fault,
            11 => PacketType::Bind,
            12 => PacketType::BindAck,
            13 => PacketType::BindNak,
            14 => PacketType::AlterContext,
            15 => PacketType::AlterContextResp,
            16 => PacketType::Auth3,
            17 => PacketType::Shutdown,
            18 => PacketType::CoCancel,
            19 => PacketType::Orphaned,
            v => return Err(Error::PacketType(v)),
        })
    }
}

/// A presentation syntax identifier `p_syntax_id_t` (C706 §12.6.3.1):
/// a UUID and a `u32` version whose low 16 bits are the major version and
/// high 16 bits the minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SyntaxId {
    /// Interface or transfer syntax UUID.
    pub uuid: Guid,
    /// `major | minor << 16`.
    pub version: u32,
}

impl SyntaxId {
    /// A syntax from its UUID and `major.minor` version.
    pub fn new(uuid: Guid, major: u16, minor: u16) -> SyntaxId {
        SyntaxId { uuid, version: u32::from(major) | u32::from(minor) << 16 }
    }

    /// The NDR20 transfer syntax `8a885d04-1ceb-11c9-9fe8-08002b104860`
    /// v2.0 (C706 appendix I, MS-RPCE §2.2.4.12).
    pub fn ndr20() -> SyntaxId {
        SyntaxId::new(
            Guid::from_fields(0x8a88_5d04, 0x1ceb, 0x11c9, [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60]),
            2,
            0,
        )
    }

    /// The bind-time feature negotiation pseudo transfer syntax
    /// `6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx` v1.0 (MS-RPCE §3.3.1.5.3):
    /// the last 8 UUID bytes carry the feature bits, little-endian
    /// (`6cb71c2c-9812-4540-0300-000000000000` asks for both features).
    pub fn bind_time_features(features: u64) -> SyntaxId {
        let mut g = Guid::from_fields(0x6cb7_1c2c, 0x9812, 0x4540, [0; 8]);
        g.0[8..16].copy_from_slice(&features.to_le_bytes());
        SyntaxId::new(g, 1, 0)
    }

    /// The feature bits if this is a bind-time feature negotiation syntax
    /// (as Samba's `dcerpc_extract_bind_time_features`).
    pub fn as_bind_time_features(&self) -> Option<u64> {
        let mut prefix = *self;
        prefix.uuid.0[8..16].fill(0);
        if prefix != SyntaxId::bind_time_features(0) {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.uuid.0[8..16]);
        Some(u64::from_le_bytes(b))
    }

    /// Major version.
    pub fn major(&self) -> u16 {
        self.version as u16
    }

    /// Minor version.
    pub fn minor(&self) -> u16 {
        (self.version >> 16) as u16
    }

    fn read(r: &mut Reader<'_>) -> ndr::Result<SyntaxId> {
        let uuid = r.guid()?;
        let version = r.u32()?;
        Ok(SyntaxId { uuid, version })
    }

    fn write(&self, w: &mut Writer<'_>) {
        w.guid(&self.uuid);
        w.u32(self.version);
    }
}

/// Bind-time feature bits (MS-RPCE §2.2.2.14).
pub mod features {
    /// Security context multiplexing.
    pub const SECURITY_CONTEXT_MULTIPLEXING: u16 = 0x0001;
    /// Keep the connection on orphan.
    pub const KEEP_CONNECTION_ON_ORPHAN: u16 = 0x0002;
}

/// `auth_type` (MS-RPCE §2.2.1.1.7); a newtype so unknown values decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthType(pub u8);

impl AuthType {
    /// No authentication.
    pub const NONE: AuthType = AuthType(0);
    /// SPNEGO (`RPC_C_AUTHN_GSS_NEGOTIATE`).
    pub const SPNEGO: AuthType = AuthType(9);
    /// NTLMSSP (`RPC_C_AUTHN_WINNT`).
    pub const NTLMSSP: AuthType = AuthType(10);
    /// Kerberos (`RPC_C_AUTHN_GSS_KERBEROS`).
    pub const KRB5: AuthType = AuthType(16);
    /// Netlogon secure channel.
    pub const SCHANNEL: AuthType = AuthType(68);
}

/// `auth_level` (MS-RPCE §2.2.1.1.8); ordered, so `level >= INTEGRITY`
/// reads naturally. A newtype so unknown values decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthLevel(pub u8);

impl AuthLevel {
    /// No authentication (1).
    pub const NONE: AuthLevel = AuthLevel(1);
    /// Authenticate at bind only (2).
    pub const CONNECT: AuthLevel = AuthLevel(2);
    /// Per call (3; treated as packet by Windows).
    pub const CALL: AuthLevel = AuthLevel(3);
    /// Per packet, header only (4).
    pub const PACKET: AuthLevel = AuthLevel(4);
    /// Signed (5).
    pub const INTEGRITY: AuthLevel = AuthLevel(5);
    /// Sealed (6).
    pub const PRIVACY: AuthLevel = AuthLevel(6);

    /// Whether request/response PDUs carry a signature at this level.
    pub fn protects_pdus(self) -> bool {
        self >= AuthLevel::PACKET
    }
}

/// The `sec_trailer` and `auth_value` (MS-RPCE §2.2.2.11): the last
/// `8 + auth_length` bytes of an authenticated PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTrailer {
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `auth_level`.
    pub auth_level: AuthLevel,
    /// `auth_pad_length`: padding bytes before the trailer.
    pub pad_length: u8,
    /// `auth_reserved` (sent as 0, kept as received).
    pub reserved: u8,
    /// `auth_context_id`.
    pub context_id: u32,
    /// `auth_value`: a security token (bind/alter/auth3) or a signature
    /// (request/response). Its length is `auth_length`.
    pub value: Vec<u8>,
}

/// A presentation context element `p_cont_elem_t` (C706 §12.6.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextElement {
    /// `p_cont_id`.
    pub context_id: u16,
    /// The interface.
    pub abstract_syntax: SyntaxId,
    /// Offered transfer syntaxes (at least one, at most 255).
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// `bind` and `alter_context` bodies (C706 §12.6.4.3, §12.6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Largest fragment the sender will transmit.
    pub max_xmit_frag: u16,
    /// Largest fragment the sender can receive.
    pub max_recv_frag: u16,
    /// Association group (0 = new).
    pub assoc_group_id: u32,
    /// Presentation context list (at most 255).
    pub contexts: Vec<ContextElement>,
}

/// `p_cont_def_result_t` (C706 §12.6.3.1, MS-RPCE §2.2.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckResult {
    /// Accepted (0).
    Acceptance,
    /// User rejection (1).
    UserRejection,
    /// Provider rejection (2).
    ProviderRejection,
    /// Bind-time feature negotiation acknowledged (3, MS-RPCE).
    NegotiateAck,
}

impl AckResult {
    fn to_u16(self) -> u16 {
        match self {
            AckResult::Acceptance => 0,
            AckResult::UserRejection => 1,
            AckResult::ProviderRejection => 2,
            AckResult::NegotiateAck => 3,
        }
    }
}

/// Provider rejection reasons `p_provider_reason_t` (C706 §12.6.3.1).
pub mod ack_reason {
    /// Reason not specified.
    pub const NOT_SPECIFIED: u16 = 0;
    /// Abstract syntax (interface) not supported.
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: u16 = 1;
    /// None of the transfer syntaxes is supported.
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: u16 = 2;
    /// Local limit exceeded.
    pub const LOCAL_LIMIT_EXCEEDED: u16 = 3;
}

/// `bind_nak` reject reasons (C706 §12.6.3.1, MS-RPCE §2.2.2.5).
pub mod nak_reason {
    /// Reason not specified.
    pub const NOT_SPECIFIED: u16 = 0;
    /// Temporary congestion.
    pub const TEMPORARY_CONGESTION: u16 = 1;
    /// Local limit exceeded.
    pub const LOCAL_LIMIT_EXCEEDED: u16 = 2;
    /// Protocol version not supported.
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: u16 = 4;
    /// Authentication type not recognized.
    pub const INVALID_AUTH_TYPE: u16 = 8;
    /// Invalid checksum.
    pub const INVALID_CHECKSUM: u16 = 9;
}

/// One `p_result_t` of a bind_ack (C706 §12.6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    /// The result.
    pub result: AckResult,
    /// A provider reason ([`ack_reason`]), or for
    /// [`AckResult::NegotiateAck`] the accepted [`features`] bits.
    pub reason: u16,
    /// The accepted transfer syntax (all zero when not accepted).
    pub transfer_syntax: SyntaxId,
}

/// `bind_ack` and `alter_context_resp` bodies (C706 §12.6.4.4, §12.6.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAck {
    /// Largest fragment the server will transmit.
    pub max_xmit_frag: u16,
    /// Largest fragment the server can receive.
    pub max_recv_frag: u16,
    /// The association group.
    pub assoc_group_id: u32,
    /// `sec_addr`: the server's port or pipe name (DOS charset; bytes are
    /// mapped 1:1 to U+0000..U+00FF). Empty is sent as length 0.
    pub secondary_address: String,
    /// One result per offered context, in order.
    pub results: Vec<ContextResult>,
}

/// `bind_nak` body (C706 §12.6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindNak {
    /// `provider_reject_reason` ([`nak_reason`]).
    pub reason: u16,
    /// Supported protocol versions `(major, minor)`.
    pub versions: Vec<(u8, u8)>,
}

/// `request` body (C706 §12.6.4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Bytes of stub data from this fragment to the end of the call.
    pub alloc_hint: u32,
    /// Presentation context.
    pub context_id: u16,
    /// Operation number.
    pub opnum: u16,
    /// Object UUID (`PFC_OBJECT_UUID`).
    pub object: Option<Guid>,
    /// Stub data as on the wire: when authenticated it ends with
    /// `auth_pad_length` padding bytes and is ciphertext at privacy level.
    pub stub: Vec<u8>,
}

/// `response` body (C706 §12.6.4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Bytes of stub data from this fragment to the end of the call.
    pub alloc_hint: u32,
    /// Presentation context.
    pub context_id: u16,
    /// Cancels the server received.
    pub cancel_count: u8,
    /// Stub data as on the wire (see [`Request::stub`]).
    pub stub: Vec<u8>,
}

/// `fault` body (C706 §12.6.4.7, MS-RPCE §2.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Allocation hint.
    pub alloc_hint: u32,
    /// Presentation context.
    pub context_id: u16,
    /// Cancels the server received.
    pub cancel_count: u8,
    /// `0x01`: extended error information follows (MS-RPCE §2.2.2.7).
    pub flags: u8,
    /// The status (`nca_s_*` or a Win32 error, see [`status`]).
    pub status: u32,
    /// Data after the fixed part (extended error info, auth padding).
    pub stub: Vec<u8>,
}

/// Fault status values (C706 appendix E, MS-RPCE §3.1.1.5.5).
pub mod status {
    /// `nca_s_op_rng_error`: opnum out of range.
    pub const NCA_S_OP_RNG_ERROR: u32 = 0x1c01_0002;
    /// `nca_s_unknown_if`: unknown interface / presentation context.
    pub const NCA_S_UNKNOWN_IF: u32 = 0x1c01_0003;
    /// `nca_s_proto_error`: protocol error.
    pub const NCA_S_PROTO_ERROR: u32 = 0x1c01_000b;
    /// `nca_s_server_too_busy`.
    pub const NCA_S_SERVER_TOO_BUSY: u32 = 0x1c01_0014;
    /// `nca_s_fault_unspec_reject`.
    pub const NCA_S_FAULT_UNSPEC_REJECT: u32 = 0x1c00_0009;
    /// `nca_s_fault_context_mismatch`.
    pub const NCA_S_FAULT_CONTEXT_MISMATCH: u32 = 0x1c00_001a;
    /// `nca_s_fault_access_denied` as Windows and Samba send it
    /// (`ERROR_ACCESS_DENIED`, `DCERPC_FAULT_ACCESS_DENIED`).
    pub const ACCESS_DENIED: u32 = 0x0000_0005;
    /// `RPC_S_NO_CALL_ACTIVE` (`DCERPC_FAULT_NO_CALL_ACTIVE`).
    pub const NO_CALL_ACTIVE: u32 = 0x0000_06bd;
    /// `DCERPC_FAULT_OUT_OF_RESOURCES`, as Samba names it.
    pub const OUT_OF_RESOURCES: u32 = 0x0000_06d9;
    /// `RPC_X_BAD_STUB_DATA` (`DCERPC_FAULT_NDR`).
    pub const BAD_STUB_DATA: u32 = 0x0000_06f7;
    /// `RPC_S_SEC_PKG_ERROR`.
    pub const SEC_PKG_ERROR: u32 = 0x0000_0721;
}

/// A PDU body, by packet type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `request`.
    Request(Request),
    /// `response`.
    Response(Response),
    /// `fault`.
    Fault(Fault),
    /// `bind`.
    Bind(Bind),
    /// `bind_ack`.
    BindAck(BindAck),
    /// `bind_nak`.
    BindNak(BindNak),
    /// `alter_context` (same layout as bind).
    AlterContext(Bind),
    /// `alter_context_resp` (same layout as bind_ack).
    AlterContextResp(BindAck),
    /// `rpc_auth_3` (MS-RPCE §2.2.2.10): 4 pad bytes, then the trailer.
    Auth3,
    /// `shutdown` (empty).
    Shutdown,
    /// `co_cancel` (only an optional trailer).
    CoCancel,
    /// `orphaned` (only an optional trailer).
    Orphaned,
}

impl Body {
    /// The packet type of this body.
    pub fn ptype(&self) -> PacketType {
        match self {
            Body::Request(_) => PacketType::Request,
            Body::Response(_) => PacketType::Response,
            Body::Fault(_) => PacketType::Fault,
            Body::Bind(_) => PacketType::Bind,
            Body::BindAck(_) => PacketType::BindAck,
            Body::BindNak(_) => PacketType::BindNak,
            Body::AlterContext(_) => PacketType::AlterContext,
            Body::AlterContextResp(_) => PacketType::AlterContextResp,
            Body::Auth3 => PacketType::Auth3,
            Body::Shutdown => PacketType::Shutdown,
            Body::CoCancel => PacketType::CoCancel,
            Body::Orphaned => PacketType::Orphaned,
        }
    }
}

/// The common header (C706 §12.6.3.1) as peeked from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type.
    pub ptype: PacketType,
    /// `pfc_flags` ([`pfc`]).
    pub pfc_flags: u8,
    /// Total length of this fragment.
    pub frag_length: u16,
    /// Length of the `auth_value` (not counting the 8-byte `sec_trailer`).
    pub auth_length: u16,
    /// Call identifier.
    pub call_id: u32,
}

impl Header {
    /// Parses and checks the first 16 bytes: version 5.0, little-endian
    /// `drep`, a connection-oriented type, `frag_length >= 16` and an
    /// `auth_length` that fits. Returns `Ok(None)` if fewer than 16 bytes
    /// are given.
    pub fn peek(buf: &[u8]) -> Result<Option<Header>> {
        let Some(h) = buf.get(..HEADER_LEN) else { return Ok(None) };
        if h[0] != 5 || h[1] != 0 {
            return Err(Error::Version { major: h[0], minor: h[1] });
        }
        let drep = [h[4], h[5], h[6], h[7]];
        if drep[0] & 0xf0 == 0 {
            return Err(Error::BigEndian);
        }
        if drep != DREP_LE {
            return Err(Error::Drep(drep));
        }
        let ptype = PacketType::from_u8(h[2])?;
        let frag_length = u16::from_le_bytes([h[8], h[9]]);
        let auth_length = u16::from_le_bytes([h[10], h[11]]);
        let call_id = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if usize::from(frag_length) < HEADER_LEN {
            return Err(Error::FragTooShort { frag_length, min: HEADER_LEN });
        }
        if auth_length > 0 && usize::from(auth_length) + AUTH_TRAILER_LEN > usize::from(frag_length) - HEADER_LEN {
            return Err(Error::AuthLength { auth_length, frag_length });
        }
        Ok(Some(Header { ptype, pfc_flags: h[3], frag_length, auth_length, call_id }))
    }

    /// Offset of the `sec_trailer` (= `frag_length` when unauthenticated).
    pub fn trailer_offset(&self) -> usize {
        if self.auth_length == 0 {
            usize::from(self.frag_length)
        } else {
            usize::from(self.frag_length) - usize::from(self.auth_length) - AUTH_TRAILER_LEN
        }
    }
}

/// A whole PDU (one fragment). `frag_length` and `auth_length` are derived
/// when encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// `pfc_flags` ([`pfc`]). For requests [`pfc::OBJECT_UUID`] is carried
    /// by [`Request::object`] instead: set from it when encoding, cleared
    /// here when decoding.
    pub pfc_flags: u8,
    /// Call identifier.
    pub call_id: u32,
    /// The body.
    pub body: Body,
    /// The authentication trailer, if `auth_length` is (to be) non-zero.
    pub auth: Option<AuthTrailer>,
}

/// Offset of the stub data in a request/response/fault fragment: 24 (40
/// for a request with object UUID, 32 for a fault).
pub fn stub_offset(ptype: PacketType, pfc_flags: u8) -> Option<usize> {
    match ptype {
        PacketType::Request if pfc_flags & pfc::OBJECT_UUID != 0 => Some(REQUEST_HEADER_LEN + 16),
        PacketType::Request => Some(REQUEST_HEADER_LEN),
        PacketType::Response => Some(RESPONSE_HEADER_LEN),
        PacketType::Fault => Some(FAULT_HEADER_LEN),
        _ => None,
    }
}

/// Padding needed after `len` stub bytes (`DCERPC_AUTH_PAD_LENGTH`).
pub fn auth_pad_length(len: usize) -> usize {
    (AUTH_PAD_ALIGNMENT - len % AUTH_PAD_ALIGNMENT) % AUTH_PAD_ALIGNMENT
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

impl Pdu {
    /// A single-fragment PDU (`FIRST | LAST`) without auth trailer.
    pub fn new(call_id: u32, body: Body) -> Pdu {
        Pdu { pfc_flags: pfc::FIRST | pfc::LAST, call_id, body, auth: None }
    }

    /// The packet type.
    pub fn ptype(&self) -> PacketType {
        self.body.ptype()
    }

    /// Encodes the PDU, computing `frag_length` and `auth_length`. For
    /// PDUs without stub data (bind, alter, auth3, ...) `auth.pad_length`
    /// zero bytes are written before the trailer; for request/response/
    /// fault the stub is written as is (it must already end with the
    /// padding). Fails only if the result exceeds 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        let mut flags = self.pfc_flags;
        if let Body::Request(r) = &self.body {
            flags = if r.object.is_some() { flags | pfc::OBJECT_UUID } else { flags & !pfc::OBJECT_UUID };
        }
        w.u8(5);
        w.u8(0);
        w.u8(self.ptype() as u8);
        w.u8(flags);
        w.bytes(&DREP_LE);
        w.u16(0); // frag_length, patched below
        w.u16(0); // auth_length, patched below
        w.u32(self.call_id);
        let mut has_stub = false;
        match &self.body {
            Body::Request(r) => {
                w.u32(r.alloc_hint);
                w.u16(r.context_id);
                w.u16(r.opnum);
                if let Some(o) = &r.object {
                    w.guid(o);
                }
                w.bytes(&r.stub);
                has_stub = true;
            }
            Body::Response(r) => {
                w.u32(r.alloc_hint);
                w.u16(r.context_id);
                w.u8(r.cancel_count);
                w.u8(0);
                w.bytes(&r.stub);
                has_stub = true;
            }
            Body::Fault(f) => {
                w.u32(f.alloc_hint);
                w.u16(f.context_id);
                w.u8(f.cancel_count);
                w.u8(f.flags);
                w.u32(f.status);
                w.u32(0);
                w.bytes(&f.stub);
                has_stub = true;
            }
            Body::Bind(b) | Body::AlterContext(b) => write_bind(&mut w, b),
            Body::BindAck(a) | Body::AlterContextResp(a) => write_bind_ack(&mut w, a),
            Body::BindNak(n) => {
                w.u16(n.reason);
                w.u8(n.versions.len().min(255) as u8);
                for &(ma, mi) in n.versions.iter().take(255) {
                    w.u8(ma);
                    w.u8(mi);
                }
                // Samba pads the body to a multiple of 4 with three bytes
                // after one version entry; keep 4-byte alignment.
                w.align(4);
            }
            Body::Auth3 => w.u32(0),
            Body::Shutdown | Body::CoCancel | Body::Orphaned => {}
        }
        let mut auth_length = 0usize;
        if let Some(a) = &self.auth {
            if !has_stub {
                for _ in 0..a.pad_length {
                    w.u8(0);
                }
            }
            w.u8(a.auth_type.0);
            w.u8(a.auth_level.0);
            w.u8(a.pad_length);
            w.u8(a.reserved);
            w.bytes(&a.context_id.to_le_bytes());
            w.bytes(&a.value);
            auth_length = a.value.len();
        }
        let mut out = w.finish();
        if out.len() > usize::from(u16::MAX) || auth_length > usize::from(u16::MAX) {
            return Err(Error::TooLong(out.len()));
        }
        let fl = (out.len() as u16).to_le_bytes();
        out[8..10].copy_from_slice(&fl);
        out[10..12].copy_from_slice(&(auth_length as u16).to_le_bytes());
        Ok(out)
    }

    /// Decodes exactly one fragment; `buf.len()` must equal `frag_length`.
    pub fn decode(buf: &[u8]) -> Result<Pdu> {
        let h = Header::peek(buf)?.ok_or(Error::Truncated { need: HEADER_LEN, have: buf.len() })?;
        if usize::from(h.frag_length) != buf.len() {
            return Err(Error::FragLengthMismatch { frag_length: h.frag_length, actual: buf.len() });
        }
        let toff = h.trailer_offset();
        let auth = if h.auth_length > 0 {
            let t = &buf[toff..];
            Some(AuthTrailer {
                auth_type: AuthType(t[0]),
                auth_level: AuthLevel(t[1]),
                pad_length: t[2],
                reserved: t[3],
                context_id: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
                value: t[AUTH_TRAILER_LEN..].to_vec(),
            })
        } else {
            None
        };
        let mut r = Reader::new(&buf[..toff]);
        r.array::<HEADER_LEN>()?;
        let body_start_min = |min: usize| {
            if toff < min {
                Err(if h.auth_length > 0 {
                    Error::AuthLength { auth_length: h.auth_length, frag_length: h.frag_length }
                } else {
                    Error::FragTooShort { frag_length: h.frag_length, min }
                })
            } else {
                Ok(())
            }
        };
        let mut stub_pdu = false;
        let mut pfc_flags = h.pfc_flags;
        let body = match h.ptype {
            PacketType::Request => {
                body_start_min(stub_offset(h.ptype, h.pfc_flags).unwrap_or(REQUEST_HEADER_LEN))?;
                let alloc_hint = r.u32()?;
                let context_id = r.u16()?;
                let opnum = r.u16()?;
                let object = if h.pfc_flags & pfc::OBJECT_UUID != 0 { Some(r.guid()?) } else { None };
                pfc_flags &= !pfc::OBJECT_UUID;
                stub_pdu = true;
                Body::Request(Request { alloc_hint, context_id, opnum, object, stub: r.bytes(r.remaining())? })
            }
            PacketType::Response => {
                body_start_min(RESPONSE_HEADER_LEN)?;
                let alloc_hint = r.u32()?;
                let context_id = r.u16()?;
                let cancel_count = r.u8()?;
                r.u8()?;
                stub_pdu = true;
                Body::Response(Response { alloc_hint, context_id, cancel_count, stub: r.bytes(r.remaining())? })
            }
            PacketType::Fault => {
                body_start_min(FAULT_HEADER_LEN)?;
                let alloc_hint = r.u32()?;
                let context_id = r.u16()?;
                let cancel_count = r.u8()?;
                let flags = r.u8()?;
                let status = r.u32()?;
                r.u32()?;
                stub_pdu = true;
                Body::Fault(Fault {
                    alloc_hint,
                    context_id,
                    cancel_count,
                    flags,
                    status,
                    stub: r.bytes(r.remaining())?,
                })
            }
            PacketType::Bind => Body::Bind(read_bind(&mut r)?),
            PacketType::AlterContext => Body::AlterContext(read_bind(&mut r)?),
            PacketType::BindAck => Body::BindAck(read_bind_ack(&mut r)?),
            PacketType::AlterContextResp => Body::AlterContextResp(read_bind_ack(&mut r)?),
            PacketType::BindNak => {
                let reason = r.u16()?;
                // Samba <= 4.1 sent only the reason (bug 11327).
                let n = if r.remaining() == 0 { 0 } else { r.u8()? };
                let versions = r.elements("bind_nak versions", n.into(), 2, |r| Ok((r.u8()?, r.u8()?)))?;
                // MS-RPCE §2.2.2.5 allows an extended tail; Samba pads.
                r.bytes(r.remaining())?;
                Body::BindNak(BindNak { reason, versions })
            }
            PacketType::Auth3 => {
                r.u32()?;
                Body::Auth3
            }
            PacketType::Shutdown => Body::Shutdown,
            PacketType::CoCancel => Body::CoCancel,
            PacketType::Orphaned => Body::Orphaned,
        };
        let gap = match &body {
            Body::Request(x) => x.stub.len(),
            Body::Response(x) => x.stub.len(),
            Body::Fault(x) => x.stub.len(),
            _ => r.remaining(),
        };
        let mut auth = auth;
        match &mut auth {
            Some(a) if stub_pdu && usize::from(a.pad_length) > gap => {
                return Err(Error::AuthPad { pad: a.pad_length, available: gap });
            }
            Some(_) if stub_pdu => {}
            Some(a) => {
                if gap == 0 && a.pad_length > 0 {
                    // Old Samba sent a bogus pad length in bind_ack and
                    // alter_resp; Samba ignores it (bug 11061), so do we.
                    a.pad_length = 0;
                } else if usize::from(a.pad_length) != gap {
                    return Err(Error::AuthPad { pad: a.pad_length, available: gap });
                }
            }
            None if gap > 0 && !stub_pdu => return Err(Error::TrailingBytes(gap)),
            None => {}
        }
        Ok(Pdu { pfc_flags, call_id: h.call_id, body, auth })
    }
}

fn write_bind(w: &mut Writer<'_>, b: &Bind) {
    w.u16(b.max_xmit_frag);
    w.u16(b.max_recv_frag);
    w.u32(b.assoc_group_id);
    w.u8(b.contexts.len().min(255) as u8);
    w.align(4);
    for c in b.contexts.iter().take(255) {
        w.align(4);
        w.u16(c.context_id);
        w.u8(c.transfer_syntaxes.len().min(255) as u8);
        w.u8(0);
        c.abstract_syntax.write(w);
        for t in c.transfer_syntaxes.iter().take(255) {
            t.write(w);
        }
    }
}

fn read_bind(r: &mut Reader<'_>) -> Result<Bind> {
    let max_xmit_frag = r.u16()?;
    let max_recv_frag = r.u16()?;
    let assoc_group_id = r.u32()?;
    let n = r.u8()?;
    r.align(4)?;
    let contexts = r.elements("p_cont_list", n.into(), 44, |r| {
        r.align(4)?;
        let context_id = r.u16()?;
        let nt = r.u8()?;
        r.u8()?;
        let abstract_syntax = SyntaxId::read(r)?;
        let transfer_syntaxes = r.elements("transfer_syntaxes", nt.into(), 20, SyntaxId::read)?;
        Ok(ContextElement { context_id, abstract_syntax, transfer_syntaxes })
    })?;
    Ok(Bind { max_xmit_frag, max_recv_frag, assoc_group_id, contexts })
}

fn write_bind_ack(w: &mut Writer<'_>, a: &BindAck) {
    w.u16(a.max_xmit_frag);
    w.u16(a.max_recv_frag);
    w.u32(a.assoc_group_id);
    let addr: Vec<u8> =
        a.secondary_address.chars().map(|c| u8::try_from(c).unwrap_or(b'?')).take(u16::MAX as usize - 1).collect();
    if addr.is_empty() {
        w.u16(0);
    } else {
        w.u16(addr.len() as u16 + 1);
        w.bytes(&addr);
        w.u8(0);
    }
    w.align(4);
    w.u8(a.results.len().min(255) as u8);
    w.align(4);
    for res in a.results.iter().take(255) {
        w.u16(res.result.to_u16());
        w.u16(res.reason);
        res.transfer_syntax.write(w);
    }
}

fn read_bind_ack(r: &mut Reader<'_>) -> Result<BindAck> {
    let max_xmit_frag = r.u16()?;
    let max_recv_frag = r.u16()?;
    let assoc_group_id = r.u32()?;
    let n = r.u16()?;
    let secondary_address = if n == 0 {
        String::new()
    } else {
        let raw = r.bytes(n.into())?;
        match raw.split_last() {
            Some((0, s)) if !s.contains(&0) => latin1(s),
            _ => return Err(Error::SecondaryAddress),
        }
    };
    r.align(4)?;
    let nr = r.u8()?;
    r.align(4)?;
    let results = r.elements("p_result_list", nr.into(), 24, |r| {
        let v = r.u16()?;
        let result = match v {
            0 => AckResult::Acceptance,
            1 => AckResult::UserRejection,
            2 => AckResult::ProviderRejection,
            3 => AckResult::NegotiateAck,
            v => return Err(ndr::Error::BadEnum { what: "p_cont_def_result_t", value: v.into() }),
        };
        let reason = r.u16()?;
        let uuid = r.guid()?;
        let version = r.u32()?;
        Ok(ContextResult { result, reason, transfer_syntax: SyntaxId { uuid, version } })
    })?;
    Ok(BindAck { max_xmit_frag, max_recv_frag, assoc_group_id, secondary_address, results })
}

/// Cuts a received byte stream into whole fragments. Bytes may arrive in
/// any split; at most one fragment (≤ 65535 bytes) beyond what was given
/// is ever buffered. After an error the buffer is poisoned.
#[derive(Debug, Default)]
pub struct PduBuffer {
    buf: Vec<u8>,
    start: usize,
    failed: Option<Error>,
}

impl PduBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole fragment (header checked with [`Header::peek`]), or
    /// `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<(Header, Vec<u8>)>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let rest = &self.buf[self.start..];
        let h = match Header::peek(rest) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                return Err(e);
            }
        };
        let n = usize::from(h.frag_length);
        let Some(frame) = rest.get(..n) else { return Ok(None) };
        let frame = frame.to_vec();
        self.start += n;
        Ok(Some((h, frame)))
    }
}
