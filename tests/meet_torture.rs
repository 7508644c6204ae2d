//! smbtorture's `dfsr.meet.*` (src/c/torture_dfsr_meet.c): installs over
//! IRPC into the running dfsrd, every result checked over SMB2 against the
//! real smbd serving the same share. This file makes the staged files with
//! `dfsrctl staged create` and hands smbtorture what they should contain.

mod support;

use support::{subunit_outcomes, Dfsrd, Smbd, SmbdConfig, TestDir};

// Owner, group, a deny ACE, inheritance flags and a protected DACL. Masks
// in hex: Samba's SDDL parser reads "FA" as 0x1ff, Windows (and ours) as
// 0x1f01ff, and smbtorture decodes this string with Samba's.
const SDDL: &str =
    "O:BAG:SYD:PAI(A;OICI;0x1f01ff;;;SY)(D;;WD;;;AN)(A;;0x1f01ff;;;WD)(A;OICI;0x1f01ff;;;BA)";

/// NTTIME of a Unix time in seconds.
fn nttime(unix: u64) -> u64 {
    (unix + 11_644_473_600) * 10_000_000
}

#[test]
fn smbtorture_dfsr_meet_suite_passes() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet-torture");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let zone: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    // 2024-01-02T03:04:05Z, 2024-03-04T05:06:07Z, 2024-02-03T04:05:06Z.
    let (ctime, atime, mtime) = (nttime(1_704_164_645), nttime(1_709_528_767), nttime(1_706_933_106));
    let (c, a, m) = (ctime.to_string(), atime.to_string(), mtime.to_string());
    support::staged_file(
        &work.0,
        "full",
        &data,
        &[("one", b"stream one\n"), ("Zone.Identifier", &zone)],
        &["--sddl", SDDL, "--attributes", "0x21", "--creation-time", &c, "--last-access-time", &a, "--last-write-time", &m],
    );
    support::staged_file(&work.0, "v2", b"second version\n", &[], &["--sddl", SDDL, "--attributes", "0x20"]);

    let root = smbd.share_path("data");
    let opts = [
        "-s".to_string(),
        smbd.conf.display().to_string(),
        "--option=torture:dfsr_meet_share=data".into(),
        format!("--option=torture:dfsr_meet_dir={}", work.0.display()),
        format!("--option=torture:dfsr_meet_root={}", root.display()),
        format!("--option=torture:dfsr_meet_sddl={SDDL}"),
        "--option=torture:dfsr_meet_attrib=33".into(),
        format!("--option=torture:dfsr_meet_ctime={ctime}"),
        format!("--option=torture:dfsr_meet_atime={atime}"),
        format!("--option=torture:dfsr_meet_mtime={mtime}"),
        // Last: smbtorture 4.17 takes what follows --load-module as modules.
        format!("--load-module={}", support::torture_so().display()),
    ];
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let out = smbd.smbtorture("data", &opts, &["dfsr.meet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let found = subunit_outcomes(&text);
    let want: Vec<(String, String)> = ["install", "replace", "move-remove", "sharing-violation", "lease", "bad-names"]
        .iter()
        .map(|t| (t.to_string(), "success".to_string()))
        .collect();
    assert_eq!(found, want, "smbtorture dfsr.meet:\n{text}{}", String::from_utf8_lossy(&out.stderr));
}
