//! Called by dfsrd for its MS-FRS2 listener (`src/c/dfsrd.c`).

use super::string;
use std::ffi::{c_char, c_int};

/// Opens dfsrd's MS-FRS2 listening sockets on `port` where smbd would
/// listen ([`crate::net::rpc_server::listen_addresses`]: `dfsr:rpc
/// address`, else smb.conf's `interfaces` under `bind interfaces only`);
/// writes their descriptors to `fds` and returns how many (0: none; the
/// reasons are logged).
///
/// # Safety
/// `address` and each of the `n_interfaces` entries of `interfaces` are
/// NULL or NUL-terminated strings valid for the call; `fds` has room for
/// `max_fds` descriptors.
#[no_mangle]
pub unsafe extern "C" fn dfsr_rpc_listen(
    address: *const c_char,
    port: u16,
    bind_interfaces_only: bool,
    interfaces: *const *const c_char,
    n_interfaces: usize,
    fds: *mut c_int,
    max_fds: usize,
) -> c_int {
    // SAFETY: forwarded caller contract.
    let address = unsafe { string(address) };
    let mut ifaces = Vec::new();
    for i in 0..n_interfaces {
        // SAFETY: interfaces has n_interfaces valid entries (caller contract).
        ifaces.push(unsafe { string(*interfaces.add(i)) });
    }
    let mut n = 0usize;
    for a in crate::net::rpc_server::listen_addresses(&address, bind_interfaces_only, &ifaces) {
        if n >= max_fds {
            tracing::error!(max = max_fds, "rpc: too many listen addresses; {a:?} and the rest left out");
            break;
        }
        let shown = if a.is_empty() { "all IPv4 addresses" } else { a.as_str() };
        match crate::net::rpc_server::listen(&a, port) {
            Ok(l) => {
                tracing::info!(address = shown, port, "rpc: listening for MS-FRS2 (ncacn_ip_tcp)");
                // SAFETY: n < max_fds, and fds has max_fds entries.
                unsafe { *fds.add(n) = std::os::fd::IntoRawFd::into_raw_fd(l) };
                n += 1;
            }
            Err(e) => tracing::error!(address = shown, port, error = %e, "rpc: cannot listen on this address"),
        }
    }
    if n == 0 {
        tracing::error!(port, "rpc: no address to listen on; MS-FRS2 wire disabled");
    }
    n as c_int
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
    fds: *const c_int,
    n_fds: usize,
    state_dir: *const c_char,
    allow: *const c_char,
    member_name: *const c_char,
    netbios_name: *const c_char,
) -> c_int {
    let mut listeners = Vec::new();
    for i in 0..n_fds {
        // SAFETY: fds has n_fds entries, each an open listening socket
        // whose ownership the caller transfers.
        listeners.push(unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(*fds.add(i)) });
    }
    // SAFETY: forwarded caller contract.
    let (state_dir, allow, member, netbios) =
        unsafe { (string(state_dir), string(allow), string(member_name), string(netbios_name)) };
    let member = crate::config::replication::local_member_name(Some(&member), &netbios);
    let state = crate::member::serve::served_state(std::path::Path::new(&state_dir), &allow, &member);
    let security = crate::ffi::gensec::server_maker();
    match crate::net::rpc_server::serve::<crate::member::serve::FrsService>(listeners, security, state) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "rpc: listener stopped");
            1
        }
    }
}
