//! The `dfsr:*` parametric options of smb.conf, as Samba resolves them: a
//! share's own value wins over `[global]`; names compare like Samba's
//! `strwicmp` (case-insensitive, whitespace ignored). Pure: the module gets
//! the pairs from the C shim, dfsrctl from `testparm`.

pub mod replication;

use std::collections::BTreeMap;

/// Prefix of our parametric options (`dfsr:name = value`).
pub const PREFIX: &str = "dfsr";

/// Where an effective value was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Share,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Share => "share",
        }
    }
}

/// One effective option: its name as written in smb.conf (without the
/// `dfsr:` prefix), its value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionValue {
    pub name: String,
    pub value: String,
    pub scope: Scope,
}

/// The effective `dfsr:*` options of one share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    by_key: BTreeMap<String, OptionValue>,
}

/// Samba compares parametric names with `strwicmp`: case and whitespace do
/// not count.
fn normalize(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// `Some(option name)` when `key` is `dfsr:<name>` (any case/spacing).
fn dfsr_option_name(key: &str) -> Option<&str> {
    let (kind, name) = key.split_once(':')?;
    (normalize(kind) == PREFIX && !name.trim().is_empty()).then(|| name.trim())
}

impl Options {
    /// Resolves the options of a share from the `[global]` pairs and the
    /// share's own pairs (any parametric or plain parameters; only `dfsr:*`
    /// are kept).
    pub fn resolve<'a, G, S>(global: G, share: S) -> Options
    where
        G: IntoIterator<Item = (&'a str, &'a str)>,
        S: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut by_key = BTreeMap::new();
        let pairs = global
            .into_iter()
            .map(|p| (p, Scope::Global))
            .chain(share.into_iter().map(|p| (p, Scope::Share)));
        for ((key, value), scope) in pairs {
            if let Some(name) = dfsr_option_name(key) {
                let v = OptionValue { name: name.to_string(), value: value.to_string(), scope };
                by_key.insert(normalize(name), v);
            }
        }
        Options { by_key }
    }

    /// The value of `dfsr:<name>`, if set anywhere that applies.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.by_key.get(&normalize(name)).map(|v| v.value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &OptionValue> {
        self.by_key.values()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A boolean as Samba's loadparm reads one (`set_boolean`): yes/no,
/// true/false, on/off, 1/0, any case; None for anything else.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Share options the meet reads in dfsrd, with their defaults.
pub mod meet_options {
    /// Removes by replication keep the file in ConflictAndDeleted.
    pub const KEEP_DELETED: (&str, bool) = ("keep deleted", true);
    /// A staged file's reparse point may be installed (symbolic links).
    pub const INSTALL_REPARSE: (&str, bool) = ("install reparse", false);
}

impl std::fmt::Display for Options {
    /// `{name=value, …}` in name order, for log lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", v.name, v.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_read_like_loadparm() {
        for v in ["yes", "True", "ON", "1", " yes "] {
            assert_eq!(super::parse_bool(v), Some(true), "{v}");
        }
        for v in ["no", "FALSE", "off", "0"] {
            assert_eq!(super::parse_bool(v), Some(false), "{v}");
        }
        assert_eq!(super::parse_bool("maybe"), None);
        assert_eq!(super::parse_bool(""), None);
    }

    use super::*;

    #[test]
    fn share_value_overrides_global_and_others_are_ignored() {
        let global = [("dfsr:rpc port", "5722"), ("dfsr:mode", "a"), ("log level", "3")];
        let share = [("DFSR:Mode", "b"), ("acl_xattr:ignore system acls", "yes")];
        let o = Options::resolve(global, share);
        assert_eq!(o.len(), 2);
        assert_eq!(o.get("rpc port"), Some("5722"));
        assert_eq!(o.get("mode"), Some("b"));
        let mode = o.iter().find(|v| v.name == "Mode").unwrap();
        assert_eq!(mode.scope, Scope::Share);
        assert_eq!(o.get("log level"), None);
    }

    #[test]
    fn names_compare_like_strwicmp() {
        let o = Options::resolve([("dfsr : Install Reparse", "no")], []);
        assert_eq!(o.get("installreparse"), Some("no"));
        assert_eq!(o.get("INSTALL  reparse"), Some("no"));
    }

    #[test]
    fn malformed_keys_are_not_options() {
        let o = Options::resolve([("dfsr:", "x"), ("dfsr", "y"), ("dfsrx:a", "z")], []);
        assert!(o.is_empty());
    }

    #[test]
    fn display_lists_in_name_order() {
        let o = Options::resolve([("dfsr:b", "2"), ("dfsr:a", "1")], []);
        assert_eq!(o.to_string(), "{a=1, b=2}");
    }
}
