//! The member: dfsrd's child that keeps this server's replicated folders
//! in step with its partners. Each round it reads the replication
//! configuration (so an edit takes effect without a restart), pulls every
//! folder of every enabled inbound connection from its partner
//! ([`super::pull`], authenticated at packet privacy with the account of
//! `dfsr:partner credentials`), places what the installer stored into the
//! share through the meet in this process ([`super::place`]), and writes
//! its report ([`super::status`]). A session that fails is tried again
//! after 1 s, doubling up to 60 s; the reason is in the report and the log.
//!
//! Runs in a Samba-initialised process (forked from dfsrd after
//! `reinit_after_fork`), one thread: the meet changes the process's
//! current directory per share.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::replication::{Group, ReplicationConfig};
use crate::engine::ids::Guid;
use crate::engine::session::SyncConfig;
use crate::net::rpc_client::RpcClient;
use crate::store::config_store::ConfigStore;
use crate::store::placed::PlacedStore;
use crate::store::{Database, StagingArea};
use crate::wire::dcerpc::{AuthLevel, AuthType};

use super::credentials::{self, Credentials};
use super::place::{FolderPlacer, InProcessMeet, PlaceReport};
use super::pre_existing::{self, PreExisting};
use super::pull::{FolderPull, KeepLocal, PullConfig, PullError};
use super::scan::{Revert, Scan, Scope};
use crate::store::journal::Journal;
use super::vfs_reader::VfsReader;
use super::status::{unix_now, FolderProgress, MemberStatus, SessionStatus, STATUS_FILE_NAME};

/// What dfsrd tells the member (from smb.conf).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<state directory>/dfsr`.
    pub dir: PathBuf,
    /// Which member this server is (`dfsr:member name`, else the NetBIOS name).
    pub member: String,
    /// `dfsr:partner credentials`.
    pub credentials: Option<PathBuf>,
    /// smb.conf's `workgroup`: the domain of an account file without one.
    pub workgroup: String,
    /// Time between rounds (`dfsr:poll interval`, seconds).
    pub poll_interval: Duration,
    /// Time between scans of each folder for local changes (`dfsr:scan interval`).
    pub scan_interval: Duration,
    /// Whether each folder is scanned whole when the member starts
    /// (`dfsr:scan at start`): what changed outside smbd while dfsrd was
    /// down is found then, not only at the first interval.
    pub scan_at_start: bool,
}

/// The longest wait before a failed session is tried again.
pub const MAX_RETRY_SECS: u64 = 60;
/// How long one folder's pull may take before it is given up (and tried
/// again in the next round, from where it stopped).
pub const PULL_TIMEOUT: Duration = Duration::from_secs(3600);

/// One inbound connection's session between rounds.
struct Session {
    status: SessionStatus,
    /// When to connect again (back-off after a failure).
    next: Instant,
    /// The open connection, kept across rounds.
    link: Option<Link>,
}

