//! The C API of the Rust side: what the thin C shim (`src/c/`) calls,
//! split by caller. cbindgen writes it to `include/dfsr.h`. Every function
//! here only turns C values into Rust ones and calls safe code.
//!
//! - [`vfs`]: the dfsr VFS module in smbd (`vfs_dfsr.c`): init, connect,
//!   disconnect.
//! - [`namespace`]: the module's DFS hooks (referrals, msdfs links for NetDfs).
//! - [`meet`]: dfsrd's meet (`dfsrd.c`): init, counters, install, remove,
//!   move, start-up clean-up and checks.
//! - [`rpc`]: dfsrd's MS-FRS2 listener.
//! - [`member`]: dfsrd's replication member.
//! - [`children`]: the restart back-off of dfsrd's children.

pub mod children;
pub mod meet;
pub mod member;
pub mod namespace;
pub mod rpc;
pub mod vfs;

use std::ffi::{c_char, CStr};

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Copies `text` into the C buffer `buf` of `len` bytes, truncated at a
/// character boundary, always NUL-terminated (when `len` > 0).
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
pub(crate) unsafe fn copy_out(text: &str, buf: *mut c_char, len: usize) {
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
