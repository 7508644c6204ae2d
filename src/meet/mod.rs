//! The meet: installs staged DFS-R updates through a share's Samba VFS
//! stack, inside dfsrd, called over IRPC (`include/dfsr_meet.idl`).
//!
//! - [`path`]: target paths, checked before anything is written.
//! - [`install`]: one install or remove through the share's VFS stack.
//! - [`vfs_stack`]: why a share's VFS stack does not open (which module, where).
//!
//! This module is the daemon's entry point for each request; it keeps the
//! counters `Status` reports.

pub mod install;
pub mod path;
pub mod vfs_stack;

use crate::ffi::debug;
use crate::samba::ntstatus::NtStatus;
use crate::samba::tracing_bridge;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

/// Request flags (dfsr_meet_flags in the IDL).
pub const FLAG_LOST_TO_CONFLICT: u32 = 0x1;

static STARTED: AtomicU64 = AtomicU64::new(0);
static INSTALLS_OK: AtomicU32 = AtomicU32::new(0);
static INSTALLS_FAILED: AtomicU32 = AtomicU32::new(0);
static INSTALLS_RETRY: AtomicU32 = AtomicU32::new(0);
static REMOVES_OK: AtomicU32 = AtomicU32::new(0);
static IN_PROGRESS: AtomicU32 = AtomicU32::new(0);

/// NTTIME (100 ns since 1601, a FILETIME) of a SystemTime.
pub fn nttime(t: SystemTime) -> u64 {
    crate::staging::filetime::from_system_time(t) as u64
}

/// Called once when dfsrd has loaded smb.conf and set up messaging.
pub fn daemon_init(debug_class: i32) {
    debug::set_class(debug_class);
    tracing_bridge::install();
    STARTED.store(nttime(SystemTime::now()), Ordering::Relaxed);
}

/// What `Status` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub started_nttime: u64,
    pub installs_ok: u32,
    pub installs_failed: u32,
    pub installs_retry: u32,
    pub removes_ok: u32,
    pub in_progress: u32,
}

pub fn counters() -> Counters {
    Counters {
        started_nttime: STARTED.load(Ordering::Relaxed),
        installs_ok: INSTALLS_OK.load(Ordering::Relaxed),
        installs_failed: INSTALLS_FAILED.load(Ordering::Relaxed),
        installs_retry: INSTALLS_RETRY.load(Ordering::Relaxed),
        removes_ok: REMOVES_OK.load(Ordering::Relaxed),
        in_progress: IN_PROGRESS.load(Ordering::Relaxed),
    }
}

/// A refused or failed request: the status for the caller and the reason,
/// which also goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetError {
    pub status: NtStatus,
    pub reason: String,
}

impl MeetError {
    fn new(status: NtStatus, reason: impl Into<String>) -> Self {
        MeetError { status, reason: reason.into() }
    }
}

fn check_share(share: &str) -> Result<(), MeetError> {
    if share.is_empty() || share.contains(['/', '\\', '\0']) {
        return Err(MeetError::new(NtStatus::BAD_NETWORK_NAME, format!("invalid share name {share:?}")));
    }
    Ok(())
}

/// At dfsrd start: logs (level 0) each `vfs objects` module of a share
/// that stacks `dfsr` which cannot be loaded, so the admin learns of it
/// before the first install fails.
pub fn check_share_stack(share: &str) {
    for fault in vfs_stack::faults_of_dfsr_share(share) {
        tracing::error!(share, "[{share}]: the share cannot be opened, by smbd or by dfsrd: {fault}");
    }
}

fn bad_path(share: &str, path: &str, e: path::PathError) -> MeetError {
    MeetError::new(NtStatus::OBJECT_NAME_INVALID, format!("[{share}] {path:?}: {e}"))
}

