//! `dfsrctl replication import`: a replication group's export document
//! (JSON, config::replication). Checks: nothing panics; a document that
//! reads exports to one that reads back to the same group; importing it
//! into an empty configuration does not panic either way.
#![no_main]
use libfuzzer_sys::fuzz_target;
use samba_dfsr::config::replication::{Group, ReplicationConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(g) = Group::from_document(text) else { return };
    let again = Group::from_document(&g.export_document().to_string()).expect("an exported document reads back");
    assert_eq!(again, g);
    let mut c = ReplicationConfig::default();
    let _ = c.import_group(g, None);
});
