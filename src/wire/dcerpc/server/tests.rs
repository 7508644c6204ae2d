//! Tests of the server association: Samba's refusals — unknown
//! interfaces and auth types, levels below the minimum, bad credentials,
//! protocol violations, forged verification trailers.

use std::cell::RefCell;
use std::rc::Rc;

use super::{BindAuth, SecurityFactory, ServerConfig, ServerConnection, ServerEvent};
use crate::wire::dcerpc::auth::SecurityContext;
use crate::wire::dcerpc::association::Error as ConnError;
use crate::wire::dcerpc::auth::toy::{Flow, Role, ToyContext};
use crate::wire::dcerpc::client::{BindRejection, ClientConfig, ClientConnection, ClientEvent};
use crate::wire::dcerpc::pdu::*;
use crate::wire::dcerpc::tests::{client, client_events, factory, frstrans_syntax, pump, sample_bind, server};
use crate::wire::ndr::Guid;

/// An unauthenticated bind, or one below the minimum level, is bound; its
/// calls get fault access denied and the association stays up.
#[test]
fn binds_below_the_minimum_level_are_refused_at_call_time() {
    for level in [AuthLevel::NONE, AuthLevel::INTEGRITY] {
        let mut c = client(level, Flow::ThreeLeg, 5840);
        let mut s = server(AuthLevel::PRIVACY);
        let id = c.call(0, &[0; 32], None).unwrap();
        let evs = pump(&mut c, &mut s, usize::MAX, 5840);
        assert!(matches!(evs[0], ServerEvent::Bound { auth_level, .. } if auth_level == level), "{evs:?}");
        assert_eq!(evs.len(), 1, "no Request event: {evs:?}");
        let ev = client_events(&mut c);
        assert_eq!(ev[1], ClientEvent::Fault { call_id: id, status: status::ACCESS_DENIED, did_not_execute: false });
        assert!(!s.is_closing());
    }
}

#[test]
fn unknown_interface_and_auth_type_and_bad_credentials() {
    // Unknown interface: provider rejection, abstract syntax not supported.
    let mut cfg = ClientConfig::new(SyntaxId::new("12345778-1234-abcd-ef00-0123456789ab".parse::<Guid>().ok().unwrap(), 0, 0));
    cfg.bind_time_features = None;
    let mut c = ClientConnection::new(cfg, None).unwrap();
    let mut s = server(AuthLevel::NONE);
    pump(&mut c, &mut s, usize::MAX, 5840);
    assert_eq!(
        client_events(&mut c),
        vec![ClientEvent::BindRejected(BindRejection::Context {
            result: AckResult::ProviderRejection,
            reason: ack_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED
        })]
    );
    assert!(c.is_failed());
    // Unknown auth type (the server only knows NTLMSSP): bind_nak 8.
    let mut c = client(AuthLevel::PRIVACY, Flow::MultiLeg, 5840);
    let mut s = server(AuthLevel::PRIVACY);
    pump(&mut c, &mut s, usize::MAX, 5840);
    assert_eq!(
        client_events(&mut c),
        vec![ClientEvent::BindRejected(BindRejection::Nak(nak_reason::INVALID_AUTH_TYPE))]
    );
    assert!(s.is_closing());
    // Wrong credentials: auth3 gets no answer, the next call is refused
    // with access denied and the server disconnects.
    let mut c = client(AuthLevel::PRIVACY, Flow::ThreeLeg, 5840);
    let mut s = ServerConnection::new(
        ServerConfig::new(vec![frstrans_syntax()]),
        Box::new(|_| {
            let mut t = ToyContext::new(Role::Server, Flow::ThreeLeg);
            t.accept_password = false;
            Some(Box::new(t) as Box<dyn SecurityContext>)
        }),
    );
    let id = c.call(0, &[0; 32], None).unwrap();
    let evs = pump(&mut c, &mut s, usize::MAX, 5840);
    assert!(evs.is_empty(), "{evs:?}");
    assert!(s.is_closing());
    let ev = client_events(&mut c);
    assert_eq!(
        ev.last(),
        Some(&ClientEvent::Fault { call_id: id, status: status::ACCESS_DENIED, did_not_execute: false })
    );
}

