//! Safe calls into Samba's debug system (lib/util/debug.h).
//!
//! Outside a Samba process (dfsrctl, unit tests) the debug system is in its
//! default state — level 0, output to stderr — so these calls stay valid.

use super::sys;
use std::ffi::CString;
use std::sync::atomic::{AtomicI32, Ordering};

/// Debug class registered by the module (`debug_add_class("dfsr")` in the
/// C shim); 0 (DBGC_ALL) until then.
static CLASS: AtomicI32 = AtomicI32::new(0);

pub fn set_class(class: i32) {
    CLASS.store(class.max(0), Ordering::Relaxed);
}

/// Current level of our class; follows `log level` and `smbcontrol debug`.
pub fn level() -> i32 {
    let class = CLASS.load(Ordering::Relaxed) as usize;
    // SAFETY: debuglevel_get_class bounds-checks its index and only reads
    // the level array; it has no preconditions.
    unsafe { sys::debuglevel_get_class(class) }
}

/// Writes one message at `level`: a header line naming `location` and
/// `func`, then `text`. Interior NULs are replaced so nothing is cut off.
pub fn write(level: i32, location: &str, func: &str, text: &str) {
    let cstr = |s: &str| CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default();
    let (location, func, text) = (cstr(location), cstr(func), cstr(text));
    let class = CLASS.load(Ordering::Relaxed);
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // calls; dbgtext gets a constant "%s\n" format with exactly one string
    // argument, so no caller text is interpreted as a format.
    unsafe {
        if sys::dbghdrclass(level, class, location.as_ptr(), func.as_ptr()) {
            sys::dbgtext(c"%s\n".as_ptr(), text.as_ptr());
        }
    }
}
