//! Samba's NetDfs RPC server with our module in [global] is no worse than
//! stock: smbtorture rpc.dfs gives the same per-test outcomes against an
//! smbd with `vfs objects = dfsr` and one without, in the same run.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use support::{subunit_outcomes, Smbd, SmbdConfig};

fn rpc_dfs(smbd: &Smbd) -> BTreeMap<String, String> {
    let o = Command::new("smbtorture")
        .arg("ncacn_np:127.0.0.1")
        .arg(format!("--option=smb ports={}", smbd.port))
        .args(["-U", &smbd.credentials(), "--format=subunit", "rpc.dfs"])
        .output()
        .expect("running smbtorture rpc.dfs");
    let text = String::from_utf8_lossy(&o.stdout);
    let found: BTreeMap<String, String> = subunit_outcomes(&text).into_iter().collect();
    assert!(!found.is_empty(), "rpc.dfs reported nothing: {text}");
    found
}

#[test]
fn rpc_dfs_outcomes_match_stock_samba() {
    let shares = vec![("ns".to_string(), vec!["msdfs root = yes".to_string()])];
    let ours = Smbd::start(SmbdConfig {
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: shares.clone(),
        ..Default::default()
    });
    // The same, without the module anywhere (a later line wins).
    let stock = Smbd::start(SmbdConfig {
        global_extra: vec!["host msdfs = yes".into(), "vfs objects =".into()],
        extra_shares: shares,
        ..Default::default()
    });
    let (a, b) = (rpc_dfs(&ours), rpc_dfs(&stock));
    println!("with dfsr: {a:?}\nstock:     {b:?}");
    assert_eq!(a, b, "rpc.dfs outcomes differ from stock Samba");
    assert_eq!(a.get("netdfs.GetManagerVersion").map(String::as_str), Some("success"));
}

fn rpcclient(smbd: &Smbd, creds: &str, cmd: &str) -> String {
    let o = Command::new("rpcclient")
        .args(["127.0.0.1", "-p", &smbd.port.to_string(), "-U", creds, "-c", cmd])
        .output()
        .expect("running rpcclient");
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The targets of `link` in our table, as (target, state, priority class).
fn table_targets(smbd: &Smbd, link: &str) -> Option<Vec<(String, String, String)>> {
    let o = support::dfsrctl(&smbd.conf, &["namespace", "list", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let links = v["roots"][0]["links"].as_array().unwrap().clone();
    let l = links.into_iter().find(|l| l["path"] == link)?;
    Some(
        l["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                (s("target"), s("state"), t["priority"]["class"].as_str().unwrap_or_default().to_string())
            })
            .collect(),
    )
}

/// Samba's own NetDfs server (rpcd_classic) works through the module's
/// hooks: GetInfo reads our table, NetDfsAdd of a target and NetDfsRemove
/// write it (keeping what the table knows of the other targets), and
/// removing the last target removes the link, placeholder and all.
#[test]
fn netdfs_add_and_remove_through_rpcd_classic_change_our_table() {
    let smbd = Smbd::start(SmbdConfig {
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: vec![("ns".into(), vec!["msdfs root = yes".into(), "read only = no".into()])],
        ..Default::default()
    });
    let root = support::add_root_user(&smbd.conf);
    let c = &smbd.conf;
    let ok = |args: &[&str]| {
        let o = support::dfsrctl(c, args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ok(&["namespace", "root", "add", r"\\127.0.0.1\ns"]);
    ok(&["namespace", "link", "add", r"\\127.0.0.1\ns\top", "--ttl", "900"]);
    ok(&["namespace", "target", "add", r"\\127.0.0.1\ns\top", r"\\10.4.4.4\topshare", "--priority", "global-high:3"]);

    // rpcclient reads backslashes as escapes: each one is doubled.
    let link = r"\\\\DFSRTEST\\ns\\top";
    let info = rpcclient(&smbd, &root, &format!("dfsgetinfo {link} DFSRTEST ns 3"));
    assert!(info.contains("server: 10.4.4.4") && info.contains("share: topshare"), "{info}");

    let out = rpcclient(&smbd, &root, &format!("dfsadd {link} 10.5.5.5 two c"));
    assert!(!out.contains("WERR"), "dfsadd: {out}");
    assert_eq!(
        table_targets(&smbd, "top").unwrap(),
        vec![
            (r"\\10.4.4.4\topshare".into(), "online".into(), "global-high".into()),
            (r"\\10.5.5.5\two".into(), "online".into(), "site-cost-normal".into()),
        ]
    );
    let placeholder = smbd.share_path("ns").join("top");
    assert_eq!(std::fs::read_link(&placeholder).unwrap().to_string_lossy(), r"msdfs:10.4.4.4\topshare,10.5.5.5\two");
    let enumed = rpcclient(&smbd, &root, "dfsenum 3");
    assert!(enumed.contains("server: 10.5.5.5"), "{enumed}");

    let out = rpcclient(&smbd, &root, &format!("dfsremove {link} 10.4.4.4 topshare"));
    assert!(!out.contains("WERR"), "dfsremove: {out}");
    assert_eq!(
        table_targets(&smbd, "top").unwrap(),
        vec![(r"\\10.5.5.5\two".into(), "online".into(), "site-cost-normal".into())]
    );
    let out = rpcclient(&smbd, &root, &format!("dfsremove {link} 10.5.5.5 two"));
    assert!(!out.contains("WERR"), "dfsremove of the last target: {out}");
    assert_eq!(table_targets(&smbd, "top"), None, "the link stayed in the table");
    assert!(std::fs::symlink_metadata(&placeholder).is_err(), "the placeholder stayed");
    // Not an admin: refused by Samba, nothing changes.
    let out = rpcclient(&smbd, &smbd.credentials(), &format!("dfsadd {link} 10.6.6.6 six c"));
    assert!(out.contains("WERR_ACCESS_DENIED"), "{out}");
}