/// `Install`: checks the request, then installs through the VFS. Runs in
/// dfsrd's install child; the main process keeps the counters
/// ([`install_started`], [`install_finished`]).
pub fn install(share: &str, path: &str, staged_file: &str, uid: &str, flags: u32) -> Result<(), MeetError> {
    let result = (|| {
        check_share(share)?;
        let rel = path::RelPath::parse(path).map_err(|e| bad_path(share, path, e))?;
        if staged_file.is_empty() {
            return Err(MeetError::new(NtStatus::INVALID_PARAMETER, "no staged file given"));
        }
        install::install(share, &rel, staged_file, uid, flags)
    })();
    match &result {
        Ok(()) => tracing::info!(share, path, staged_file, "installed"),
        Err(e) if e.status == NtStatus::SHARING_VIOLATION => {
            tracing::info!(share, path, "install deferred: {}", e.reason)
        }
        Err(e) => tracing::warn!(share, path, status = %e.status, "install failed: {}", e.reason),
    }
    result
}

pub fn install_started() {
    IN_PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Largest staged file, and largest main data, an install runs with in
/// dfsrd's main process.
pub const INLINE_INSTALL_LIMIT: u64 = 1 << 20;

/// Whether `staged_file` is small enough to install in dfsrd's main
/// process: forking costs more than a small install (the meet bench), and
/// a small one holds up Ping, Status and other requests only briefly.
/// Anything larger, or whose header cannot be read here, goes to a child.
pub fn install_runs_inline(staged_file: &str) -> bool {
    use crate::staging::frsx::FrsxReader;
    use crate::staging::marshal::{Event, MarshalReader};
    let Ok(f) = std::fs::File::open(staged_file) else { return false };
    if f.metadata().map_or(true, |m| m.len() > INLINE_INSTALL_LIMIT) {
        return false;
    }
    let mut r = MarshalReader::new(FrsxReader::new(std::io::BufReader::new(f)));
    match r.next() {
        Ok(Some(Event::Metadata(m))) => m.primary_data_size <= INLINE_INSTALL_LIMIT,
        _ => false,
    }
}

/// Counts an install's outcome: done, to retry (sharing violation) or failed.
pub fn install_finished(status: NtStatus) {
    IN_PROGRESS.fetch_sub(1, Ordering::Relaxed);
    let counter = match status {
        NtStatus::OK => &INSTALLS_OK,
        NtStatus::SHARING_VIOLATION => &INSTALLS_RETRY,
        _ => &INSTALLS_FAILED,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `Remove`: deletes the file at `path` (a tombstone).
pub fn remove(share: &str, path: &str, uid: &str, flags: u32) -> Result<(), MeetError> {
    check_share(share)?;
    let rel = path::RelPath::parse(path).map_err(|e| bad_path(share, path, e))?;
    let result = install::remove(share, &rel, uid, flags & FLAG_LOST_TO_CONFLICT != 0);
    match &result {
        Ok(()) => {
            REMOVES_OK.fetch_add(1, Ordering::Relaxed);
            tracing::info!(share, path, "removed");
        }
        Err(e) => tracing::warn!(share, path, status = %e.status, "remove failed: {}", e.reason),
    }
    result
}

/// `Move`: the same file or directory under a new parent or name.
pub fn move_path(share: &str, path: &str, new_path: &str, _flags: u32) -> Result<(), MeetError> {
    check_share(share)?;
    let from = path::RelPath::parse(path).map_err(|e| bad_path(share, path, e))?;
    let to = path::RelPath::parse(new_path).map_err(|e| bad_path(share, new_path, e))?;
    let result = install::move_path(share, &from, &to);
    match &result {
        Ok(()) => tracing::info!(share, path, new_path, "moved"),
        Err(e) => tracing::warn!(share, path, new_path, status = %e.status, "move failed: {}", e.reason),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paths_are_refused_before_anything_else() {
        let e = install("data", "a/../b", "/tmp/x", "u", 0).unwrap_err();
        assert_eq!(e.status, NtStatus::OBJECT_NAME_INVALID);
        assert!(e.reason.contains("\"a/../b\""), "{}", e.reason);
        let e = install("da/ta", "a", "/tmp/x", "u", 0).unwrap_err();
        assert_eq!(e.status, NtStatus::BAD_NETWORK_NAME);
        let e = remove("data", "x:y", "{00000000-0000-0000-0000-000000000000}-v0", 0).unwrap_err();
        assert_eq!(e.status, NtStatus::OBJECT_NAME_INVALID);
    }

    #[test]
    fn nttime_of_unix_epoch() {
        assert_eq!(nttime(std::time::UNIX_EPOCH), 116_444_736_000_000_000);
    }
}
