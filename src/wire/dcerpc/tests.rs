//! Tests of the DCE/RPC layer: PDU round trips, hand-written wire vectors
//! (from C706 ch. 12 / Samba's dcerpc.idl), client↔server associations
//! over the toy security context and hostile input; and the harness the
//! client's and the server's own tests (`client/tests.rs`,
//! `server/tests.rs`) share: a client, a server, the pump between them.

use super::auth::toy::{Flow, Role, ToyContext, SIG_SIZE};
use super::auth::{SecurityContext, SecurityError};
use super::association::Error as ConnError;
use super::client::{ClientConfig, ClientConnection, ClientEvent};
use super::server::{ServerConfig, ServerConnection, ServerEvent};
use super::pdu::*;
use crate::wire::frstrans;
use crate::wire::ndr::Guid;

pub(super) fn frstrans_syntax() -> SyntaxId {
    SyntaxId::new(frstrans::interface_guid(), 1, 0)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn roundtrip(p: &Pdu) -> Vec<u8> {
    let b = p.encode().unwrap();
    assert_eq!(u16::from_le_bytes([b[8], b[9]]) as usize, b.len());
    let d = Pdu::decode(&b).unwrap_or_else(|e| panic!("{:?}: {e}", p.ptype()));
    assert_eq!(&d, p);
    assert_eq!(d.encode().unwrap(), b);
    b
}

fn trailer(level: AuthLevel, pad: u8, value: &[u8]) -> AuthTrailer {
    AuthTrailer {
        auth_type: AuthType::NTLMSSP,
        auth_level: level,
        pad_length: pad,
        reserved: 0,
        context_id: 7,
        value: value.to_vec(),
    }
}

pub(super) fn sample_bind() -> Bind {
    Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts: vec![
            ContextElement {
                context_id: 0,
                abstract_syntax: frstrans_syntax(),
                transfer_syntaxes: vec![SyntaxId::ndr20()],
            },
            ContextElement {
                context_id: 1,
                abstract_syntax: frstrans_syntax(),
                transfer_syntaxes: vec![SyntaxId::bind_time_features(3), SyntaxId::ndr20()],
            },
        ],
    }
}

fn sample_ack(addr: &str) -> BindAck {
    BindAck {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0x12b34,
        secondary_address: addr.into(),
        results: vec![
            ContextResult { result: AckResult::Acceptance, reason: 0, transfer_syntax: SyntaxId::ndr20() },
            ContextResult { result: AckResult::NegotiateAck, reason: 2, transfer_syntax: SyntaxId::default() },
            ContextResult {
                result: AckResult::ProviderRejection,
                reason: ack_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED,
                transfer_syntax: SyntaxId::default(),
            },
        ],
    }
}

