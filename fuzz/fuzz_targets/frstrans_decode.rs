//! frstrans NDR decoder (MS-FRS2) over arbitrary bytes. The first byte picks
//! the opnum (low 5 bits, taken modulo 18) and the direction (bit 7: set =
//! response); the rest is the stub data. Decoding must never panic, and
//! whatever decodes must re-encode to bytes that decode to the same value
//! (and re-encode identically).
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::wire::frstrans::{Request, Response};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stub)) = data.split_first() else { return };
    let opnum = u16::from(sel & 0x1f) % 18;
    if sel & 0x80 == 0 {
        if let Ok(m) = Request::decode(opnum, stub) {
            assert_eq!(m.opnum(), opnum);
            let bytes = m.to_bytes();
            let again = Request::decode(opnum, &bytes).expect("re-encoded request decodes");
            assert_eq!(again, m);
            assert_eq!(again.to_bytes(), bytes);
        }
    } else if let Ok(m) = Response::decode(opnum, stub) {
        assert_eq!(m.opnum(), opnum);
        let bytes = m.to_bytes();
        let again = Response::decode(opnum, &bytes).expect("re-encoded response decodes");
        assert_eq!(again, m);
        assert_eq!(again.to_bytes(), bytes);
    }
});
