//! dfsrctl as an admin runs it: against smb.conf files read by Samba's own
//! parser (testparm), JSON output, errors on stderr with a non-zero exit.

mod support;

use std::fs;
use std::process::{Command, Output};

fn dfsrctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfsrctl")).args(args).output().expect("running dfsrctl")
}

const CONF: &str = "[global]
\tserver role = standalone server
\tdfsr:rpc port = 5722
\tDFSR:Staging Quota = 4096
[data]
\tpath = /srv/data
\tvfs objects = dfsr acl_xattr
\tdfsr:staging quota = 100
[plain]
\tpath = /srv/plain
";

#[test]
fn config_prints_effective_options_per_share() {
    let dir = support::TestDir::new("dfsrctl");
    let conf = dir.0.join("smb.conf");
    fs::write(&conf, CONF).unwrap();
    let out = dfsrctl(&["-s", conf.to_str().unwrap(), "config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let data = text.split("[plain]").next().unwrap();
    assert!(data.contains("[data]"), "{text}");
    assert!(data.contains("dfsr:staging quota = 100\t# share"), "{text}");
    assert!(data.contains("dfsr:rpc port = 5722\t# global"), "{text}");
    assert!(!data.contains("4096"), "global value leaked over the share's: {text}");
    let plain = text.split("[plain]").nth(1).unwrap();
    assert!(plain.contains("4096\t# global"), "{text}");

    let out = dfsrctl(&["--configfile", conf.to_str().unwrap(), "--json", "config", "data"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shares = v["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0]["name"], "data");
    let opts = shares[0]["options"].as_array().unwrap();
    let quota = opts.iter().find(|o| o["name"] == "staging quota").unwrap();
    assert_eq!(quota["value"], "100");
    assert_eq!(quota["scope"], "share");
    assert_eq!(v["global"].as_array().unwrap().len(), 2);
}

#[test]
fn errors_name_the_file_and_exit_non_zero() {
    let out = dfsrctl(&["-s", "/nonexistent/smb.conf", "config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("dfsrctl: /nonexistent/smb.conf"), "{err}");
    assert!(out.stdout.is_empty());

    let dir = support::TestDir::new("dfsrctl");
    let conf = dir.0.join("smb.conf");
    fs::write(&conf, CONF).unwrap();
    let out = dfsrctl(&["-s", conf.to_str().unwrap(), "config", "nosuch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no share named [nosuch]"));
}

#[test]
fn version_is_printed() {
    let out = dfsrctl(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("dfsrctl {}", env!("CARGO_PKG_VERSION"))
    );
}