/// An open session with one partner: the bound connection and a pull per
/// folder both hold, kept across rounds so that the partner's answer to
/// the CHANGE_NOTIFY AsyncPoll each folder leaves waiting (§3.3.4.5)
/// starts the next sync at once, with no reconnect.
struct Link {
    client: RpcClient,
    /// What it was made for; a configuration that differs makes a new one.
    made_for: LinkKey,
    pulls: Vec<FolderPull>,
    /// A non-primary folder's first syncs: files set aside in PreExisting
    /// stand in for downloads (dropped once nothing is left there).
    keeps: HashMap<Guid, PreExisting>,
    /// The folders in sync at the end of the last round.
    in_sync: std::collections::HashSet<Guid>,
    /// The last answer of any call (a silent partner is given up).
    last_answer: Instant,
    /// The session's counters when the link was made.
    base: (u64, u64, u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkKey {
    address: String,
    user: String,
    folders: Vec<Guid>,
}

/// How long an open link may go without any answer. The partner answers
/// a waiting CHANGE_NOTIFY within 5 minutes even with nothing new
/// (ResponderConfig::notify_timeout_ms), so silence beyond this is a dead
/// connection or partner.
const LINK_SILENCE: Duration = Duration::from_secs(360);

/// The first delay before busy files are looked at again.
const BUSY_RETRY: Duration = Duration::from_millis(500);

/// How often the member looks for recorded changes and answers between
/// rounds.
const WAKE_CHECK: Duration = Duration::from_millis(20);

/// How long one round pulls from one partner before placing what arrived.
const PULL_SLICE: Duration = Duration::from_secs(1);

/// One folder's placer and its running totals.
struct FolderState {
    placer: FolderPlacer,
    progress: FolderProgress,
    /// A read-only membership originates nothing: it is not scanned.
    read_only: bool,
    next_scan: Instant,
    /// The delay of the next look at files that were busy, if any were.
    busy_retry: Option<Duration>,
    /// Those files (share-relative) and when to look at them again.
    busy_paths: Vec<String>,
    busy_at: Option<Instant>,
    /// The recorded changes not yet taken up.
    capture: Burst,
    /// Nothing taken from the journal since the member started: what it
    /// holds was recorded while the member was not running.
    replay: bool,
}

/// Recorded changes come in bursts (a client's create, writes and close;
/// an editor's temporary, renames and delete): the folder is scanned once
/// the journal has been quiet for [`QUIET`], or [`MAX_WAIT`] after the
/// first, so a burst becomes one scan and its end state, and the scan's
/// read does not meet the client's own opens.
#[derive(Debug, Default)]
struct Burst {
    /// The journal's count when last looked at, and since when it is so.
    last: Option<(usize, Instant)>,
    /// When the first change of the burst was seen.
    first: Option<Instant>,
}

const QUIET: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(2);

impl Burst {
    /// Whether `pending` recorded changes are to be taken up now.
    fn ready(&mut self, pending: usize) -> bool {
        if pending == 0 {
            *self = Burst::default();
            return false;
        }
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        match self.last {
            Some((n, since)) if n == pending => now.duration_since(since) >= QUIET || now.duration_since(first) >= MAX_WAIT,
            _ => {
                self.last = Some((pending, now));
                now.duration_since(first) >= MAX_WAIT
            }
        }
    }
}

/// Runs until the process is killed; returns only when the member cannot
/// work at all (its databases do not open): dfsrd restarts it.
pub fn run(settings: &Settings) -> Result<(), String> {
    std::fs::create_dir_all(&settings.dir).map_err(|e| format!("{}: {e}", settings.dir.display()))?;
    let db_path = settings.dir.join(crate::store::FILE_NAME);
    let mut db = Database::open(&db_path).map_err(|e| e.to_string())?;
    let staging = StagingArea::new(settings.dir.join(crate::store::staging_area::DIR_NAME));
    std::fs::create_dir_all(staging.dir()).map_err(|e| format!("{}: {e}", staging.dir().display()))?;
    let mut placed = PlacedStore::open(&settings.dir.join(crate::store::placed::FILE_NAME)).map_err(|e| e.to_string())?;
    let config_store = ConfigStore::open(&settings.dir.join(crate::store::config_store::FILE_NAME)).map_err(|e| e.to_string())?;
    let status_path = settings.dir.join(STATUS_FILE_NAME);
    let mut sessions: HashMap<Guid, Session> = HashMap::new();
    let mut folders: HashMap<(Guid, Guid), FolderState> = HashMap::new();
    let mut meet = InProcessMeet::default();
    // Client changes recorded by the dfsr module in smbd (store::journal).
    let journal_path = settings.dir.join(crate::store::journal::FILE_NAME);
    let mut journal = match Journal::open(&journal_path) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::error!("member: no change capture (changes are found by the scan only): {e}");
            None
        }
    };
    let mut last_problem: Option<String> = None;
    tracing::info!(member = settings.member.as_str(), "member: started");
    loop {
        let round = Instant::now();
        let mut problem = None;
        let config = match config_store.load() {
            Ok(c) => c,
            Err(e) => {
                problem = Some(e.to_string());
                ReplicationConfig::default()
            }
        };
        refresh_folders(&config, settings, &mut db, &placed, &mut folders);
        if let Some(j) = journal.as_mut() {
            watch_shares(j, &folders);
        }
        let creds = match credentials::load(settings.credentials.as_deref()) {
            Ok(c) => Some(c),
            Err(e) => {
                problem.get_or_insert(e.to_string());
                None
            }
        };
        let live: Vec<Guid> = inbound(&config, &settings.member).map(|(_, c, _)| c.id).collect();
        sessions.retain(|id, _| live.contains(id));
        if creds.is_none() {
            sessions.values_mut().for_each(|s| s.link = None);
        }
        if let Some(creds) = &creds {
            for (g, conn, partner) in inbound(&config, &settings.member) {
                if !conn.enabled {
                    // A disabled connection keeps no session open.
                    if let Some(s) = sessions.get_mut(&conn.id) {
                        s.link = None;
                    }
                    continue;
                }
                let s = sessions.entry(conn.id).or_insert_with(|| Session {
                    status: SessionStatus {
                        group: g.id,
                        connection: conn.id,
                        partner: partner.name.clone(),
                        address: partner.address.to_string(),
                        state: "connecting".into(),
                        ..Default::default()
                    },
                    next: Instant::now(),
                    link: None,
                });
                s.status.address = partner.address.to_string();
                if s.link.is_none() && Instant::now() < s.next {
                    s.status.retry_in = s.next.saturating_duration_since(Instant::now()).as_secs();
                    continue;
                }
                let shared: Vec<Guid> = g
                    .memberships
                    .iter()
                    // A read-only partner is nobody's upstream.
                    .filter(|m| m.member == conn.to && g.membership(&m.folder, &conn.from).is_some_and(|p| !p.read_only))
                    // Only folders we hold (loaded: a non-primary's content set aside).
                    .filter(|m| folders.contains_key(&(g.id, m.folder)))
                    .map(|m| m.folder)
                    .collect();
                if shared.is_empty() {
                    // Nothing to pull (the partner holds no folder of ours,
                    // or only read-only ones): not a failure.
                    s.link = None;
                    s.status.state = "idle: the partner is upstream of no folder here".into();
                    s.status.reason = None;
                    s.next = Instant::now() + settings.poll_interval;
                    continue;
                }
                let key = LinkKey { address: partner.address.to_string(), user: creds.user.clone(), folders: shared.clone() };
                if s.link.as_ref().is_some_and(|l| l.made_for != key) {
                    tracing::info!(partner = partner.name.as_str(), "member: the configuration of the session with {} changed; connecting again", partner.name);
                    s.link = None;
                }
                let result = match s.link.take() {
                    Some(l) => Ok(l),
                    None => open_link(settings, creds, g, conn.id, &partner.address, key, &folders, &db, &staging, &mut s.status),
                }
                .and_then(|mut link| {
                    let in_sync = step_link(settings, g, &mut link, &mut db, &staging, &mut placed, &mut folders, &mut meet, &mut s.status)?;
                    Ok((link, in_sync))
                });
                match result {
                    Ok((link, in_sync)) => {
                        s.link = Some(link);
                        if in_sync {
                            if s.status.failures > 0 || s.status.state != "in sync" {
                                tracing::info!(partner = partner.name.as_str(), "member: in sync with {}", partner.name);
                            }
                            s.status.state = "in sync".into();
                            s.status.last_in_sync = Some(unix_now());
                        }
                        s.status.reason = None;
                        s.status.failures = 0;
                    }
                    Err(why) => {
                        s.status.connected_since = None;
                        // What the failed pull stored is placed all the same.
                        for folder in &shared {
                            if let Some(f) = folders.get_mut(&(g.id, *folder)) {
                                if let Err(e) = f.placer.resync(&db) {
                                    tracing::error!(share = f.placer.share.as_str(), "member: {e}");
                                }
                            }
                        }
                        s.status.failures += 1;
                        let delay = (1u64 << s.status.failures.min(6).saturating_sub(1)).min(MAX_RETRY_SECS);
                        tracing::warn!(
                            partner = partner.name.as_str(),
                            address = %partner.address,
                            failures = s.status.failures,
                            "member: session with {} failed: {why}; next try in {delay} s",
                            partner.name
                        );
                        s.status.state = "failed".into();
                        s.status.reason = Some(why);
                        s.next = Instant::now() + Duration::from_secs(delay);
                    }
                }
                s.status.retry_in = s.next.saturating_duration_since(Instant::now()).as_secs();
            }
        }
        // What a pull stored but could not place yet (open files, a
        // restart) is tried every round, with or without a session.
        for f in folders.values_mut() {
            place(f, &db, &staging, &mut placed, &mut meet);
        }
        // Local changes: the whole folder at start (dfsr:scan at start)
        // and every dfsr:scan interval; the paths smbd recorded once the
        // journal is quiet; busy files again with back-off. Undone on a
        // read-only membership. The journal's changes are taken off once
        // what they announced is committed.
        for f in folders.values_mut() {
            let share = f.placer.share.clone();
            let pending_len = journal.as_ref().and_then(|j| j.pending_len(&share).ok()).unwrap_or(0);
            let ready = f.capture.ready(pending_len);
            let now = Instant::now();
            let due = now >= f.next_scan;
            let retry = f.busy_at.is_some_and(|t| now >= t);
            if pending_len == 0 {
                f.replay = false;
            }
            if !(ready || due || retry) {
                continue;
            }
            let taken = if ready { journal.as_ref().and_then(|j| j.pending(&share).ok()) } else { None };
            let scope = match &taken {
                _ if due => None,
                Some(t) if t.dropped > 0 => {
                    tracing::warn!(share = share.as_str(), dropped = t.dropped, "member: the change journal of [{share}] overflowed; scanning the whole folder");
                    None
                }
                t => {
                    let recorded = t.iter().flat_map(|t| t.changes.iter()).flat_map(|c| std::iter::once(c.path.as_str()).chain(c.to.as_deref()));
                    Scope::of(recorded.chain(f.busy_paths.iter().map(String::as_str)))
                }
            };
            let busy = scan(f, &mut db, &staging, &mut placed, &mut meet, scope.as_ref());
            if let Some(t) = &taken {
                f.capture = Burst::default();
                f.progress.captured += t.depth();
                f.progress.last_capture = Some(unix_now());
                if f.replay {
                    tracing::info!(share = share.as_str(), changes = t.depth(), "member: journal replayed: {} changes to [{share}] recorded while the member was not running", t.depth());
                    f.replay = false;
                }
                if let Some(j) = journal.as_mut() {
                    if let Err(e) = j.consume(&share, t) {
                        tracing::warn!(share = share.as_str(), "member: {e}");
                    }
                }
            }
            if due {
                f.next_scan = Instant::now() + settings.scan_interval;
            }
            // A file still open for writing is looked at again soon,
            // backing off to the scan interval.
            if busy.is_empty() {
                f.busy_retry = None;
                f.busy_at = None;
            } else {
                let d = f.busy_retry.map_or(BUSY_RETRY, |d| (d * 2).min(settings.scan_interval));
                f.busy_retry = Some(d);
                f.busy_at = Some(Instant::now() + d);
            }
            f.busy_paths = busy;
        }
        for f in folders.values_mut() {
            f.progress.journal_depth = journal.as_ref().and_then(|j| j.pending(&f.placer.share).ok()).map_or(0, |p| p.depth());
        }
        if problem != last_problem {
            if let Some(p) = &problem {
                tracing::error!(member = settings.member.as_str(), "member: not replicating: {p}");
            }
            last_problem = problem.clone();
        }
        let mut report = MemberStatus {
            pid: std::process::id(),
            member: settings.member.clone(),
            updated: unix_now(),
            problem,
            sessions: sessions.values().map(|s| s.status.clone()).collect(),
            folders: folders.values().map(|f| f.progress.clone()).collect(),
        };
        report.sessions.sort_by(|a, b| a.partner.cmp(&b.partner));
        if let Err(e) = report.write(&status_path) {
            tracing::warn!(path = %status_path.display(), "member: cannot write the status report: {e}");
        }
        // Until the next round, woken early by a recorded change or a
        // partner's answer (a change notification).
        let until = round + settings.poll_interval.min(Duration::from_secs(1)).max(Duration::from_millis(100));
        loop {
            std::thread::sleep(WAKE_CHECK);
            let recorded = journal.as_ref().is_some_and(|j| {
                folders.values_mut().any(|f| {
                    let n = j.pending_len(&f.placer.share).unwrap_or(0);
                    f.capture.ready(n) || f.busy_at.is_some_and(|t| Instant::now() >= t)
                })
            });
            let answered = sessions.values().any(|s| s.link.as_ref().is_some_and(|l| l.client.readable()));
            if recorded || answered || Instant::now() >= until {
                break;
            }
        }
    }
}

