//! Target paths of the meet, checked before anything is written
//! (issue 4, install semantics 1): a path is relative to the replicated
//! folder, '/'-separated, and every component must be a name Windows and
//! Samba both store as itself.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("component {index} is empty (leading, trailing or doubled '/')")]
    EmptyComponent { index: usize },
    #[error("component {index} is {name:?}, which would leave or stay in its directory")]
    DotComponent { index: usize, name: String },
    #[error("component {index} ({name:?}) contains {what} at character {at}")]
    BadCharacter { index: usize, name: String, what: &'static str, at: usize },
    #[error("component {index} is {units} UTF-16 units long; the limit is 255")]
    TooLong { index: usize, units: usize },
    #[error("component {index} ({name:?}) ends with a dot or a space, which Windows strips")]
    TrailingDotOrSpace { index: usize, name: String },
    #[error("the path is inside {name:?}, the folder's private area, which is never replicated")]
    Private { name: String },
}

/// The replicated folder's private area (staging, Installing,
/// ConflictAndDeleted): excluded from replication, so no update may name it.
pub const PRIVATE_NAME: &str = "DfsrPrivate";

/// Longest name NTFS and SMB accept, in UTF-16 code units.
pub const MAX_NAME_UTF16: usize = 255;

fn bad_char(c: char) -> Option<&'static str> {
    match c {
        '\0' => Some("NUL"),
        '/' => Some("'/'"),
        '\\' => Some("'\\'"),
        ':' => Some("':' (a stream separator)"),
        '<' | '>' | '"' | '|' | '?' | '*' => Some("a character reserved by Windows"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => Some("a control character"),
        _ => None,
    }
}

/// Checks one file or directory name; `index` is its position in a path.
pub fn check_name(index: usize, name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::EmptyComponent { index });
    }
    if name == "." || name == ".." {
        return Err(PathError::DotComponent { index, name: name.into() });
    }
    if let Some((at, what)) = name.chars().enumerate().find_map(|(i, c)| bad_char(c).map(|w| (i, w))) {
        return Err(PathError::BadCharacter { index, name: name.into(), what, at });
    }
    let units = name.encode_utf16().count();
    if units > MAX_NAME_UTF16 {
        return Err(PathError::TooLong { index, units });
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(PathError::TrailingDotOrSpace { index, name: name.into() });
    }
    Ok(())
}

/// A checked relative path: its components, none of which can leave the
/// folder lexically (symlinks are the VFS layer's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    components: Vec<String>,
}

impl RelPath {
    /// Parses a '/'-separated relative path. A backslash is not accepted as
    /// a separator: it is refused like any other reserved character.
    pub fn parse(path: &str) -> Result<RelPath, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        let components: Vec<String> = path.split('/').map(str::to_string).collect();
        for (i, c) in components.iter().enumerate() {
            check_name(i, c)?;
        }
        if components[0].eq_ignore_ascii_case(PRIVATE_NAME) {
            return Err(PathError::Private { name: components[0].clone() });
        }
        Ok(RelPath { components })
    }

    pub fn components(&self) -> &[String] {
        &self.components
    }

    pub fn file_name(&self) -> &str {
        self.components.last().map(String::as_str).unwrap_or("")
    }

    /// The parent directory, or `None` at the folder root.
    pub fn parent(&self) -> Option<RelPath> {
        (self.components.len() > 1)
            .then(|| RelPath { components: self.components[..self.components.len() - 1].to_vec() })
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_parse() {
        let p = RelPath::parse("dir/sub dir/file.txt").unwrap();
        assert_eq!(p.components(), ["dir", "sub dir", "file.txt"]);
        assert_eq!(p.file_name(), "file.txt");
        assert_eq!(p.parent().unwrap().to_string(), "dir/sub dir");
        assert!(RelPath::parse("x").unwrap().parent().is_none());
        assert!(RelPath::parse("日本語/ünïcödé").is_ok());
        assert!(RelPath::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn every_bad_name_is_refused_with_its_reason() {
        let cases: &[(&str, fn(&PathError) -> bool)] = &[
            ("", |e| matches!(e, PathError::Empty)),
            ("a//b", |e| matches!(e, PathError::EmptyComponent { index: 1 })),
            ("/abs", |e| matches!(e, PathError::EmptyComponent { index: 0 })),
            ("a/", |e| matches!(e, PathError::EmptyComponent { index: 1 })),
            ("..", |e| matches!(e, PathError::DotComponent { .. })),
            ("a/../../etc", |e| matches!(e, PathError::DotComponent { index: 1, .. })),
            ("./a", |e| matches!(e, PathError::DotComponent { index: 0, .. })),
            ("a\\b", |e| matches!(e, PathError::BadCharacter { at: 1, .. })),
            ("file:stream", |e| matches!(e, PathError::BadCharacter { at: 4, .. })),
            ("nul\0byte", |e| matches!(e, PathError::BadCharacter { what: "NUL", .. })),
            ("tab\there", |e| matches!(e, PathError::BadCharacter { what: "a control character", .. })),
            ("what?", |e| matches!(e, PathError::BadCharacter { .. })),
            ("a*b", |e| matches!(e, PathError::BadCharacter { .. })),
            ("DfsrPrivate/x", |e| matches!(e, PathError::Private { .. })),
            ("dfsrprivate", |e| matches!(e, PathError::Private { .. })),
            ("trailing.", |e| matches!(e, PathError::TrailingDotOrSpace { .. })),
            ("trailing ", |e| matches!(e, PathError::TrailingDotOrSpace { .. })),
        ];
        for (path, ok) in cases {
            let e = RelPath::parse(path).unwrap_err();
            assert!(ok(&e), "{path:?} gave {e:?}");
        }
        // 256 UTF-16 units; also a name of 128 astral characters (2 units each).
        assert!(matches!(RelPath::parse(&"a".repeat(256)), Err(PathError::TooLong { units: 256, .. })));
        assert!(matches!(RelPath::parse(&"😀".repeat(128)), Err(PathError::TooLong { units: 256, .. })));
    }
}
