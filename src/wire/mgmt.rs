//! The DCE/RPC remote management interface (`mgmt`,
//! `afa8bd80-7d8a-11c9-bef4-08002b102989` v1.0) as dfsrd answers it,
//! sans-IO: stub bytes of a call in, an [`Answer`] out.
//!
//! Every DCE/RPC server answers this interface on each of its endpoints
//! ([C706] Appendix Q "Remote Management Interface"; [MS-RPCE] §3.1.1.5
//! for the Windows runtime, which registers it implicitly; Samba adds it to
//! every endpoint, `librpc/rpc/dcesrv_mgmt.c`). The wire form follows
//! Samba's `librpc/idl/mgmt.idl` (`pointer_default(unique)`), which is
//! byte-for-byte C706's `mgmt.idl` where the two overlap:
//!
//! | opnum | method | in | out |
//! |---|---|---|---|
//! | 0 | `inq_if_ids` | — | `rpc_if_id_vector_t **` (unique), `WERROR` |
//! | 1 | `inq_stats` | `max_count`, `unknown` | `mgmt_statistics` (conformant struct), `WERROR` |
//! | 2 | `is_server_listening` | — | `error_status_t status`, `boolean32` |
//! | 3 | `stop_server_listening` | — | `WERROR` |
//! | 4 | `inq_princ_name` | `authn_proto`, `princ_name_size` | `[string, size_is(princ_name_size)] char[]`, `WERROR` |
//!
//! What is answered:
//! - **inq_if_ids**: the interfaces of this endpoint (FrsTransport v1.0 and
//!   mgmt v1.0 itself, as Samba lists its endpoints' interfaces), status 0.
//! - **inq_stats**: the four counters (calls in, calls out, packets in,
//!   packets out — `MGMT_STATS_*`), at most `max_count` of them (C706:
//!   `count` is `[in, out]`, the array `size_is(*count)`), status 0.
//! - **is_server_listening**: status 0, result TRUE (1).
//! - **stop_server_listening**: refused with `ERROR_ACCESS_DENIED` (5), as
//!   Windows' default management authorization (`rpc_s_mgmt_op_disallowed`
//!   mapped to `RPC_S_ACCESS_DENIED`) and Samba (`WERR_ACCESS_DENIED`) do.
//! - **inq_princ_name**: the server principal name for an authentication
//!   service this endpoint accepts (SPNEGO, NTLMSSP); `princ_name_size` is
//!   the room the caller has, terminating NUL included, and is the
//!   conformance of the returned string. A name that does not fit gets
//!   `ERROR_INSUFFICIENT_BUFFER` (122) and an empty string, an
//!   authentication service the endpoint does not offer gets
//!   `RPC_S_UNKNOWN_AUTHN_SERVICE` (1747) and an empty string; size 0 (no
//!   room even for the NUL: no valid answer exists) faults
//!   `RPC_X_BAD_STUB_DATA` — what Samba's torture suite records for Windows
//!   (`source4/torture/rpc/mgmt.c`, `test_inq_princ_name_size`).
//! - any other opnum faults `nca_s_op_rng_error`, stub data that does not
//!   decode faults `RPC_X_BAD_STUB_DATA` (as the FrsTransport dispatcher).
//!
//! The packet privacy rule of the endpoint is enforced below this module,
//! by the association ([`super::dcerpc::ServerConfig::min_auth_level`]):
//! calls on a context of an association below packet privacy never get
//! here and are faulted with access denied, for this interface as for
//! FrsTransport (Samba's own mgmt allows `connect`; dfsrd's endpoint does
//! not).

use super::dcerpc::pdu::status;
use super::dcerpc::{AuthType, SyntaxId};
use super::ndr::{self, Guid, Reader, Writer};

/// The interface UUID ([C706] Appendix Q).
pub const INTERFACE_UUID: &str = "afa8bd80-7d8a-11c9-bef4-08002b102989";
/// The interface version: 1.0.
pub const INTERFACE_VERSION: (u16, u16) = (1, 0);

