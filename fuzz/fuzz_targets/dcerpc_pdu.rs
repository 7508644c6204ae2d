//! DCE/RPC connection-oriented PDU stream (C706 ch. 12, MS-RPCE §2.2.2).
//! The first byte picks the side (bit 0: 0 = server, 1 = client), whether
//! security is configured (bit 1, toy NTLMSSP-like context at privacy) and
//! the chunk size the rest is fed in (bits 2..8, + 1). The rest is a byte
//! stream as received from the peer.
//!
//! Checks: nothing panics; every fragment that decodes re-encodes to a PDU
//! that decodes to the same value; the state machines only ever emit
//! PDUs that decode.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::wire::dcerpc::auth::toy::{Flow, Role, ToyContext};
use samba_dfsr::wire::dcerpc::{
    AuthLevel, ClientConfig, ClientConnection, Pdu, PduBuffer, SecurityContext, ServerConfig, ServerConnection,
    ServerEvent, SyntaxId,
};
use samba_dfsr::wire::frstrans;

fn check_output(frames: impl Iterator<Item = Vec<u8>>) {
    for f in frames {
        Pdu::decode(&f).expect("emitted PDU decodes");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };

    let mut buf = PduBuffer::new();
    buf.push(rest);
    while let Ok(Some((_, frame))) = buf.next_frame() {
        if let Ok(p) = Pdu::decode(&frame) {
            if let Ok(bytes) = p.encode() {
                let again = Pdu::decode(&bytes).expect("re-encoded PDU decodes");
                assert_eq!(again, p);
            }
        }
    }

    let iface = SyntaxId::new(frstrans::interface_guid(), 1, 0);
    let secure = sel & 2 != 0;
    let chunk = usize::from(sel >> 2) + 1;
    if sel & 1 == 0 {
        let mut cfg = ServerConfig::new(vec![iface]);
        if !secure {
            cfg.min_auth_level = AuthLevel::NONE;
        }
        let mut s = ServerConnection::new(
            cfg,
            Box::new(|_| Some(Box::new(ToyContext::new(Role::Server, Flow::ThreeLeg)) as Box<dyn SecurityContext>)),
        );
        for part in rest.chunks(chunk) {
            let r = s.receive(part);
            while let Some(e) = s.poll_event() {
                if let ServerEvent::Request { call_id, stub, .. } = e {
                    let _ = s.respond(call_id, &stub);
                }
            }
            check_output(std::iter::from_fn(|| s.poll_transmit()));
            if r.is_err() {
                break;
            }
        }
    } else {
        let mut cfg = ClientConfig::new(iface);
        let sec: Option<Box<dyn SecurityContext>> = if secure {
            cfg.auth_level = AuthLevel::PRIVACY;
            Some(Box::new(ToyContext::new(Role::Client, Flow::ThreeLeg)))
        } else {
            None
        };
        let Ok(mut c) = ClientConnection::new(cfg, sec) else { return };
        let _ = c.call(0, &[0; 32], None);
        for part in rest.chunks(chunk) {
            let r = c.receive(part);
            while c.poll_event().is_some() {}
            check_output(std::iter::from_fn(|| c.poll_transmit()));
            if r.is_err() {
                break;
            }
        }
    }
});
