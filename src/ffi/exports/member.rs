//! Called by dfsrd for its member child (`src/c/dfsrd.c`): the
//! replication member of [`crate::member::run`].

use super::string;
use std::ffi::{c_char, c_int};

/// Runs the member in the calling process, which must have initialised
/// Samba (a dfsrd child after `reinit_after_fork`); returns only when it
/// cannot work at all (1, the reason logged): dfsrd restarts it.
/// `member_name` is `dfsr:member name` (empty: `netbios_name`);
/// `credentials` is `dfsr:partner credentials` (empty: not set); the
/// intervals are `dfsr:poll interval` and `dfsr:scan interval`;
/// `scan_at_start` is `dfsr:scan at start`.
///
/// # Safety
/// Every pointer is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_member_run(
    state_dir: *const c_char,
    member_name: *const c_char,
    netbios_name: *const c_char,
    credentials: *const c_char,
    workgroup: *const c_char,
    poll_interval_secs: u32,
    scan_interval_secs: u32,
    scan_at_start: bool,
) -> c_int {
    // SAFETY: forwarded caller contract.
    let (state_dir, member, netbios, creds, workgroup) = unsafe {
        (string(state_dir), string(member_name), string(netbios_name), string(credentials), string(workgroup))
    };
    let settings = crate::member::run::Settings {
        dir: std::path::Path::new(&state_dir).join(crate::store::DIR_NAME),
        member: crate::config::replication::local_member_name(Some(&member), &netbios),
        credentials: (!creds.is_empty()).then(|| creds.into()),
        workgroup,
        poll_interval: std::time::Duration::from_secs(u64::from(poll_interval_secs.max(1))),
        scan_interval: std::time::Duration::from_secs(u64::from(scan_interval_secs.max(1))),
        scan_at_start,
    };
    match crate::member::run::run(&settings) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(member = settings.member.as_str(), "member: cannot run: {e}");
            1
        }
    }
}