#[test]
fn every_pdu_round_trips() {
    let obj = "01234567-89ab-cdef-0123-456789abcdef".parse::<Guid>().ok().unwrap();
    let mut pdus = vec![
        Pdu::new(1, Body::Bind(sample_bind())),
        Pdu::new(2, Body::AlterContext(sample_bind())),
        Pdu::new(1, Body::BindAck(sample_ack("5722"))),
        Pdu::new(1, Body::BindAck(sample_ack(""))),
        Pdu::new(1, Body::BindAck(sample_ack("\\PIPE\\frs"))),
        Pdu::new(2, Body::AlterContextResp(sample_ack(""))),
        Pdu::new(
            1,
            Body::BindNak(BindNak { reason: nak_reason::PROTOCOL_VERSION_NOT_SUPPORTED, versions: vec![(5, 0)] }),
        ),
        Pdu::new(1, Body::BindNak(BindNak { reason: 0, versions: vec![] })),
        Pdu::new(
            3,
            Body::Request(Request { alloc_hint: 5, context_id: 0, opnum: 8, object: None, stub: vec![1, 2, 3, 4, 5] }),
        ),
        Pdu::new(
            3,
            Body::Request(Request { alloc_hint: 0, context_id: 1, opnum: 17, object: Some(obj), stub: vec![] }),
        ),
        Pdu::new(3, Body::Response(Response { alloc_hint: 3, context_id: 0, cancel_count: 1, stub: vec![9, 9, 9] })),
        Pdu::new(
            3,
            Body::Fault(Fault {
                alloc_hint: 24,
                context_id: 0,
                cancel_count: 0,
                flags: 1,
                status: status::NCA_S_UNKNOWN_IF,
                stub: vec![],
            }),
        ),
        Pdu::new(4, Body::Auth3),
        Pdu::new(0, Body::Shutdown),
        Pdu::new(5, Body::CoCancel),
        Pdu::new(6, Body::Orphaned),
    ];
    // Authenticated variants: token trailers on the bind family, signature
    // trailers (with padding inside the stub) on request/response/fault.
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::PRIVACY, 0, b"NEGOTIATE")),
        ..Pdu::new(1, Body::Bind(sample_bind()))
    });
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::PRIVACY, 0, b"CHALLENGE")),
        ..Pdu::new(1, Body::BindAck(sample_ack("5722")))
    });
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::PRIVACY, 4, b"MIC")),
        ..Pdu::new(2, Body::AlterContext(sample_bind()))
    });
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::PRIVACY, 0, b"MIC-ACK")),
        ..Pdu::new(2, Body::AlterContextResp(sample_ack("")))
    });
    pdus.push(Pdu { auth: Some(trailer(AuthLevel::PRIVACY, 0, b"AUTHENTICATE")), ..Pdu::new(4, Body::Auth3) });
    pdus.push(Pdu { auth: Some(trailer(AuthLevel::PRIVACY, 0, b"x")), ..Pdu::new(5, Body::CoCancel) });
    pdus.push(Pdu { auth: Some(trailer(AuthLevel::PRIVACY, 0, b"y")), ..Pdu::new(6, Body::Orphaned) });
    let mut stub = vec![0xab; 5];
    stub.resize(16, 0);
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::PRIVACY, 11, &[0xee; 16])),
        ..Pdu::new(
            3,
            Body::Request(Request { alloc_hint: 5, context_id: 0, opnum: 2, object: Some(obj), stub: stub.clone() }),
        )
    });
    pdus.push(Pdu {
        auth: Some(trailer(AuthLevel::INTEGRITY, 11, &[0xee; 16])),
        ..Pdu::new(3, Body::Response(Response { alloc_hint: 5, context_id: 0, cancel_count: 0, stub }))
    });
    let mut seen = std::collections::HashSet::new();
    for p in &pdus {
        roundtrip(p);
        seen.insert(p.ptype());
    }
    assert_eq!(seen.len(), 12, "all twelve CO packet types covered");
}

/// A bind as Windows/Samba send it for FrsTransport over ncacn_ip_tcp:
/// C706 §12.6.3.1 header + §12.6.4.3 body, NTLMSSP at privacy.
#[test]
fn bind_wire_bytes() {
    let token = b"NTLMSSP\0\x01\0\0\0"; // start of an NTLMSSP NEGOTIATE
    let wire = hex("05 00 0b 13 10 00 00 00 88 00 0c 00 01 00 00 00  \
         b8 10 b8 10 00 00 00 00  02 00 00 00 \
         00 00 01 00 \
         5f2e7e89 f393 7643 9c9c fd2277495c27 01000000 \
         045d888a eb1c c911 9fe8 08002b104860 02000000 \
         01 00 01 00 \
         5f2e7e89 f393 7643 9c9c fd2277495c27 01000000 \
         2c1cb76c 1298 4045 0300 000000000000 01000000 \
         0a 06 00 00 00 00 00 00 \
         4e544c4d53535000 01000000");
    // header: v5.0, ptype 11 (bind), pfc FIRST|LAST|CONC_MPX, drep LE,
    // frag_length 124, auth_length 12, call_id 1.
    // body: max_xmit/recv 4280, assoc_group 0, 2 contexts (+3 reserved);
    // ctx 0: frstrans v1.0 over NDR20 v2; ctx 1: bind-time features 3.
    // sec_trailer: NTLMSSP (10), privacy (6), pad 0, reserved 0, ctx 0.
    let p = Pdu::decode(&wire).unwrap();
    assert_eq!(p.pfc_flags, pfc::FIRST | pfc::LAST | pfc::CONC_MPX);
    let Body::Bind(b) = &p.body else { panic!() };
    assert_eq!((b.max_xmit_frag, b.max_recv_frag, b.assoc_group_id), (4280, 4280, 0));
    assert_eq!(b.contexts[0].abstract_syntax, frstrans_syntax());
    assert_eq!(b.contexts[0].transfer_syntaxes, vec![SyntaxId::ndr20()]);
    assert_eq!(b.contexts[1].transfer_syntaxes[0].as_bind_time_features(), Some(3));
    assert_eq!(b.contexts[1].transfer_syntaxes[0].uuid.to_string(), "6cb71c2c-9812-4540-0300-000000000000");
    let t = p.auth.as_ref().unwrap();
    assert_eq!((t.auth_type, t.auth_level, t.pad_length, t.context_id), (AuthType::NTLMSSP, AuthLevel::PRIVACY, 0, 0));
    assert_eq!(t.value, token);
    assert_eq!(p.encode().unwrap(), wire);
}

