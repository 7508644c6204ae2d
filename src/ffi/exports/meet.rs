//! Called by dfsrd for its meet (`src/c/dfsrd.c`): IRPC Install, Remove,
//! Move, Status, and the start-up clean-up and checks.

use super::{copy_out, string};
use std::ffi::{c_char, c_int};

/// Counters of the meet, for the IRPC `Status` call (`crate::meet::Counters`
/// as C sees it, both ways).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DfsrMeetCounters {
    pub started_nttime: u64,
    pub installs_ok: u32,
    pub installs_failed: u32,
    pub installs_retry: u32,
    pub removes_ok: u32,
    pub in_progress: u32,
}

/// Called once by dfsrd after smb.conf and messaging are set up.
#[no_mangle]
pub extern "C" fn dfsr_daemon_init(debug_class: c_int) {
    crate::meet::daemon_init(debug_class);
}

/// The package version, NUL-terminated, static.
#[no_mangle]
pub extern "C" fn dfsr_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

impl From<crate::meet::Counters> for DfsrMeetCounters {
    fn from(c: crate::meet::Counters) -> Self {
        let crate::meet::Counters { started_nttime, installs_ok, installs_failed, installs_retry, removes_ok, in_progress } =
            c;
        DfsrMeetCounters { started_nttime, installs_ok, installs_failed, installs_retry, removes_ok, in_progress }
    }
}

impl From<DfsrMeetCounters> for crate::meet::Counters {
    fn from(c: DfsrMeetCounters) -> Self {
        let DfsrMeetCounters { started_nttime, installs_ok, installs_failed, installs_retry, removes_ok, in_progress } = c;
        crate::meet::Counters { started_nttime, installs_ok, installs_failed, installs_retry, removes_ok, in_progress }
    }
}

#[no_mangle]
pub extern "C" fn dfsr_meet_counters() -> DfsrMeetCounters {
    crate::meet::counters().into()
}

/// IRPC `Install`, run in dfsrd's per-install child process: returns an
/// NTSTATUS; on failure `reason` (a buffer of `reason_len` bytes) says why. `uid_db`/`uid_version` name the update's
/// UID (MS-FRS2), for the ConflictAndDeleted manifest.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `reason` as for `copy_out`.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_install(
    share: *const c_char,
    path: *const c_char,
    staged_file: *const c_char,
    uid_db: *const c_char,
    uid_version: u64,
    flags: u32,
    reason: *mut c_char,
    reason_len: usize,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (share, path, staged) = unsafe { (string(share), string(path), string(staged_file)) };
    // SAFETY: forwarded caller contract.
    let uid = format!("{{{}}}-v{uid_version}", unsafe { string(uid_db) });
    match crate::meet::install(&share, &path, &staged, &uid, flags) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: forwarded caller contract.
            unsafe { copy_out(&e.reason, reason, reason_len) };
            e.status.0
        }
    }
}

/// Whether dfsrd installs `staged_file` in its main process (small) rather
/// than in a child.
///
/// # Safety
/// `staged_file` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_install_runs_inline(staged_file: *const c_char) -> bool {
    // SAFETY: forwarded caller contract.
    crate::meet::install_runs_inline(&unsafe { string(staged_file) })
}

/// dfsrd's main process: an install child was started.
#[no_mangle]
pub extern "C" fn dfsr_meet_install_started() {
    crate::meet::install_started();
}

/// dfsrd's main process: an install child reported `status`.
#[no_mangle]
pub extern "C" fn dfsr_meet_install_finished(status: u32) {
    crate::meet::install_finished(crate::samba::ntstatus::NtStatus(status));
}

/// IRPC `Remove`, like `dfsr_meet_install`.
///
/// # Safety
/// As for `dfsr_meet_install`.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_remove(
    share: *const c_char,
    path: *const c_char,
    uid_db: *const c_char,
    uid_version: u64,
    flags: u32,
    reason: *mut c_char,
    reason_len: usize,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (share, path) = unsafe { (string(share), string(path)) };
    // SAFETY: forwarded caller contract.
    let uid = format!("{{{}}}-v{uid_version}", unsafe { string(uid_db) });
    match crate::meet::remove(&share, &path, &uid, flags) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: forwarded caller contract.
            unsafe { copy_out(&e.reason, reason, reason_len) };
            e.status.0
        }
    }
}

/// At dfsrd start, for each share: removes what a crash left in
/// `DfsrPrivate/Installing` under `path`.
///
/// # Safety
/// Strings are NULL or NUL-terminated, valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_clean_installing(share: *const c_char, path: *const c_char) {
    // SAFETY: forwarded caller contract.
    let (share, path) = unsafe { (string(share), string(path)) };
    crate::meet::install::clean_installing(&share, std::path::Path::new(&path));
}

/// At dfsrd start, for each share: logs the `vfs objects` modules that
/// cannot be loaded (shares that stack `dfsr`).
///
/// # Safety
/// `share` is NULL or NUL-terminated, valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_check_share(share: *const c_char) {
    // SAFETY: forwarded caller contract.
    crate::meet::check_share_stack(&unsafe { string(share) });
}

/// IRPC `Move`: renames or moves `path` to `new_path` on the share.
///
/// # Safety
/// As for `dfsr_meet_install`.
#[no_mangle]
pub unsafe extern "C" fn dfsr_meet_move(
    share: *const c_char,
    path: *const c_char,
    new_path: *const c_char,
    flags: u32,
    reason: *mut c_char,
    reason_len: usize,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (share, path, new_path) = unsafe { (string(share), string(path), string(new_path)) };
    match crate::meet::move_path(&share, &path, &new_path, flags) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: forwarded caller contract.
            unsafe { copy_out(&e.reason, reason, reason_len) };
            e.status.0
        }
    }
}
