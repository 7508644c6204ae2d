//! What the `dfsr` VFS module does: it records each connect and disconnect
//! of a share with the share's `dfsr:*` options, and answers DFS referrals
//! for our namespaces (loaded in `[global]`, it runs on IPC$ where smbd
//! asks). Every other operation goes to the next module.

use crate::config::Options;
use crate::namespace::table::Table;
use crate::ffi::debug;
use crate::samba::ntstatus::NtStatus;
use crate::samba::tracing_bridge;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connections this process has made (smbd forks one process per client).
static CONNECTS: AtomicU64 = AtomicU64::new(0);

/// Called once per process from `samba_init_module`.
pub fn init(debug_class: i32) {
    debug::set_class(debug_class);
    tracing_bridge::install();
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "module loaded");
}

/// Who writes through a connection: an SMB client served by smbd, or the
/// meet in dfsrd installing replicated updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Meet,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Client => "client",
            Origin::Meet => "meet",
        }
    }
}

/// One share connection of smbd (or of the meet in dfsrd) to the module.
#[derive(Debug)]
pub struct Connection {
    pub service: String,
    pub path: String,
    pub user: String,
    pub options: Options,
    /// 1 for the first connection in this process.
    pub number: u64,
    pub origin: Origin,
}

impl Connection {
    /// Whether a change made through this connection is a local change to
    /// replicate. The meet's writes are replicated updates already: sending
    /// them back would loop (MS-FRS2 §3.3.4.6 installs never produce a new
    /// version on the installing member).
    pub fn captures_local_changes(&self) -> bool {
        self.origin == Origin::Client
    }
}

pub fn connect(service: String, path: String, user: String, options: Options, origin: Origin) -> Connection {
    let number = CONNECTS.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(
        share = service.as_str(),
        path = path.as_str(),
        user = user.as_str(),
        options = %options,
        connection = number,
        origin = origin.as_str(),
        "connect"
    );
    Connection { service, path, user, options, number, origin }
}

/// This process's journal (smbd forks a process per client: each opens
/// its own, on its first change), or when it was last looked for.
struct ProcessJournal {
    pid: u32,
    path: std::path::PathBuf,
    journal: Option<crate::store::journal::Journal>,
    looked: std::time::Instant,
}

thread_local! {
    /// smbd runs VFS calls on its main thread; a TDB handle is not Send.
    static JOURNAL: std::cell::RefCell<Option<ProcessJournal>> = const { std::cell::RefCell::new(None) };
}

/// How often a process without a journal looks for one again (dfsrd's
/// member makes it when it takes up its first folder).
const JOURNAL_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// A client's change through `conn` succeeded: recorded in the journal of
/// `state_dir` when the share is a replicated folder of this server (the
/// member watches it), so the member stages it at once. Best effort: a
/// journal that cannot be written is logged and the scan finds the change.
/// `path` (and a rename's `to`) are share-relative.
pub fn record_change(conn: &Connection, state_dir: &std::path::Path, kind: crate::store::journal::ChangeKind, path: &str, to: Option<&str>) {
    if !conn.captures_local_changes() {
        return;
    }
    let journal_path = state_dir.join(crate::store::DIR_NAME).join(crate::store::journal::FILE_NAME);
    JOURNAL.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else { return };
        record_in(&mut guard, conn, &journal_path, kind, path, to)
    });
}