#[test]
fn server_refuses_protocol_violations() {
    // Big-endian bind: bind_nak "protocol version not supported".
    let mut b = Pdu::new(1, Body::Bind(sample_bind())).encode().unwrap();
    b[4] = 0;
    let mut s = server(AuthLevel::NONE);
    assert!(matches!(s.receive(&b), Err(ConnError::Pdu(Error::BigEndian))));
    let nak = Pdu::decode(&s.poll_transmit().unwrap()).unwrap();
    assert!(matches!(nak.body, Body::BindNak(BindNak { reason: nak_reason::PROTOCOL_VERSION_NOT_SUPPORTED, .. })));
    assert!(s.is_closing());
    assert_eq!(s.receive(&[]), Err(ConnError::Closed));
    // A request before the bind.
    let mut s = server(AuthLevel::NONE);
    let r = Pdu::new(1, Body::Request(Request { alloc_hint: 0, context_id: 0, opnum: 0, object: None, stub: vec![] }));
    assert!(s.receive(&r.encode().unwrap()).is_err());
    // A middle fragment without a first one, then a request on an unknown
    // context (fault, association stays up).
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 5840);
    let mut s = server(AuthLevel::NONE);
    pump(&mut c, &mut s, usize::MAX, 5840);
    let bad_ctx =
        Pdu::new(9, Body::Request(Request { alloc_hint: 0, context_id: 5, opnum: 0, object: None, stub: vec![] }));
    s.receive(&bad_ctx.encode().unwrap()).unwrap();
    let f = Pdu::decode(&s.poll_transmit().unwrap()).unwrap();
    assert!(matches!(f.body, Body::Fault(Fault { status: status::NCA_S_UNKNOWN_IF, .. })));
    assert_eq!(f.pfc_flags & pfc::DID_NOT_EXECUTE, pfc::DID_NOT_EXECUTE);
    let mid = Pdu {
        pfc_flags: pfc::LAST,
        ..Pdu::new(10, Body::Request(Request { alloc_hint: 0, context_id: 0, opnum: 0, object: None, stub: vec![1] }))
    };
    assert_eq!(s.receive(&mid.encode().unwrap()), Err(ConnError::FragmentSequence(10)));
    let f = Pdu::decode(&s.poll_transmit().unwrap()).unwrap();
    assert!(matches!(f.body, Body::Fault(Fault { status: status::NCA_S_PROTO_ERROR, .. })));
    // A second bind gets a bind_nak.
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 5840);
    let mut s = server(AuthLevel::NONE);
    pump(&mut c, &mut s, usize::MAX, 5840);
    assert!(s.receive(&Pdu::new(7, Body::Bind(sample_bind())).encode().unwrap()).is_err());
    assert!(matches!(Pdu::decode(&s.poll_transmit().unwrap()).unwrap().body, Body::BindNak(_)));
    // An oversized request (alloc_hint beyond the limit).
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 5840);
    let mut cfg = ServerConfig::new(vec![frstrans_syntax()]);
    cfg.min_auth_level = AuthLevel::NONE;
    cfg.max_request_size = 10_000;
    let mut s = ServerConnection::new(cfg, factory(Flow::ThreeLeg));
    c.call(0, &[7; 20_000], None).unwrap();
    pump(&mut c, &mut s, usize::MAX, 5840);
    assert!(s.is_closing());
}

#[test]
fn too_many_refused_partial_calls_close_the_association() {
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 5840);
    let mut cfg = ServerConfig::new(vec![frstrans_syntax()]);
    cfg.min_auth_level = AuthLevel::NONE;
    cfg.max_pending_calls = 4;
    let mut s = ServerConnection::new(cfg, factory(Flow::ThreeLeg));
    pump(&mut c, &mut s, usize::MAX, 5840);
    let mut result = Ok(());
    for id in 100..110 {
        // First fragments on an unknown context, never finished.
        let p = Pdu {
            pfc_flags: pfc::FIRST,
            ..Pdu::new(
                id,
                Body::Request(Request { alloc_hint: 8, context_id: 9, opnum: 0, object: None, stub: vec![0; 4] }),
            )
        };
        result = s.receive(&p.encode().unwrap());
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ConnError::TooManyCalls(4)));
    assert!(s.is_closing());
}

