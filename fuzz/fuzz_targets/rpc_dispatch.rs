//! What dfsrd does with the stub data of a hostile, authenticated peer: a
//! sequence of calls, each `[opnum byte][u16 length][stub]`, to the
//! FrsTransport dispatcher (without a database: no folder is served) and
//! to the management interface. Nothing may panic; every answer must be a
//! fault or a response that decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::member::serve::{FrsService, Outcome};
use samba_dfsr::wire::frstrans::Response;
use samba_dfsr::wire::mgmt::{Answer, MgmtEndpoint};
use samba_dfsr::wire::frstrans::frstrans_syntax;

fuzz_target!(|data: &[u8]| {
    let mut frs = FrsService::new(None);
    let mgmt = MgmtEndpoint::new(vec![frstrans_syntax()], "fuzz");
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 3 {
        let sel = rest[0];
        let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        let stub = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += 1000;
        if sel & 0x80 != 0 {
            let _: Answer = mgmt.call(u16::from(sel & 0x07), stub);
            continue;
        }
        let opnum = u16::from(sel & 0x1f);
        match frs.call(None, opnum, stub, now) {
            Outcome::Reply(out) => {
                Response::decode(opnum, &out).expect("our answers decode");
            }
            Outcome::Fault(_) | Outcome::Pending => {}
        }
        frs.on_tick(None, now);
        while let Some(out) = frs.poll_completion() {
            Response::decode(5, &out).expect("AsyncPoll completions decode");
        }
    }
});
