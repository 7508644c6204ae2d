//! Tests of the client association: what it accepts of a server, the
//! byte ranges it seals, its configuration errors.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::{ClientConfig, ClientConnection, ClientEvent};
use crate::wire::dcerpc::auth::SecurityContext;
use crate::wire::dcerpc::association::Error as ConnError;
use crate::wire::dcerpc::auth::toy::{Flow, Role, ToyContext, SIG_SIZE};
use crate::wire::dcerpc::auth::{SecurityError, Update};
use crate::wire::dcerpc::pdu::*;
use crate::wire::dcerpc::server::ServerEvent;
use crate::wire::dcerpc::tests::{client, client_events, frstrans_syntax, pattern, pump, server};
use crate::wire::ndr::Guid;

/// A client offering fragments below 2048 bytes: Samba's server (and
/// ours, `max_req = MAX(2048, max_req)` in `dcesrv_bind`) negotiates 2048
/// anyway and sends response fragments of that size, which the client
/// accepts up to the `max_xmit_frag` the server announced, and no further;
/// its own requests stay within what it offered.
#[test]
fn client_accepts_the_servers_2048_byte_floor() {
    let mut c = client(AuthLevel::PRIVACY, Flow::ThreeLeg, 1024);
    let mut s = server(AuthLevel::PRIVACY);
    pump(&mut c, &mut s, usize::MAX, 2048);
    let ev = client_events(&mut c);
    assert!(matches!(ev[..], [ClientEvent::Bound { max_xmit_frag: 1024, max_recv_frag: 2048, .. }]), "{ev:?}");
    let id = c.call(4, &pattern(3000, 1), None).unwrap();
    let requests: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_transmit()).collect();
    assert!(requests.len() > 3 && requests.iter().all(|p| p.len() <= 1024), "request fragments over 1024 bytes");
    for p in &requests {
        s.receive(p).unwrap();
    }
    let evs: Vec<ServerEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(matches!(&evs[..], [ServerEvent::Request { stub, .. }] if *stub == pattern(3000, 1)), "{evs:?}");
    s.respond(id, &pattern(5000, 2)).unwrap();
    let responses: Vec<Vec<u8>> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(responses.iter().map(Vec::len).max(), Some(2048));
    for p in &responses {
        c.receive(p).unwrap();
    }
    assert_eq!(client_events(&mut c), [ClientEvent::Response { call_id: id, stub: pattern(5000, 2) }]);

    // Beyond what the server announced: refused.
    let mut c = client(AuthLevel::NONE, Flow::ThreeLeg, 1024);
    let mut s = server(AuthLevel::NONE);
    pump(&mut c, &mut s, usize::MAX, 2048);
    let id = c.call(4, b"x", None).unwrap();
    pump(&mut c, &mut s, usize::MAX, 2048);
    let body = Body::Response(Response { alloc_hint: 2100, context_id: 0, cancel_count: 0, stub: vec![7; 2100] });
    let big = Pdu { pfc_flags: pfc::FIRST | pfc::LAST, call_id: id, body, auth: None }.encode().unwrap();
    assert_eq!(c.receive(&big), Err(ConnError::FragmentTooLong { len: big.len(), max: 2048 }));
}

/// What [`Recorder`] saw: the `pdu` slice and payload range of each seal.
type SealLog = Rc<RefCell<Vec<(Vec<u8>, Range<usize>)>>>;

/// Records the byte ranges handed to seal, to pin them to Samba's.
struct Recorder {
    inner: ToyContext,
    log: SealLog,
}

