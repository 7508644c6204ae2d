//! `dfsrctl namespace`: edit and inspect the DFS namespace store
//! (`<state directory>/dfsr_namespace.tdb`) and compute referrals from it.
//!
//! Paths are given as Windows tools take them: `\\SERVER\ROOT[\PATH]`. The
//! server part is checked for form only: the store describes this server's
//! namespaces, whatever name or alias a client uses.

use std::error::Error;
use std::net::IpAddr;
use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use samba_dfsr::namespace::resolve::resolve;
use samba_dfsr::namespace::site::{SiteError, SiteMap};
use samba_dfsr::namespace::store::{Store, FILE_NAME};
use samba_dfsr::namespace::table::{Node, Table, Unc, MAX_PRIORITY_RANK};
use samba_dfsr::namespace::{OrderingMode, Priority, PriorityClass, SplitMix64, Target, TargetState};
use samba_dfsr::samba::smbconf;
use serde_json::{json, Value};

type CliResult<T = ()> = Result<T, Box<dyn Error>>;

/// Largest referral response, as smbd allows (MaxOutputResponse is 16-bit
/// in practice for SMB1, and Windows clients ask for at most this).
const MAX_OUTPUT: u32 = 65535;

#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// Namespace roots.
    Root {
        #[command(subcommand)]
        cmd: RootCommand,
    },
    /// Links (folders with targets) inside a namespace.
    Link {
        #[command(subcommand)]
        cmd: LinkCommand,
    },
    /// Root and link targets.
    Target {
        #[command(subcommand)]
        cmd: TargetCommand,
    },
    /// Change a root's or link's properties.
    Set(SetArgs),
    /// Sites: subnets and site-link costs.
    Site {
        #[command(subcommand)]
        cmd: SiteCommand,
    },
    /// Show every root, link, target and site.
    List,
    /// Compute the referral a client would get, without smbd.
    Resolve(ResolveArgs),
}

#[derive(Args)]
pub struct NodeArgs {
    /// Referral TTL in seconds.
    #[arg(long)]
    ttl: Option<u32>,
    /// Free-text comment.
    #[arg(long)]
    comment: Option<String>,
}

