//! `dfsrctl simulate`: the deterministic replication simulation
//! (`samba_dfsr::sim`), for convergence testing by seed.

use clap::Args;
use samba_dfsr::sim::{self, Faults, SimConfig, StoreKind};
use std::path::PathBuf;

/// Arguments of `dfsrctl simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Members of the replication group.
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Local operations to generate.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// RNG seed: a run is a function of its arguments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// none, all, or a comma list of drop,delay,reorder,partition,crash.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Persist members in log files in this directory (default: in memory).
    #[arg(long)]
    store_dir: Option<PathBuf>,
}

/// Runs the simulation; an error (divergence included) makes the exit
/// status non-zero.
pub fn run(args: &SimulateArgs, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = SimConfig::new(args.members, args.ops, args.seed);
    cfg.faults = Faults::parse(&args.faults)?;
    if let Some(dir) = &args.store_dir {
        std::fs::create_dir_all(dir)?;
        cfg.store = StoreKind::Disk(dir.clone());
    }
    match sim::run(cfg) {
        Ok(s) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&s.to_json())?);
            } else {
                let st = &s.stats;
                println!("seed {} members {}: converged", s.seed, s.members);
                println!(
                    "  ops applied     {} ({} refused, {} cycles refused)",
                    st.ops_applied, st.ops_refused, st.cycles_refused
                );
                println!("  conflicts       {}", st.conflicts);
                println!("  name conflicts  {}", st.name_conflicts);
                println!(
                    "  deleted records {} (+{} parent deleted)",
                    st.deleted, st.parent_deleted
                );
                println!("  cycle breaks    {}", st.cycle_breaks);
                println!("  tombstones      {}", s.tombstones);
                println!("  crashes         {}", st.crashes);
                println!("  partitions      {}", st.partitions);
                println!("  messages        {} ({} lost)", st.messages, st.dropped);
                println!("  final tree size {}", s.final_tree_size);
                println!(
                    "  simulated time  {:.1} s in {} steps",
                    s.sim_ms as f64 / 1000.0,
                    s.steps
                );
                println!("  wall time       {:.3} s", s.wall.as_secs_f64());
            }
            Ok(())
        }
        Err(e) => {
            if json {
                let doc = serde_json::json!({"seed": args.seed, "error": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            Err(Box::new(e))
        }
    }
}
