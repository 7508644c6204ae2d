//! What the `dfsr` VFS module does at this stage: it passes every operation
//! to the next module (the C shim installs no other hooks) and records each
//! connect and disconnect of a share, with the share's `dfsr:*` options.

use crate::config::Options;
use crate::ffi::debug;
use crate::samba::tracing_bridge;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connections this process has made (smbd forks one process per client).
static CONNECTS: AtomicU64 = AtomicU64::new(0);

/// Called once per process from `samba_init_module`.
pub fn init(debug_class: i32) {
    debug::set_class(debug_class);
    tracing_bridge::install();
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "module loaded");
}

/// One share connection of smbd to the module.
#[derive(Debug)]
pub struct Connection {
    pub service: String,
    pub path: String,
    pub user: String,
    pub options: Options,
    /// 1 for the first connection in this process.
    pub number: u64,
}

pub fn connect(service: String, path: String, user: String, options: Options) -> Connection {
    let number = CONNECTS.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(
        share = service.as_str(),
        path = path.as_str(),
        user = user.as_str(),
        options = %options,
        connection = number,
        "connect"
    );
    Connection { service, path, user, options, number }
}

pub fn disconnect(conn: Connection) {
    tracing::info!(share = conn.service.as_str(), connection = conn.number, "disconnect");
}
