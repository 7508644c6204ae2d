//! `dfsrctl sync`: pull one replicated folder from a partner's dfsrd over
//! MS-FRS2 (authenticated, packet privacy), until in sync: updates into
//! the database, staged files into the staging area, each checked against
//! its hash. Progress goes to stderr; the report to stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use samba_dfsr::engine::session::SyncConfig;
use samba_dfsr::ffi::gensec::Gensec;
use samba_dfsr::store::{Database, StagingArea};
use samba_dfsr::wire::dcerpc::{AuthLevel, AuthType};
use samba_dfsr::member::pull::{pull_once, PullConfig, PullReport};
use samba_dfsr::net::rpc_client::RpcClient;

use crate::db::{db_path, parse_guid, staging_path, CliResult};

#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// The partner: HOST or HOST:PORT (default port 5722).
    #[arg(long)]
    partner: String,
    /// The replication group GUID.
    #[arg(long)]
    group: String,
    /// The replicated folder GUID.
    #[arg(long)]
    folder: String,
    /// Our connection GUID (default: a new one).
    #[arg(long)]
    connection: Option<String>,
    /// DOMAIN\user (or user; the domain is smb.conf's workgroup).
    #[arg(long)]
    user: String,
    /// The password; default: the DFSR_PASSWORD environment variable.
    #[arg(long)]
    password: Option<String>,
    /// ntlmssp or spnego.
    #[arg(long, default_value = "spnego")]
    auth: String,
    /// Updates asked per RequestUpdates (1-256).
    #[arg(long, default_value_t = 256)]
    credits: u32,
    /// Bytes asked per file transfer call (at most 262144).
    #[arg(long, default_value_t = 262_144)]
    buffer_size: u32,
    /// Downloads in flight at once (1-16).
    #[arg(long, default_value_t = 16)]
    downloads: usize,
    /// Limit TCP segments to this many bytes (TCP_MAXSEG), for packet
    /// captures: tshark decrypts one sealed PDU per frame, so with
    /// segments smaller than a fragment and `--downloads 1` every PDU of
    /// the session can be checked.
    #[arg(long)]
    tcp_mss: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The database (default: <state directory>/dfsr/dfsr.tdb).
    #[arg(long)]
    db: Option<PathBuf>,
    /// The staging area (default: <state directory>/dfsr/staging).
    #[arg(long)]
    staging: Option<PathBuf>,
}

pub fn run(a: &SyncArgs, configfile: &Path, json: bool) -> CliResult {
    let (host, port) = match a.partner.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_string(), p.parse::<u16>().map_err(|e| format!("--partner {p:?}: {e}"))?)
        }
        _ => (a.partner.clone(), 5722),
    };
    let (domain, user) = match a.user.split_once('\\') {
        Some((d, u)) => (d.to_string(), u.to_string()),
        None => {
            let conf = samba_dfsr::samba::smbconf::SmbConf::load(configfile)?;
            (conf.global.get("workgroup").unwrap_or("WORKGROUP").to_uppercase(), a.user.clone())
        }
    };
    let password = match &a.password {
        Some(p) => p.clone(),
        None => std::env::var("DFSR_PASSWORD").map_err(|_| "no --password and DFSR_PASSWORD is not set")?,
    };
    let auth_type = match a.auth.to_ascii_lowercase().as_str() {
        "ntlmssp" => AuthType::NTLMSSP,
        "spnego" => AuthType::SPNEGO,
        other => return Err(format!("--auth {other:?}: ntlmssp or spnego").into()),
    };
    let group = parse_guid("--group", &a.group)?;
    let folder = parse_guid("--folder", &a.folder)?;
    let connection_id = match &a.connection {
        Some(c) => parse_guid("--connection", c)?,
        None => samba_dfsr::random::new_guid()?,
    };
    if !(1..=16).contains(&a.downloads) {
        return Err(format!("--downloads {}: 1 to 16", a.downloads).into());
    }
    if !(1..=256).contains(&a.credits) {
        return Err(format!("--credits {}: 1 to 256", a.credits).into());
    }
    let db_file = db_path(&a.db, configfile)?;
    if let Some(dir) = db_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut db = Database::open(&db_file)?;
    let staging = StagingArea::new(staging_path(&a.staging, configfile)?);
    let sec = Gensec::client(Some(configfile), &user, &domain, &password, &host, auth_type, AuthLevel::PRIVACY)?;
    let mut client = RpcClient::connect_with_mss(
        &host,
        port,
        Some(Box::new(sec)),
        AuthLevel::PRIVACY,
        Duration::from_secs(30),
        a.tcp_mss,
    )?;
    eprintln!("dfsrctl: bound to {} (packet privacy); pulling folder {folder}", client.peer());
    let cfg = PullConfig {
        replica_set: group,
        connection_id,
        folder,
        sync: SyncConfig { max_credits: a.credits, max_concurrent_downloads: a.downloads, ..SyncConfig::default() },
        buffer_size: a.buffer_size,
        timeout: Duration::from_secs(a.timeout),
    };
    let mut last = std::time::Instant::now();
    let mut progress = |r: &PullReport| {
        if last.elapsed() >= Duration::from_secs(2) {
            last = std::time::Instant::now();
            eprintln!(
                "dfsrctl: {} updates received, {} stored, {} files ({} bytes) downloaded",
                r.updates_received, r.installed, r.files_downloaded, r.bytes_downloaded
            );
        }
    };
    let report = pull_once(&mut client, &mut db, &staging, &cfg, &mut progress)?;
    if json {
        println!("{}", report.json());
    } else {
        println!(
            "folder {folder} in sync with {}: {} updates in {} pages, {} stored, {} superseded, {} held, {} cancelled; {} files, {} bytes downloaded ({} RawGetFileData calls, largest piece {} bytes)",
            a.partner,
            report.updates_received,
            report.update_pages,
            report.installed,
            report.superseded,
            report.held,
            report.cancelled,
            report.files_downloaded,
            report.bytes_downloaded,
            report.raw_get_file_data_calls,
            report.largest_piece
        );
    }
    Ok(())
}
