//! Why a share's VFS stack cannot be opened (issue 12). Samba's
//! `create_conn_struct_tos_cwd` answers only OBJECT_NAME_NOT_FOUND when a
//! `vfs objects` module cannot be loaded; the module and the path are in
//! its log at level 0, not in the answer. This finds them again, the way
//! `vfs_init_custom` (source3/smbd/vfs.c) and `smb_load_module`
//! (lib/util/modules.c) look: built-in modules first, then
//! `<modules dir>/vfs/NAME.so`, which must dlopen and have
//! `samba_init_module`.

use crate::ffi::meet_vfs::{self, ModuleLoadError};
use std::fmt;
use std::path::Path;

/// What is wrong with one module of a share's `vfs objects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleFault {
    /// `smb_load_module` refuses names with a `/`.
    PathGiven,
    /// Not built in, and no file where Samba looks.
    Missing { path: String },
    /// The file is there but does not load as a Samba module.
    Unloadable { path: String, error: ModuleLoadError },
}

/// The module that stops a share's VFS stack, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFault {
    pub module: String,
    pub fault: ModuleFault,
}

impl fmt::Display for StackFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.module;
        match &self.fault {
            ModuleFault::PathGiven => {
                write!(f, "vfs objects module '{m}' is a path; Samba loads modules only by name")
            }
            ModuleFault::Missing { path } => write!(
                f,
                "vfs objects module '{m}' is not built into Samba and {path} does not exist \
                 (Debian ships Samba's own VFS modules in the package samba-vfs-modules)"
            ),
            ModuleFault::Unloadable { path, error: ModuleLoadError::Open(e) } => {
                write!(f, "vfs objects module '{m}': {path} does not load: {e}")
            }
            ModuleFault::Unloadable { path, error: ModuleLoadError::NoInitFunction } => {
                write!(f, "vfs objects module '{m}': {path} is not a Samba module (no samba_init_module)")
            }
        }
    }
}

/// The module name of a `vfs objects` entry (`name:param` → `name`).
pub fn module_name(entry: &str) -> &str {
    entry.split(':').next().unwrap_or("").trim()
}

/// The names in the text of a `static_init_vfs` macro
/// (`{ vfs_default_init((NULL)); vfs_posixacl_init((NULL)); }`).
pub fn builtin_names(macro_text: &str) -> Vec<String> {
    macro_text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|tok| tok.strip_prefix("vfs_")?.strip_suffix("_init"))
        .map(str::to_owned)
        .collect()
}

/// The first module, in the order Samba loads them (the last entry first),
/// that cannot be loaded: not in `builtin`, and `probe` fails for
/// `<modules_dir>/vfs/NAME.so`. `probe` answers None when the file does
/// not exist.
pub fn find_fault(
    entries: &[String],
    builtin: &[String],
    modules_dir: &str,
    probe: impl Fn(&str) -> Option<Result<(), ModuleLoadError>>,
) -> Option<StackFault> {
    entries.iter().rev().find_map(|entry| {
        let module = module_name(entry);
        if module.is_empty() || builtin.iter().any(|b| b == module) {
            return None;
        }
        let fault = if module.contains('/') {
            ModuleFault::PathGiven
        } else {
            let path = format!("{modules_dir}/vfs/{module}.so");
            match probe(&path) {
                None => ModuleFault::Missing { path },
                Some(Err(error)) => ModuleFault::Unloadable { path, error },
                Some(Ok(())) => return None,
            }
        };
        Some(StackFault { module: module.to_owned(), fault })
    })
}

/// Where Samba looks for `share`'s modules, as [`find_fault`] takes it:
/// the share's entries, the built-in names, the module directory, and a
/// probe of the file system and the loader. None for an unknown share.
fn look_up(share: &str) -> Option<(Vec<String>, Vec<String>, String)> {
    let entries = meet_vfs::share_vfs_objects(share)?;
    Some((entries, builtin_names(&meet_vfs::builtin_modules_text()), meet_vfs::modules_dir()))
}

fn probe(path: &str) -> Option<Result<(), ModuleLoadError>> {
    Path::new(path).exists().then(|| meet_vfs::probe_module(path))
}

