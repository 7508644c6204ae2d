//! `make demo`: a private smbd on loopback with the dfsr module and a
//! sample share, until Ctrl-C. Uses the same harness as the tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use support::{Smbd, SmbdConfig, PASSWORD, USER};

fn main() {
    let smbd = Smbd::start(SmbdConfig::default());
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
    let port = smbd.port;
    let conf = smbd.conf.display();
    let log = smbd.log.display();
    println!(
        "samba-dfsr demo: Debian's smbd (pid {pid}) with the dfsr VFS module on 127.0.0.1:{port}

  shares   [data]  vfs objects = dfsr acl_xattr streams_xattr   ({share})
           [plain] vfs objects = acl_xattr streams_xattr
  connect  smbclient //127.0.0.1/data -p {port} -U {USER}%{PASSWORD}
  options  dfsrctl -s {conf} config
  log      {log}   (module lines: grep 'dfsr:' {log})

smbclient ls on [data] just now: {ok}; the module logged:
  {connect}

Ctrl-C to stop.",
        pid = smbd.pid(),
        share = share.display(),
        ok = if ls.status.success() { "ok" } else { "FAILED" },
    );
    let sig = samba_dfsr::ffi::signals::wait_for_interrupt();
    println!("\nsignal {sig}: stopping smbd and removing {}", smbd.dir.0.display());
}