/// The inbound connections of member `me`: (group, connection, partner).
fn inbound<'a>(
    config: &'a ReplicationConfig,
    me: &'a str,
) -> impl Iterator<Item = (&'a Group, &'a crate::config::replication::Connection, &'a crate::config::replication::Member)> + 'a {
    config.groups.iter().flat_map(move |g| {
        let mine = g.member(me).ok().map(|m| m.id);
        g.connections
            .iter()
            .filter(move |c| Some(c.to) == mine)
            .filter_map(move |c| g.member_by_id(&c.from).map(|p| (g, c, p)))
    })
}

/// Keeps one placer per local membership (a new membership is compared
/// whole at once; a removed one is dropped).
fn refresh_folders(
    config: &ReplicationConfig,
    settings: &Settings,
    db: &mut Database,
    placed: &PlacedStore,
    folders: &mut HashMap<(Guid, Guid), FolderState>,
) {
    let wanted: Vec<(Guid, Guid, String, bool, bool)> = config
        .local_memberships(&settings.member)
        .map(|(g, m)| (g.id, m.folder, m.share.clone(), m.read_only, m.primary))
        .collect();
    folders.retain(|k, f| wanted.iter().any(|(g, fo, s, _, _)| (*g, *fo) == *k && *s == f.placer.share));
    for (g, f, share, read_only, primary) in wanted {
        if let Some(state) = folders.get_mut(&(g, f)) {
            state.read_only = read_only;
            continue;
        }
        // A folder of ours is served from the start, empty or not: its
        // (empty) vector makes it known to the listener.
        let known = db.folder_vector(&g, &f).and_then(|v| match v {
            Some(_) => Ok(()),
            None => db.transaction(|tx| tx.set_known_vector(&g, &f, &crate::engine::version_vector::VersionVector::new())),
        });
        if let Err(e) = known {
            tracing::error!(share = share.as_str(), folder = %f, "member: cannot record folder {f}: {e}");
            continue;
        }
        let root = crate::ffi::meet_vfs::share_path(&share);
        // A member child killed mid-install left its temporaries.
        if let Some(root) = &root {
            crate::meet::install::clean_installing_of_dead(&share, std::path::Path::new(root));
        }
        match FolderPlacer::load(db, placed, g, f, &share) {
            Ok(placer) => {
                tracing::info!(share = share.as_str(), folder = %f, pending = placer.pending(), "member: replicating folder {f} in [{share}]");
                let mut progress = FolderProgress { group: g, folder: f, share: share.clone(), ..Default::default() };
                // A non-primary member's first sync: what the share holds
                // waits in PreExisting, and the primary's content wins.
                let fresh = placer.placed().is_empty() && db.folder_uids(&f).map(|u| u.len() <= 1).unwrap_or(false);
                if !primary && fresh {
                    if let Some(root) = &root {
                        match pre_existing::set_aside(&share, std::path::Path::new(root)) {
                            Ok(0) => {}
                            Ok(n) => {
                                tracing::info!(share = share.as_str(), "member: initial sync of [{share}]: {n} pre-existing files and directories moved to {}", pre_existing::DIR);
                                progress.pre_existing = n;
                            }
                            Err(e) => {
                                tracing::error!(share = share.as_str(), "member: initial sync of [{share}]: cannot move the pre-existing content aside: {e}");
                                progress.last_error = Some(e);
                                continue;
                            }
                        }
                    }
                }
                let next_scan = if settings.scan_at_start { Instant::now() } else { Instant::now() + settings.scan_interval };
                folders.insert(
                    (g, f),
                    FolderState {
                        placer,
                        progress,
                        read_only,
                        next_scan,
                        busy_retry: None,
                        busy_paths: Vec::new(),
                        busy_at: None,
                        capture: Burst::default(),
                        replay: true,
                    },
                );
            }
            Err(e) => tracing::error!(share = share.as_str(), folder = %f, "member: cannot load what is placed: {e}"),
        }
    }
}

/// The journal watches exactly the shares of the folders held here.
fn watch_shares(journal: &mut Journal, folders: &HashMap<(Guid, Guid), FolderState>) {
    let shares: Vec<String> = folders.values().map(|f| f.placer.share.to_lowercase()).collect();
    for old in journal.watched() {
        if !shares.contains(&old) {
            if let Err(e) = journal.unwatch(&old) {
                tracing::warn!(share = old.as_str(), "member: {e}");
            }
        }
    }
    for share in &shares {
        if let Err(e) = journal.watch(share) {
            tracing::warn!(share = share.as_str(), "member: {e}");
        }
    }
}

/// Places what is pending in one folder and adds it to its totals.
fn place(f: &mut FolderState, db: &Database, staging: &StagingArea, placed: &mut PlacedStore, meet: &mut InProcessMeet) {
    if f.placer.pending() == 0 {
        return;
    }
    // One share for the whole round, not one per install.
    let _open = crate::meet::install::KeepSharesOpen::new();
    let r: PlaceReport = match f.placer.run(db, staging, placed, meet) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(share = f.placer.share.as_str(), "member: placing: {e}");
            f.progress.last_error = Some(e.to_string());
            return;
        }
    };
    let p = &mut f.progress;
    p.installed += r.installed;
    p.moved += r.moved;
    p.removed += r.removed;
    p.conflicts += r.conflicts;
    p.retries += r.deferred;
    p.pending = f.placer.pending() as u64;
    if r.last_error.is_some() {
        p.last_error = r.last_error;
    }
    if r.installed + r.moved + r.removed + r.deferred + r.failed > 0 {
        tracing::info!(
            share = f.placer.share.as_str(),
            installed = r.installed,
            moved = r.moved,
            removed = r.removed,
            deferred = r.deferred,
            failed = r.failed,
            pending = p.pending,
            "member: placed in [{}]",
            f.placer.share
        );
    }
}

