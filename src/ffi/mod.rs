//! All `unsafe` code and all FFI of the crate.
//!
//! - [`sys`]: bindgen's view of the Samba headers of the prepared tree that
//!   matches the installed smbd (see `build.rs`).
//! - `shims`: bindgen's view of the C shims' headers (`src/c/*.h`), the
//!   prototypes of every shim function Rust calls.
//! - [`exports`]: the `extern "C"` functions the C shim calls, one file per
//!   caller (vfs, namespace, meet, rpc); cbindgen
//!   turns them into `include/dfsr.h`.
//! - [`debug`]: safe calls into Samba's debug system.
//! - [`gensec`]: Samba's gensec as the DCE/RPC security provider of the
//!   MS-FRS2 wire (server in dfsrd, client).
//! - [`meet_client`]: the IRPC client of the meet in dfsrd (for dfsrctl).
//! - [`meet_vfs`]: the meet's VFS primitives (share, open file); meaningful in dfsrd.
//! - [`signals`]: waiting for SIGINT/SIGTERM (demo, daemons).
//! - [`sync_fs`]: syncfs(2), many files made durable with one flush.
//! - [`tcp`]: TCP connections with pre-connect options (`TCP_MAXSEG`).

pub mod debug;
pub mod exports;
pub mod file_regions;
pub mod gensec;
pub mod meet_client;
pub mod meet_vfs;
pub mod signals;
pub mod sync_fs;
pub mod tcp;

/// Bindgen output; the lint allowances live here and nowhere else.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unnecessary_transmutes,
    clippy::all
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/samba_bindings.rs"));
}

/// Bindgen's view of the C shims' headers (`src/c/gensec_shim.h`,
/// `meet_client.h`, `meet_vfs.h`): the one declaration of every shim
/// function Rust calls.
#[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
pub(crate) mod shims {
    include!(concat!(env!("OUT_DIR"), "/shim_bindings.rs"));
}

#[cfg(test)]
mod tests {
    use super::sys;

    /// Sizes measured on Debian's own 4.17.12 build (shared notes). If the
    /// prepared tree ever drifts from the installed Samba, this fails before
    /// a module with a wrong ABI is loaded into smbd.
    #[test]
    fn struct_sizes_match_debians_samba() {
        assert_eq!(std::mem::size_of::<sys::vfs_fn_pointers>(), 800);
        assert_eq!(std::mem::size_of::<sys::connection_struct>(), 240);
        assert_eq!(std::mem::size_of::<sys::files_struct>(), 344);
        assert_eq!(sys::SMB_VFS_INTERFACE_VERSION, 47);
    }

    /// include/dfsr.h is committed (the C side compiles against it); it must
    /// be what cbindgen makes of the current exports.
    #[test]
    fn committed_header_is_current() {
        let fresh = std::fs::read_to_string(env!("DFSR_GENERATED_HEADER")).unwrap();
        let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/dfsr.h");
        let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
        assert!(
            fresh == committed,
            "{committed_path} is stale: run `make header` and commit it"
        );
    }
}
