//! The deterministic replication simulation at scale (issue 6, item 7):
//! seeds × members × operations with every fault on must converge, and a
//! divergence must be detected and named.

use samba_dfsr::engine::ids::Uid;
use samba_dfsr::sim::{self, Faults, SimConfig, SimError, Simulation, StoreKind, FOLDER};

#[test]
fn ten_seeds_five_members_all_faults_converge() {
    let mut crashes = 0;
    let mut partitions = 0;
    let mut dropped = 0;
    for seed in 1..=10 {
        let cfg = SimConfig::new(5, 5000, seed);
        let s = match sim::run(cfg) {
            Ok(s) => s,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        assert!(s.stats.ops_applied >= 4000, "seed {seed}: {:?}", s.stats);
        assert!(s.stats.conflicts > 0, "seed {seed}: no conflicts");
        assert!(s.stats.name_conflicts > 0, "seed {seed}: no name conflicts");
        assert!(s.stats.crashes > 0, "seed {seed}: no crash");
        assert!(s.stats.cycle_breaks > 0, "seed {seed}: no cycle broken");
        crashes += s.stats.crashes;
        partitions += s.stats.partitions;
        dropped += s.stats.dropped;
    }
    assert!(crashes > 0, "no crash in ten seeds");
    assert!(partitions > 0, "no partition in ten seeds");
    assert!(dropped > 0, "no message lost in ten seeds");
}

#[test]
fn crash_restarts_reopen_an_on_disk_store() {
    let dir = std::env::temp_dir().join(format!("dfsr-sim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cfg = SimConfig::new(4, 1500, 99);
    cfg.store = StoreKind::Disk(dir.clone());
    cfg.crash_rate = 0.01;
    let s = sim::run(cfg);
    let _ = std::fs::remove_dir_all(&dir);
    let s = s.expect("converges");
    assert!(s.stats.crashes > 0);
}

#[test]
fn injected_divergence_names_the_path_and_members() {
    let mut cfg = SimConfig::new(3, 300, 5);
    cfg.faults = Faults::parse("delay,reorder").expect("faults");
    let mut sim = Simulation::new(cfg).expect("setup");
    sim.run_ops().expect("ops");
    sim.quiesce().expect("quiescence");
    sim.check().expect("converged before the corruption");
    // Corrupt one live file of member 1: a different content hash.
    let paths = sim.member(1).paths();
    let (path, (uid, _, _)) = paths
        .iter()
        .find(|(_, (_, _, dir))| !dir)
        .map(|(p, e)| (p.clone(), *e))
        .expect("a live file");
    let uid: Uid = uid;
    if let Some(n) = sim.member_mut(1).tree.get_mut(&uid) {
        n.hash[0] ^= 0xFF;
    }
    match sim.check() {
        Err(SimError::Divergence { path: p, a, b, .. }) => {
            assert_eq!(p, path);
            assert_eq!((a, b), (0, 1));
        }
        other => panic!("expected a divergence at {path}, got {other:?}"),
    }
    // A file missing on member 2 is named too.
    let mut sim2 = Simulation::new(SimConfig {
        faults: Faults::none(),
        ..SimConfig::new(3, 200, 6)
    })
    .expect("setup");
    sim2.run_ops().expect("ops");
    sim2.quiesce().expect("quiescence");
    let paths = sim2.member(2).paths();
    let (path, (uid, _, _)) = paths
        .iter()
        .find(|(_, (_, _, dir))| !dir)
        .map(|(p, e)| (p.clone(), *e))
        .expect("a live file");
    if let Some(n) = sim2.member_mut(2).tree.get_mut(&uid) {
        n.present = false;
    }
    let err = sim2.check().expect_err("divergence");
    assert!(err.to_string().contains(&path), "{err}");
    assert!(err.to_string().contains("member 2"), "{err}");
    assert_eq!(Uid::root_of(FOLDER).version, 1);
}

#[test]
fn cli_simulate_exits_zero_and_prints_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dfsrctl"))
        .args([
            "--json",
            "simulate",
            "--members",
            "3",
            "--ops",
            "500",
            "--seed",
            "4",
        ])
        .output()
        .expect("run dfsrctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["seed"], 4);
    assert!(v["ops_applied"].as_u64().unwrap_or(0) > 0);
}
