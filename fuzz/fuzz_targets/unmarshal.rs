//! Marshaled-format reader (and SDDL rendering of any descriptor it
//! accepts) over arbitrary bytes, both bare and inside FRSX framing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::staging::marshal::{Event, MarshalReader};
use samba_dfsr::staging::{frsx, security_descriptor::SecurityDescriptor};

fn walk(r: impl std::io::Read) {
    let mut m = MarshalReader::new(r);
    while let Ok(Some(e)) = m.next() {
        if let Event::Security { sd, bytes } = e {
            if let Ok(s) = sd.to_sddl() {
                // What renders must parse back to the same descriptor
                // (ACE padding/extra data aside).
                let back = SecurityDescriptor::from_sddl(&s).expect("rendered SDDL parses");
                let _ = back.to_bytes();
            }
            let _ = bytes;
        }
    }
    let _ = m.frs_hash();
}

fuzz_target!(|data: &[u8]| {
    walk(data);
    walk(frsx::FrsxReader::new(&frsx::compress(data)[..]));
});
