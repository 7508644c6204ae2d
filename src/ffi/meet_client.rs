//! The IRPC client of the meet (src/c/meet_client.c), for dfsrctl: safe
//! wrappers that return the NTSTATUS and the reason text.

use crate::samba::ntstatus::NtStatus;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;

use super::shims::{
    dfsr_meet_client_install, dfsr_meet_client_move, dfsr_meet_client_ping, dfsr_meet_client_remove,
    dfsr_meet_client_status, DfsrMeetStatus,
};


/// A failed call: the NTSTATUS and what the daemon or the client said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
pub struct CallError {
    pub status: NtStatus,
    pub reason: String,
}

/// What `Status` returns: dfsrd's pid and version, and its meet's
/// counters ([`crate::meet::Counters`], the one description of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetStatus {
    pub pid: u32,
    pub version: String,
    pub counters: crate::meet::Counters,
}

fn cstring(s: &str) -> Result<CString, CallError> {
    CString::new(s).map_err(|_| CallError { status: NtStatus::INVALID_PARAMETER, reason: format!("{s:?} contains NUL") })
}

fn conf_cstring(conf: &Path) -> Result<CString, CallError> {
    cstring(&conf.to_string_lossy())
}

fn result(status: u32, err: &[c_char; 1024]) -> (NtStatus, String) {
    // SAFETY: the client always NUL-terminates within the buffer (strlcpy),
    // and the buffer starts zeroed.
    let reason = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
    (NtStatus(status), reason)
}

fn check(status: u32, err: &[c_char; 1024]) -> Result<String, CallError> {
    let (status, reason) = result(status, err);
    if status.is_ok() {
        Ok(reason)
    } else {
        Err(CallError { status, reason })
    }
}

/// Pings dfsrd; returns its pid.
pub fn ping(conf: &Path, cookie: u32) -> Result<u32, CallError> {
    let c = conf_cstring(conf)?;
    let mut pid = 0u32;
    let mut err = [0 as c_char; 1024];
    // SAFETY: valid C string, out-pointers to locals, err buffer length.
    let st = unsafe { dfsr_meet_client_ping(c.as_ptr(), cookie, &mut pid, err.as_mut_ptr(), err.len()) };
    check(st, &err).map(|_| pid)
}

pub fn status(conf: &Path) -> Result<MeetStatus, CallError> {
    let c = conf_cstring(conf)?;
    // SAFETY: DfsrMeetStatus is plain old data; all-zero is valid.
    let mut out: DfsrMeetStatus = unsafe { std::mem::zeroed() };
    let mut err = [0 as c_char; 1024];
    // SAFETY: valid C string, out-pointer to a local, err buffer length.
    let st = unsafe { dfsr_meet_client_status(c.as_ptr(), &mut out, err.as_mut_ptr(), err.len()) };
    check(st, &err)?;
    // SAFETY: the client strlcpy's into version, so it is NUL-terminated.
    let version = unsafe { CStr::from_ptr(out.version.as_ptr()) }.to_string_lossy().into_owned();
    Ok(MeetStatus { pid: out.pid, version, counters: out.counters.into() })
}

/// The update's UID (MS-FRS2: database GUID and version), e.g.
/// `("00000000-0000-0000-0000-000000000000", 0)` when there is none.
pub fn install(
    conf: &Path,
    share: &str,
    path: &str,
    staged: &str,
    uid: (&str, u64),
    flags: u32,
) -> Result<(), CallError> {
    let (c, s, p, f) = (conf_cstring(conf)?, cstring(share)?, cstring(path)?, cstring(staged)?);
    let g = cstring(uid.0)?;
    let mut err = [0 as c_char; 1024];
    // SAFETY: valid C strings and err buffer length.
    let st = unsafe {
        dfsr_meet_client_install(
            c.as_ptr(),
            s.as_ptr(),
            p.as_ptr(),
            f.as_ptr(),
            g.as_ptr(),
            uid.1,
            flags,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    check(st, &err).map(|_| ())
}

pub fn remove(conf: &Path, share: &str, path: &str, uid: (&str, u64), flags: u32) -> Result<(), CallError> {
    let (c, s, p, g) = (conf_cstring(conf)?, cstring(share)?, cstring(path)?, cstring(uid.0)?);
    let mut err = [0 as c_char; 1024];
    // SAFETY: valid C strings and err buffer length.
    let st = unsafe {
        dfsr_meet_client_remove(c.as_ptr(), s.as_ptr(), p.as_ptr(), g.as_ptr(), uid.1, flags, err.as_mut_ptr(), err.len())
    };
    check(st, &err).map(|_| ())
}

pub fn move_path(conf: &Path, share: &str, path: &str, new_path: &str, flags: u32) -> Result<(), CallError> {
    let (c, s, p, n) = (conf_cstring(conf)?, cstring(share)?, cstring(path)?, cstring(new_path)?);
    let mut err = [0 as c_char; 1024];
    // SAFETY: valid C strings and err buffer length.
    let st = unsafe {
        dfsr_meet_client_move(c.as_ptr(), s.as_ptr(), p.as_ptr(), n.as_ptr(), flags, err.as_mut_ptr(), err.len())
    };
    check(st, &err).map(|_| ())
}