/// Scans one folder's share (or only `scope`'s paths) for local changes
/// and commits them. Returns the files that were busy (open for writing:
/// staged later).
fn scan(
    f: &mut FolderState,
    db: &mut Database,
    staging: &StagingArea,
    placed: &mut PlacedStore,
    meet: &mut InProcessMeet,
    scope: Option<&Scope>,
) -> Vec<String> {
    let share = f.placer.share.clone();
    let Some(root) = crate::ffi::meet_vfs::share_path(&share) else {
        f.progress.last_error = Some(format!("[{share}] is not in smb.conf"));
        return Vec::new();
    };
    let mut reader = match VfsReader::open(&share) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(share = share.as_str(), "member: cannot scan: {}", e.reason);
            f.progress.last_error = Some(e.reason);
            return Vec::new();
        }
    };
    let started = Instant::now();
    let what = match scope {
        None => "scanned".to_string(),
        Some(s) => format!("looked at {} recorded paths of", s.len()),
    };
    let s = Scan { group: f.placer.group, folder: f.placer.folder, root: std::path::Path::new(&root), staging, revert: f.read_only, scope };
    let skip = f.placer.pending_uids();
    let result = s.run(db, f.placer.placed(), &skip, &mut reader, &mut || crate::meet::nttime(std::time::SystemTime::now()));
    drop(reader);
    match result {
        Ok((report, changes)) => {
            if let Err(e) = placed.apply(&changes) {
                // The versions are committed; the next scan finds the
                // files equal to them and writes the records again.
                tracing::error!(share = share.as_str(), "member: recording the scan: {e}");
                f.progress.last_error = Some(e.to_string());
            }
            f.placer.record(&changes);
            undo(f, &report.reverts, meet);
            f.progress.local_changes += report.changes();
            f.progress.reverted += report.reverts.len() as u64;
            f.progress.last_scan = Some(unix_now());
            if let Some(e) = &report.last_error {
                f.progress.last_error = Some(e.clone());
            }
            let level_info = report.changes() > 0 || report.busy > 0 || report.failed > 0;
            if level_info {
                tracing::info!(
                    share = share.as_str(),
                    files = report.files,
                    created = report.created,
                    modified = report.modified,
                    moved = report.moved,
                    deleted = report.deleted,
                    busy = report.busy,
                    failed = report.failed,
                    ms = started.elapsed().as_millis() as u64,
                    "member: {} [{share}]: {} local changes",
                    what,
                    report.changes()
                );
            } else {
                tracing::debug!(share = share.as_str(), files = report.files, "member: {what} [{share}]: no change");
            }
            report.busy_paths
        }
        Err(e) => {
            tracing::error!(share = share.as_str(), "member: scanning [{share}]: {e}");
            f.progress.last_error = Some(e.to_string());
            Vec::new()
        }
    }
}