/// A bind_ack as Samba's dcesrv_bind builds it (C706 §12.6.4.4): secondary
/// address "5722" with its NUL, 4-byte alignment, results for NDR20 and
/// the feature negotiation (MS-RPCE §2.2.2.4, result 3, features 2).
#[test]
fn bind_ack_wire_bytes() {
    let wire = hex("05 00 0c 13 10 00 00 00 54 00 00 00 01 00 00 00 \
         b8 10 b8 10 34 2b 01 00 \
         05 00 35 37 32 32 00 00 \
         02 00 00 00 \
         00 00 00 00 045d888a eb1c c911 9fe8 08002b104860 02000000 \
         03 00 02 00 00000000 0000 0000 0000 000000000000 00000000");
    let p = Pdu::decode(&wire).unwrap();
    let Body::BindAck(a) = &p.body else { panic!() };
    assert_eq!(a.secondary_address, "5722");
    assert_eq!(a.assoc_group_id, 0x12b34);
    assert_eq!(
        a.results[0],
        ContextResult { result: AckResult::Acceptance, reason: 0, transfer_syntax: SyntaxId::ndr20() }
    );
    assert_eq!(a.results[1].result, AckResult::NegotiateAck);
    assert_eq!(a.results[1].reason, features::KEEP_CONNECTION_ON_ORPHAN);
    assert_eq!(p.encode().unwrap(), wire);
    // A non-terminated secondary address is refused.
    let mut bad = wire.clone();
    bad[30] = b'!';
    assert_eq!(Pdu::decode(&bad), Err(Error::SecondaryAddress));
}

/// Request (C706 §12.6.4.9), response (§12.6.4.10), fault (§12.6.4.7)
/// and Samba's bind_nak, unauthenticated.
#[test]
fn request_response_fault_nak_wire_bytes() {
    // CheckConnectivity (opnum 0): two GUIDs of stub data.
    let req = hex("05 00 00 03 10 00 00 00 38 00 00 00 02 00 00 00 \
         20 00 00 00 00 00 00 00 \
         11111111 1111 1111 1111 111111111111 22222222 2222 2222 2222 222222222222");
    let p = Pdu::decode(&req).unwrap();
    let Body::Request(r) = &p.body else { panic!() };
    assert_eq!((r.alloc_hint, r.context_id, r.opnum, r.object, r.stub.len()), (32, 0, 0, None, 32));
    assert_eq!(p.encode().unwrap(), req);
    // Its response: the DWORD ERROR_SUCCESS.
    let resp = hex("05 00 02 03 10 00 00 00 1c 00 00 00 02 00 00 00  04 00 00 00 00 00 00 00  00 00 00 00");
    let p = Pdu::decode(&resp).unwrap();
    assert_eq!(p.body, Body::Response(Response { alloc_hint: 4, context_id: 0, cancel_count: 0, stub: vec![0; 4] }));
    assert_eq!(p.encode().unwrap(), resp);
    // Samba's fault for an unknown context: nca_s_unknown_if, DID_NOT_EXECUTE.
    let fault =
        hex("05 00 03 23 10 00 00 00 20 00 00 00 03 00 00 00  18 00 00 00 00 00 00 00  03 00 01 1c 00 00 00 00");
    let p = Pdu::decode(&fault).unwrap();
    assert_eq!(p.pfc_flags, pfc::FIRST | pfc::LAST | pfc::DID_NOT_EXECUTE);
    let Body::Fault(f) = &p.body else { panic!() };
    assert_eq!(f.status, status::NCA_S_UNKNOWN_IF);
    assert_eq!(p.encode().unwrap(), fault);
    // Samba's bind_nak: reason, one version 5.0, three pad bytes.
    let nak = hex("05 00 0d 03 10 00 00 00 18 00 00 00 01 00 00 00  04 00 01 05 00 00 00 00");
    let p = Pdu::decode(&nak).unwrap();
    assert_eq!(p.body, Body::BindNak(BindNak { reason: 4, versions: vec![(5, 0)] }));
    assert_eq!(p.encode().unwrap(), nak);
    // Old Samba's two-byte bind_nak body.
    let old = hex("05 00 0d 03 10 00 00 00 12 00 00 00 01 00 00 00  01 00");
    assert_eq!(Pdu::decode(&old).unwrap().body, Body::BindNak(BindNak { reason: 1, versions: vec![] }));
}

