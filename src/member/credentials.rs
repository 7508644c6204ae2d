//! The account this member logs in to its partners with
//! (`dfsr:partner credentials = FILE`), in smbclient's authentication-file
//! format (`smbclient -A`): `username = `, `password = `, `domain = `
//! lines. The file holds a password: it is refused when anyone but its
//! owner may read or write it, like ssh refuses a private key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A partner account.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    /// Empty: smb.conf's `workgroup` applies.
    pub domain: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("domain", &self.domain).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("dfsr:partner credentials is not set: the member has no account to log in to its partners with")]
    NotSet,
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error("{path}: mode {mode:04o} lets others read or change the password; chmod 600 it")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} line {line}: {why}")]
    Syntax { path: PathBuf, line: usize, why: String },
    #[error("{path}: no username")]
    NoUser { path: PathBuf },
}

/// Parses the file's text (pure). A `username` of `DOMAIN\user` or
/// `DOMAIN/user` sets the domain too, as smbclient reads it.
pub fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
    let mut c = Credentials { user: String::new(), domain: String::new(), password: String::new() };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(CredentialsError::Syntax { path: path.into(), line: i + 1, why: "not `name = value`".into() });
        };
        // smbclient keeps the value as written after the first '=' (a
        // password may have spaces inside); only the ends are trimmed.
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "username" => c.user = v,
            "password" => c.password = v,
            "domain" | "workgroup" => c.domain = v,
            other => {
                return Err(CredentialsError::Syntax {
                    path: path.into(),
                    line: i + 1,
                    why: format!("unknown name {other:?} (username, password, domain)"),
                })
            }
        }
    }
    if let Some((d, u)) = c.user.split_once(['\\', '/']) {
        (c.domain, c.user) = (d.to_string(), u.to_string());
    }
    if c.user.is_empty() {
        return Err(CredentialsError::NoUser { path: path.into() });
    }
    Ok(c)
}

/// Reads the file; refused when group or others have any access to it.
pub fn load(path: Option<&Path>) -> Result<Credentials, CredentialsError> {
    let path = path.ok_or(CredentialsError::NotSet)?;
    let unreadable = |e: std::io::Error| CredentialsError::Unreadable { path: path.into(), why: e.to_string() };
    let md = std::fs::metadata(path).map_err(unreadable)?;
    if md.mode() & 0o077 != 0 {
        return Err(CredentialsError::Exposed { path: path.into(), mode: md.mode() & 0o7777 });
    }
    parse(path, &std::fs::read_to_string(path).map_err(unreadable)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_smbclient_authentication_files() {
        let p = Path::new("/x");
        let c = parse(p, "username = dfsr\npassword =  pa ss=word \n# comment\ndomain = SAMBA\n").unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str(), c.domain.as_str()), ("dfsr", "pa ss=word", "SAMBA"));
        let c = parse(p, "username = DOM\\u\npassword = x").unwrap();
        assert_eq!((c.domain.as_str(), c.user.as_str()), ("DOM", "u"));
        assert!(matches!(parse(p, "password = x"), Err(CredentialsError::NoUser { .. })));
        let e = parse(p, "username = u\nbogus").unwrap_err();
        assert_eq!(e.to_string(), "/x line 2: not `name = value`");
        assert!(parse(p, "user = u").is_err());
        assert!(!format!("{c:?}").contains('x'), "Debug shows the password");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let p = std::env::temp_dir().join(format!("dfsr-creds-{}", std::process::id()));
        std::fs::write(&p, "username = u\npassword = p\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(Some(&p)).unwrap_err();
        assert!(e.to_string().contains("mode 0644"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load(Some(&p)).unwrap().user, "u");
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(load(Some(&p)), Err(CredentialsError::Unreadable { .. })));
        assert_eq!(load(None), Err(CredentialsError::NotSet));
    }
}
