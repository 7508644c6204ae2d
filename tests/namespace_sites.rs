//! Two clients in different subnets — each in its own network namespace
//! with its own address — ask smbd for the same link and get different
//! first targets: the one in their own site.

mod support;

use std::process::{Command, Output};
use support::{dfsrctl, Smbd, SmbdConfig};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {}", args.join(" "));
}

/// A network namespace joined to the host by a veth pair:
/// host side 10.N.I.1/24, namespace side 10.N.I.2/24.
struct NetNs {
    name: String,
    veth: String,
    host_addr: String,
    client_addr: String,
}

impl NetNs {
    fn new(net: u32, i: u32) -> NetNs {
        let tag = std::process::id() % 100_000;
        let n = NetNs {
            name: format!("dfsr{tag}n{i}"),
            veth: format!("dv{tag}n{i}"),
            host_addr: format!("10.{net}.{i}.1"),
            client_addr: format!("10.{net}.{i}.2"),
        };
        let peer = format!("{}p", n.veth);
        ip(&["netns", "add", &n.name]);
        ip(&["link", "add", &n.veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &n.name]);
        ip(&["addr", "add", &format!("{}/24", n.host_addr), "dev", &n.veth]);
        ip(&["link", "set", &n.veth, "up"]);
        ip(&["netns", "exec", &n.name, "ip", "addr", "add", &format!("{}/24", n.client_addr), "dev", &peer]);
        ip(&["netns", "exec", &n.name, "ip", "link", "set", &peer, "up"]);
        ip(&["netns", "exec", &n.name, "ip", "link", "set", "lo", "up"]);
        n
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.veth]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn referral_from(ns: &NetNs, smbd: &Smbd, path: &str, first: &str) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "smbtorture"])
        .arg(format!("//{}/IPC$", ns.host_addr))
        .args(["-p", &smbd.port.to_string(), "-U", &smbd.credentials(), "--format=subunit"])
        .arg(format!("--option=torture:dfsr_referral_path={path}"))
        .arg("--option=torture:dfsr_referral_level=4")
        .arg("--option=torture:dfsr_expect_count=2")
        .arg(format!("--option=torture:dfsr_expect_first={first}"))
        .arg(format!("--load-module={}", support::torture_so().display()))
        .arg("dfsr.namespace.referral")
        .output()
        .expect("running smbtorture in a network namespace")
}

#[test]
fn clients_in_two_subnets_get_their_own_site_first() {
    // A second octet of our own, so parallel runs do not collide.
    let net = 100 + std::process::id() % 100;
    let (a, b) = (NetNs::new(net, 1), NetNs::new(net, 2));
    let smbd = Smbd::start(SmbdConfig {
        global_extra: vec![
            "host msdfs = yes".into(),
            format!("interfaces = lo {}/24 {}/24", a.host_addr, b.host_addr),
        ],
        ..Default::default()
    });
    let c = &smbd.conf;
    let run = |args: &[&str]| {
        let o = dfsrctl(c, args);
        assert!(o.status.success(), "dfsrctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let (ta, tb) = (format!(r"\\10.{net}.1.50\docs"), format!(r"\\10.{net}.2.50\docs"));
    run(&["namespace", "root", "add", r"\\srv\ns"]);
    run(&["namespace", "link", "add", r"\\srv\ns\docs"]);
    run(&["namespace", "site", "add", "SiteA", "--subnet", &format!("10.{net}.1.0/24")]);
    run(&["namespace", "site", "add", "SiteB", "--subnet", &format!("10.{net}.2.0/24")]);
    run(&["namespace", "site", "cost", "SiteA", "SiteB", "50"]);
    // Targets' sites come from their addresses.
    run(&["namespace", "target", "add", r"\\srv\ns\docs", &ta]);
    run(&["namespace", "target", "add", r"\\srv\ns\docs", &tb]);

    for (ns, first) in [(&a, &ta), (&b, &tb)] {
        for _ in 0..3 {
            let o = referral_from(ns, &smbd, r"\srv\ns\docs", &first[1..]);
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                support::subunit_outcomes(&out),
                vec![("referral".to_string(), "success".to_string())],
                "client {}: {out}{}",
                ns.client_addr,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