/// An authenticated request fragment: 5 stub bytes, 11 pad bytes to 16,
/// sec_trailer at 40, 16-byte verifier; frag_length 64, auth_length 16.
#[test]
fn auth_trailer_placement() {
    let wire = hex("05 00 00 03 10 00 00 00 40 00 10 00 09 00 00 00 \
         05 00 00 00 00 00 08 00 \
         0102030405 0000000000000000000000 \
         0a 06 0b 00 07 00 00 00 \
         eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    let p = Pdu::decode(&wire).unwrap();
    let h = Header::peek(&wire).unwrap().unwrap();
    assert_eq!(h.trailer_offset(), 40);
    let Body::Request(r) = &p.body else { panic!() };
    assert_eq!(r.stub.len(), 16);
    let t = p.auth.as_ref().unwrap();
    assert_eq!((t.pad_length, t.context_id, t.value.len()), (11, 7, 16));
    assert_eq!(p.encode().unwrap(), wire);
    // pad length larger than the stub
    let mut bad = wire.clone();
    bad[42] = 17;
    assert_eq!(Pdu::decode(&bad), Err(Error::AuthPad { pad: 17, available: 16 }));
    // auth_length beyond the fragment
    let mut bad = wire.clone();
    bad[10] = 0x40;
    assert!(matches!(Pdu::decode(&bad), Err(Error::AuthLength { .. })));
    // auth_length that swallows the request header
    let mut bad = wire.clone();
    bad[10] = 0x22;
    assert!(matches!(Pdu::decode(&bad), Err(Error::AuthLength { .. })));
}

#[test]
fn header_refusals() {
    let good = Pdu::new(1, Body::Shutdown).encode().unwrap();
    let mut be = good.clone();
    be[4] = 0x00; // big-endian integers
    assert_eq!(Pdu::decode(&be), Err(Error::BigEndian));
    let mut ebcdic = good.clone();
    ebcdic[4] = 0x11;
    assert_eq!(Pdu::decode(&ebcdic), Err(Error::Drep([0x11, 0, 0, 0])));
    let mut v4 = good.clone();
    v4[0] = 4;
    assert_eq!(Pdu::decode(&v4), Err(Error::Version { major: 4, minor: 0 }));
    let mut minor = good.clone();
    minor[1] = 1;
    assert_eq!(Pdu::decode(&minor), Err(Error::Version { major: 5, minor: 1 }));
    let mut rts = good.clone();
    rts[2] = 20;
    assert_eq!(Pdu::decode(&rts), Err(Error::PacketType(20)));
    let mut short = good.clone();
    short[8] = 15;
    assert!(matches!(Pdu::decode(&short), Err(Error::FragTooShort { .. })));
    assert!(matches!(Pdu::decode(&good[..10]), Err(Error::Truncated { .. })));
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(Pdu::decode(&long), Err(Error::FragLengthMismatch { .. })));
    // Shutdown with a body and no trailer.
    let mut extra = long.clone();
    extra[8] = 17;
    assert_eq!(Pdu::decode(&extra), Err(Error::TrailingBytes(1)));
    // A bind claiming 255 contexts in a short PDU is refused before allocating.
    let mut b = Pdu::new(1, Body::Bind(sample_bind())).encode().unwrap();
    b[24] = 255;
    assert!(matches!(Pdu::decode(&b), Err(Error::Ndr(crate::wire::ndr::Error::CountTooLarge { .. }))));
    // Undefined bind_ack result.
    let mut a = Pdu::new(1, Body::BindAck(sample_ack(""))).encode().unwrap();
    a[32] = 9;
    assert!(matches!(Pdu::decode(&a), Err(Error::Ndr(_))));
}