/// Undoes a read-only member's local changes: moves back, removes what
/// was created (children first; files kept in ConflictAndDeleted), and
/// has the placer put the held versions back.
fn undo(f: &mut FolderState, reverts: &[Revert], meet: &mut InProcessMeet) {
    use super::place::Meet;
    let share = f.placer.share.clone();
    for r in reverts {
        if let Revert::MoveBack { from, uid } = r {
            let Some(to) = f.placer.path_of(uid) else { continue };
            match meet.move_path(&share, from, &to) {
                Ok(()) => tracing::info!(share = share.as_str(), "member: read-only: moved {from} back to {to}"),
                Err(e) => tracing::warn!(share = share.as_str(), "member: read-only: moving {from} back: {}", e.reason),
            }
        }
    }
    for r in reverts.iter().rev() {
        if let Revert::Remove { path } = r {
            match meet.remove(&share, path, "local-change-on-read-only-member") {
                Ok(()) => tracing::info!(share = share.as_str(), "member: read-only: removed {path}, created locally"),
                Err(e) => tracing::warn!(share = share.as_str(), "member: read-only: removing {path}: {}", e.reason),
            }
        }
    }
    for r in reverts {
        if let Revert::Reinstall { uid, keep_local } = r {
            f.placer.reinstall(*uid, *keep_local);
        }
    }
}

