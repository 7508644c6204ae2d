//! `dfsrctl namespace` end to end: the real binary against a temporary
//! smb.conf whose state directory (where the store lives) is a temp dir.
//! Builds a namespace with a link whose two targets sit in two sites,
//! checks referrals from each site, the raw response through Samba's
//! ndrdump, and that bad input fails cleanly without changing anything.
//! Standalone: no smbd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const DFSRCTL: &str = env!("CARGO_BIN_EXE_dfsrctl");
const NDRDUMP: &str = "/usr/bin/ndrdump";

struct Env {
    dir: PathBuf,
    conf: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("dfsr-nscli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conf = String::from("[global]\n");
        for (param, sub) in [
            ("state directory", "state"),
            ("lock directory", "lock"),
            ("cache directory", "cache"),
            ("pid directory", "pid"),
            ("private dir", "private"),
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            conf += &format!("\t{param} = {}\n", dir.join(sub).display());
        }
        let path = dir.join("smb.conf");
        std::fs::write(&path, conf).unwrap();
        Env { dir, conf: path }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(DFSRCTL).arg("-s").arg(&self.conf).arg("namespace").args(args).output().unwrap()
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and requires failure whose message contains `want`.
    fn fails(&self, args: &[&str], want: &str) {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err:?} does not mention {want:?}");
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn targets(resolved: &Value) -> Vec<String> {
    resolved["entries"].as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap().to_string()).collect()
}

fn build(env: &Env) {
    env.ok(&["root", "add", r"\\srv\Public", "--comment", "public data"]);
    env.ok(&["link", "add", r"\\srv\Public\Docs\Eng", "--ttl", "600"]);
    env.ok(&["site", "add", "Paris", "--subnet", "10.1.0.0/16", "--subnet", "2001:db8:1::/48"]);
    env.ok(&["site", "add", "Lyon", "--subnet", "10.2.0.0/16"]);
    env.ok(&["site", "cost", "Paris", "Lyon", "100"]);
    env.ok(&["target", "add", r"\\srv\Public\Docs\Eng", r"\\fs-paris\eng", "--site", "Paris"]);
    env.ok(&[
        "target",
        "add",
        r"\\srv\Public\Docs\Eng",
        r"\\fs-lyon\eng\sub",
        "--site",
        "Lyon",
        "--priority",
        "site-cost-normal:2",
    ]);
    env.ok(&["target", "add", r"\\srv\Public", r"\\srv\Public"]);
}

#[test]
fn build_list_resolve() {
    let env = Env::new("main");
    build(&env);
    assert!(env.dir.join("state").join("dfsr_namespace.tdb").exists());

    let list = env.json(&["list"]);
    let root = &list["roots"][0];
    assert_eq!(root["name"], "Public");
    assert_eq!(root["comment"], "public data");
    assert_eq!(root["ordering"], "lowest-cost");
    let link = &root["links"][0];
    assert_eq!(link["path"], r"Docs\Eng");
    assert_eq!(link["ttl"], 600);
    assert_eq!(link["targets"][1]["target"], r"\\fs-lyon\eng\sub");
    assert_eq!(link["targets"][1]["priority"]["rank"], 2);
    assert_eq!(link["targets"][1]["site"], "Lyon");
    assert_eq!(list["sites"][0]["name"], "Paris");
    assert_eq!(list["sites"][0]["subnets"][1], "2001:db8:1::/48");
    assert_eq!(list["site_links"][0]["cost"], 100);

    // Each client gets its own site's target first.
    let path = r"\\srv\Public\Docs\Eng\spec.txt";
    let paris = env.json(&["resolve", path, "--client-ip", "10.1.2.3"]);
    assert_eq!(paris["client_site"], "Paris");
    assert_eq!(targets(&paris), vec![r"\fs-paris\eng", r"\fs-lyon\eng\sub"]);
    assert_eq!(paris["entries"][0]["path"], r"\srv\Public\Docs\Eng");
    assert_eq!(paris["entries"][0]["ttl"], 600);
    let lyon = env.json(&["resolve", path, "--client-ip", "10.2.9.9"]);
    assert_eq!(lyon["client_site"], "Lyon");
    assert_eq!(targets(&lyon), vec![r"\fs-lyon\eng\sub", r"\fs-paris\eng"]);
    let v6 = env.json(&["resolve", path, "--client-ip", "2001:db8:1::7", "--level", "3"]);
    assert_eq!(targets(&v6)[0], r"\fs-paris\eng");
    assert_eq!(v6["entries"][0]["version"], 3);

    // The readable form names the site and the order.
    let text = env.ok(&["resolve", path, "--client-ip", "10.2.9.9"]);
    assert!(text.contains("site Lyon"), "{text}");
    let first = text.find(r"\fs-lyon\eng\sub").unwrap();
    assert!(first < text.find(r"\fs-paris\eng").unwrap(), "{text}");

    // Raw bytes decode with Samba's own NDR parser.
    let raw = env.dir.join("referral.bin");
    env.ok(&["resolve", path, "--client-ip", "10.1.2.3", "--raw", raw.to_str().unwrap()]);
    assert!(Path::new(NDRDUMP).exists(), "ndrdump (samba-testsuite) is needed");
    let o = Command::new(NDRDUMP).args(["dfsblobs", "dfs_referral_resp", "struct"]).arg(&raw).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "ndrdump failed: {out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("nb_referrals             : 0x0002 (2)"), "{out}");
    assert!(out.contains(r"'\fs-paris\eng'"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");

    // Root referral: the root target.
    let r = env.json(&["resolve", r"\\srv\Public", "--client-ip", "10.1.2.3"]);
    assert_eq!(r["entries"][0]["server_type"], "root");
    assert_eq!(targets(&r), vec![r"\srv\Public"]);

    // A link taken offline as a whole refers nowhere; back online it does.
    env.ok(&["set", r"\\srv\Public\Docs\Eng", "--state", "offline"]);
    env.fails(&["resolve", path, "--client-ip", "10.1.2.3"], "no target available");
    env.ok(&["set", r"\\srv\Public\Docs\Eng", "--state", "online"]);
    assert_eq!(targets(&env.json(&["resolve", path, "--client-ip", "10.1.2.3"]))[0], r"\fs-paris\eng");
}

#[test]
fn bad_input_changes_nothing() {
    let env = Env::new("errors");
    build(&env);
    let before = env.json(&["list"]);
    let link = r"\\srv\Public\Docs\Eng";
    env.fails(&["target", "add", r"\\srv\Nope\x", r"\\a\b"], "unknown namespace root");
    env.fails(&["link", "add", r"\\srv\Nope\x"], "unknown namespace root");
    env.fails(&["target", "add", link, r"\\FS-PARIS\ENG"], "already exists");
    env.fails(&["target", "add", link, r"fs9\eng"], "bad UNC path");
    env.fails(&["target", "add", link, r"\\fs9"], "bad UNC path");
    env.fails(&["root", "add", r"srv\Other"], "bad UNC path");
    env.fails(&["target", "add", link, r"\\fs9\eng", "--priority", "global-high:32"], "rank 32 out of range");
    env.fails(&["target", "set", link, r"\\fs-paris\eng", "--priority", "global-high:32"], "rank 32 out of range");
    env.fails(&["target", "add", link, r"\\fs9\eng", "--priority", "best:1"], "unknown class");
    env.fails(&["root", "add", r"\\srv\public"], "already exists");
    env.fails(&["root", "add", r"\\srv\Public\Deeper"], "a namespace root is");
    env.fails(&["target", "remove", link, r"\\fs9\eng"], "unknown target");
    env.fails(&["site", "cost", "Paris", "Nowhere", "5"], "unknown site");
    env.fails(&["site", "add", "Rome", "--subnet", "10.1.0.0/16"], "already mapped");
    env.fails(&["site", "add", "Paris"], "already exists");
    env.fails(&["site", "remove", "Nowhere"], "unknown site");
    env.fails(&["set", link, "--ordering", "random"], "applies to a namespace root");
    env.fails(&["resolve", r"\\srv\Nope\x", "--client-ip", "10.1.2.3"], "no namespace");
    assert_eq!(env.json(&["list"]), before);

    // And good edits still go through afterwards.
    env.ok(&["target", "set", link, r"\\fs-paris\eng", "--state", "offline"]);
    let r = env.json(&["resolve", link, "--client-ip", "10.1.2.3"]);
    assert_eq!(targets(&r), vec![r"\fs-lyon\eng\sub"]);
    env.ok(&["set", r"\\srv\Public", "--ordering", "exclude-out-of-site", "--ttl", "42"]);
    env.ok(&["site", "remove", "Lyon"]);
    env.ok(&["link", "remove", link]);
    env.ok(&["root", "remove", r"\\srv\Public"]);
    let after = env.json(&["list"]);
    assert_eq!(after["roots"].as_array().unwrap().len(), 0);
    assert_eq!(after["sites"].as_array().unwrap().len(), 1);
    assert_eq!(after["site_links"].as_array().unwrap().len(), 0);
}

#[test]
fn missing_store_lists_empty() {
    let env = Env::new("empty");
    let list = env.json(&["list"]);
    assert_eq!(list["roots"].as_array().unwrap().len(), 0);
    // Reading does not create the store.
    assert!(!env.dir.join("state").join("dfsr_namespace.tdb").exists());
    assert!(env.ok(&["list"]).contains("(no namespaces)"));
}