#[test]
fn truncations_and_garbage_never_panic() {
    let mut samples: Vec<Vec<u8>> = vec![
        Pdu::new(1, Body::Bind(sample_bind())).encode().unwrap(),
        Pdu::new(1, Body::BindAck(sample_ack("5722"))).encode().unwrap(),
        Pdu { auth: Some(trailer(AuthLevel::PRIVACY, 0, b"AUTH")), ..Pdu::new(4, Body::Auth3) }.encode().unwrap(),
        Pdu::new(
            3,
            Body::Fault(Fault { alloc_hint: 0, context_id: 0, cancel_count: 0, flags: 0, status: 5, stub: vec![] }),
        )
        .encode()
        .unwrap(),
    ];
    samples.push(Pdu::new(1, Body::BindNak(BindNak { reason: 0, versions: vec![(5, 0)] })).encode().unwrap());
    for s in &samples {
        for n in 0..s.len() {
            // A prefix with the real frag_length is truncated...
            assert!(Pdu::decode(&s[..n]).is_err());
            // ...and one whose frag_length claims the prefix is malformed.
            let mut t = s[..n].to_vec();
            if n >= 10 {
                t[8..10].copy_from_slice(&(n as u16).to_le_bytes());
                let _ = Pdu::decode(&t);
            }
        }
    }
    // Deterministic garbage, header-shaped and not, through the decoder
    // and both state machines.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000 {
        let len = (rnd() % 200) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 2 == 0 && b.len() >= 16 {
            b[0] = 5;
            b[1] = 0;
            b[2] = [0, 2, 3, 11, 12, 13, 14, 15, 16, 17, 18, 19][(rnd() % 12) as usize];
            b[4..8].copy_from_slice(&DREP_LE);
            let n = b.len() as u16;
            b[8..10].copy_from_slice(&n.to_le_bytes());
            b[10..12].copy_from_slice(&((rnd() % 40) as u16).to_le_bytes());
        }
        let _ = Pdu::decode(&b);
        let mut s = server(AuthLevel::NONE);
        let _ = s.receive(&b);
        let mut c = ClientConnection::new(ClientConfig::new(frstrans_syntax()), None).unwrap();
        let _ = c.receive(&b);
    }
}

// ------------------------------------------------------------ associations

pub(super) fn factory(flow: Flow) -> super::server::SecurityFactory {
    Box::new(move |asked| {
        (asked.auth_type == ToyContext::new(Role::Server, flow).auth_type())
            .then(|| Box::new(ToyContext::new(Role::Server, flow)) as Box<dyn SecurityContext>)
    })
}

pub(super) fn server(min: AuthLevel) -> ServerConnection {
    let mut cfg = ServerConfig::new(vec![frstrans_syntax()]);
    cfg.min_auth_level = min;
    cfg.secondary_address = "5722".into();
    ServerConnection::new(cfg, factory(Flow::ThreeLeg))
}

pub(super) fn client(level: AuthLevel, flow: Flow, max_frag: u16) -> ClientConnection {
    let mut cfg = ClientConfig::new(frstrans_syntax());
    cfg.auth_level = level;
    cfg.max_frag = max_frag;
    let sec =
        (level != AuthLevel::NONE).then(|| Box::new(ToyContext::new(Role::Client, flow)) as Box<dyn SecurityContext>);
    ClientConnection::new(cfg, sec).unwrap()
}

