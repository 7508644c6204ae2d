//! smbclient follows one of our links to the target server and reads a file
//! through it. smbclient connects to referral targets on port 445 only, so
//! both servers listen on 445 in a network namespace of their own (lab).

mod support;

use std::fs;
use std::process::Command;
use support::{dfsrctl, Smbd, SmbdConfig, PASSWORD, USER};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {}", args.join(" "));
}

/// A network namespace with two extra addresses on its loopback.
struct Lab(String);

impl Lab {
    fn new() -> Lab {
        let name = format!("dfsrlab{}", std::process::id() % 100_000);
        ip(&["netns", "add", &name]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        for a in ["10.88.0.2/32", "10.88.0.3/32"] {
            ip(&["netns", "exec", &name, "ip", "addr", "add", a, "dev", "lo"]);
        }
        Lab(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn smbclient_follows_a_link_to_its_target_and_reads_a_file() {
    let lab = Lab::new();
    let target = Smbd::start(SmbdConfig { netns: Some((lab.0.clone(), "10.88.0.3".into())), ..Default::default() });
    fs::write(target.share_path("data").join("hello.txt"), "read through a DFS link\n").unwrap();
    let ns = Smbd::start(SmbdConfig {
        netns: Some((lab.0.clone(), "10.88.0.2".into())),
        log_level: "3 dfsr:5".into(),
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: vec![("ns".into(), vec!["msdfs root = yes".into()])],
        ..Default::default()
    });
    for args in [
        &["namespace", "root", "add", r"\\10.88.0.2\ns"][..],
        &["namespace", "link", "add", r"\\10.88.0.2\ns\docs"],
        &["namespace", "target", "add", r"\\10.88.0.2\ns\docs", r"\\10.88.0.3\data"],
    ] {
        let o = dfsrctl(&ns.conf, args);
        assert!(o.status.success(), "dfsrctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let work = support::TestDir::new("follow");
    let out = work.0.join("hello.txt");
    let o = Command::new("ip")
        .args(["netns", "exec", &lab.0, "smbclient", "//10.88.0.2/ns", "-U", &format!("{USER}%{PASSWORD}")])
        .arg("-c")
        .arg(format!("get docs\\hello.txt {}", out.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "smbclient: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "read through a DFS link\n");
    // The referral came from our module (not from smbd reading the
    // placeholder itself).
    let log = ns.log_text();
    assert!(
        log.lines().any(|l| l.contains("dfsr: referral") && l.contains("docs")),
        "no referral line from the module:\n{log}"
    );
}
