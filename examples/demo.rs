//! `make demo`: a private smbd on loopback with the dfsr module and a
//! sample share, plus dfsrd with the meet, until Ctrl-C. Uses the same
//! harness as the tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::members::{configure, disk_tree, Lab, Member};
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, TestDir, PASSWORD, USER};

fn dfsrctl_bin() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dfsrctl").display().to_string()
}

const GROUP: &str = "5f0f3c6e-8a4b-4e0c-9d51-0a1b2c3d4e5f";
const FOLDER: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

fn main() {
    let rpc_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let smbd = Smbd::start(SmbdConfig {
        global_extra: vec!["host msdfs = yes".into(), format!("dfsr:rpc port = {rpc_port}")],
        extra_shares: vec![
            ("ns".into(), vec!["msdfs root = yes".into(), "read only = no".into()]),
            // A share whose module is not installed: dfsrd says which.
            ("nomodule".into(), vec!["vfs objects = dfsr streams_depot_missing".into()]),
        ],
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

    // A replicated folder dfsrd serves: a small tree seeded into its database.
    let tree = smbd.dir.0.join("policies");
    fs::create_dir_all(tree.join("scripts")).unwrap();
    fs::write(tree.join("gpt.ini"), "[General]\nVersion=7\n").unwrap();
    fs::write(tree.join("scripts/logon.cmd"), "@echo off\nnet use h: \\\\fs1\\home\n").unwrap();
    fs::write(tree.join("scripts/big.bin"), vec![7u8; 3 << 20]).unwrap();
    let seeded = dfsrctl(
        &smbd.conf,
        &["db", "seed", "--group", GROUP, "--folder", FOLDER, "--from", tree.to_str().unwrap()],
    );

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

    // The meet on a share whose vfs objects names a module that is not there.
    let refused = dfsrctl(
        &smbd.conf,
        &["meet", "install", "--share", "nomodule", "--path", "x.txt", staged.to_str().unwrap()],
    );

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

    // Pull that folder over MS-FRS2 (sealed DCE/RPC) into another database.
    let pulled = smbd.dir.0.join("pulled");
    let sync_args = [
        "sync".to_string(),
        "--partner".into(),
        format!("127.0.0.1:{rpc_port}"),
        "--group".into(),
        GROUP.into(),
        "--folder".into(),
        FOLDER.into(),
        "--user".into(),
        format!("DFSRTEST\\{USER}"),
        "--password".into(),
        PASSWORD.into(),
        "--db".into(),
        pulled.join("dfsr.tdb").display().to_string(),
        "--staging".into(),
        pulled.join("staging").display().to_string(),
    ];
    fs::create_dir_all(&pulled).unwrap();
    let sync_refs: Vec<&str> = sync_args.iter().map(String::as_str).collect();
    let synced = dfsrctl(&smbd.conf, &sync_refs);

    // Two members, each a host of its own (a network namespace with its
    // own smbd and dfsrd on the default ports), replicating [data]: a file
    // written with smbclient on FS1 arrives on FS2.
    let lab = Lab::new(95, 2);
    let lab_dir = TestDir::new("demo-members");
    let fs1 = Member::start(&lab, 0, "FS1", &lab_dir.0, &[]);
    let fs2 = Member::start(&lab, 1, "FS2", &lab_dir.0, &[]);
    configure(&[&fs1, &fs2], &[(0, 1), (1, 0)], &[], &lab_dir.0);
    let note = lab_dir.0.join("note.txt");
    fs::write(&note, "Written with smbclient on FS1.\n").unwrap();
    fs1.smbclient(&format!("mkdir reports; put {} reports\\note.txt", note.display()));
    let started = std::time::Instant::now();
    let arrived = loop {
        let on_fs2 = disk_tree(&fs2.share()).get("reports/note.txt").and_then(|e| e.0.clone());
        if on_fs2.as_deref() == Some(&b"Written with smbclient on FS1.\n"[..]) {
            break format!("arrived on FS2 after {:.1} s", started.elapsed().as_secs_f64());
        }
        if started.elapsed().as_secs() > 60 {
            break "did NOT arrive within 60 s".to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let fs2_status = fs2.status();

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
the same install into [nomodule] (vfs objects = dfsr streams_depot_missing):
  {refused}

namespace {ns} (table: {ctl} -s {conf} namespace list); smbd's referral for
{ns}\\docs to a client at 127.0.0.1 (same-site target first):
{resolved}

after `rpcclient -c 'dfsadd …\\docs 10.7.7.7 added-by-netdfs'` through Samba's
NetDfs server (rpcd_classic), the table says:
{listed}

the replication engine, `{ctl} simulate --members 3 --ops 300 --seed 1`
(delays, drops, reordering, partitions, crash-restarts):
{sim}

dfsrd serves MS-FRS2 (FrsTransport) over sealed DCE/RPC on port {rpc_port}
(`dfsr:rpc port`). It serves a folder seeded from {tree}:
  {seeded}
pulled just now into {pulled} with
  {ctl} -s {conf} {sync}
  {synced}
see README.md, section MS-FRS2 wire.

two members replicating [data], each in its own network namespace:
  FS1 {a1} (netns {n1}), FS2 {a2} (netns {n2}); group Sales, folder Docs,
  configured with `{ctl} -s {c1} replication ...` and imported on FS2
  reports\\note.txt, put with smbclient on FS1: {arrived}
  try: ip netns exec {n2} smbclient //{a2}/data -U {USER}%{PASSWORD} -c 'ls reports\\*'
       ip netns exec {n1} smbclient //{a1}/data -U {USER}%{PASSWORD} -c 'put /etc/hostname h.txt'
       {ctl} -s {c2} replication status
FS2's status now:
{fs2_status}

Ctrl-C to stop.",
        pid = smbd.pid(),
        a1 = fs1.addr,
        a2 = fs2.addr,
        n1 = fs1.ns,
        n2 = fs2.ns,
        c1 = fs1.smbd.conf.display(),
        c2 = fs2.smbd.conf.display(),
        fs2_status = fs2_status.trim_end(),
        dpid = dfsrd.pid(),
        share = share.display(),
        staged = staged.display(),
        ok = if ls.status.success() { "ok" } else { "FAILED" },
        inst = if installed { "ok" } else { "FAILED" },
        refused = String::from_utf8_lossy(&refused.stderr).trim_end(),
        resolved = String::from_utf8_lossy(&resolved.stdout).trim_end(),
        listed = String::from_utf8_lossy(&listed.stdout).trim_end(),
        sim = String::from_utf8_lossy(&sim.stdout).trim_end(),
        ns = r"\\127.0.0.1\ns",
        tree = tree.display(),
        seeded = String::from_utf8_lossy(if seeded.status.success() { &seeded.stdout } else { &seeded.stderr }).trim_end(),
        pulled = pulled.display(),
        sync = sync_args.iter().map(|a| if a.contains('\\') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" "),
        synced = String::from_utf8_lossy(if synced.status.success() { &synced.stdout } else { &synced.stderr }).trim_end(),
    );
    let sig = samba_dfsr::ffi::signals::wait_for_interrupt();
    println!("\nsignal {sig}: stopping dfsrd and smbd, removing {}", smbd.dir.0.display());
}