/// Moves bytes both ways until nothing is left, `chunk` bytes at a time;
/// checks every PDU against `max_frag`. Returns the server events.
pub(super) fn pump(c: &mut ClientConnection, s: &mut ServerConnection, chunk: usize, max_frag: usize) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(p) = c.poll_transmit() {
            assert!(p.len() <= max_frag, "client PDU of {} bytes", p.len());
            moved = true;
            for part in p.chunks(chunk) {
                if s.receive(part).is_err() {
                    break;
                }
            }
        }
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        while let Some(p) = s.poll_transmit() {
            assert!(p.len() <= max_frag, "server PDU of {} bytes", p.len());
            moved = true;
            for part in p.chunks(chunk) {
                if c.receive(part).is_err() {
                    break;
                }
            }
        }
        if !moved {
            return events;
        }
    }
}

pub(super) fn client_events(c: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

pub(super) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed).collect()
}

fn big_calls(flow: Flow, chunk: usize) {
    const MAX: u16 = 4280;
    let mut c = client(AuthLevel::PRIVACY, flow, MAX);
    let mut cfg = ServerConfig::new(vec![frstrans_syntax()]);
    cfg.secondary_address = "5722".into();
    let mut s = ServerConnection::new(cfg, factory(flow));
    // Calls queued before the bind completes go out once bound.
    let sizes = [10 * 1024, 100 * 1024, 1024 * 1024];
    let ids: Vec<u32> =
        sizes.iter().enumerate().map(|(i, &n)| c.call(8, &pattern(n, i as u8), None).unwrap()).collect();
    let evs = pump(&mut c, &mut s, chunk, MAX as usize);
    let ce = client_events(&mut c);
    assert!(
        matches!(&ce[0], ClientEvent::Bound { max_xmit_frag: 4280, features: Some(2), header_signing: true, secondary_address, .. } if secondary_address == "5722"),
        "{ce:?}"
    );
    assert!(matches!(&evs[0], ServerEvent::Bound { auth_level: AuthLevel::PRIVACY, .. }), "{evs:?}");
    let reqs: Vec<(u32, Vec<u8>)> = evs
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Request { call_id, opnum: 8, stub, interface, .. } => {
                assert_eq!(interface, frstrans_syntax());
                Some((call_id, stub))
            }
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 3);
    for (i, (id, stub)) in reqs.iter().enumerate() {
        assert_eq!(*id, ids[i]);
        assert_eq!(stub, &pattern(sizes[i], i as u8), "request {i} byte-exact");
    }
    // Respond out of order: the last call first.
    for &i in &[2usize, 0, 1] {
        s.respond(ids[i], &pattern(sizes[i], 0x80 | i as u8)).unwrap();
    }
    // The stubs must not travel in clear text.
    let wire: Vec<Vec<u8>> = std::iter::from_fn(|| s.poll_transmit()).collect();
    let needle = &pattern(sizes[2], 0x82)[1000..1032];
    assert!(!wire.iter().any(|p| p.windows(32).any(|w| w == needle)), "sealed");
    for p in &wire {
        assert!(p.len() <= MAX as usize);
        for part in p.chunks(chunk) {
            c.receive(part).unwrap();
        }
    }
    let got: Vec<(u32, Vec<u8>)> = client_events(&mut c)
        .into_iter()
        .map(|e| match e {
            ClientEvent::Response { call_id, stub } => (call_id, stub),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![ids[2], ids[0], ids[1]]);
    for (id, stub) in got {
        let i = ids.iter().position(|&x| x == id).unwrap();
        assert_eq!(stub, pattern(sizes[i], 0x80 | i as u8), "response {i} byte-exact");
    }
    assert_eq!(s.pending_calls(), 0);
}

#[test]
fn privacy_three_leg_concurrent_calls_out_of_order() {
    big_calls(Flow::ThreeLeg, usize::MAX);
}

#[test]
fn privacy_multi_leg_alter_context() {
    big_calls(Flow::MultiLeg, 1500);
}