#[test]
fn server_refuses_a_forged_verification_trailer() {
    use super::vt::*;
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 5840);
    let mut s = server(AuthLevel::NONE);
    pump(&mut c, &mut s, usize::MAX, 5840);
    // A request whose HEADER2 names `vt_opnum` where the request has opnum 1.
    let request = |call_id: u32, vt_opnum: u16| {
        let vt = VerificationTrailer {
            commands: vec![VtCommand {
                must_process: true,
                command: Command::Header2(Header2::request(call_id, 0, vt_opnum)),
            }],
        };
        let mut stub = vec![7u8; 8];
        vt.append_to(&mut stub);
        Pdu::new(call_id, Body::Request(Request { alloc_hint: 0, context_id: 0, opnum: 1, object: None, stub }))
            .encode()
            .unwrap()
    };
    s.receive(&request(40, 99)).unwrap();
    assert!(s.poll_event().is_none());
    let f = Pdu::decode(&s.poll_transmit().unwrap()).unwrap();
    assert!(matches!(f.body, Body::Fault(Fault { status: status::ACCESS_DENIED, .. })));
    assert!(!s.is_closing());
    // The honest trailer is stripped before the stub is handed over.
    s.receive(&request(41, 1)).unwrap();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Request { call_id: 41, stub, .. }) if stub == vec![7u8; 8]));
}

/// The security context is made once, at the bind, for the type, level
/// and context id its trailer asks for (not re-made by the alter_context
/// legs); a bind at an undefined level is refused before one is made.
#[test]
fn the_security_factory_is_given_what_the_bind_asks_for() {
    let asked: Rc<RefCell<Vec<BindAuth>>> = Rc::default();
    let recorder = |asked: &Rc<RefCell<Vec<BindAuth>>>| -> SecurityFactory {
        let asked = Rc::clone(asked);
        Box::new(move |a: &BindAuth| {
            asked.borrow_mut().push(*a);
            Some(Box::new(ToyContext::new(Role::Server, Flow::MultiLeg)) as Box<dyn SecurityContext>)
        })
    };
    let mut cfg = ClientConfig::new(frstrans_syntax());
    cfg.auth_level = AuthLevel::INTEGRITY;
    cfg.auth_context_id = 7;
    let mut c = ClientConnection::new(cfg, Some(Box::new(ToyContext::new(Role::Client, Flow::MultiLeg)))).unwrap();
    let mut scfg = ServerConfig::new(vec![frstrans_syntax()]);
    scfg.min_auth_level = AuthLevel::INTEGRITY;
    let mut s = ServerConnection::new(scfg, recorder(&asked));
    let evs = pump(&mut c, &mut s, usize::MAX, 5840);
    assert!(matches!(evs[..], [ServerEvent::Bound { auth_level: AuthLevel::INTEGRITY, .. }]), "{evs:?}");
    assert_eq!(
        *asked.borrow(),
        [BindAuth { auth_type: AuthType::SPNEGO, auth_level: AuthLevel::INTEGRITY, context_id: 7 }]
    );

    asked.borrow_mut().clear();
    let mut s = ServerConnection::new(ServerConfig::new(vec![frstrans_syntax()]), recorder(&asked));
    let t = AuthTrailer {
        auth_type: AuthType::SPNEGO,
        auth_level: AuthLevel(7),
        pad_length: 0,
        reserved: 0,
        context_id: 0,
        value: b"INIT".to_vec(),
    };
    let bind = Pdu { auth: Some(t), ..Pdu::new(1, Body::Bind(sample_bind())) };
    assert_eq!(s.receive(&bind.encode().unwrap()), Err(ConnError::BindRefused("invalid auth level")));
    assert!(matches!(Pdu::decode(&s.poll_transmit().unwrap()).unwrap().body, Body::BindNak(_)));
    assert!(asked.borrow().is_empty(), "no context for an undefined level");
}
