//! The Samba edge, safe side: where our Rust meets Samba's conventions.
//!
//! - [`tracing_bridge`]: `tracing` events into Samba's debug log.
//! - [`ntstatus`]: NTSTATUS codes with Samba's names.
//! - [`smbconf`]: smb.conf as Samba reads it (through `testparm`), for the
//!   programs that do not run inside smbd.

pub mod ntstatus;
pub mod smbconf;
pub mod tracing_bridge;
