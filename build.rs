//! Build script: bindgen over the Samba headers Rust uses (from the prepared
//! tree of the installed Samba, see tools/prepare-samba-tree), cbindgen for
//! the C API of the Rust side, and link directives for Debian's Samba
//! libraries so Rust binaries and tests link the same code smbd runs.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's private Samba libraries (the soname is what the module links).
const SAMBA_LIBDIR: &str = "/usr/lib/x86_64-linux-gnu/samba";
/// Libraries whose symbols the Rust side (and the IRPC client it bundles)
/// calls directly.
const SAMBA_LIBS: &[&str] = &[
    "libsamba-debug-samba4.so.0", "libsmbd-shim-samba4.so.0", "libMESSAGING-samba4.so.0",
    "libMESSAGING-SEND-samba4.so.0",
    "libsamba-hostconfig.so.0", "libndr.so.3", "libdcerpc-binding.so.0",
    "libsamba-util.so.0", "libsamba-errors.so.1", "libtevent.so.0", "libtalloc.so.2",
    "libtevent-util.so.0", "libbsd.so.0", "libsmbd-base-samba4.so.0", "libsmbconf.so.0",
    "libsamba-security-samba4.so.0", "libauth-samba4.so.0", "libsamba3-util-samba4.so.0",
    // gensec for the MS-FRS2 wire (src/c/gensec_shim.c).
    "libgensec-samba4.so.0", "libsamba-credentials.so.1", "libsamba-sockets-samba4.so.0",
];

/// Include paths relative to the prepared tree (shared/notes/samba-build.md;
/// lib/util is left out on purpose: it shadows <signal.h>).
pub const SAMBA_INCLUDES: &[&str] = &[
    "bin/default/include", "include", "source3", "source3/include", "lib",
    "lib/replace", ".", "bin/default", "bin/default/source3", "librpc",
    "bin/default/librpc", "source4", "bin/default/source4", "include/public",
];
const SAMBA_DEFINES: &[&str] = &[
    "_SAMBA_BUILD_=4", "HAVE_CONFIG_H=1", "_GNU_SOURCE=1",
    "_XOPEN_SOURCE_EXTENDED=1", "__STDC_WANT_LIB_EXT1__=1", "_REENTRANT",
];