/// The mgmt syntax (interface UUID, v1.0).
pub fn mgmt_syntax() -> SyntaxId {
    let uuid = Guid::from_fields(0xafa8_bd80, 0x7d8a, 0x11c9, [0xbe, 0xf4, 0x08, 0x00, 0x2b, 0x10, 0x29, 0x89]);
    SyntaxId::new(uuid, INTERFACE_VERSION.0, INTERFACE_VERSION.1)
}

/// Method numbers (mgmt.idl "Function 0x00".."0x04").
pub mod opnum {
    /// `mgmt_inq_if_ids`.
    pub const INQ_IF_IDS: u16 = 0;
    /// `mgmt_inq_stats`.
    pub const INQ_STATS: u16 = 1;
    /// `mgmt_is_server_listening`.
    pub const IS_SERVER_LISTENING: u16 = 2;
    /// `mgmt_stop_server_listening`.
    pub const STOP_SERVER_LISTENING: u16 = 3;
    /// `mgmt_inq_princ_name`.
    pub const INQ_PRINC_NAME: u16 = 4;
}

/// Status values returned in the stub data (Win32 codes, as `WERROR` /
/// `error_status_t` carry them on Windows and Samba).
pub mod mgmt_status {
    /// `ERROR_SUCCESS` / `rpc_s_ok`.
    pub const OK: u32 = 0;
    /// `ERROR_ACCESS_DENIED` = `RPC_S_ACCESS_DENIED` (`WERR_ACCESS_DENIED`).
    pub const ACCESS_DENIED: u32 = 5;
    /// `ERROR_INSUFFICIENT_BUFFER` (`WERR_INSUFFICIENT_BUFFER`).
    pub const INSUFFICIENT_BUFFER: u32 = 122;
    /// `RPC_S_UNKNOWN_AUTHN_SERVICE`.
    pub const UNKNOWN_AUTHN_SERVICE: u32 = 1747;
}

/// Number of counters `inq_stats` knows (`MGMT_STATS_ARRAY_MAX_SIZE`).
pub const STATS_ARRAY_MAX_SIZE: usize = 4;

/// A decoded `[in]` stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Opnum 0 (no `[in]` data).
    InqIfIds,
    /// Opnum 1.
    InqStats {
        /// How many counters the caller has room for.
        max_count: u32,
        /// Samba's IDL has a second `[in] uint32 unknown` that C706's
        /// `rpc__mgmt_inq_stats` does not; `None` when the caller sent only
        /// the count (C706 form).
        unknown: Option<u32>,
    },
    /// Opnum 2 (no `[in]` data).
    IsServerListening,
    /// Opnum 3 (no `[in]` data).
    StopServerListening,
    /// Opnum 4.
    InqPrincName {
        /// Authentication service (`DCERPC_AUTH_TYPE_*`, e.g. 10 NTLMSSP).
        authn_proto: u32,
        /// Room for the name, terminating NUL included.
        princ_name_size: u32,
    },
}

impl Request {
    /// Decodes the `[in]` stub of `opnum`. Up to 3 trailing zero bytes (the
    /// padding that aligned a verification trailer, which the DCE/RPC layer
    /// leaves as Samba does) are tolerated; anything else left over is an
    /// error.
    pub fn decode(opnum: u16, stub: &[u8]) -> ndr::Result<Request> {
        let mut r = Reader::new(stub);
        let req = match opnum {
            opnum::INQ_IF_IDS => Request::InqIfIds,
            opnum::INQ_STATS => {
                let max_count = r.u32()?;
                let unknown = if r.remaining() >= 4 { Some(r.u32()?) } else { None };
                Request::InqStats { max_count, unknown }
            }
            opnum::IS_SERVER_LISTENING => Request::IsServerListening,
            opnum::STOP_SERVER_LISTENING => Request::StopServerListening,
            opnum::INQ_PRINC_NAME => Request::InqPrincName { authn_proto: r.u32()?, princ_name_size: r.u32()? },
            _ => return Err(ndr::Error::UnknownOpnum(opnum)),
        };
        let rest = &stub[r.pos()..];
        if rest.len() > 3 || rest.iter().any(|b| *b != 0) {
            return Err(ndr::Error::TrailingBytes(rest.len()));
        }
        Ok(req)
    }

