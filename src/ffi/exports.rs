//! The C API of the Rust side: what the thin C shim (`src/c/`) calls.
//! cbindgen writes it to `include/dfsr.h`. Every function here only turns
//! C values into Rust ones and calls safe code.

use crate::config::Options;
use crate::samba::ntstatus::NtStatus;
use crate::vfs_module;
use std::ffi::{c_char, c_int, CStr};

/// One smb.conf parameter as Samba stores it (`key = value`), e.g.
/// `dfsr:rpc port` = `5722`.
#[repr(C)]
pub struct DfsrParam {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// A share connection as the Rust side knows it; opaque to C.
pub struct DfsrConnection(vfs_module::Connection);

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `params` is NULL or points to `n` valid `DfsrParam`s whose strings are
/// valid for the call.
unsafe fn params(params: *const DfsrParam, n: usize) -> Vec<(String, String)> {
    if params.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: non-NULL, `n` initialised elements per the caller's contract.
    let slice = unsafe { std::slice::from_raw_parts(params, n) };
    // SAFETY: each string is NULL or NUL-terminated per the contract.
    slice.iter().map(|p| unsafe { (string(p.key), string(p.value)) }).collect()
}

/// Called once per process when smbd loads the module; `debug_class` is
/// the class the shim registered for "dfsr" (or 0).
#[no_mangle]
pub extern "C" fn dfsr_module_init(debug_class: c_int) {
    vfs_module::init(debug_class);
}

/// A share was connected. `global`/`share` are the parametric parameters
/// of `[global]` and of the share (all of them; Rust keeps `dfsr:*`).
/// Returns the connection, to hand back to `dfsr_disconnect`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; each array is NULL or has the given
/// number of valid elements. All only need to live for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_connect(
    service: *const c_char,
    path: *const c_char,
    user: *const c_char,
    global: *const DfsrParam,
    n_global: usize,
    share: *const DfsrParam,
    n_share: usize,
    in_meet: bool,
) -> *mut DfsrConnection {
    // SAFETY: forwarded caller contract (see above).
    let (service, path, user) = unsafe { (string(service), string(path), string(user)) };
    // SAFETY: forwarded caller contract.
    let (global, share) = unsafe { (params(global, n_global), params(share, n_share)) };
    let options = Options::resolve(
        global.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        share.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let origin = if in_meet { vfs_module::Origin::Meet } else { vfs_module::Origin::Client };
    let conn = vfs_module::connect(service, path, user, options, origin);
    Box::into_raw(Box::new(DfsrConnection(conn)))
}

/// The share is being disconnected; frees `conn`.
///
/// # Safety
/// `conn` is NULL or a pointer from `dfsr_connect` not yet passed here.
#[no_mangle]
pub unsafe extern "C" fn dfsr_disconnect(conn: *mut DfsrConnection) {
    if conn.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in dfsr_connect, handed back once.
    let conn = unsafe { Box::from_raw(conn) };
    vfs_module::disconnect(conn.0);
}

// ---- dfsrd: the daemon and its meet (src/c/dfsrd.c) ----

/// Counters of the meet, for the IRPC `Status` call.
#[repr(C)]
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

#[no_mangle]
pub extern "C" fn dfsr_meet_counters() -> DfsrMeetCounters {
    let c = crate::meet::counters();
    DfsrMeetCounters {
        started_nttime: c.started_nttime,
        installs_ok: c.installs_ok,
        installs_failed: c.installs_failed,
        installs_retry: c.installs_retry,
        removes_ok: c.removes_ok,
        in_progress: c.in_progress,
    }
}

/// Copies `text` into the C buffer `buf` of `len` bytes, truncated at a
/// character boundary, always NUL-terminated (when `len` > 0).
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
unsafe fn copy_out(text: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    let mut n = text.len().min(len - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: n < len, and buf is valid for len bytes per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
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

// ---- namespaces: referrals from the dfsr VFS module ----

/// The referral for `path` (REQ_GET_DFS_REFERRAL's RequestFileName) at
/// `max_level` for a client at `client_ip`, from the namespace table in
/// `state_dir`. 0 with the response bytes in `*out`/`*out_len` (free them
/// with `dfsr_free_bytes`); NT_STATUS_NOT_FOUND when the path is not in our
/// namespaces (the caller asks the next module); another NTSTATUS on error.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `out` and `out_len` are valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn dfsr_get_referral(
    state_dir: *const c_char,
    path: *const c_char,
    max_level: u16,
    client_ip: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (state_dir, path, ip) = unsafe { (string(state_dir), string(path), string(client_ip)) };
    match crate::vfs_module::referral(std::path::Path::new(&state_dir), &path, max_level, &ip) {
        Ok(bytes) => {
            let boxed = bytes.into_boxed_slice();
            let len = boxed.len();
            // SAFETY: out/out_len are valid for writes per the contract; the
            // slice is handed back to dfsr_free_bytes with its length.
            unsafe {
                *out_len = len;
                *out = Box::into_raw(boxed).cast::<u8>();
            }
            0
        }
        Err(status) => status.0,
    }
}

/// `read_dfs_pathat`: the `msdfs:` text of link `rel` (share-relative,
/// '/'-separated) of `share` from our table in `state_dir`, and its TTL.
/// 0 with the text (no NUL) in `*out`/`*out_len` (free with
/// `dfsr_free_bytes`); NT_STATUS_NOT_FOUND when it is not one of our links.
///
/// # Safety
/// Strings are NULL or NUL-terminated; the out-pointers are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dfsr_dfs_link_text(
    state_dir: *const c_char,
    share: *const c_char,
    rel: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
    ttl: *mut u32,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (state_dir, share, rel) = unsafe { (string(state_dir), string(share), string(rel)) };
    match crate::vfs_module::dfs_link_text(std::path::Path::new(&state_dir), &share, &rel) {
        Some((text, t)) => {
            let boxed = text.into_bytes().into_boxed_slice();
            // SAFETY: out-pointers valid per the contract; the slice goes
            // back to dfsr_free_bytes with its length.
            unsafe {
                *out_len = boxed.len();
                *ttl = t;
                *out = Box::into_raw(boxed).cast::<u8>();
            }
            0
        }
        None => NtStatus::NOT_FOUND.0,
    }
}

/// `create_dfs_pathat`: link `rel` of `share` gets the `n` targets (smbd's
/// alternate paths, `host\share[\sub]`) in our table; 0 also when the
/// share is not one of our roots.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `targets` points to `n` of them.
#[no_mangle]
pub unsafe extern "C" fn dfsr_dfs_link_set(
    state_dir: *const c_char,
    share: *const c_char,
    rel: *const c_char,
    targets: *const *const c_char,
    n: usize,
) -> u32 {
    // SAFETY: forwarded caller contract.
    let (state_dir, share, rel) = unsafe { (string(state_dir), string(share), string(rel)) };
    let list: Vec<String> = if targets.is_null() {
        Vec::new()
    } else {
        // SAFETY: `targets` holds `n` valid C strings per the contract.
        let ptrs = unsafe { std::slice::from_raw_parts(targets, n) };
        // SAFETY: each is NULL or a NUL-terminated string (contract).
        ptrs.iter().map(|&p| unsafe { string(p) }).collect()
    };
    match crate::vfs_module::dfs_link_set(std::path::Path::new(&state_dir), &share, &rel, &list) {
        Ok(()) => 0,
        Err(s) => s.0,
    }
}

/// `unlinkat` of `rel` in `share` succeeded: a link of ours leaves the table.
///
/// # Safety
/// Strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn dfsr_dfs_link_unlinked(state_dir: *const c_char, share: *const c_char, rel: *const c_char) -> u32 {
    // SAFETY: forwarded caller contract.
    let (state_dir, share, rel) = unsafe { (string(state_dir), string(share), string(rel)) };
    match crate::vfs_module::dfs_link_unlinked(std::path::Path::new(&state_dir), &share, &rel) {
        Ok(()) => 0,
        Err(s) => s.0,
    }
}

