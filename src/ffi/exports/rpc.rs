//! Called by dfsrd for its MS-FRS2 listener (`src/c/dfsrd.c`).

use super::string;
use std::ffi::{c_char, c_int};

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
/// empty: any authenticated), for the connections the replication
/// configuration has from this member (`member_name`, empty:
/// `netbios_name`); returns only when the listener fails (then 1).
///
/// # Safety
/// `fd` is a listening TCP socket the caller hands over (it is closed
/// when serving ends); the strings are NULL or NUL-terminated and valid
/// for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_rpc_serve(
    fd: c_int,
    state_dir: *const c_char,
    allow: *const c_char,
    member_name: *const c_char,
    netbios_name: *const c_char,
) -> c_int {
    // SAFETY: the caller transfers ownership of an open listening socket.
    let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: forwarded caller contract.
    let (state_dir, allow, member, netbios) =
        unsafe { (string(state_dir), string(allow), string(member_name), string(netbios_name)) };
    let member = crate::config::replication::local_member_name(Some(&member), &netbios);
    let state = crate::member::serve::served_state(std::path::Path::new(&state_dir), &allow, &member);
    let security = crate::ffi::gensec::server_maker();
    match crate::net::rpc_server::serve::<crate::member::serve::FrsService>(listener, security, state) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "rpc: listener stopped");
            1
        }
    }
}