    /// The opnum of this request.
    pub fn opnum(&self) -> u16 {
        match self {
            Request::InqIfIds => opnum::INQ_IF_IDS,
            Request::InqStats { .. } => opnum::INQ_STATS,
            Request::IsServerListening => opnum::IS_SERVER_LISTENING,
            Request::StopServerListening => opnum::STOP_SERVER_LISTENING,
            Request::InqPrincName { .. } => opnum::INQ_PRINC_NAME,
        }
    }

    /// The `[in]` stub data (Samba's IDL form: `inq_stats` carries
    /// `unknown` when it is `Some`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match *self {
            Request::InqIfIds | Request::IsServerListening | Request::StopServerListening => {}
            Request::InqStats { max_count, unknown } => {
                w.u32(max_count);
                if let Some(u) = unknown {
                    w.u32(u);
                }
            }
            Request::InqPrincName { authn_proto, princ_name_size } => {
                w.u32(authn_proto);
                w.u32(princ_name_size);
            }
        }
        w.finish()
    }
}

/// How a call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response with this stub data.
    Reply(Vec<u8>),
    /// An RPC fault with this status ([`status`]).
    Fault(u32),
}

/// `inq_if_ids` `[out]`: `rpc_if_id_vector_t **if_id_vector` then `WERROR`.
///
/// The top-level `**` is a `[ref]` pointer (no wire form) to a `[unique]`
/// pointer (`pointer_default(unique)`): a referent id, then the pointee —
/// `rpc_if_id_vector_t`, a conformant structure (its `max_count` first,
/// then `count` and the `ndr_syntax_id_p` elements, each an embedded unique
/// pointer whose `ndr_syntax_id` — GUID, `uint32 if_version` = major |
/// minor << 16 — is deferred after the array).
pub fn encode_inq_if_ids(interfaces: &[SyntaxId], result: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.unique_ptr(Some(interfaces), |w, ifs: &[SyntaxId]| {
        w.u32(ifs.len() as u32); // conformance (size_is(count))
        w.u32(ifs.len() as u32); // count
        for s in ifs {
            w.unique_ptr(Some(s), |w, s: &SyntaxId| {
                w.guid(&s.uuid);
                w.u32(s.version);
            });
        }
    });
    w.flush_deferred();
    w.u32(result);
    w.finish()
}

/// `inq_stats` `[out]`: `[ref] mgmt_statistics *` (a conformant structure:
/// `max_count`, `count`, the counters) then `WERROR`. Equal to C706's
/// `[in,out] count` + `[out, size_is(*count)] statistics[]` + status.
pub fn encode_inq_stats(statistics: &[u32], result: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(statistics.len() as u32);
    w.u32(statistics.len() as u32);
    for s in statistics {
        w.u32(*s);
    }
    w.u32(result);
    w.finish()
}

/// `is_server_listening` `[out]`: `[ref] error_status_t *status`, then the
/// `boolean32` result.
pub fn encode_is_server_listening(status: u32, listening: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(status);
    w.bool32(listening);
    w.finish()
}

