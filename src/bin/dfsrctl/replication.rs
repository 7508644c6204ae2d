//! `dfsrctl replication`: the replication configuration
//! (`<state directory>/dfsr/replication.tdb`) — groups, folders, members,
//! connections, memberships — and what the running member reports of it.
//! Parses arguments, calls [`samba_dfsr::config::replication`] through the
//! store, prints; every refused edit says why and changes nothing.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use samba_dfsr::config::replication::{Address, Group, ReplicationConfig, ShareLookup};
use samba_dfsr::engine::ids::Guid;
use samba_dfsr::member::status::{MemberStatus, STATUS_FILE_NAME};
use samba_dfsr::samba::smbconf::{self, SmbConf};
use samba_dfsr::store::config_store::{ConfigStore, FILE_NAME};
use serde_json::{json, Value};

use crate::db::{parse_guid, CliResult};

#[derive(Subcommand)]
pub enum ReplicationCommand {
    /// Replication groups.
    Group {
        #[command(subcommand)]
        cmd: GroupCommand,
    },
    /// Replicated folders of a group.
    Folder {
        #[command(subcommand)]
        cmd: FolderCommand,
    },
    /// Member servers of a group.
    Member {
        #[command(subcommand)]
        cmd: MemberCommand,
    },
    /// Connections: the `--to` member pulls from the `--from` member.
    Connection {
        #[command(subcommand)]
        cmd: ConnectionCommand,
    },
    /// Which share holds a folder on a member.
    Membership {
        #[command(subcommand)]
        cmd: MembershipCommand,
    },
    /// Write a group, with every GUID, as a JSON document.
    Export { group: String, file: PathBuf },
    /// Add (or replace, same GUID) a group from another member's export.
    Import { file: PathBuf },
    /// The groups, or one group whole.
    List { group: Option<String> },
    /// Remove a group, folder, member, connection or membership.
    Remove {
        #[command(subcommand)]
        cmd: RemoveCommand,
    },
    /// This member's folders and its partner sessions, as dfsrd reports them.
    Status { group: Option<String>, folder: Option<String> },
    /// Updates the `--from` member holds that the `--to` member lacks.
    Backlog(BacklogArgs),
}