#[derive(Subcommand)]
pub enum RootCommand {
    /// Add a namespace root `\\SERVER\ROOT`.
    Add {
        path: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Remove a namespace root with all its links and targets.
    Remove { path: String },
}

#[derive(Subcommand)]
pub enum LinkCommand {
    /// Add a link `\\SERVER\ROOT\PATH`.
    Add {
        path: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Remove a link with its targets.
    Remove { path: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StateArg {
    Online,
    Offline,
}

impl From<StateArg> for TargetState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Online => TargetState::Online,
            StateArg::Offline => TargetState::Offline,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OrderingArg {
    LowestCost,
    Random,
    ExcludeOutOfSite,
}

impl From<OrderingArg> for OrderingMode {
    fn from(o: OrderingArg) -> Self {
        match o {
            OrderingArg::LowestCost => OrderingMode::LowestCost,
            OrderingArg::Random => OrderingMode::Random,
            OrderingArg::ExcludeOutOfSite => OrderingMode::ExcludeOutOfSite,
        }
    }
}

#[derive(Args)]
pub struct TargetProps {
    /// Target state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// CLASS:RANK, CLASS one of global-high, site-cost-high,
    /// site-cost-normal, site-cost-low, global-low; RANK 0..=31.
    #[arg(long)]
    priority: Option<String>,
    /// The target's site (default: from its address, if an IP). With
    /// `target set`, an empty SITE clears it.
    #[arg(long)]
    site: Option<String>,
}

#[derive(Subcommand)]
pub enum TargetCommand {
    /// Add a target `\\HOST\SHARE[\SUB]` to `\\SERVER\ROOT[\PATH]`.
    Add {
        path: String,
        target: String,
        #[command(flatten)]
        props: TargetProps,
    },
    /// Remove a target.
    Remove { path: String, target: String },
    /// Change a target's state, priority or site.
    Set {
        path: String,
        target: String,
        #[command(flatten)]
        props: TargetProps,
    },
}

#[derive(Args)]
pub struct SetArgs {
    /// `\\SERVER\ROOT` or `\\SERVER\ROOT\PATH`.
    path: String,
    /// Referral TTL in seconds.
    #[arg(long)]
    ttl: Option<u32>,
    /// Root or link state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Referral ordering of the namespace (roots only).
    #[arg(long, value_enum)]
    ordering: Option<OrderingArg>,
}

#[derive(Subcommand)]
pub enum SiteCommand {
    /// Add a site and/or map subnets to it.
    Add {
        site: String,
        /// CIDR prefix (a.b.c.d/n or x::y/n); repeatable.
        #[arg(long = "subnet")]
        subnets: Vec<String>,
    },
    /// Remove subnets from a site or, without --subnet, the whole site.
    Remove {
        site: String,
        #[arg(long = "subnet")]
        subnets: Vec<String>,
    },
    /// Set the cost of the site link between two sites (both directions).
    Cost { site_a: String, site_b: String, cost: u32 },
}

#[derive(Args)]
pub struct ResolveArgs {
    /// The request path, `\\SERVER\ROOT[\PATH…]`.
    path: String,
    /// The client's address (chooses its site).
    #[arg(long)]
    client_ip: IpAddr,
    /// Highest referral version the client accepts (1-4).
    #[arg(long, default_value_t = 4)]
    level: u16,
    /// Write the raw response bytes (as smbd would send them) to FILE.
    #[arg(long, value_name = "FILE")]
    raw: Option<PathBuf>,
}

/// Bad command-line input, reported before anything is touched.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    #[error("bad priority {0:?}: {1}")]
    BadPriority(String, String),
    #[error("{0}")]
    Usage(&'static str),
}

/// `\\SERVER\ROOT[\PATH]` → the table path `ROOT[\PATH]`, and how many
/// components follow the server.
fn ns_path(unc: &str) -> CliResult<(String, usize)> {
    let u = Unc::parse(unc)?;
    let rest = &u.components()[1..];
    Ok((rest.join("\\"), rest.len()))
}

fn root_path(unc: &str) -> CliResult<String> {
    match ns_path(unc)? {
        (p, 1) => Ok(p),
        _ => Err(InputError::BadPath(unc.into(), "a namespace root is \\\\SERVER\\ROOT").into()),
    }
}

fn link_path(unc: &str) -> CliResult<String> {
    match ns_path(unc)? {
        (p, n) if n >= 2 => Ok(p),
        _ => Err(InputError::BadPath(unc.into(), "a link is \\\\SERVER\\ROOT\\PATH").into()),
    }
}

fn parse_priority(s: &str) -> CliResult<Priority> {
    let bad = |why: String| InputError::BadPriority(s.into(), why);
    let (class, rank) = s.split_once(':').ok_or_else(|| bad("expected CLASS:RANK".into()))?;
    let norm: String = class.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
    let class = match norm.as_str() {
        "globalhigh" => PriorityClass::GlobalHigh,
        "sitecosthigh" => PriorityClass::SiteCostHigh,
        "sitecostnormal" => PriorityClass::SiteCostNormal,
        "sitecostlow" => PriorityClass::SiteCostLow,
        "globallow" => PriorityClass::GlobalLow,
        _ => return Err(bad(format!("unknown class {class:?}")).into()),
    };
    let rank: u32 = rank.trim().parse().map_err(|_| bad(format!("rank {rank:?} is not a number")))?;
    if rank > u32::from(MAX_PRIORITY_RANK) {
        return Err(bad(format!("rank {rank} out of range 0..={MAX_PRIORITY_RANK}")).into());
    }
    // In range, so the conversion and Priority::new cannot fail; keep the
    // typed errors anyway.
    Ok(Priority::new(class, u8::try_from(rank)?)?)
}

fn store_path(configfile: &Path) -> CliResult<PathBuf> {
    Ok(smbconf::state_directory(configfile)?.join(FILE_NAME))
}

/// One edit, in one store transaction: nothing is written if it fails.
/// Then the `msdfs:` placeholders in the root shares follow the table.
fn edit(configfile: &Path, f: impl FnOnce(&mut Table, &mut SiteMap) -> CliResult) -> CliResult {
    let mut store = Store::open(&store_path(configfile)?)?;
    let (before, _) = store.load()?;
    store.update(f)?;
    let (after, _) = store.load()?;
    drop(store);
    sync_placeholders(configfile, &before, &after)
}

/// Writes each link's `msdfs:` symlink under its root share's path (smbd's
/// path walk and NetDfs see links only through them) and removes those of
/// links that are gone. A path that holds anything but an `msdfs:` symlink
/// is never touched.
fn sync_placeholders(configfile: &Path, before: &Table, after: &Table) -> CliResult {
    use samba_dfsr::namespace::placeholder::placeholders;
    use samba_dfsr::samba::smbconf::SmbConf;
    let conf = SmbConf::load(configfile)?;
    let share_path = |root: &str| -> Option<PathBuf> {
        conf.shares.iter().find(|s| s.name.eq_ignore_ascii_case(root)).and_then(|s| s.get("path")).map(PathBuf::from)
    };
    let is_placeholder = |p: &Path| {
        fs::read_link(p).map(|t| t.to_string_lossy().starts_with("msdfs:")).unwrap_or(false)
    };
    let wanted = placeholders(after);
    for old in placeholders(before) {
        let still = wanted.iter().any(|w| w.root.eq_ignore_ascii_case(&old.root) && w.rel_path == old.rel_path);
        if let (false, Some(base)) = (still, share_path(&old.root)) {
            let p = old.rel_path.iter().fold(base, |acc, c| acc.join(c));
            if is_placeholder(&p) {
                fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
    }
    for w in wanted {
        let Some(base) = share_path(&w.root) else {
            eprintln!(
                "dfsrctl: warning: no share [{}] in {}: its links have no msdfs: placeholders (make it a share with msdfs root = yes)",
                w.root,
                configfile.display()
            );
            continue;
        };
        let p = w.rel_path.iter().fold(base, |acc, c| acc.join(c));
        if fs::symlink_metadata(&p).is_ok() {
            if !is_placeholder(&p) {
                return Err(format!("{}: exists and is not an msdfs: link; not replaced", p.display()).into());
            }
            if fs::read_link(&p).map(|t| t.to_string_lossy() == w.target).unwrap_or(false) {
                continue;
            }
            fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::os::unix::fs::symlink(&w.target, &p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

pub fn run(cmd: &NamespaceCommand, configfile: &Path, json: bool) -> Result<(), Box<dyn Error>> {
    match cmd {
        NamespaceCommand::Root { cmd } => match cmd {
            RootCommand::Add { path, node } => {
                let p = root_path(path)?;
                edit(configfile, |t, _| {
                    t.add_root(&p)?;
                    apply_node(t, &p, node)
                })
            }
            RootCommand::Remove { path } => {
                let p = root_path(path)?;
                edit(configfile, |t, _| Ok(t.remove_root(&p).map(drop)?))
            }
        },
        NamespaceCommand::Link { cmd } => match cmd {
            LinkCommand::Add { path, node } => {
                let p = link_path(path)?;
                edit(configfile, |t, _| {
                    t.add_link(&p)?;
                    apply_node(t, &p, node)
                })
            }
            LinkCommand::Remove { path } => {
                let p = link_path(path)?;
                edit(configfile, |t, _| Ok(t.remove_link(&p).map(drop)?))
            }
        },
        NamespaceCommand::Target { cmd } => target(cmd, configfile),
        NamespaceCommand::Set(args) => set(args, configfile),
        NamespaceCommand::Site { cmd } => site(cmd, configfile),
        NamespaceCommand::List => list(configfile, json),
        NamespaceCommand::Resolve(args) => resolve_cmd(args, configfile, json),
    }
}

fn apply_node(t: &mut Table, p: &str, node: &NodeArgs) -> CliResult {
    if let Some(ttl) = node.ttl {
        t.set_ttl(p, ttl)?;
    }
    if let Some(c) = &node.comment {
        t.set_comment(p, c)?;
    }
    Ok(())
}

fn target(cmd: &TargetCommand, configfile: &Path) -> CliResult {
    match cmd {
        TargetCommand::Add { path, target, props } => {
            let (p, _) = ns_path(path)?;
            let mut tg = Target::new(target)?;
            if let Some(s) = props.state {
                tg.state = s.into();
            }
            if let Some(pr) = &props.priority {
                tg.priority = parse_priority(pr)?;
            }
            tg.site = props.site.clone().filter(|s| !s.is_empty());
            edit(configfile, |t, _| Ok(t.add_target(&p, tg)?))
        }
        TargetCommand::Remove { path, target } => {
            let (p, _) = ns_path(path)?;
            edit(configfile, |t, _| Ok(t.remove_target(&p, target).map(drop)?))
        }
        TargetCommand::Set { path, target, props } => {
            let (p, _) = ns_path(path)?;
            if props.state.is_none() && props.priority.is_none() && props.site.is_none() {
                return Err(InputError::Usage("target set: give --state, --priority or --site").into());
            }
            let priority = props.priority.as_deref().map(parse_priority).transpose()?;
            edit(configfile, |t, _| {
                if let Some(s) = props.state {
                    t.set_target_state(&p, target, s.into())?;
                }
                if let Some(pr) = priority {
                    t.set_target_priority(&p, target, pr)?;
                }
                if let Some(site) = &props.site {
                    t.set_target_site(&p, target, Some(site.as_str()).filter(|s| !s.is_empty()))?;
                }
                Ok(())
            })
        }
    }
}

fn set(args: &SetArgs, configfile: &Path) -> CliResult {
    let (p, depth) = ns_path(&args.path)?;
    if args.ttl.is_none() && args.state.is_none() && args.ordering.is_none() {
        return Err(InputError::Usage("namespace set: give --ttl, --state or --ordering").into());
    }
    if args.ordering.is_some() && depth != 1 {
        return Err(InputError::BadPath(args.path.clone(), "--ordering applies to a namespace root").into());
    }
    edit(configfile, |t, _| {
        if let Some(ttl) = args.ttl {
            t.set_ttl(&p, ttl)?;
        }
        if let Some(o) = args.ordering {
            t.set_ordering(&p, o.into())?;
        }
        if let Some(st) = args.state {
            t.set_node_state(&p, st.into())?;
        }
        Ok(())
    })
}

fn site(cmd: &SiteCommand, configfile: &Path) -> CliResult {
    match cmd {
        SiteCommand::Add { site, subnets } => edit(configfile, |_, m| {
            match m.add_site(site) {
                Ok(()) => {}
                // Adding subnets to an existing site is fine; re-adding a
                // bare site is not.
                Err(SiteError::DuplicateSite(_)) if !subnets.is_empty() => {}
                Err(e) => return Err(e.into()),
            }
            for s in subnets {
                m.add_subnet(s, site)?;
            }
            Ok(())
        }),
        SiteCommand::Remove { site, subnets } => edit(configfile, |_, m| {
            if m.site(site).is_none() {
                return Err(SiteError::UnknownSite(site.clone()).into());
            }
            if subnets.is_empty() {
                m.remove_site(site)?;
            }
            for s in subnets {
                m.remove_subnet(s, site)?;
            }
            Ok(())
        }),
        SiteCommand::Cost { site_a, site_b, cost } => edit(configfile, |_, m| {
            // Refuse typos rather than invent sites.
            for s in [site_a, site_b] {
                if m.site(s).is_none() {
                    return Err(SiteError::UnknownSite(s.clone()).into());
                }
            }
            Ok(m.set_link_cost(site_a, site_b, *cost)?)
        }),
    }
}

/// Reads the store without creating it (an absent store is empty).
fn load(configfile: &Path) -> CliResult<(PathBuf, Table, SiteMap)> {
    let path = store_path(configfile)?;
    let (t, m) = Store::open_read_only(&path)?.load()?;
    Ok((path, t, m))
}

fn state_str(s: TargetState) -> &'static str {
    match s {
        TargetState::Online => "online",
        TargetState::Offline => "offline",
    }
}

fn class_str(c: PriorityClass) -> &'static str {
    match c {
        PriorityClass::GlobalHigh => "global-high",
        PriorityClass::SiteCostHigh => "site-cost-high",
        PriorityClass::SiteCostNormal => "site-cost-normal",
        PriorityClass::SiteCostLow => "site-cost-low",
        PriorityClass::GlobalLow => "global-low",
    }
}

fn ordering_str(o: OrderingMode) -> &'static str {
    match o {
        OrderingMode::LowestCost => "lowest-cost",
        OrderingMode::Random => "random",
        OrderingMode::ExcludeOutOfSite => "exclude-out-of-site",
    }
}

fn node_json(n: &Node) -> Value {
    json!({
        "ttl": n.ttl,
        "comment": n.comment,
        "flags": n.flags.bits(),
        "targets": n.targets.iter().map(|t| json!({
            "target": t.unc.to_string(),
            "state": state_str(t.state),
            "priority": {"class": class_str(t.priority.class()), "rank": t.priority.rank()},
            "site": t.site,
        })).collect::<Vec<_>>(),
    })
}

fn list(configfile: &Path, json: bool) -> CliResult {
    let (path, table, sites) = load(configfile)?;
    if json {
        let roots: Vec<Value> = table
            .roots()
            .iter()
            .map(|r| {
                let mut v = node_json(&r.node);
                v["name"] = json!(r.name);
                v["ordering"] = json!(ordering_str(r.ordering));
                v["links"] = r
                    .links
                    .iter()
                    .map(|l| {
                        let mut lv = node_json(&l.node);
                        lv["path"] = json!(l.path_string());
                        lv["interlink"] = json!(l.interlink);
                        lv
                    })
                    .collect();
                v
            })
            .collect();
        let doc = json!({
            "store": path,
            "roots": roots,
            "sites": sites.sites().map(|s| json!({
                "name": s,
                "subnets": sites.subnets().filter(|(_, n)| *n == s).map(|(net, _)| net.to_string()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "site_links": sites.link_costs().map(|(a, b, c)| json!({"a": a, "b": b, "cost": c})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let print_node = |indent: &str, n: &Node| {
        for t in &n.targets {
            let mut extra = String::new();
            if !t.priority.is_default() {
                extra += &format!(" priority={}:{}", class_str(t.priority.class()), t.priority.rank());
            }
            if let Some(s) = &t.site {
                extra += &format!(" site={s}");
            }
            println!("{indent}-> {} {}{extra}", t.unc, state_str(t.state));
        }
    };
    if table.roots().is_empty() {
        println!("(no namespaces)");
    }
    for r in table.roots() {
        let comment = if r.node.comment.is_empty() { String::new() } else { format!(" \"{}\"", r.node.comment) };
        println!("{}  ttl={} ordering={}{comment}", r.name, r.node.ttl, ordering_str(r.ordering));
        print_node("    ", &r.node);
        for l in &r.links {
            let comment = if l.node.comment.is_empty() { String::new() } else { format!(" \"{}\"", l.node.comment) };
            println!("  {}\\{}  ttl={}{comment}", r.name, l.path_string(), l.node.ttl);
            print_node("      ", &l.node);
        }
    }
    for s in sites.sites() {
        let nets: Vec<String> = sites.subnets().filter(|(_, n)| *n == s).map(|(net, _)| net.to_string()).collect();
        println!("site {s}: {}", if nets.is_empty() { "(no subnets)".to_string() } else { nets.join(" ") });
    }
    for (a, b, c) in sites.link_costs() {
        println!("site link {a} - {b}: cost {c}");
    }
    Ok(())
}

fn resolve_cmd(args: &ResolveArgs, configfile: &Path, json: bool) -> CliResult {
    if json && args.raw.is_some() {
        return Err(InputError::Usage("resolve: --json and --raw do not go together").into());
    }
    let (_, table, sites) = load(configfile)?;
    // Only load sharing within a target set depends on this.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        ^ u64::from(std::process::id());
    let mut rng = SplitMix64::new(seed);
    let mut next = || rng.next_u64();
    let r = resolve(&table, &sites, &args.path, Some(args.client_ip), args.level, MAX_OUTPUT, &mut next)?;
    if let Some(file) = &args.raw {
        std::fs::write(file, &r.bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        if r.overflow {
            eprintln!("dfsrctl: the response was cut at {MAX_OUTPUT} bytes (buffer overflow)");
        }
        return Ok(());
    }
    if json {
        let mut v = r.to_json();
        v["client_site"] = json!(r.client_site);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let resp = &r.response;
    println!("client {} in site {}", args.client_ip, r.client_site.as_deref().unwrap_or("(none)"));
    println!(
        "{} referral V{} for {} (path consumed {} bytes), ttl {}",
        match resp.server_type {
            samba_dfsr::namespace::referral::ServerType::Root => "root",
            samba_dfsr::namespace::referral::ServerType::Link => "link",
        },
        resp.version.number(),
        resp.dfs_path,
        resp.path_consumed,
        resp.ttl
    );
    for (i, e) in resp.entries.iter().enumerate() {
        let boundary = if resp.entry_flags(i) != 0 { "  [new target set]" } else { "" };
        println!("  {}. {}{boundary}", i + 1, e.target);
    }
    if r.overflow {
        println!("(cut at {MAX_OUTPUT} bytes)");
    }
    Ok(())
}