/// Why `share` does not open, as far as can be told from outside Samba:
/// a module that does not load, or a path that does not exist. None when
/// neither (then a module's connect refused; Samba's log says which).
pub fn diagnose(share: &str) -> Option<String> {
    let (entries, builtin, dir) = look_up(share)?;
    if let Some(fault) = find_fault(&entries, &builtin, &dir, probe) {
        return Some(fault.to_string());
    }
    let path = meet_vfs::share_path(share)?;
    match std::fs::metadata(&path) {
        Err(e) => Some(format!("the share's path {path}: {e}")),
        Ok(m) if !m.is_dir() => Some(format!("the share's path {path} is not a directory")),
        Ok(_) => None,
    }
}

/// For dfsrd's start-up check: every module that does not load (not only
/// the first Samba would stop at), when `share` stacks `dfsr`; nothing for
/// other shares and unknown ones.
pub fn faults_of_dfsr_share(share: &str) -> Vec<StackFault> {
    let Some((entries, builtin, dir)) = look_up(share) else { return Vec::new() };
    if !entries.iter().any(|e| module_name(e) == "dfsr") {
        return Vec::new();
    }
    entries.iter().filter_map(|e| find_fault(std::slice::from_ref(e), &builtin, &dir, probe)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn builtin_names_from_samba_macro_text() {
        let text = "{ vfs_default_init((NULL));  vfs_not_implemented_init((NULL));  vfs_posixacl_init((NULL)); }";
        assert_eq!(builtin_names(text), v(&["default", "not_implemented", "posixacl"]));
        // An undefined macro stays unexpanded: no built-ins known.
        assert!(builtin_names("static_init_vfs(NULL)").is_empty());
    }

    /// The built-in list compiled from the prepared tree is the installed
    /// smbd's (`smbd -b`, "Builtin modules"): else dfsrd would blame, or
    /// excuse, the wrong module.
    #[test]
    fn builtin_modules_are_the_installed_smbds() {
        let out = std::process::Command::new("smbd").arg("-b").output().expect("run smbd -b");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().skip_while(|l| !l.starts_with("Builtin modules:")).nth(1).expect("smbd -b lists builtin modules");
        let mut smbd: Vec<String> =
            line.split_whitespace().filter_map(|m| m.strip_prefix("vfs_")).map(str::to_owned).collect();
        let mut ours = builtin_names(&meet_vfs::builtin_modules_text());
        smbd.sort();
        ours.sort();
        assert!(!ours.is_empty());
        assert_eq!(ours, smbd);
    }

    #[test]
    fn module_name_drops_the_parameter() {
        assert_eq!(module_name(" streams_xattr "), "streams_xattr");
        assert_eq!(module_name("shadow_copy2:snapdir"), "shadow_copy2");
    }

    #[test]
    fn the_module_samba_stops_at_is_reported() {
        // Samba loads the last entry first: dfsr loads, streams_xattr is
        // missing, acl_xattr would be next but is never reached.
        let entries = v(&["acl_xattr", "streams_xattr", "dfsr"]);
        let probe = |p: &str| if p.ends_with("/dfsr.so") { Some(Ok(())) } else { None };
        let f = find_fault(&entries, &v(&["default", "posixacl"]), "/usr/lib/x/samba", probe).unwrap();
        assert_eq!(f.module, "streams_xattr");
        assert_eq!(f.fault, ModuleFault::Missing { path: "/usr/lib/x/samba/vfs/streams_xattr.so".into() });
        let text = f.to_string();
        assert!(text.contains("'streams_xattr'") && text.contains("/usr/lib/x/samba/vfs/streams_xattr.so"), "{text}");
    }

    #[test]
    fn builtin_modules_are_not_looked_for_on_disk() {
        let entries = v(&["posixacl", "default"]);
        assert_eq!(find_fault(&entries, &v(&["default", "posixacl"]), "/m", |_| None), None);
        let f = find_fault(&entries, &[], "/m", |_| None).unwrap();
        assert_eq!(f.module, "default");
    }

    #[test]
    fn unloadable_and_path_entries() {
        let err = ModuleLoadError::Open("undefined symbol: foo".into());
        let e2 = err.clone();
        let f = find_fault(&v(&["broken"]), &[], "/m", move |_| Some(Err(e2.clone()))).unwrap();
        assert_eq!(f.fault, ModuleFault::Unloadable { path: "/m/vfs/broken.so".into(), error: err });
        assert!(f.to_string().contains("undefined symbol: foo"));
        let f = find_fault(&v(&["/opt/x.so"]), &[], "/m", |_| Some(Ok(()))).unwrap();
        assert_eq!(f.fault, ModuleFault::PathGiven);
    }
}
