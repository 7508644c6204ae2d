//! `cargo bench --bench simulation`: operations per second of the
//! deterministic replication simulation (`sim`), 5 members, 5000
//! operations per seed (BENCH_SEEDS seeds, default 5), with no faults and
//! with every fault. Operations per second counts local operations
//! generated; each is replicated to every other member through the session
//! machines, so it also measures the engine's sync path. Not a test: it
//! prints.

use samba_dfsr::sim::{self, Faults, SimConfig};
use std::time::Instant;

fn main() {
    let seeds: u64 = std::env::var("BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let ops: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for (label, faults) in [("no faults", Faults::none()), ("all faults", Faults::all())] {
        let start = Instant::now();
        let mut total_ops = 0u64;
        let mut messages = 0u64;
        let mut steps = 0u64;
        for seed in 1..=seeds {
            let mut cfg = SimConfig::new(5, ops, seed);
            cfg.faults = faults;
            match sim::run(cfg) {
                Ok(s) => {
                    total_ops += s.stats.ops_applied;
                    messages += s.stats.messages;
                    steps += s.steps;
                }
                Err(e) => {
                    eprintln!("seed {seed} ({label}): {e}");
                    std::process::exit(1);
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "simulation, 5 members, {ops} ops x {seeds} seeds, {label}: {:.0} ops/s, {:.0} messages/s, {:.0} events/s ({secs:.2} s)",
            total_ops as f64 / secs,
            messages as f64 / secs,
            steps as f64 / secs
        );
    }
}