/// Connects to the partner, binds FrsTransport at packet privacy with
/// the partner account, and prepares a pull of each shared folder.
#[allow(clippy::too_many_arguments)]
fn open_link(
    settings: &Settings,
    creds: &Credentials,
    g: &Group,
    connection: Guid,
    address: &crate::config::replication::Address,
    made_for: LinkKey,
    folders: &HashMap<(Guid, Guid), FolderState>,
    db: &Database,
    staging: &StagingArea,
    status: &mut SessionStatus,
) -> Result<Link, String> {
    let domain = if creds.domain.is_empty() { settings.workgroup.as_str() } else { creds.domain.as_str() };
    let sec = crate::ffi::gensec::Gensec::client(
        None,
        &creds.user,
        domain,
        &creds.password,
        &address.host,
        AuthType::SPNEGO,
        AuthLevel::PRIVACY,
    )
    .map_err(|e| format!("starting the login as {domain}\\{}: {e}", creds.user))?;
    let client = RpcClient::connect(&address.host, address.port, Some(Box::new(sec)), AuthLevel::PRIVACY, Duration::from_secs(30))
        .map_err(|e| format!("as {domain}\\{}: {e}", creds.user))?;
    let mut pulls = Vec::new();
    let mut keeps = HashMap::new();
    for folder in &made_for.folders {
        let cfg = PullConfig {
            replica_set: g.id,
            connection_id: connection,
            folder: *folder,
            sync: SyncConfig::default(),
            buffer_size: crate::wire::frstrans::CONFIG_TRANSPORT_MAX_BUFFER_SIZE,
            timeout: PULL_TIMEOUT,
        };
        pulls.push(FolderPull::new(db, staging, &cfg).map_err(|e| format!("folder {:?}: {e}", g.folder_name(folder)))?);
        let share = folders.get(&(g.id, *folder)).map(|f| f.placer.share.clone());
        let root = share.as_deref().and_then(crate::ffi::meet_vfs::share_path);
        if let Some(k) = share.as_deref().zip(root.as_deref()).and_then(|(s, r)| PreExisting::of(s, std::path::Path::new(r))) {
            keeps.insert(*folder, k);
        }
    }
    tracing::info!(partner = %address, folders = pulls.len(), "member: connected to {address}");
    status.connected_since = Some(unix_now());
    Ok(Link {
        client,
        made_for,
        pulls,
        keeps,
        in_sync: Default::default(),
        last_answer: Instant::now(),
        base: (status.updates_received, status.files_downloaded, status.bytes_downloaded),
    })
}

