//! MS-XCA decoder: arbitrary bytes must give an error or bounded output,
//! never a panic; whatever decodes with a known size must re-encode and
//! decode back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::staging::xpress;

fuzz_target!(|data: &[u8]| {
    // First two bytes choose the claimed size (bounded: < 64 KiB, so runs
    // stay fast; the block logic past 64 KiB is covered by the unknown-size
    // path below and the unit tests).
    if data.len() < 2 {
        return;
    }
    let size = u16::from_le_bytes([data[0], data[1]]) as usize;
    let input = &data[2..];
    if let Ok(out) = xpress::decompress(input, size) {
        assert_eq!(out.len(), size);
        let again = xpress::compress(&out);
        assert_eq!(xpress::decompress(&again, size).ok().as_deref(), Some(&out[..]));
    }
    if let Ok(out) = xpress::decompress_unknown_size(input, 1 << 18) {
        assert!(out.len() <= 1 << 18);
    }
});