/// `inq_princ_name` `[out]`: `[string, size_is(princ_name_size),
/// charset(DOS)] uint8 princ_name[]` — a top-level conformant varying
/// array: `max_count` = `princ_name_size` (Samba's client checks it is
/// exactly that), offset 0, `actual_count` = bytes with the NUL, the bytes
/// — then `WERROR` (aligned to 4). `None` when `name` (plus its NUL) does
/// not fit in `princ_name_size` or contains a NUL: no valid encoding.
pub fn encode_inq_princ_name(princ_name_size: u32, name: &[u8], result: u32) -> Option<Vec<u8>> {
    let actual = u32::try_from(name.len()).ok()?.checked_add(1)?;
    if actual > princ_name_size || name.contains(&0) {
        return None;
    }
    let mut w = Writer::new();
    w.conformant_varying_header(princ_name_size, actual);
    w.bytes(name);
    w.u8(0);
    w.u32(result);
    Some(w.finish())
}

/// The management interface of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtEndpoint {
    /// The interfaces this endpoint serves, in the order `inq_if_ids`
    /// lists them.
    pub interfaces: Vec<SyntaxId>,
    /// The server principal name `inq_princ_name` returns (DOS charset:
    /// sent as these bytes).
    pub principal_name: String,
    /// Authentication services with a principal name (`authn_proto`).
    pub authn_services: Vec<AuthType>,
    /// `inq_stats`: calls in, calls out, packets in, packets out.
    pub statistics: [u32; STATS_ARRAY_MAX_SIZE],
}

impl MgmtEndpoint {
    /// An endpoint serving `interfaces` as `principal_name`, for SPNEGO and
    /// NTLMSSP (what dfsrd's gensec accepts), counters at zero.
    pub fn new(interfaces: Vec<SyntaxId>, principal_name: impl Into<String>) -> Self {
        MgmtEndpoint {
            interfaces,
            principal_name: principal_name.into(),
            authn_services: vec![AuthType::SPNEGO, AuthType::NTLMSSP],
            statistics: [0; STATS_ARRAY_MAX_SIZE],
        }
    }

