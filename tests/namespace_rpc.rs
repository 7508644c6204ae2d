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
