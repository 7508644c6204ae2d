//! Waiting for SIGINT/SIGTERM without a handler: the signals are blocked
//! and taken with sigwait(2), so the caller can clean up in normal code.

/// Blocks SIGINT and SIGTERM for the calling thread and waits for one of
/// them; returns its number. Call it before starting other threads so they
/// inherit the mask (otherwise the signal may go to one of them).
pub fn wait_for_interrupt() -> i32 {
    // SAFETY: the sigset is a local, initialised by sigemptyset before use;
    // pthread_sigmask and sigwait only read it and write `sig`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sig: libc::c_int = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}

/// Restores the default SIGPIPE action, so a CLI whose output goes to a
/// closed pipe (`dfsrctl … | head`) ends quietly like Samba's tools
/// instead of failing on a write.
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