fn record_in(
    guard: &mut Option<ProcessJournal>,
    conn: &Connection,
    path: &std::path::Path,
    kind: crate::store::journal::ChangeKind,
    changed: &str,
    to: Option<&str>,
) {
    let pid = std::process::id();
    // None yet, or the parent's (inherited by fork: a TDB handle must not
    // cross it), or another state directory's.
    let stale = match guard.as_ref() {
        Some(pj) => pj.pid != pid || pj.path.as_path() != path,
        None => true,
    };
    if stale {
        *guard = Some(ProcessJournal {
            pid,
            journal: crate::store::journal::Journal::open_existing(path),
            path: path.to_path_buf(),
            looked: std::time::Instant::now(),
        });
    }
    let Some(pj) = guard.as_mut() else { return };
    if pj.journal.is_none() && pj.looked.elapsed() >= JOURNAL_RETRY {
        pj.journal = crate::store::journal::Journal::open_existing(path);
        pj.looked = std::time::Instant::now();
    }
    let Some(j) = pj.journal.as_mut() else { return };
    match j.record(&conn.service, kind, changed, to) {
        Ok(true) => tracing::debug!(share = conn.service.as_str(), change = ?kind, path = changed, "change recorded"),
        Ok(false) => {}
        Err(e) => tracing::warn!(share = conn.service.as_str(), "cannot record a change: {e}"),
    }
}

pub fn disconnect(conn: Connection) {
    tracing::info!(share = conn.service.as_str(), connection = conn.number, "disconnect");
}

/// The namespace table last read in this process, with the file's
/// (path, mtime, size) it was read at.
type CachedTable = (
    (std::path::PathBuf, Option<std::time::SystemTime>, u64),
    crate::namespace::table::Table,
    crate::namespace::site::SiteMap,
);
static TABLE_CACHE: std::sync::Mutex<Option<CachedTable>> = std::sync::Mutex::new(None);

/// The namespace table of `state_dir`, from this process's cache, read
/// again only when the store file changed; None inside when there is no
/// store. `what` names the request in errors.
fn cached_table(
    state_dir: &std::path::Path,
    what: &str,
) -> Result<std::sync::MutexGuard<'static, Option<CachedTable>>, NtStatus> {
    use crate::namespace::store::{Store, FILE_NAME};
    let file = state_dir.join(FILE_NAME);
    let mut cache = TABLE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(meta) = std::fs::metadata(&file) else {
        *cache = None;
        return Ok(cache);
    };
    // Decoding a big table costs far more than a referral, so each smbd
    // process keeps the last one and reloads only when the file changed
    // (every committed transaction rewrites it: new mtime).
    let stamp = (file.clone(), meta.modified().ok(), meta.len());
    if cache.as_ref().map(|c| &c.0) != Some(&stamp) {
        let loaded = Store::open_read_only(&file).and_then(|s| s.load()).map_err(|e| {
            tracing::error!("{what}: {e}");
            NtStatus::INTERNAL_ERROR
        })?;
        *cache = Some((stamp, loaded.0, loaded.1));
    }
    Ok(cache)
}

/// `read_dfs_pathat` for `rel` in `share`: the link's targets in `msdfs:`
/// text and its TTL from our table; None when it is not one of our links.
pub fn dfs_link_text(state_dir: &std::path::Path, share: &str, rel: &str) -> Option<(String, u32)> {
    let cache = cached_table(state_dir, rel).ok()?;
    let (_, table, _) = cache.as_ref()?;
    crate::namespace::junction::link_text(table, share, rel)
}

/// Applies a junction change to the store in one transaction, when the
/// cached table says the change is ours (cheap: unlinkat asks for every
/// file deleted on a namespace root share). Returns whether it applied.
fn edit_junction<T>(
    state_dir: &std::path::Path,
    share: &str,
    rel: &str,
    ours: impl Fn(&Table) -> bool,
    edit: impl FnOnce(&mut Table) -> Result<T, crate::namespace::table::TableError>,
) -> Result<bool, NtStatus> {
    use crate::namespace::store::{Store, StoreError, FILE_NAME};
    {
        let cache = cached_table(state_dir, rel)?;
        let Some((_, table, _)) = cache.as_ref() else { return Ok(false) };
        if !ours(table) {
            return Ok(false);
        }
    }
    #[derive(Debug)]
    enum E {
        Store(StoreError),
        Table(crate::namespace::table::TableError),
    }
    impl From<StoreError> for E {
        fn from(e: StoreError) -> Self {
            E::Store(e)
        }
    }
    let mut store = Store::open(&state_dir.join(FILE_NAME)).map_err(|e| {
        tracing::error!(share, path = rel, "namespace store: {e}");
        NtStatus::INTERNAL_ERROR
    })?;
    match store.update(|table, _| edit(table).map_err(E::Table)) {
        Ok(_) => Ok(true),
        Err(E::Table(e)) => {
            tracing::warn!(share, path = rel, "DFS link change refused: {e}");
            Err(NtStatus::INVALID_PARAMETER)
        }
        Err(E::Store(e)) => {
            tracing::error!(share, path = rel, "namespace store: {e}");
            Err(NtStatus::INTERNAL_ERROR)
        }
    }
}