#[derive(Subcommand)]
pub enum GroupCommand {
    Add {
        name: String,
        /// The replica set GUID (default: a new one).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum FolderCommand {
    Add {
        group: String,
        name: String,
        /// The content set GUID (default: a new one).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MemberCommand {
    Add {
        group: String,
        member: String,
        /// Its dfsrd: HOST or HOST:PORT (default port 5722).
        #[arg(long)]
        address: String,
    },
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    Add {
        group: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Configure it without replicating yet.
        #[arg(long)]
        disabled: bool,
    },
    Set {
        group: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        enabled: YesNo,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

#[derive(Subcommand)]
pub enum MembershipCommand {
    Set {
        group: String,
        folder: String,
        member: String,
        /// The share (of that member's smb.conf) whose path holds the folder.
        #[arg(long)]
        share: String,
        /// Its content wins the initial sync.
        #[arg(long)]
        primary: bool,
        /// Never originates changes; local edits are reverted.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand)]
pub enum RemoveCommand {
    Group { group: String },
    Folder { group: String, folder: String },
    Member { group: String, member: String },
    Connection {
        group: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    Membership { group: String, folder: String, member: String },
}

#[derive(Args)]
pub struct BacklogArgs {
    group: String,
    folder: String,
    #[arg(long)]
    from: String,
    #[arg(long)]
    to: String,
}

/// `<state directory>/dfsr`, created when missing.
fn state_dir(configfile: &Path) -> CliResult<PathBuf> {
    let dir = smbconf::state_directory(configfile)?.join(samba_dfsr::store::DIR_NAME);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn open_store(configfile: &Path) -> CliResult<ConfigStore> {
    Ok(ConfigStore::open(&state_dir(configfile)?.join(FILE_NAME))?)
}

/// This server's shares, from smb.conf as Samba reads it.
struct Shares(SmbConf);

impl ShareLookup for Shares {
    fn share(&self, name: &str) -> Option<(String, Vec<String>)> {
        let s = self.0.shares.iter().find(|s| s.name.eq_ignore_ascii_case(name))?;
        let vfs = s.get("vfs objects").unwrap_or("").split([' ', ',', '\t']).filter(|m| !m.is_empty());
        Some((s.get("path").unwrap_or("").to_string(), vfs.map(str::to_string).collect()))
    }
}

/// Which member this server is: `dfsr:member name`, else the NetBIOS name.
fn local_member(conf: &SmbConf) -> CliResult<String> {
    let opts = samba_dfsr::config::Options::resolve(conf.global.pairs(), []);
    let netbios = smbconf::parameter(&conf.path, "netbios name")?;
    Ok(samba_dfsr::config::replication::local_member_name(opts.get("member name"), &netbios))
}

fn new_or(arg: &str, given: &Option<String>) -> CliResult<Guid> {
    match given {
        Some(g) => parse_guid(arg, g),
        None => Ok(samba_dfsr::random::new_guid()?),
    }
}

pub fn run(cmd: &ReplicationCommand, configfile: &Path, json: bool) -> CliResult {
    use ReplicationCommand as C;
    match cmd {
        C::Group { cmd: GroupCommand::Add { name, id } } => {
            let id = new_or("--id", id)?;
            open_store(configfile)?.update(|c| c.add_group(name, id).map(|_| ()))?;
            done(json, json!({"group": name, "id": id.to_string()}), &format!("replication group {name:?} added ({id})"))
        }
        C::Folder { cmd: FolderCommand::Add { group, name, id } } => {
            let id = new_or("--id", id)?;
            open_store(configfile)?.update(|c| c.add_folder(group, name, id).map(|_| ()))?;
            done(json, json!({"group": group, "folder": name, "id": id.to_string()}), &format!("folder {name:?} added to {group:?} ({id})"))
        }
        C::Member { cmd: MemberCommand::Add { group, member, address } } => {
            let address = Address::parse(address)?;
            let id = samba_dfsr::random::new_guid()?;
            open_store(configfile)?.update(|c| c.add_member(group, member, address.clone(), id).map(|_| ()))?;
            done(
                json,
                json!({"group": group, "member": member, "id": id.to_string(), "address": address.to_string()}),
                &format!("member {member:?} ({address}) added to {group:?}"),
            )
        }
        C::Connection { cmd: ConnectionCommand::Add { group, from, to, disabled } } => {
            let id = samba_dfsr::random::new_guid()?;
            open_store(configfile)?.update(|c| c.add_connection(group, from, to, !disabled, id).map(|_| ()))?;
            let state = if *disabled { "disabled" } else { "enabled" };
            done(json, json!({"group": group, "from": from, "to": to, "id": id.to_string(), "enabled": !disabled}),
                &format!("connection {from} -> {to} added to {group:?} ({state})"))
        }
        C::Connection { cmd: ConnectionCommand::Set { group, from, to, enabled } } => {
            let on = matches!(enabled, YesNo::Yes);
            open_store(configfile)?.update(|c| c.set_connection_enabled(group, from, to, on))?;
            done(json, json!({"group": group, "from": from, "to": to, "enabled": on}),
                &format!("connection {from} -> {to} of {group:?} {}", if on { "enabled" } else { "disabled" }))
        }
        C::Membership { cmd: MembershipCommand::Set { group, folder, member, share, primary, read_only } } => {
            let conf = SmbConf::load(configfile)?;
            let me = local_member(&conf)?;
            let shares = Shares(conf);
            open_store(configfile)?
                .update(|c| c.set_membership(group, folder, member, share, (*primary, *read_only), Some((&me, &shares))))?;
            done(
                json,
                json!({"group": group, "folder": folder, "member": member, "share": share, "primary": primary, "read_only": read_only}),
                &format!("{member} holds folder {folder:?} of {group:?} in [{share}]{}{}",
                    if *primary { ", primary" } else { "" }, if *read_only { ", read-only" } else { "" }),
            )
        }
        C::Export { group, file } => {
            let config = open_store(configfile)?.load()?;
            let doc = config.group(group)?.export_document();
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            write_atomically(file, text.as_bytes())?;
            done(json, json!({"group": group, "file": file}), &format!("{group:?} written to {}", file.display()))
        }
        C::Import { file } => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let group = Group::from_document(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let conf = SmbConf::load(configfile)?;
            let me = local_member(&conf)?;
            let shares = Shares(conf);
            let name = group.name.clone();
            open_store(configfile)?.update(|c| c.import_group(group, Some((&me, &shares))))?;
            done(json, json!({"group": name, "file": file}), &format!("{name:?} imported from {}", file.display()))
        }
        C::List { group } => list(&open_store(configfile)?.load()?, group.as_deref(), json),
        C::Remove { cmd } => {
            let mut store = open_store(configfile)?;
            let what = match cmd {
                RemoveCommand::Group { group } => {
                    store.update(|c| c.remove_group(group).map(|_| ()))?;
                    format!("replication group {group:?}")
                }
                RemoveCommand::Folder { group, folder } => {
                    store.update(|c| c.remove_folder(group, folder))?;
                    format!("folder {folder:?} of {group:?} (and its memberships)")
                }
                RemoveCommand::Member { group, member } => {
                    store.update(|c| c.remove_member(group, member))?;
                    format!("member {member:?} of {group:?} (and its connections and memberships)")
                }
                RemoveCommand::Connection { group, from, to } => {
                    store.update(|c| c.remove_connection(group, from, to))?;
                    format!("connection {from} -> {to} of {group:?}")
                }
                RemoveCommand::Membership { group, folder, member } => {
                    store.update(|c| c.remove_membership(group, folder, member))?;
                    format!("{member}'s membership of folder {folder:?} of {group:?}")
                }
            };
            done(json, json!({"removed": what}), &format!("removed {what}"))
        }
        C::Status { group, folder } => status(configfile, group.as_deref(), folder.as_deref(), json),
        C::Backlog(a) => backlog(configfile, a, json),
    }
}

fn done(json: bool, doc: Value, text: &str) -> CliResult {
    if json {
        println!("{doc}");
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Writes `file` whole or not at all (temporary beside it, then rename).
fn write_atomically(file: &Path, bytes: &[u8]) -> CliResult {
    let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", file.display())
    })?;
    Ok(())
}

fn list(config: &ReplicationConfig, group: Option<&str>, json: bool) -> CliResult {
    let groups: Vec<&Group> = match group {
        Some(name) => vec![config.group(name)?],
        None => config.groups.iter().collect(),
    };
    if json {
        println!("{}", json!({"groups": groups.iter().map(|g| g.to_json()).collect::<Vec<_>>()}));
        return Ok(());
    }
    if groups.is_empty() {
        println!("no replication groups");
    }
    for g in groups {
        println!("{} {}", g.name, g.id);
        if group.is_none() {
            continue;
        }
        for f in &g.folders {
            println!("  folder {} {}", f.name, f.id);
            for m in g.memberships.iter().filter(|m| m.folder == f.id) {
                let flags = [(m.primary, " primary"), (m.read_only, " read-only")];
                let flags: String = flags.iter().filter(|(on, _)| *on).map(|(_, t)| *t).collect();
                println!("    on {} in [{}]{flags}", g.member_name(&m.member), m.share);
            }
        }
        for m in &g.members {
            println!("  member {} {} at {}", m.name, m.id, m.address);
        }
        for c in &g.connections {
            let state = if c.enabled { "enabled" } else { "disabled" };
            println!("  connection {} -> {} {} {state}", g.member_name(&c.from), g.member_name(&c.to), c.id);
        }
    }
    Ok(())
}

/// The member's last report, or why there is none.
fn member_status(dir: &Path) -> Result<MemberStatus, String> {
    let path = dir.join(STATUS_FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => MemberStatus::parse(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("dfsrd's member has not reported yet (is dfsrd running?)".into()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn status(configfile: &Path, group: Option<&str>, folder: Option<&str>, json: bool) -> CliResult {
    let conf = SmbConf::load(configfile)?;
    let me = local_member(&conf)?;
    let dir = state_dir(configfile)?;
    let config = ConfigStore::open(&dir.join(FILE_NAME))?.load()?;
    if let Some(g) = group {
        let g = config.group(g)?;
        if let Some(f) = folder {
            g.folder(f)?;
        }
    }
    let report = member_status(&dir);
    let mut out = Vec::new();
    for (g, m) in config.local_memberships(&me) {
        if group.is_some_and(|n| !g.name.eq_ignore_ascii_case(n)) {
            continue;
        }
        let fname = g.folder_name(&m.folder);
        if folder.is_some_and(|n| !fname.eq_ignore_ascii_case(n)) {
            continue;
        }
        let folder_report = report.as_ref().ok().and_then(|r| r.folder(&g.id, &m.folder));
        let inbound: Vec<Value> = g
            .connections
            .iter()
            .filter(|c| c.to == m.member)
            .map(|c| {
                let session = report.as_ref().ok().and_then(|r| r.connection(&c.id));
                json!({
                    "from": g.member_name(&c.from),
                    "connection": c.id.to_string(),
                    "enabled": c.enabled,
                    "session": session.map(|s| s.json()),
                })
            })
            .collect();
        out.push(json!({
            "group": g.name, "folder": fname, "share": m.share,
            "primary": m.primary, "read_only": m.read_only,
            "progress": folder_report.map(|f| f.json()),
            "inbound": inbound,
        }));
    }
    let problem = report.as_ref().err().cloned();
    if json {
        println!("{}", json!({"member": me, "report": report.as_ref().ok().map(|r| r.header_json()), "problem": problem, "folders": out}));
        return Ok(());
    }
    println!("member {me}");
    match &report {
        Ok(r) => println!("  {}", r.header_text()),
        Err(why) => println!("  {why}"),
    }
    if out.is_empty() {
        println!("  holds no replicated folder");
    }
    for f in &out {
        let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
        println!("  {} / {} in [{}]{}{}", s("group"), s("folder"), s("share"),
            if f["primary"] == true { ", primary" } else { "" }, if f["read_only"] == true { ", read-only" } else { "" });
        if let Some(p) = f["progress"].as_object() {
            let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
            println!(
                "    {} installed, {} removed, {} kept without download, {} pre-existing moved aside, {} waiting to install, {} conflicts",
                n("installed"), n("removed"), n("kept"), n("pre_existing"), n("pending"), n("conflicts")
            );
            let scanned = p.get("last_scan").and_then(Value::as_u64).map_or("not yet".to_string(), ago);
            println!("    {} local changes found by scanning; last scan {scanned}", n("local_changes"));
            let captured = p.get("last_capture").and_then(Value::as_u64).map_or("none yet".to_string(), ago);
            println!("    {} client changes recorded by smbd taken up; last {captured}; {} waiting in the journal", n("captured"), n("journal_depth"));
            if let Some(e) = p.get("last_error").and_then(Value::as_str) {
                println!("    last error: {e}");
            }
        }
        for c in f["inbound"].as_array().into_iter().flatten() {
            let from = c["from"].as_str().unwrap_or("?");
            if c["enabled"] != true {
                println!("    from {from}: connection disabled");
                continue;
            }
            match c["session"].as_object() {
                None => println!("    from {from}: no session yet"),
                Some(s) => println!("    from {from}: {}", MemberStatus::session_text(s)),
            }
        }
    }
    Ok(())
}

fn backlog(configfile: &Path, a: &BacklogArgs, json: bool) -> CliResult {
    let dir = state_dir(configfile)?;
    let config = ConfigStore::open(&dir.join(FILE_NAME))?.load()?;
    let g = config.group(&a.group)?;
    let f = g.folder(&a.folder)?;
    let (from, to) = (g.member(&a.from)?, g.member(&a.to)?);
    let conn = g.connection(&a.from, &a.to)?;
    let report = member_status(&dir)?;
    let s = report
        .connection(&conn.id)
        .ok_or_else(|| format!("no session of connection {} -> {} has run on this member", from.name, to.name))?;
    let backlog = s.backlog(&f.id).ok_or_else(|| {
        format!("the {} -> {} session has not compared folder {:?} yet", from.name, to.name, f.name)
    })?;
    done(json, json!({"group": g.name, "folder": f.name, "from": from.name, "to": to.name, "backlog": backlog}),
        &format!("{backlog} updates of {:?} on {} not yet on {}", f.name, from.name, to.name))
}

/// "N s ago" for a Unix time.
fn ago(t: u64) -> String {
    format!("{} s ago", samba_dfsr::member::status::unix_now().saturating_sub(t))
}