#[test]
fn fragments_fed_one_byte_at_a_time() {
    let mut c = client(AuthLevel::PRIVACY, Flow::ThreeLeg, 4280);
    let mut s = server(AuthLevel::PRIVACY);
    let a = c.call(1, &pattern(20_000, 1), None).unwrap();
    let b = c.call(2, &pattern(9_000, 2), Some("01234567-89ab-cdef-0123-456789abcdef".parse::<Guid>().ok().unwrap())).unwrap();
    let evs = pump(&mut c, &mut s, 1, 4280);
    let reqs: Vec<_> = evs.iter().filter(|e| matches!(e, ServerEvent::Request { .. })).collect();
    assert_eq!(reqs.len(), 2);
    assert!(
        matches!(reqs[1], ServerEvent::Request { object: Some(_), opnum: 2, stub, .. } if *stub == pattern(9_000, 2))
    );
    s.respond(b, &pattern(30_000, 3)).unwrap();
    s.respond(a, &[]).unwrap();
    pump(&mut c, &mut s, 1, 4280);
    let ev = client_events(&mut c);
    assert_eq!(ev[1], ClientEvent::Response { call_id: b, stub: pattern(30_000, 3) });
    assert_eq!(ev[2], ClientEvent::Response { call_id: a, stub: vec![] });
}

#[test]
fn integrity_with_header_signing_detects_tampering() {
    let mut c = client(AuthLevel::INTEGRITY, Flow::MultiLeg, 5840);
    let mut cfg = ServerConfig::new(vec![frstrans_syntax()]);
    cfg.min_auth_level = AuthLevel::INTEGRITY;
    let mut s = ServerConnection::new(cfg, factory(Flow::MultiLeg));
    pump(&mut c, &mut s, usize::MAX, 5840);
    assert!(c.is_bound());
    let id = c.call(3, b"hello world", None).unwrap();
    let mut p = c.poll_transmit().unwrap();
    // Integrity: the stub is in clear text, padded to 16, signed.
    assert_eq!(&p[24..35], b"hello world");
    assert_eq!((p.len() - 24 - 8 - SIG_SIZE) % 16, 0);
    // Flip the opnum: only a header-signing checksum notices.
    p[22] ^= 1;
    let e = s.receive(&p).unwrap_err();
    assert!(matches!(e, ConnError::Security(SecurityError::BadSignature)), "{e}");
    assert!(s.is_closing());
    let f = Pdu::decode(&s.poll_transmit().unwrap()).unwrap();
    assert_eq!(f.call_id, id);
    assert!(matches!(f.body, Body::Fault(Fault { status: status::SEC_PKG_ERROR, .. })));
}

#[test]
fn faults_orphans_cancel_shutdown() {
    let mut c = client(AuthLevel::PRIVACY, Flow::ThreeLeg, 5840);
    let mut s = server(AuthLevel::PRIVACY);
    let a = c.call(4, b"a", None).unwrap();
    let b = c.call(5, b"b", None).unwrap();
    let d = c.call(6, b"d", None).unwrap();
    pump(&mut c, &mut s, usize::MAX, 5840);
    c.cancel(d).unwrap();
    c.orphan(a).unwrap();
    let evs = pump(&mut c, &mut s, usize::MAX, 5840);
    assert_eq!(evs, vec![ServerEvent::Cancel { call_id: d }, ServerEvent::Orphaned { call_id: a }]);
    assert_eq!(s.respond(a, b"late"), Err(ConnError::UnknownCall(a)));
    s.fault(b, status::NCA_S_OP_RNG_ERROR).unwrap();
    s.respond(d, b"done").unwrap();
    s.shutdown();
    pump(&mut c, &mut s, usize::MAX, 5840);
    let ev = client_events(&mut c);
    assert_eq!(
        &ev[1..],
        &[
            ClientEvent::Fault { call_id: b, status: status::NCA_S_OP_RNG_ERROR, did_not_execute: false },
            ClientEvent::Response { call_id: d, stub: b"done".to_vec() },
            ClientEvent::Shutdown,
        ]
    );
    assert!(s.is_closing());
    assert_eq!(c.orphan(99), Err(ConnError::UnknownCall(99)));
}