fn samba_tree(manifest: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=SAMBA_DFSR_TREE");
    println!("cargo:rerun-if-env-changed=SAMBA_DFSR_CACHE");
    let out = Command::new(manifest.join("tools/samba-tree"))
        .output()
        .unwrap_or_else(|e| panic!("running tools/samba-tree: {e}"));
    if !out.status.success() {
        panic!(
            "no prepared Samba tree: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tree = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    println!("cargo:rerun-if-changed={}", tree.join(".dfsr-prepared").display());
    tree
}

/// Where the Makefile finds the same flags (it `include`s this file), so
/// the list above is the only one.
const FLAGS_MK: &str = "build/samba-flags.mk";

/// Writes [`FLAGS_MK`]: the Samba defines and include paths of `tree` as
/// `SAMBA_CPPFLAGS` for the C the Makefile compiles. Rewritten only when
/// its text changes, and whenever it is missing.
fn flags_for_make(manifest: &Path, tree: &Path) {
    let path = manifest.join(FLAGS_MK);
    println!("cargo:rerun-if-changed={}", path.display());
    let mut flags: Vec<String> = SAMBA_DEFINES.iter().map(|d| format!("-D{d}")).collect();
    flags.extend(SAMBA_INCLUDES.iter().map(|i| format!("-I{}", tree.join(i).display())));
    // The same for integration tests that compile C (tests/rpc_wire.rs).
    // Neither form survives a space in the tree's path; its path has none.
    println!("cargo:rustc-env=DFSR_SAMBA_CPPFLAGS={}", flags.join(" "));
    let text = format!(
        "# Written by build.rs (SAMBA_DEFINES, SAMBA_INCLUDES) for the Makefile; do not edit.\n\
         SAMBA_CPPFLAGS := {}\n",
        flags.join(" ")
    );
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    std::fs::create_dir_all(path.parent().expect("build/ has a parent")).expect("creating build/");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn bindgen_samba(manifest: &Path, tree: &Path, out: &Path) {
    let wrapper = manifest.join("src/ffi/samba_wrapper.h");
    println!("cargo:rerun-if-changed={}", wrapper.display());
    let mut b = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .allowlist_function("dbghdrclass|dbgtext|debuglevel_get_class")
        .allowlist_function("become_root|unbecome_root")
        .allowlist_type("vfs_fn_pointers|connection_struct|files_struct|NTSTATUS")
        .allowlist_var("DBGLVL_.*|SMB_VFS_INTERFACE_VERSION")
        .opaque_type("pthread_.*")
        .layout_tests(true)
        .derive_default(false)
        .generate_comments(false);
    for d in SAMBA_DEFINES {
        b = b.clang_arg(format!("-D{d}"));
    }
    for i in SAMBA_INCLUDES {
        b = b.clang_arg(format!("-I{}", tree.join(i).display()));
    }
    b.generate()
        .unwrap_or_else(|e| panic!("bindgen over the Samba headers in {}: {e}", tree.display()))
        .write_to_file(out.join("samba_bindings.rs"))
        .expect("writing samba_bindings.rs");
}

/// The prototypes of the C shims (src/c/*.h, standalone headers that the
/// shims themselves include), so a changed signature breaks the build
/// instead of the stack.
fn bindgen_shims(manifest: &Path, out: &Path) {
    let wrapper = manifest.join("src/ffi/shims.h");
    let dir = manifest.join("src/c");
    for h in ["gensec_shim.h", "meet_client.h", "meet_vfs.h"] {
        println!("cargo:rerun-if-changed={}", dir.join(h).display());
    }
    println!("cargo:rerun-if-changed={}", wrapper.display());
    bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .clang_arg(format!("-I{}", dir.display()))
        .clang_arg(format!("-I{}", manifest.join("include").display()))
        .allowlist_function("dfsr_(gensec|meet_client|vfs)_.*")
        .allowlist_type("DfsrMeetStatus")
        // cbindgen's type (include/dfsr.h) is the Rust one already.
        .blocklist_type("DfsrMeetCounters")
        .raw_line("use crate::ffi::exports::meet::DfsrMeetCounters;")
        .layout_tests(true)
        .derive_default(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen over {}: {e}", wrapper.display()))
        .write_to_file(out.join("shim_bindings.rs"))
        .expect("writing shim_bindings.rs");
}

fn cbindgen_header(manifest: &Path, out: &Path) {
    // One file per caller (src/ffi/exports/); cbindgen follows the `mod`
    // lines of mod.rs to the others.
    let exports: Vec<_> = ["mod.rs", "vfs.rs", "namespace.rs", "meet.rs", "rpc.rs", "children.rs"]
        .iter()
        .map(|f| manifest.join("src/ffi/exports").join(f))
        .collect();
    for e in &exports {
        println!("cargo:rerun-if-changed={}", e.display());
    }
    println!("cargo:rerun-if-changed={}", manifest.join("cbindgen.toml").display());
    println!("cargo:rerun-if-env-changed=DFSR_WRITE_HEADER");
    let config = cbindgen::Config::from_file(manifest.join("cbindgen.toml"))
        .expect("reading cbindgen.toml");
    let generated = out.join("dfsr.h");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(&exports[0])
        .generate()
        .expect("cbindgen over src/ffi/exports/")
        .write_to_file(&generated);
    // The committed include/dfsr.h is what the C side compiles against; a
    // unit test compares it with this fresh one. `make header` refreshes it.
    println!("cargo:rustc-env=DFSR_GENERATED_HEADER={}", generated.display());
    if env::var_os("DFSR_WRITE_HEADER").is_some() {
        std::fs::copy(&generated, manifest.join("include/dfsr.h")).expect("writing include/dfsr.h");
    }
}

/// Runs the prepared tree's pidl over an IDL of ours into `outdir`.
pub fn pidl(tree: &Path, idl: &Path, outdir: &Path) {
    std::fs::create_dir_all(outdir).expect("creating the pidl output directory");
    let st = Command::new("perl")
        .current_dir(tree)
        .args(["pidl/pidl", "--quiet", "--includedir", "librpc/idl", "--header", "--ndr-parser", "--client"])
        .arg("--outputdir")
        .arg(outdir)
        .arg("--")
        .arg(idl)
        .status()
        .unwrap_or_else(|e| panic!("running pidl: {e}"));
    assert!(st.success(), "pidl failed on {}", idl.display());
}

/// The C the Rust side calls: the meet's IRPC client (src/c/meet_client.c)
/// with the NDR code pidl makes of include/dfsr_meet.idl, and the meet's
/// VFS primitives (src/c/meet_vfs.c), as one static library linked into
/// the Rust side and bundled into the staticlib (dfsrd gets the NDR table
/// and the primitives from there).
fn c_parts(manifest: &Path, tree: &Path, out: &Path) {
    let idl = manifest.join("include/dfsr_meet.idl");
    let client = manifest.join("src/c/meet_client.c");
    let vfs = manifest.join("src/c/meet_vfs.c");
    let gensec = manifest.join("src/c/gensec_shim.c");
    for f in [
        &idl,
        &client,
        &vfs,
        &gensec,
        &manifest.join("src/c/meet_client.h"),
        &manifest.join("src/c/gensec_shim.h"),
        &manifest.join("src/c/meet_vfs.h"),
    ] {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let gen = out.join("gen");
    pidl(tree, &idl, &gen);
    let mut objs = Vec::new();
    for src in [client, vfs, gensec, gen.join("ndr_dfsr_meet.c"), gen.join("ndr_dfsr_meet_c.c")] {
        let obj = out.join(src.file_name().unwrap()).with_extension("o");
        let mut cc = Command::new("gcc");
        cc.args(["-c", "-O2", "-g", "-fPIC", "-Wall"]);
        for d in SAMBA_DEFINES {
            cc.arg(format!("-D{d}"));
        }
        cc.arg(format!("-I{}", gen.display()));
        cc.arg(format!("-I{}", manifest.join("src/c").display()));
        cc.arg(format!("-I{}", manifest.join("include").display()));
        for i in SAMBA_INCLUDES {
            cc.arg(format!("-I{}", tree.join(i).display()));
        }
        let st = cc.arg(&src).arg("-o").arg(&obj).status().expect("running gcc");
        assert!(st.success(), "gcc failed on {}", src.display());
        objs.push(obj);
    }
    let lib = out.join("libdfsr_c.a");
    let _ = std::fs::remove_file(&lib);
    let st = Command::new("ar").arg("crs").arg(&lib).args(&objs).status().expect("running ar");
    assert!(st.success(), "ar failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=dfsr_c");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let tree = samba_tree(&manifest);
    flags_for_make(&manifest, &tree);
    bindgen_samba(&manifest, &tree, &out);
    bindgen_shims(&manifest, &out);
    cbindgen_header(&manifest, &out);
    c_parts(&manifest, &tree, &out);

    println!("cargo:rustc-link-search=native={SAMBA_LIBDIR}");
    for lib in SAMBA_LIBS {
        println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{SAMBA_LIBDIR}");
}
