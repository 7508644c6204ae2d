//! Referrals from our namespace table through Debian's smbd: the table is
//! written with dfsrctl, the dfsr module (loaded in [global], so it runs
//! on IPC$) answers FSCTL_DFS_GET_REFERRALS, and our smbtorture suite asks
//! over SMB2 at the levels clients use.

mod support;

use std::process::Output;
use support::{dfsrctl, Smbd, SmbdConfig};

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn referral(smbd: &Smbd, path: &str, level: u32, count: usize, first: &str) -> Output {
    // Level 1 is answered with V2 entries (smbd's NDR cannot carry V1).
    let version = level.max(2);
    let module = format!("--load-module={}", support::torture_so().display());
    // --load-module last: smbtorture 4.17 takes any option after it for
    // another module to load.
    let opts = [
        format!("--option=torture:dfsr_referral_path={path}"),
        format!("--option=torture:dfsr_referral_level={level}"),
        format!("--option=torture:dfsr_expect_version={version}"),
        format!("--option=torture:dfsr_expect_count={count}"),
        format!("--option=torture:dfsr_expect_first={first}"),
        module,
    ];
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    smbd.smbtorture("IPC$", &opts, &["dfsr.namespace.referral"])
}

#[test]
fn smbd_answers_referrals_from_our_table_at_every_level() {
    let smbd = Smbd::start(SmbdConfig {
        log_level: "3 dfsr:5".into(),
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: vec![("ns".into(), vec!["msdfs root = yes".into(), "read only = no".into()])],
        ..Default::default()
    });
    let c = &smbd.conf;
    ok(dfsrctl(c, &["namespace", "root", "add", r"\\127.0.0.1\ns", "--ttl", "300"]));
    ok(dfsrctl(c, &["namespace", "link", "add", r"\\127.0.0.1\ns\docs\link", "--ttl", "900"]));
    ok(dfsrctl(c, &["namespace", "site", "add", "Near", "--subnet", "127.0.0.0/8"]));
    ok(dfsrctl(c, &["namespace", "site", "add", "Far", "--subnet", "10.0.0.0/8"]));
    ok(dfsrctl(c, &["namespace", "site", "cost", "Near", "Far", "100"]));
    // The far target is added first: ordering, not insertion, must decide.
    ok(dfsrctl(c, &["namespace", "target", "add", r"\\127.0.0.1\ns\docs\link", r"\\10.1.2.3\share"]));
    ok(dfsrctl(c, &["namespace", "target", "add", r"\\127.0.0.1\ns\docs\link", r"\\127.0.0.2\share\sub"]));

    for level in [1, 2, 3, 4] {
        let o = referral(&smbd, r"\127.0.0.1\ns\docs\link", level, 2, r"\127.0.0.2\share\sub");
        let out = String::from_utf8_lossy(&o.stdout);
        let found = support::subunit_outcomes(&out);
        assert_eq!(found, vec![("referral".to_string(), "success".to_string())], "level {level}: {out}");
    }
    // An offline target is left out.
    ok(dfsrctl(c, &["namespace", "target", "set", r"\\127.0.0.1\ns\docs\link", r"\\127.0.0.2\share\sub", "--state", "offline"]));
    let o = referral(&smbd, r"\127.0.0.1\ns\docs\link", 4, 1, r"\10.1.2.3\share");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(support::subunit_outcomes(&out), vec![("referral".to_string(), "success".to_string())], "{out}");
    // smbd's path walk sees the link through its msdfs: placeholder, kept
    // in step with the table.
    let link = smbd.share_path("ns").join("docs/link");
    assert_eq!(
        std::fs::read_link(&link).unwrap().to_string_lossy(),
        r"msdfs:10.1.2.3\share,127.0.0.2\share\sub"
    );
    let ls = smbd.smbclient("ns", "ls docs\\*");
    let text = String::from_utf8_lossy(&ls.stdout);
    assert!(text.contains("link"), "{text}");
    // Samba's own NetDfs server (rpcd_classic) lists a link made with
    // dfsrctl (4.17 enumerates links directly under the root only).
    ok(dfsrctl(c, &["namespace", "link", "add", r"\\127.0.0.1\ns\top"]));
    ok(dfsrctl(c, &["namespace", "target", "add", r"\\127.0.0.1\ns\top", r"\\10.4.4.4\topshare"]));
    let enumed = std::process::Command::new("rpcclient")
        .args(["127.0.0.1", "-p", &smbd.port.to_string(), "-U", &smbd.credentials(), "-c", "dfsenum 3"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&enumed.stdout);
    assert!(text.contains(r"\ns\top") && text.contains("server: 10.4.4.4") && text.contains("share: topshare"), "{text}");
    ok(dfsrctl(c, &["namespace", "link", "remove", r"\\127.0.0.1\ns\docs\link"]));
    assert!(std::fs::symlink_metadata(&link).is_err(), "placeholder left behind");
    // The change was seen without restarting smbd; the module logged it.
    assert!(smbd.log_text().contains("dfsr: referral"), "no referral line in the log");
}
