//! `cargo bench --bench referral`: referrals per second and p99 latency
//! through smbd for a namespace of BENCH_LINKS links (default 10 000) × 4
//! targets served from our table by the dfsr module, beside stock Samba's
//! `msdfs:` symlinks for the same links, in the same smbd, same client
//! (smbtorture dfsr.namespace.referral-bench over SMB2), interleaved; prints the
//! ratio and the table's size per link. Not a test: it prints.

#[path = "../tests/support/mod.rs"]
mod support;

use samba_dfsr::namespace::store::{Store, FILE_NAME};
use std::process::Command;
use support::{Smbd, SmbdConfig};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (rate per second, p99 µs) from one smbtorture run.
fn run(smbd: &Smbd, prefix: &str, links: usize, requests: usize) -> (f64, f64) {
    let o = Command::new("smbtorture")
        .arg(smbd.unc("IPC$"))
        .args(["-p", &smbd.port.to_string(), "-U", &smbd.credentials()])
        .arg(format!("--option=torture:dfsr_bench_prefix={prefix}"))
        .arg(format!("--option=torture:dfsr_bench_links={links}"))
        .arg(format!("--option=torture:dfsr_bench_requests={requests}"))
        .arg(format!("--load-module={}", support::torture_so().display()))
        .arg("dfsr.namespace.referral-bench")
        .output()
        .expect("running smbtorture");
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.starts_with("dfsr-bench:")).unwrap_or_else(|| panic!("no result: {text}"));
    let num_before = |tag: &str| -> f64 {
        let i = line.find(tag).unwrap();
        line[..i].rsplit(' ').find(|w| !w.is_empty()).unwrap().parse().unwrap()
    };
    let rate: f64 = line.split(": ").nth(2).unwrap().split('/').next().unwrap().parse().unwrap();
    let p99 = {
        let i = line.find("p99 ").unwrap() + 4;
        line[i..].split(' ').next().unwrap().parse().unwrap()
    };
    let _ = num_before;
    (rate, p99)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let links = env_num("BENCH_LINKS", 10_000);
    let requests = env_num("BENCH_REQUESTS", 2000);
    let rounds = env_num("BENCH_ROUNDS", 3);
    let smbd = Smbd::start(SmbdConfig {
        log_level: "0".into(),
        global_extra: vec!["host msdfs = yes".into()],
        extra_shares: vec![
            ("ns".into(), vec!["msdfs root = yes".into()]),
            ("stock".into(), vec!["msdfs root = yes".into()]),
        ],
        ..Default::default()
    });
    // Ours: the table, written directly through the store.
    let file = smbd.dir.0.join("state").join(FILE_NAME);
    let mut store = Store::open(&file).expect("namespace store");
    let size = store
        .update(|t, _| -> Result<usize, Box<dyn std::error::Error>> {
            t.add_root("ns")?;
            for i in 0..links {
                let p = format!("ns\\link{i}");
                t.add_link(&p)?;
                for k in 0..4 {
                    t.add_target_unc(&p, &format!("\\\\fs{k}\\share{i}"))?;
                }
            }
            Ok(t.encode().len())
        })
        .expect("building the table");
    drop(store);
    // Stock: the same links as msdfs: symlinks.
    let stock = smbd.share_path("stock");
    for i in 0..links {
        let target = (0..4).map(|k| format!("fs{k}\\share{i}")).collect::<Vec<_>>().join(",");
        std::os::unix::fs::symlink(format!("msdfs:{target}"), stock.join(format!("link{i}"))).unwrap();
    }
    println!("referral bench: {links} links x 4 targets, {requests} requests per run, {rounds} rounds");
    println!("  table: {size} bytes encoded, {:.0} bytes per link", size as f64 / links as f64);
    let (mut ours, mut theirs, mut p_ours, mut p_theirs) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        for is_ours in order {
            let prefix = if is_ours { r"\127.0.0.1\ns\link" } else { r"\127.0.0.1\stock\link" };
            let (rate, p99) = run(&smbd, prefix, links, requests);
            println!("  {:5} {rate:10.0}/s  p99 {p99:8.0} us", if is_ours { "dfsr" } else { "stock" });
            if is_ours {
                ours.push(rate);
                p_ours.push(p99);
            } else {
                theirs.push(rate);
                p_theirs.push(p99);
            }
        }
    }
    let (o, t) = (median(ours), median(theirs));
    println!(
        "  median: dfsr {o:.0}/s (p99 {:.0} us), stock {t:.0}/s (p99 {:.0} us), ratio dfsr/stock {:.2} (goal >= 1.0)",
        median(p_ours),
        median(p_theirs),
        o / t
    );
}
