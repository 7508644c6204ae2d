//! syncfs(2): one flush of a whole filesystem, for writers that make many
//! small files durable together (one device flush instead of one per file).

use std::os::fd::AsRawFd;

/// Makes everything written to the filesystem holding `dir` durable.
pub fn sync_filesystem_of(dir: &std::path::Path) -> std::io::Result<()> {
    let f = std::fs::File::open(dir)?;
    // SAFETY: the descriptor is open for the duration of the call (owned by
    // `f`); syncfs only reads it.
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