/// `create_dfs_pathat` (NetDfsAdd/Remove of a target through rpcd_classic):
/// the link's targets become `targets` in our table.
pub fn dfs_link_set(state_dir: &std::path::Path, share: &str, rel: &str, targets: &[String]) -> Result<(), NtStatus> {
    let list: Vec<&str> = targets.iter().map(String::as_str).collect();
    let set = |t: &mut Table| crate::namespace::junction::set_targets(t, share, rel, &list);
    if edit_junction(state_dir, share, rel, |t| t.root(share).is_some(), set)? {
        tracing::info!(share, path = rel, targets = ?targets, "DFS link set through smbd");
    }
    Ok(())
}

/// `unlinkat` of `rel` succeeded: when it was one of our links, it goes.
pub fn dfs_link_unlinked(state_dir: &std::path::Path, share: &str, rel: &str) -> Result<(), NtStatus> {
    use crate::namespace::junction::{is_link, remove_link};
    if edit_junction(state_dir, share, rel, |t| is_link(t, share, rel), |t| remove_link(t, share, rel))? {
        tracing::info!(share, path = rel, "DFS link removed through smbd");
    }
    Ok(())
}

/// The referral response for `path` from the namespace store in
/// `state_dir`, at the client's level, for a client at `client_ip`.
/// NOT_FOUND means "not one of ours": smbd then asks the next module.
pub fn referral(state_dir: &std::path::Path, path: &str, max_level: u16, client_ip: &str) -> Result<Vec<u8>, NtStatus> {
    use crate::namespace::resolve::{resolve, ResolveError};
    let cache = cached_table(state_dir, path)?;
    let Some((_, table, sites)) = cache.as_ref() else {
        return Err(NtStatus::NOT_FOUND);
    };
    let ip = client_ip.parse().ok();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        ^ u64::from(std::process::id());
    let mut rng = crate::namespace::ordering::SplitMix64::new(seed);
    let mut next = || rng.next_u64();
    // smbd re-marshals our answer through its own NDR, whose V1 entry
    // (dfsblobs.idl: the share name as a pointer) cannot carry MS-DFSC's
    // inline V1 string; level-1 clients get V2, as from stock Samba.
    let level = max_level.max(2);
    // smbd cuts the marshalled answer at the client's maximum size itself.
    match resolve(table, sites, path, ip, level, u32::MAX, &mut next) {
        Ok(r) => {
            tracing::debug!(path, client = client_ip, site = ?r.client_site, entries = r.response.entries.len(), "referral");
            Ok(r.bytes)
        }
        Err(ResolveError::UnknownNamespace(_)) | Err(ResolveError::NotRootOrLink(_)) => Err(NtStatus::NOT_FOUND),
        Err(e) => {
            tracing::info!(path, client = client_ip, "no referral: {e}");
            Err(NtStatus(e.nt_status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_connections_capture_changes() {
        let c = |origin| connect("s".into(), "/p".into(), "u".into(), Options::default(), origin);
        assert!(c(Origin::Client).captures_local_changes());
        assert!(!c(Origin::Meet).captures_local_changes());
    }
}