#[test]
fn pdu_buffer_reassembles_any_split() {
    let a = Pdu::new(1, Body::Bind(sample_bind())).encode().unwrap();
    let b = Pdu::new(2, Body::Shutdown).encode().unwrap();
    let all: Vec<u8> = [a.clone(), b.clone(), a.clone()].concat();
    for split in [1, 3, 16, 17, 71, 1000] {
        let mut buf = PduBuffer::new();
        let mut got = Vec::new();
        for part in all.chunks(split) {
            buf.push(part);
            while let Some((_, f)) = buf.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(buf.buffered(), 0);
    }
    let mut buf = PduBuffer::new();
    buf.push(&[4; 16]);
    assert!(buf.next_frame().is_err());
    assert!(buf.next_frame().is_err(), "stays poisoned");
}

#[test]
fn connect_level_authenticates_bind_only() {
    let mut c = client(AuthLevel::CONNECT, Flow::ThreeLeg, 5840);
    let mut s = server(AuthLevel::CONNECT);
    let id = c.call(1, b"plain stub", None).unwrap();
    let evs = pump(&mut c, &mut s, 7, 5840);
    assert!(matches!(evs[0], ServerEvent::Bound { auth_level: AuthLevel::CONNECT, auth_type: AuthType::NTLMSSP, .. }));
    assert!(matches!(&evs[1], ServerEvent::Request { stub, .. } if stub == b"plain stub"));
    s.respond(id, b"plain answer").unwrap();
    let p = s.poll_transmit().unwrap();
    assert_eq!(u16::from_le_bytes([p[10], p[11]]), 0, "no verifier at connect level");
    assert_eq!(&p[24..], b"plain answer");
    c.receive(&p).unwrap();
    assert_eq!(client_events(&mut c)[1], ClientEvent::Response { call_id: id, stub: b"plain answer".to_vec() });
}

/// A verification trailer as Samba's client appends it (MS-RPCE §2.2.2.13):
/// 1 pad byte, magic, BITMASK1 (header signing), PCONTEXT, HEADER2 + END.
#[test]
fn verification_trailer_wire_bytes() {
    use super::vt::*;
    let t = VerificationTrailer {
        commands: vec![
            VtCommand { must_process: false, command: Command::Bitmask1(CLIENT_SUPPORTS_HEADER_SIGNING) },
            VtCommand {
                must_process: false,
                command: Command::Pcontext { abstract_syntax: frstrans_syntax(), transfer_syntax: SyntaxId::ndr20() },
            },
            VtCommand { must_process: true, command: Command::Header2(Header2::request(5, 0, 8)) },
        ],
    };
    let mut stub = b"abc".to_vec();
    t.append_to(&mut stub);
    let wire = hex("616263 00  8ae31371 02f43671 \
         0100 0400 01000000 \
         0200 2800 5f2e7e89 f393 7643 9c9c fd2277495c27 01000000 045d888a eb1c c911 9fe8 08002b104860 02000000 \
         03c0 1000 00 00 0000 10000000 05000000 0000 0800");
    assert_eq!(stub, wire);
    assert_eq!(VerificationTrailer::pop(&wire), (4, Some(t.clone())));
    let h2 = Header2::request(5, 0, 8);
    assert!(t.check(CLIENT_SUPPORTS_HEADER_SIGNING, (frstrans_syntax(), SyntaxId::ndr20()), &h2));
    assert!(!t.check(0, (frstrans_syntax(), SyntaxId::ndr20()), &h2), "header signing not offered at bind");
    assert!(!t.check(1, (frstrans_syntax(), SyntaxId::ndr20()), &Header2::request(5, 0, 9)));
    // The magic inside stub data, followed by something else, is data.
    let mut data = vec![1u8; 12];
    data.extend_from_slice(&MAGIC);
    data.extend_from_slice(&[0xff; 40]);
    assert_eq!(VerificationTrailer::pop(&data), (data.len(), None));
    assert_eq!(VerificationTrailer::pop(&MAGIC[..5]), (5, None));
}

