//! `make demo`: a private smbd on loopback with the dfsr module and a
//! sample share, plus dfsrd with the meet, until Ctrl-C. Uses the same
//! harness as the tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, PASSWORD, USER};

fn dfsrctl_bin() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dfsrctl").display().to_string()
}

fn main() {
    let smbd = Smbd::start(SmbdConfig {
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: vec![("ns".into(), vec!["msdfs root = yes".into(), "read only = no".into()])],
        ..Default::default()
    });
    let share = smbd.share_path("data");
    fs::write(share.join("hello.txt"), "Hello from samba-dfsr.\n").unwrap();

    // One connection of our own, so the module's log line is there to see.
    let ls = smbd.smbclient("data", "ls");
    let connect = smbd
        .log_text()
        .lines()
        .find(|l| l.contains("dfsr: connect share=\"data\""))
        .map(str::trim)
        .unwrap_or("(no connect line yet: is the module loaded?)")
        .to_string();

    // A staged file, installed by the meet through the share's VFS stack.
    let dfsrd = Dfsrd::start(&smbd.conf);
    let src = smbd.dir.0.join("welcome.txt");
    let staged = smbd.dir.0.join("welcome.staged");
    fs::write(&src, "Installed by the meet from a staged file.\n").unwrap();
    let made = Command::new(dfsrctl_bin())
        .args(["staged", "create", "--data"])
        .arg(&src)
        .args(["--stream", &format!("note={}", src.display())])
        .args(["--sddl", "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;0x1301bf;;;WD)"])
        .args(["--creation-time", "2001-09-09T01:46:40Z", "--last-write-time", "2001-09-09T01:46:40Z"])
        .arg(&staged)
        .output()
        .unwrap();
    let installed = made.status.success()
        && dfsrctl(
            &smbd.conf,
            &["meet", "install", "--share", "data", "--path", "welcome/welcome.txt", staged.to_str().unwrap()],
        )
        .status
        .success();

    // A namespace: \\127.0.0.1\ns with a link in two sites; the referral
    // a client in 127.0.0.0/8 gets, as smbd would send it.
    let c = &smbd.conf;
    for args in [
        &["namespace", "root", "add", r"\\127.0.0.1\ns"][..],
        &["namespace", "link", "add", r"\\127.0.0.1\ns\docs"],
        &["namespace", "site", "add", "Here", "--subnet", "127.0.0.0/8"],
        &["namespace", "site", "add", "There", "--subnet", "10.0.0.0/8"],
        &["namespace", "site", "cost", "Here", "There", "100"],
        &["namespace", "target", "add", r"\\127.0.0.1\ns\docs", r"\\10.9.9.9\docs"],
        &["namespace", "target", "add", r"\\127.0.0.1\ns\docs", r"\\127.0.0.1\data"],
    ] {
        let o = dfsrctl(c, args);
        if !o.status.success() {
            eprintln!("dfsrctl {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
        }
    }
    let resolved = dfsrctl(c, &["namespace", "resolve", r"\\127.0.0.1\ns\docs", "--client-ip", "127.0.0.1"]);
    // Samba's own NetDfs server adds a target through the module: it lands
    // in our table.
    let root = support::add_root_user(c);
    let _ = Command::new("rpcclient")
        .args(["127.0.0.1", "-p", &smbd.port.to_string(), "-U", &root])
        .args(["-c", r"dfsadd \\\\DFSRTEST\\ns\\docs 10.7.7.7 added-by-netdfs c"])
        .output();
    let listed = dfsrctl(c, &["namespace", "list"]);
    // The replication engine: three simulated members with every fault.
    let sim = Command::new(dfsrctl_bin()).args(["simulate", "--members", "3", "--ops", "300", "--seed", "1"]).output().unwrap();

    let port = smbd.port;
    let conf = smbd.conf.display();
    let log = smbd.log.display();
    let ctl = dfsrctl_bin();
    println!(
        "samba-dfsr demo: Debian's smbd (pid {pid}) with the dfsr VFS module on 127.0.0.1:{port},
dfsrd (pid {dpid}) with the meet on the same smb.conf

  shares   [data]  vfs objects = dfsr acl_xattr streams_xattr   ({share})
           [plain] vfs objects = acl_xattr streams_xattr
  connect  smbclient //127.0.0.1/data -p {port} -U {USER}%{PASSWORD}
  options  {ctl} -s {conf} config
  meet     {ctl} -s {conf} meet status
           {ctl} -s {conf} meet install --share data --path some/dir/file.txt {staged}
  staged   {ctl} staged inspect {staged}
  log      {log}   (module lines: grep 'dfsr:' {log})

smbclient ls on [data] just now: {ok}; the module logged:
  {connect}
the meet installed welcome/welcome.txt (with a stream 'note', an ACL and
2001-09-09 times) from {staged}: {inst}
  see it: smbclient //127.0.0.1/data -p {port} -U {USER}%{PASSWORD} -c 'allinfo welcome/welcome.txt'

namespace {ns} (table: {ctl} -s {conf} namespace list); smbd's referral for
{ns}\\docs to a client at 127.0.0.1 (same-site target first):
{resolved}

after `rpcclient -c 'dfsadd …\\docs 10.7.7.7 added-by-netdfs'` through Samba's
NetDfs server (rpcd_classic), the table says:
{listed}

the replication engine, `{ctl} simulate --members 3 --ops 300 --seed 1`
(delays, drops, reordering, partitions, crash-restarts):
{sim}

dfsrd also serves MS-FRS2 (FrsTransport) over sealed DCE/RPC on port 5722
(`dfsr:rpc port`); see README.md, section MS-FRS2 wire.

Ctrl-C to stop.",
        pid = smbd.pid(),
        dpid = dfsrd.pid(),
        share = share.display(),
        staged = staged.display(),
        ok = if ls.status.success() { "ok" } else { "FAILED" },
        inst = if installed { "ok" } else { "FAILED" },
        resolved = String::from_utf8_lossy(&resolved.stdout).trim_end(),
        listed = String::from_utf8_lossy(&listed.stdout).trim_end(),
        sim = String::from_utf8_lossy(&sim.stdout).trim_end(),
        ns = r"\\127.0.0.1\ns",
    );
    let sig = samba_dfsr::ffi::signals::wait_for_interrupt();
    println!("\nsignal {sig}: stopping dfsrd and smbd, removing {}", smbd.dir.0.display());
}
