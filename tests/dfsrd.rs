//! dfsrd, our Samba-linked daemon: it holds the IRPC name dfsr_meet, answers
//! dfsrctl over Samba's messaging, refuses bad paths before touching
//! anything, and frees its name on SIGTERM.

mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig};

fn text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn ping_status_and_bad_names_over_irpc() {
    let smbd = Smbd::start(SmbdConfig::default());
    let mut dfsrd = Dfsrd::start(&smbd.conf);

    let out = dfsrctl(&smbd.conf, &["--json", "meet", "ping"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], dfsrd.pid());

    for bad in ["a/../b", "..", "x:stream", "dir\\name", "tab\tname", "a//b", "trailing."] {
        let out = dfsrctl(&smbd.conf, &["meet", "install", "--share", "data", "--path", bad, "/nonexistent.staged"]);
        let (so, se) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {so}{se}");
        assert!(se.starts_with("dfsrctl: NT_STATUS_OBJECT_NAME_INVALID: [data] "), "{bad:?}: {se}");
        let out = dfsrctl(&smbd.conf, &["meet", "remove", "--share", "data", "--path", bad]);
        assert!(text(&out).1.contains("NT_STATUS_OBJECT_NAME_INVALID"), "{bad:?}");
    }
    // Nothing was written to the share.
    assert_eq!(fs::read_dir(smbd.share_path("data")).unwrap().count(), 0);

    let out = dfsrctl(&smbd.conf, &["--json", "meet", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], dfsrd.pid());
    assert_eq!(v["installs_failed"], 7);
    assert_eq!(v["installs_ok"], 0);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    // SIGTERM: a clean exit, and the name is gone.
    let st = dfsrd.stop();
    assert!(st.success(), "dfsrd exit: {st}");
    let out = dfsrctl(&smbd.conf, &["meet", "ping"]);
    let (_, se) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(se.contains("NT_STATUS_OBJECT_NAME_NOT_FOUND: no dfsrd holds the IRPC name dfsr_meet"), "{se}");
}

#[test]
fn daemonizes_writes_its_pidfile_and_stops_on_sigterm() {
    let smbd = Smbd::start(SmbdConfig::default());
    let st = Command::new(support::dfsrd_bin()).arg("-s").arg(&smbd.conf).status().unwrap();
    assert!(st.success(), "dfsrd (daemon mode) start: {st}");
    let pidfile = smbd.dir.0.join("pid/dfsrd.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while dfsrctl(&smbd.conf, &["meet", "ping"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "daemonized dfsrd did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let out = dfsrctl(&smbd.conf, &["--json", "meet", "ping"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"].to_string(), pid);
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pidfile.exists(), "pidfile left behind");
    assert_ne!(dfsrctl(&smbd.conf, &["meet", "ping"]).status.code(), Some(0));
}

/// dfsrd's messages use the `dfsr` debug class, as the module's do in
/// smbd: `log level = 1 dfsr:3` shows its level-3 lines, `log level = 1`
/// does not.
#[test]
fn the_dfsr_debug_class_sets_dfsrds_level() {
    for (level, shown) in [("1 dfsr:3", true), ("1", false)] {
        let smbd = Smbd::start(SmbdConfig { log_level: level.into(), ..Default::default() });
        let _dfsrd = Dfsrd::start(&smbd.conf);
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let log = fs::read_to_string(&smbd.log).unwrap_or_default();
            if log.contains("member: started") {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(seen, shown, "log level = {level}: {}", smbd.log_text());
    }
}
