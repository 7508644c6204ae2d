//! Called by the dfsr VFS module's DFS hooks (`src/c/vfs_dfsr.c`):
//! referrals from our namespace table, msdfs links for Samba's NetDfs.

use super::string;
use crate::samba::ntstatus::NtStatus;
use std::ffi::c_char;

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
