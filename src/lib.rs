//! samba-dfsr: DFS namespaces and DFS Replication for Samba.
//!
//! The map (one line per module):
//! - [`engine`]: the DFS-R replication engine — version vectors, updates,
//!   conflict rules, ordering, sessions (sans-IO, MS-FRS2 §3.3.4.6).
//! - [`ffi`]: all `unsafe` and all FFI — bindgen's view of Samba, the C API
//!   the shim in `src/c/` calls (`include/dfsr.h`, made by cbindgen).
//! - [`random`]: random bytes from the kernel (new GUIDs, context handles).
//! - [`samba`]: safe wrappers at the Samba edge — its debug log, the bridge
//!   that routes `tracing` into it, and reading smb.conf through `testparm`.
//! - [`config`]: the `dfsr:*` parametric options, global and per share (pure).
//! - [`meet`]: the installer in dfsrd that writes staged updates through a
//!   share's VFS stack, called over IRPC (`dfsr_meet`).
//! - [`member`]: the DFS-R member in dfsrd — serving replicated folders
//!   over FrsTransport, pulling from a partner (application layer).
//! - [`net`]: sockets and threads of the MS-FRS2 wire (client and server
//!   edges).
//! - [`namespace`]: DFS namespaces — the table, sites, referrals (MS-DFSC).
//! - [`store`]: the replication engine's database in TDB (crash-safe).
//! - [`staging`]: staged files — LZ77+Huffman, FRSX/XBLO framing, the
//!   marshaled MS-BKUP format (sans-IO).
//! - [`wire`]: the MS-FRS2 wire — NDR, frstrans, DCE/RPC, mgmt (sans-IO).
//! - [`sim`] (cargo feature `sim`, on by default, off in the staticlib
//!   that `dfsr.so` and dfsrd link): the deterministic multi-member
//!   simulation of one replication group over the engine.
//! - [`vfs_module`]: what the `dfsr` VFS module does when smbd connects a
//!   share to it and disconnects it.
//!
//! Data flows one way: C shim → `ffi::exports` → safe Rust; nothing outside
//! `ffi` touches a raw pointer. The compiler holds that rule: `unsafe_code`
//! is denied here and allowed only on `ffi`.
#![deny(unsafe_code)]

pub mod config;
pub mod engine;
#[allow(unsafe_code)]
pub mod ffi;
pub mod meet;
pub mod member;
pub mod namespace;
pub mod net;
pub mod random;
pub mod samba;
#[cfg(feature = "sim")]
pub mod sim;
pub mod staging;
pub mod store;
pub mod vfs_module;
pub mod wire;