/// One round of an open link: pulls for up to [`PULL_SLICE`] (or until
/// every folder is in sync), then places what arrived. Returns whether
/// every folder is in sync (only its CHANGE_NOTIFY poll waiting).
#[allow(clippy::too_many_arguments)]
fn step_link(
    settings: &Settings,
    g: &Group,
    link: &mut Link,
    db: &mut Database,
    staging: &StagingArea,
    placed: &mut PlacedStore,
    folders: &mut HashMap<(Guid, Guid), FolderState>,
    meet: &mut InProcessMeet,
    status: &mut SessionStatus,
) -> Result<bool, String> {
    let deadline = Instant::now() + PULL_SLICE;
    let named = |e: PullError, folder: &Guid| format!("folder {:?}: {e}", g.folder_name(folder));
    let in_sync = loop {
        for p in &mut link.pulls {
            let keep = link.keeps.get_mut(&p.folder()).map(|k| k as &mut dyn KeepLocal);
            p.pump(&mut link.client, db, staging, keep).map_err(|e| named(e, &p.folder()))?;
        }
        let in_sync = link.pulls.iter().all(|p| p.in_sync());
        let left = deadline.saturating_duration_since(Instant::now());
        // In sync: only a quick look for CHANGE_NOTIFY answers.
        let wait = if in_sync {
            Duration::from_millis(1)
        } else {
            link.pulls.iter().map(|p| p.wait_hint()).min().unwrap_or(left).min(left)
        };
        let done = link.client.wait(wait).map_err(|e| e.to_string())?;
        if !done.is_empty() {
            link.last_answer = Instant::now();
        }
        for (id, completion) in done {
            if let Some(p) = link.pulls.iter_mut().find(|p| p.owns(id)) {
                let keeping = link.keeps.contains_key(&p.folder());
                p.deliver(&mut link.client, db, id, completion, keeping).map_err(|e| named(e, &p.folder()))?;
            }
        }
        for p in &mut link.pulls {
            p.tick(db).map_err(|e| named(e, &p.folder()))?;
        }
        if in_sync || left.is_zero() {
            break in_sync;
        }
    };
    if link.last_answer.elapsed() > LINK_SILENCE {
        return Err(format!("{}: no answer for {} s", link.client.peer(), LINK_SILENCE.as_secs()));
    }
    let (b_updates, b_files, b_bytes) = link.base;
    status.notifications = link.pulls.iter().map(|p| p.report().notifications).sum();
    status.updates_received = b_updates + link.pulls.iter().map(|p| p.report().updates_received).sum::<u64>();
    status.files_downloaded = b_files + link.pulls.iter().map(|p| p.report().files_downloaded).sum::<u64>();
    status.bytes_downloaded = b_bytes + link.pulls.iter().map(|p| p.report().bytes_downloaded).sum::<u64>();
    let arrived = link.pulls.iter().any(|p| !p.report().touched.is_empty());
    if !in_sync || arrived {
        // Shown before the placing, which may take longer than the pull.
        let installed: u64 = link.pulls.iter().map(|p| p.report().installed).sum();
        let syncing = link
            .pulls
            .iter()
            .find(|p| !p.in_sync() || !p.report().touched.is_empty())
            .map(|p| g.folder_name(&p.folder()).to_string());
        status.state = format!("syncing {:?}: {installed} updates installed so far", syncing.unwrap_or_default());
        let _ = super::status::update_session(&settings.dir.join(STATUS_FILE_NAME), status);
    }
    status.backlog.clear();
    for p in &mut link.pulls {
        let folder = p.folder();
        let (touched, lost) = p.take_touched();
        let root = folders.get(&(g.id, folder)).and_then(|f| crate::ffi::meet_vfs::share_path(&f.placer.share));
        // A sync is over: PreExisting loses its empty directories, and is
        // no longer offered once it is gone.
        let synced = p.in_sync() && link.in_sync.insert(folder);
        if !p.in_sync() {
            link.in_sync.remove(&folder);
        }
        if synced && link.keeps.contains_key(&folder) {
            if let Some(r) = &root {
                pre_existing::prune(std::path::Path::new(r));
                if !std::path::Path::new(r).join(pre_existing::DIR).is_dir() {
                    link.keeps.remove(&folder);
                }
            }
        }
        if let Some(f) = folders.get_mut(&(g.id, folder)) {
            f.progress.kept += p.take_kept();
            if link.keeps.contains_key(&folder) || f.progress.pre_existing > 0 {
                if let Some(r) = &root {
                    let left = pre_existing::count(&std::path::Path::new(r).join(pre_existing::DIR));
                    f.progress.pre_existing = left.saturating_sub(1);
                }
            }
            if !touched.is_empty() || !lost.is_empty() {
                tracing::info!(
                    folder = %folder,
                    updates = touched.len(),
                    "member: pulled {} updates of folder {:?} from {}",
                    touched.len(),
                    g.folder_name(&folder),
                    link.client.peer()
                );
            }
            f.placer.touch(touched);
            for uid in lost {
                f.placer.lost(uid);
            }
            place(f, db, staging, placed, meet);
            status.backlog.push((folder, f.placer.pending() as u64));
        }
    }
    Ok(in_sync)
}