    /// Answers one call; never panics, whatever the stub.
    pub fn call(&self, opnum: u16, stub: &[u8]) -> Answer {
        let request = match Request::decode(opnum, stub) {
            Ok(r) => r,
            Err(ndr::Error::UnknownOpnum(_)) => return Answer::Fault(status::NCA_S_OP_RNG_ERROR),
            Err(_) => return Answer::Fault(status::BAD_STUB_DATA),
        };
        match request {
            Request::InqIfIds => Answer::Reply(encode_inq_if_ids(&self.interfaces, mgmt_status::OK)),
            Request::InqStats { max_count, .. } => {
                let n = (max_count as usize).min(STATS_ARRAY_MAX_SIZE);
                Answer::Reply(encode_inq_stats(&self.statistics[..n], mgmt_status::OK))
            }
            Request::IsServerListening => Answer::Reply(encode_is_server_listening(mgmt_status::OK, true)),
            Request::StopServerListening => {
                let mut w = Writer::new();
                w.u32(mgmt_status::ACCESS_DENIED);
                Answer::Reply(w.finish())
            }
            Request::InqPrincName { authn_proto, princ_name_size } => {
                let known = self.authn_services.iter().any(|a| u32::from(a.0) == authn_proto);
                let name = self.principal_name.as_bytes();
                let out = if !known {
                    encode_inq_princ_name(princ_name_size, b"", mgmt_status::UNKNOWN_AUTHN_SERVICE)
                } else {
                    encode_inq_princ_name(princ_name_size, name, mgmt_status::OK)
                        .or_else(|| encode_inq_princ_name(princ_name_size, b"", mgmt_status::INSUFFICIENT_BUFFER))
                };
                // Only size 0 (no room for the NUL) has no encoding.
                out.map_or(Answer::Fault(status::BAD_STUB_DATA), Answer::Reply)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dcerpc::auth::toy::{Flow, Role, ToyContext};
    use crate::wire::dcerpc::{
        AuthLevel, ClientConfig, ClientConnection, ClientEvent, SecurityContext, SecurityFactory, ServerConfig,
        ServerConnection, ServerEvent,
    };
    use crate::wire::frstrans::{interface_guid, INTERFACE_VERSION as FRS_VERSION};

    fn frs() -> SyntaxId {
        SyntaxId::new(interface_guid(), FRS_VERSION.0, FRS_VERSION.1)
    }

    fn endpoint() -> MgmtEndpoint {
        MgmtEndpoint::new(vec![frs(), mgmt_syntax()], "dfsr-host")
    }

    fn reply(a: Answer) -> Vec<u8> {
        match a {
            Answer::Reply(b) => b,
            Answer::Fault(f) => panic!("fault {f:#x}"),
        }
    }

    fn le(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn syntax_is_the_c706_mgmt_interface() {
        let s = mgmt_syntax();
        assert_eq!(s.uuid.to_string(), INTERFACE_UUID);
        assert_eq!(s.version, 1);
        assert_eq!(s.uuid.0[..4], [0x80, 0xbd, 0xa8, 0xaf]);
    }

    #[test]
    fn inq_if_ids_lists_the_endpoint_with_unique_pointers() {
        let out = reply(endpoint().call(opnum::INQ_IF_IDS, &[]));
        let mut want = le(&[0x0002_0000, 2, 2, 0x0002_0004, 0x0002_0008]);
        want.extend_from_slice(&frs().uuid.0);
        want.extend(le(&[1]));
        want.extend_from_slice(&mgmt_syntax().uuid.0);
        want.extend(le(&[1, 0]));
        assert_eq!(out, want);

        // An independent read with the hostile-input reader.
        let mut r = Reader::strict(&out);
        assert!(r.unique_ptr().unwrap().is_some());
        let max = r.u32().unwrap();
        assert_eq!(r.u32().unwrap(), max);
        let ptrs: Vec<_> = (0..max).map(|_| r.unique_ptr().unwrap()).collect();
        assert!(ptrs.iter().all(Option::is_some));
        let ids: Vec<SyntaxId> =
            (0..max).map(|_| SyntaxId { uuid: r.guid().unwrap(), version: r.u32().unwrap() }).collect();
        assert_eq!(ids, [frs(), mgmt_syntax()]);
        assert_eq!(r.u32().unwrap(), 0);
        r.expect_end().unwrap();

        // A version with a minor part: major low, minor high.
        let out = encode_inq_if_ids(&[SyntaxId::new(Guid::NIL, 3, 2)], 0);
        assert_eq!(out[32..36], [3, 0, 2, 0]);
        // No interfaces: an empty conformant array.
        assert_eq!(encode_inq_if_ids(&[], 0), le(&[0x0002_0000, 0, 0, 0]));
    }

    #[test]
    fn inq_stats_returns_at_most_max_count_counters() {
        let mut ep = endpoint();
        ep.statistics = [7, 8, 9, 10];
        // Samba's form (max_count, unknown) and C706's (count only).
        for stub in [le(&[4, 0]), le(&[4])] {
            assert_eq!(reply(ep.call(opnum::INQ_STATS, &stub)), le(&[4, 4, 7, 8, 9, 10, 0]));
        }
        assert_eq!(reply(ep.call(opnum::INQ_STATS, &le(&[100, 0]))), le(&[4, 4, 7, 8, 9, 10, 0]));
        assert_eq!(reply(ep.call(opnum::INQ_STATS, &le(&[2, 0]))), le(&[2, 2, 7, 8, 0]));
        assert_eq!(reply(ep.call(opnum::INQ_STATS, &le(&[0, 0]))), le(&[0, 0, 0]));
        assert_eq!(Request::decode(1, &le(&[4, 9])).unwrap(), Request::InqStats { max_count: 4, unknown: Some(9) });
    }

    #[test]
    fn is_server_listening_and_stop_refused() {
        let ep = endpoint();
        assert_eq!(reply(ep.call(opnum::IS_SERVER_LISTENING, &[])), le(&[0, 1]));
        assert_eq!(reply(ep.call(opnum::STOP_SERVER_LISTENING, &[])), le(&[mgmt_status::ACCESS_DENIED]));
    }

    fn princ(ep: &MgmtEndpoint, proto: u32, size: u32) -> Answer {
        ep.call(opnum::INQ_PRINC_NAME, &Request::InqPrincName { authn_proto: proto, princ_name_size: size }.to_bytes())
    }

    #[test]
    fn inq_princ_name_within_the_callers_room() {
        let ep = endpoint();
        let len = "dfsr-host".len() as u32;
        for proto in [9, 10] {
            // Exactly enough room (name + NUL), and more.
            let mut want = le(&[len + 1, 0, len + 1]);
            want.extend_from_slice(b"dfsr-host\0");
            want.extend_from_slice(&[0, 0]); // align the WERROR to 4
            want.extend(le(&[0]));
            assert_eq!(reply(princ(&ep, proto, len + 1)), want);
            let out = reply(princ(&ep, proto, 100));
            assert_eq!(out[..12], le(&[100, 0, len + 1]));
            assert_eq!(&out[12..22], b"dfsr-host\0");
            assert_eq!(out[24..], le(&[0]));
            // Too small: ERROR_INSUFFICIENT_BUFFER with an empty string,
            // max_count still the caller's size.
            for size in 1..=len {
                let out = reply(princ(&ep, proto, size));
                assert_eq!(out, le(&[size, 0, 1, 0, mgmt_status::INSUFFICIENT_BUFFER]), "{size}");
            }
            // No room even for the NUL.
            assert_eq!(princ(&ep, proto, 0), Answer::Fault(status::BAD_STUB_DATA));
        }
        // Authentication services the endpoint does not offer.
        for proto in [0, 1, 16, 68, 0xffff_ffff] {
            assert_eq!(reply(princ(&ep, proto, 64)), le(&[64, 0, 1, 0, mgmt_status::UNKNOWN_AUTHN_SERVICE]));
        }
    }

    #[test]
    fn unknown_opnums_and_hostile_stubs() {
        let ep = endpoint();
        for op in [5u16, 6, 255, u16::MAX] {
            assert_eq!(ep.call(op, &[]), Answer::Fault(status::NCA_S_OP_RNG_ERROR), "{op}");
        }
        // Truncated [in] data.
        assert_eq!(ep.call(opnum::INQ_STATS, &[]), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::INQ_STATS, &[4, 0]), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::INQ_PRINC_NAME, &le(&[10])), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::INQ_PRINC_NAME, &[10, 0, 0, 0, 64]), Answer::Fault(status::BAD_STUB_DATA));
        // Extra data where the method takes none, or after its arguments.
        assert_eq!(ep.call(opnum::INQ_IF_IDS, &le(&[0])), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::IS_SERVER_LISTENING, &[1]), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::STOP_SERVER_LISTENING, &[0, 0, 0, 0]), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::INQ_STATS, &le(&[4, 0, 1])), Answer::Fault(status::BAD_STUB_DATA));
        assert_eq!(ep.call(opnum::INQ_PRINC_NAME, &le(&[10, 64, 0])), Answer::Fault(status::BAD_STUB_DATA));
        // The up to 3 zero bytes that aligned a verification trailer pass.
        assert_eq!(reply(ep.call(opnum::IS_SERVER_LISTENING, &[0, 0, 0])), le(&[0, 1]));
        let mut stub = le(&[10, 64]);
        stub.extend_from_slice(&[0, 0]);
        assert!(matches!(ep.call(opnum::INQ_PRINC_NAME, &stub), Answer::Reply(_)));
        assert_eq!(ep.call(opnum::INQ_STATS, &[4, 0, 0, 0, 0, 0, 1]), Answer::Fault(status::BAD_STUB_DATA));
        // Arbitrary bytes never panic.
        let mut seed = 0x1234_5678u32;
        for len in 0..64 {
            let stub: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            for op in 0..6 {
                let _ = ep.call(op, &stub);
            }
        }
    }

    #[test]
    fn principal_names_that_cannot_be_encoded() {
        assert_eq!(encode_inq_princ_name(10, b"a\0b", 0), None);
        assert_eq!(encode_inq_princ_name(3, b"abc", 0), None);
        assert!(encode_inq_princ_name(4, b"abc", 0).is_some());
        // A host name with a NUL in it still answers (insufficient buffer,
        // empty name) rather than faulting.
        let ep = MgmtEndpoint::new(vec![], "a\0b");
        assert_eq!(reply(princ(&ep, 10, 64)), le(&[64, 0, 1, 0, mgmt_status::INSUFFICIENT_BUFFER]));
    }

    /// A client bound to the mgmt context at `level` calls
    /// `is_server_listening` on a server serving FrsTransport and mgmt
    /// (packet privacy required, as dfsrd's endpoint); returns the server's
    /// events and the client's answer.
    fn over_association(level: AuthLevel) -> (Vec<ServerEvent>, Option<ClientEvent>) {
        let factory: SecurityFactory = Box::new(|asked| {
            let ctx = ToyContext::new(Role::Server, Flow::ThreeLeg);
            (asked.auth_type == ctx.auth_type()).then(|| Box::new(ctx) as Box<dyn SecurityContext>)
        });
        let mut server = ServerConnection::new(ServerConfig::new(vec![frs(), mgmt_syntax()]), factory);
        let mut cfg = ClientConfig::new(mgmt_syntax());
        cfg.auth_level = level;
        let sec = (level != AuthLevel::NONE)
            .then(|| Box::new(ToyContext::new(Role::Client, Flow::ThreeLeg)) as Box<dyn SecurityContext>);
        let mut client = ClientConnection::new(cfg, sec).unwrap();
        let call_id = client.call(opnum::IS_SERVER_LISTENING, &[], None).unwrap();
        let (mut events, mut answer) = (Vec::new(), None);
        for _ in 0..16 {
            for pdu in std::iter::from_fn(|| client.poll_transmit()) {
                server.receive(&pdu).unwrap();
            }
            while let Some(ev) = server.poll_event() {
                if let ServerEvent::Request { call_id, interface, opnum, ref stub, .. } = ev {
                    assert_eq!(interface, mgmt_syntax());
                    match endpoint().call(opnum, stub) {
                        Answer::Reply(out) => server.respond(call_id, &out).unwrap(),
                        Answer::Fault(f) => server.fault(call_id, f).unwrap(),
                    }
                }
                events.push(ev);
            }
            for pdu in std::iter::from_fn(|| server.poll_transmit()) {
                client.receive(&pdu).unwrap();
            }
            while let Some(ev) = client.poll_event() {
                if matches!(ev, ClientEvent::Response { call_id: id, .. } | ClientEvent::Fault { call_id: id, .. } if id == call_id)
                {
                    answer = Some(ev);
                }
            }
        }
        (events, answer)
    }

    #[test]
    fn packet_privacy_rule_applies_to_the_mgmt_context() {
        let (events, answer) = over_association(AuthLevel::PRIVACY);
        assert!(matches!(events.last(), Some(ServerEvent::Request { opnum: 2, .. })), "{events:?}");
        assert!(matches!(answer, Some(ClientEvent::Response { ref stub, .. }) if *stub == le(&[0, 1])), "{answer:?}");
        for level in [AuthLevel::NONE, AuthLevel::CONNECT, AuthLevel::INTEGRITY] {
            let (events, answer) = over_association(level);
            assert!(events.iter().all(|e| !matches!(e, ServerEvent::Request { .. })), "{level:?}: {events:?}");
            assert!(
                matches!(answer, Some(ClientEvent::Fault { status: status::ACCESS_DENIED, .. })),
                "{level:?}: {answer:?}"
            );
        }
    }
}
