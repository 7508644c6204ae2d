//! dfsrctl: the samba-dfsr admin CLI. Subcommands are grouped by area; later
//! areas (staged, meet, namespace, simulate, …) add their groups here.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use samba_dfsr::config::Options;
use samba_dfsr::samba::smbconf::{SmbConf, DEFAULT_CONFIG};
use std::path::PathBuf;

mod db;
mod meet;
mod namespace;
mod replication;
mod seed;
mod sync;
mod simulate;
mod staged;
mod xpress;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dfsrctl", version, about = "Administer DFS namespaces and DFS Replication on Samba")]
struct Cli {
    /// Samba configuration file, as for Samba's own tools.
    #[arg(short = 's', long = "configfile", global = true, default_value = DEFAULT_CONFIG)]
    configfile: PathBuf,
    /// Print data as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the effective dfsr:* options of each share ([global] values
    /// apply unless the share sets its own).
    Config {
        /// Only this share.
        share: Option<String>,
    },
    /// Staged files (MS-FRS2 §3.2.4.1.14): inspect, extract, create.
    Staged {
        #[command(subcommand)]
        cmd: staged::StagedCommand,
    },
    /// LZ77+Huffman (MS-XCA) streams.
    Xpress {
        #[command(subcommand)]
        cmd: xpress::XpressCommand,
    },
    /// DFS namespaces: roots, links, targets, sites, referrals.
    Namespace {
        #[command(subcommand)]
        cmd: namespace::NamespaceCommand,
    },
    /// The replication database: check, dump.
    Db {
        #[command(subcommand)]
        cmd: db::DbCommand,
    },
    /// Talk to the meet in the running dfsrd (IRPC name dfsr_meet).
    Meet {
        #[command(subcommand)]
        cmd: meet::MeetCommand,
    },
    /// Deterministic replication simulation (engine sessions, faults,
    /// crash-restarts); exits non-zero on divergence.
    Simulate(simulate::SimulateArgs),
    /// DFS Replication configuration: groups, folders, members,
    /// connections, memberships; export/import; the member's status.
    Replication {
        #[command(subcommand)]
        cmd: replication::ReplicationCommand,
    },
    /// Pull a replicated folder from a partner's dfsrd over MS-FRS2
    /// (packet privacy) until in sync.
    Sync(sync::SyncArgs),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Meet(#[from] samba_dfsr::ffi::meet_client::CallError),
    #[error(transparent)]
    SmbConf(#[from] samba_dfsr::samba::smbconf::SmbConfError),
    #[error("{0}")]
    Other(Box<dyn std::error::Error>),
    #[error("{path}: no share named [{share}]")]
    NoShare { path: PathBuf, share: String },
}

fn config(cli: &Cli, only: Option<&str>) -> Result<(), CliError> {
    let conf = SmbConf::load(&cli.configfile)?;
    let shares: Vec<_> = conf
        .shares
        .iter()
        .filter(|s| only.map_or(true, |o| s.name.eq_ignore_ascii_case(o)))
        .collect();
    if let Some(o) = only {
        if shares.is_empty() {
            return Err(CliError::NoShare { path: conf.path.clone(), share: o.into() });
        }
    }
    let resolved: Vec<(&str, Options)> = shares
        .iter()
        .map(|s| (s.name.as_str(), Options::resolve(conf.global.pairs(), s.pairs())))
        .collect();
    if cli.json {
        let global = Options::resolve(conf.global.pairs(), []);
        let opts = |o: &Options| {
            o.iter()
                .map(|v| serde_json::json!({"name": v.name, "value": v.value, "scope": v.scope.as_str()}))
                .collect::<Vec<_>>()
        };
        let doc = serde_json::json!({
            "configfile": conf.path,
            "global": opts(&global),
            "shares": resolved.iter().map(|(name, o)| serde_json::json!({
                "name": name, "options": opts(o)
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    for (name, o) in &resolved {
        println!("[{name}]");
        if o.is_empty() {
            println!("\t(no dfsr:* options)");
        }
        for v in o.iter() {
            println!("\tdfsr:{} = {}\t# {}", v.name, v.value, v.scope.as_str());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    samba_dfsr::ffi::signals::default_sigpipe();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Config { share } => config(&cli, share.as_deref()),
        Command::Staged { cmd } => staged::run(cmd, cli.json).map_err(CliError::Other),
        Command::Xpress { cmd } => xpress::run(cmd).map_err(CliError::Other),
        Command::Db { cmd } => db::run(cmd, &cli.configfile, cli.json).map_err(CliError::Other),
        Command::Meet { cmd } => meet::run(cmd, &cli.configfile, cli.json),
        Command::Namespace { cmd } => namespace::run(cmd, &cli.configfile, cli.json).map_err(CliError::Other),
        Command::Simulate(args) => simulate::run(args, cli.json).map_err(CliError::Other),
        Command::Replication { cmd } => replication::run(cmd, &cli.configfile, cli.json).map_err(CliError::Other),
        Command::Sync(args) => sync::run(args, &cli.configfile, cli.json).map_err(CliError::Other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dfsrctl: {e}");
            ExitCode::FAILURE
        }
    }
}
