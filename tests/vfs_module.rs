//! The dfsr VFS module inside Debian's smbd: data passes through it intact
//! and the Rust side sees each connection with its dfsr:* options.

mod support;

use std::fs;
use support::{Smbd, SmbdConfig};

/// Deterministic, non-repeating bytes (xorshift), so a shifted or dropped
/// block cannot compare equal by accident.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn five_megabytes_round_trip_byte_exact_on_data() {
    let smbd = Smbd::start(SmbdConfig::default());
    let work = support::TestDir::new("client");
    let src = work.0.join("in.bin");
    let back = work.0.join("out.bin");
    let data = pattern(5 * 1024 * 1024);
    fs::write(&src, &data).unwrap();

    let put = smbd.smbclient("data", &format!("put {} big.bin", src.display()));
    assert!(put.status.success(), "put: {}", String::from_utf8_lossy(&put.stdout));
    let on_disk = fs::read(smbd.share_path("data").join("big.bin")).unwrap();
    assert!(on_disk == data, "the file on the share differs from what was sent");

    let get = smbd.smbclient("data", &format!("get big.bin {}", back.display()));
    assert!(get.status.success(), "get: {}", String::from_utf8_lossy(&get.stdout));
    let got = fs::read(&back).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the file read back differs from what was written");
}

#[test]
fn rust_side_logs_connect_with_options_at_level_3() {
    let smbd = Smbd::start(SmbdConfig::default());
    let ls = smbd.smbclient("data", "ls");
    assert!(ls.status.success(), "ls: {}", String::from_utf8_lossy(&ls.stdout));
    let ls = smbd.smbclient("plain", "ls");
    assert!(ls.status.success(), "ls: {}", String::from_utf8_lossy(&ls.stdout));

    let log = smbd.log_text();
    let connects: Vec<&str> = log.lines().filter(|l| l.starts_with("  dfsr: connect ")).collect();
    // [data] loads dfsr itself; [plain] overrides the global vfs objects
    // and must not; the share options win over [global].
    let data = connects
        .iter()
        .find(|l| l.contains("share=\"data\""))
        .unwrap_or_else(|| panic!("no connect line for [data] in the log:\n{log}"));
    assert!(data.contains("test origin=global"), "{data}");
    assert!(data.contains("test share=data"), "{data}");
    assert!(data.contains(&format!("path=\"{}\"", smbd.share_path("data").display())), "{data}");
    assert!(!connects.iter().any(|l| l.contains("share=\"plain\"")), "{connects:?}");
    assert!(
        log.lines().any(|l| l.starts_with("  dfsr: disconnect share=\"data\"")),
        "no disconnect line for [data]:\n{log}"
    );
}

#[test]
fn log_level_below_3_hides_the_connect_line() {
    let smbd = Smbd::start(SmbdConfig { log_level: "2".into(), ..Default::default() });
    let ls = smbd.smbclient("data", "ls");
    assert!(ls.status.success(), "ls: {}", String::from_utf8_lossy(&ls.stdout));
    let log = smbd.log_text();
    assert!(!log.contains("dfsr: connect"), "connect logged at level 2:\n{log}");
}

#[test]
fn per_class_level_dfsr_3_shows_it() {
    // `log level = 1 dfsr:3`: only our debug class is raised.
    let smbd = Smbd::start(SmbdConfig { log_level: "1 dfsr:3".into(), ..Default::default() });
    let ls = smbd.smbclient("data", "ls");
    assert!(ls.status.success(), "ls: {}", String::from_utf8_lossy(&ls.stdout));
    let log = smbd.log_text();
    assert!(log.contains("dfsr: connect share=\"data\""), "no connect line:\n{log}");
}
