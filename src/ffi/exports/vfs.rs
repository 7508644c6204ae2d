//! Called by the dfsr VFS module in smbd (`src/c/vfs_dfsr.c`).

use super::string;
use crate::config::Options;
use crate::vfs_module;
use std::ffi::{c_char, c_int};

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

/// Whether changes through `conn` may be recorded (a client's connection,
/// not the meet's); the shim then records them as root.
///
/// # Safety
/// `conn` is NULL or a live pointer from `dfsr_connect`.
#[no_mangle]
pub unsafe extern "C" fn dfsr_connection_captures(conn: *const DfsrConnection) -> bool {
    // SAFETY: NULL or live per the caller's contract; only read.
    unsafe { conn.as_ref() }.is_some_and(|c| c.0.captures_local_changes())
}

/// A change `kind` (a letter of `store::journal::ChangeKind`) of `path`
/// through `conn` succeeded (`to`: a rename's new path, else NULL; both
/// share-relative); `state_dir` is smbd's state directory. Called as root.
///
/// # Safety
/// `conn` is NULL or a live pointer from `dfsr_connect`; `state_dir`,
/// `path` and `to` are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn dfsr_record_change(
    conn: *const DfsrConnection,
    state_dir: *const c_char,
    kind: c_char,
    path: *const c_char,
    to: *const c_char,
) {
    // SAFETY: NULL or live per the caller's contract; only read.
    let Some(conn) = (unsafe { conn.as_ref() }) else { return };
    // SAFETY: forwarded caller contract.
    let (state_dir, path) = unsafe { (string(state_dir), string(path)) };
    // SAFETY: forwarded caller contract.
    let to = (!to.is_null()).then(|| unsafe { string(to) });
    let Some(kind) = crate::store::journal::ChangeKind::from_letter(kind as u8) else { return };
    vfs_module::record_change(&conn.0, std::path::Path::new(&state_dir), kind, &path, to.as_deref());
}