/// Frees bytes returned by `dfsr_get_referral`.
///
/// # Safety
/// `p`/`len` come from one `dfsr_get_referral` call, freed once.
#[no_mangle]
pub unsafe extern "C" fn dfsr_free_bytes(p: *mut u8, len: usize) {
    if !p.is_null() {
        // SAFETY: made by Box::into_raw of a boxed slice of this length.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) });
    }
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

// ---- dfsrd: the MS-FRS2 listener (src/c/dfsrd.c) ----

/// Opens dfsrd's MS-FRS2 listening socket (`dfsr:rpc address`, `dfsr:rpc
/// port`); returns its file descriptor, or -1 (the reason is logged).
///
/// # Safety
/// `address` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_rpc_listen(address: *const c_char, port: u16) -> c_int {
    // SAFETY: forwarded caller contract.
    let address = unsafe { string(address) };
    match crate::net::rpc_server::listen(&address, port) {
        Ok(l) => {
            tracing::info!(address = %address, port, "rpc: listening for MS-FRS2 (ncacn_ip_tcp)");
            std::os::fd::IntoRawFd::into_raw_fd(l)
        }
        Err(e) => {
            tracing::error!(address = %address, port, error = %e, "rpc: cannot listen; MS-FRS2 wire disabled");
            -1
        }
    }
}

/// Serves FrsTransport on `fd` (from `dfsr_rpc_listen`) with gensec
/// security in the calling process, which must have initialised Samba
/// (passdb), from the engine's database and staging area under
/// `state_dir`/dfsr, to the accounts `allow` lists (`dfsr:rpc allow`;
/// empty: any authenticated); returns only when the listener fails (then 1).
///
/// # Safety
/// `fd` is a listening TCP socket the caller hands over (it is closed
/// when serving ends); `state_dir` and `allow` are NULL or NUL-terminated
/// strings valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_rpc_serve(fd: c_int, state_dir: *const c_char, allow: *const c_char) -> c_int {
    // SAFETY: the caller transfers ownership of an open listening socket.
    let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: forwarded caller contract.
    let (state_dir, allow) = unsafe { (string(state_dir), string(allow)) };
    let state = crate::member::serve::served_state(std::path::Path::new(&state_dir), &allow);
    match crate::net::rpc_server::serve(listener, crate::ffi::gensec::server_maker(), state) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "rpc: listener stopped");
            1
        }
    }
}
