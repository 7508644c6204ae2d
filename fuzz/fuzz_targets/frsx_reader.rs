//! FRSX/XBLO block reader over arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::staging::frsx::FrsxReader;

fuzz_target!(|data: &[u8]| {
    let mut r = FrsxReader::new(data);
    let mut total = 0usize;
    while let Ok(Some(b)) = r.next_block() {
        assert!(b.len() <= 8192);
        total += b.len();
    }
    // Output is bounded by the blocks present: at most 8192 per 13 bytes.
    assert!(total <= data.len() / 13 * 8192 + 8192);
});
