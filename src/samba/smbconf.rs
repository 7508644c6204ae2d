//! smb.conf as Samba itself reads it, for programs outside smbd: we run
//! Samba's `testparm -s` (includes, `config backend = registry` and
//! defaults handled by Samba) and parse its canonical output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/samba/smb.conf";

#[derive(Debug, thiserror::Error)]
pub enum SmbConfError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot run testparm: {source}")]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("{path}: testparm refused the configuration: {stderr}")]
    Rejected { path: PathBuf, stderr: String },
    #[error("{path}: line {line} of testparm's output is not a section or `key = value`: {text:?}")]
    Syntax { path: PathBuf, line: usize, text: String },
    #[error("{path}: no state directory")]
    NoStateDirectory { path: PathBuf },
}

/// One section: `[global]` or a share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub params: Vec<(String, String)>,
}

impl Section {
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Value of a plain parameter, compared like Samba (case and spaces
    /// ignored).
    pub fn get(&self, key: &str) -> Option<&str> {
        let norm = |s: &str| -> String {
            s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
        };
        let want = norm(key);
        self.params.iter().find(|(k, _)| norm(k) == want).map(|(_, v)| v.as_str())
    }
}

/// A parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmbConf {
    pub path: PathBuf,
    pub global: Section,
    pub shares: Vec<Section>,
}

impl SmbConf {
    /// Loads `path` through `testparm -s`.
    pub fn load(path: &Path) -> Result<SmbConf, SmbConfError> {
        // testparm only says "Error loading services" for a missing file.
        std::fs::File::open(path).map_err(|source| SmbConfError::Read { path: path.into(), source })?;
        let out = Command::new("testparm")
            .arg("-s")
            .arg(path)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| SmbConfError::Spawn { path: path.into(), source })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let why = stderr
                .lines()
                .filter(|l| !l.starts_with("Load smb config files from"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(SmbConfError::Rejected { path: path.into(), stderr: why });
        }
        Self::parse(path, &String::from_utf8_lossy(&out.stdout))
    }

    /// Parses testparm's canonical output (`[section]`, `\tkey = value`).
    pub fn parse(path: &Path, text: &str) -> Result<SmbConf, SmbConfError> {
        let mut conf = SmbConf { path: path.into(), ..Default::default() };
        let mut current: Option<Section> = None;
        let finish = |sec: Option<Section>, conf: &mut SmbConf| {
            if let Some(sec) = sec {
                if sec.name.eq_ignore_ascii_case("global") {
                    conf.global = sec;
                } else {
                    conf.shares.push(sec);
                }
            }
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                finish(current.take(), &mut conf);
                current = Some(Section { name: name.to_string(), params: Vec::new() });
                continue;
            }
            let syntax = || SmbConfError::Syntax { path: path.into(), line: i + 1, text: raw.into() };
            let (k, v) = line.split_once('=').ok_or_else(syntax)?;
            let sec = current.as_mut().ok_or_else(syntax)?;
            sec.params.push((k.trim().to_string(), v.trim().to_string()));
        }
        finish(current.take(), &mut conf);
        Ok(conf)
    }
}

/// Samba's state directory of `path` (where our TDBs live).
pub fn state_directory(path: &Path) -> Result<PathBuf, SmbConfError> {
    let dir = parameter(path, "state directory")?;
    if dir.is_empty() {
        return Err(SmbConfError::NoStateDirectory { path: path.into() });
    }
    Ok(PathBuf::from(dir))
}

/// One parameter's effective value as Samba computes it (defaults,
/// includes, registry), via `testparm -s --parameter-name=NAME PATH`;
/// e.g. `parameter(conf, "state directory")`.
pub fn parameter(path: &Path, name: &str) -> Result<String, SmbConfError> {
    // testparm only says "Error loading services" for a missing file.
    std::fs::File::open(path).map_err(|source| SmbConfError::Read { path: path.into(), source })?;
    let out = Command::new("testparm")
        .arg("-s")
        .arg(format!("--parameter-name={name}"))
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| SmbConfError::Spawn { path: path.into(), source })?;
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // testparm also exits 1 for warnings about the configuration (e.g. a
    // state directory that does not exist yet) after printing the value;
    // only no value at all (an unknown parameter) is a failure.
    if !out.status.success() && value.is_empty() {
        let why = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("Load smb config files from"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(SmbConfError::Rejected { path: path.into(), stderr: why });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_parametric_options() {
        let text = "# Global parameters\n[global]\n\tdfsr:rpc port = 5722\n\tlog level = 3\n\n\
                    [data]\n\tpath = /srv/data\n\tdfsr:mode = on\n\tvfs objects = dfsr acl_xattr\n";
        let c = SmbConf::parse(Path::new("x.conf"), text).unwrap();
        assert_eq!(c.global.get("Log Level"), Some("3"));
        assert_eq!(c.shares.len(), 1);
        assert_eq!(c.shares[0].name, "data");
        assert_eq!(c.shares[0].get("vfs objects"), Some("dfsr acl_xattr"));
        assert_eq!(c.shares[0].get("dfsr:mode"), Some("on"));
    }

    #[test]
    fn garbage_is_an_error_with_the_line() {
        let e = SmbConf::parse(Path::new("x.conf"), "[global]\nnot a parameter\n").unwrap_err();
        assert!(matches!(e, SmbConfError::Syntax { line: 2, .. }), "{e}");
        let e = SmbConf::parse(Path::new("x.conf"), "key = before any section\n").unwrap_err();
        assert!(matches!(e, SmbConfError::Syntax { line: 1, .. }), "{e}");
    }

    #[test]
    fn parameter_asks_testparm() {
        let dir = std::env::temp_dir().join(format!("dfsr-smbconf-param-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("smb.conf");
        let state = dir.join("state");
        std::fs::write(&conf, format!("[global]\n\tstate directory = {}\n", state.display())).unwrap();
        // The directory does not exist: testparm complains but the value stands.
        assert_eq!(parameter(&conf, "state directory").unwrap(), state.display().to_string());
        assert_eq!(parameter(&conf, "workgroup").unwrap(), "WORKGROUP");
        let e = parameter(&conf, "no such parameter").unwrap_err();
        assert!(matches!(e, SmbConfError::Rejected { .. }), "{e}");
        let e = parameter(&dir.join("missing.conf"), "state directory").unwrap_err();
        assert!(matches!(e, SmbConfError::Read { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