impl SecurityContext for Recorder {
    fn auth_type(&self) -> AuthType {
        self.inner.auth_type()
    }
    fn update(&mut self, t: &[u8]) -> std::result::Result<Update, SecurityError> {
        self.inner.update(t)
    }
    fn sig_size(&self, n: usize) -> usize {
        self.inner.sig_size(n)
    }
    fn seal(&mut self, pdu: &mut [u8], payload: Range<usize>) -> std::result::Result<Vec<u8>, SecurityError> {
        self.log.borrow_mut().push((pdu.to_vec(), payload.clone()));
        self.inner.seal(pdu, payload)
    }
    fn unseal(&mut self, pdu: &mut [u8], payload: Range<usize>, sig: &[u8]) -> std::result::Result<(), SecurityError> {
        self.inner.unseal(pdu, payload, sig)
    }
    fn sign(&mut self, pdu: &[u8], payload: Range<usize>) -> std::result::Result<Vec<u8>, SecurityError> {
        self.inner.sign(pdu, payload)
    }
    fn check(&mut self, pdu: &[u8], payload: Range<usize>, sig: &[u8]) -> std::result::Result<(), SecurityError> {
        self.inner.check(pdu, payload, sig)
    }
}

#[test]
fn seal_byte_ranges_match_samba() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut cfg = ClientConfig::new(frstrans_syntax());
    cfg.auth_level = AuthLevel::PRIVACY;
    cfg.max_frag = 2048;
    cfg.verification_trailer = false;
    let rec = Recorder { inner: ToyContext::new(Role::Client, Flow::ThreeLeg), log: log.clone() };
    let mut c = ClientConnection::new(cfg, Some(Box::new(rec))).unwrap();
    let mut s = server(AuthLevel::PRIVACY);
    pump(&mut c, &mut s, usize::MAX, 2048);
    let obj = "01234567-89ab-cdef-0123-456789abcdef".parse::<Guid>().ok().unwrap();
    c.call(1, &pattern(3000, 9), Some(obj)).unwrap();
    let frames: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_transmit()).collect();
    let log = log.borrow();
    assert_eq!(frames.len(), 2);
    assert_eq!(log.len(), 2);
    let mut total = 0;
    for (frame, (pdu, range)) in frames.iter().zip(log.iter()) {
        let frag = u16::from_le_bytes([frame[8], frame[9]]) as usize;
        let auth = u16::from_le_bytes([frame[10], frame[11]]) as usize;
        assert_eq!(frag, frame.len());
        assert_eq!(auth, SIG_SIZE);
        // whole_pdu = everything up to and including the sec_trailer, with
        // frag_length/auth_length already final.
        assert_eq!(pdu.len(), frag - auth);
        assert_eq!(&pdu[8..12], &frame[8..12]);
        assert_eq!(&pdu[pdu.len() - 8..], &frame[pdu.len() - 8..pdu.len()]);
        // data = stub + pad, after the 40-byte request header with object.
        assert_eq!(range.start, 40);
        assert_eq!(range.end, pdu.len() - 8);
        assert_eq!(range.len() % 16, 0);
        let pad = frame[pdu.len() - 6] as usize;
        total += range.len() - pad;
        assert!(pdu[range.end - pad..range.end].iter().all(|&b| b == 0), "zero padding before sealing");
    }
    assert_eq!(total, 3000);
    // Largest first fragment: 2048 - 40 - 8 - 16 rounded down to 16.
    assert_eq!(log[0].1.len(), 1984);
}

#[test]
fn configuration_errors_are_typed() {
    let mut cfg = ClientConfig::new(frstrans_syntax());
    cfg.auth_level = AuthLevel::PRIVACY;
    assert!(matches!(ClientConnection::new(cfg.clone(), None), Err(ConnError::Config(_))));
    cfg.auth_level = AuthLevel(9);
    let t = Box::new(ToyContext::new(Role::Client, Flow::ThreeLeg));
    assert!(matches!(ClientConnection::new(cfg.clone(), Some(t)), Err(ConnError::Config(_))));
    cfg.auth_level = AuthLevel::NONE;
    cfg.max_frag = 100;
    assert!(matches!(ClientConnection::new(cfg, None), Err(ConnError::Config(_))));
}
