//! The initial sync of a non-primary member whose share already holds
//! files (as DFS-R does it): the primary's content wins. Before the first
//! sync, what the share holds is moved aside into
//! `DfsrPrivate/PreExisting` (same tree, nothing lost); then, for each
//! file the partner offers, a file at the same path in PreExisting whose
//! DFS-R hash (data and security) is the update's stands in for the
//! download — it is staged from the VFS, not downloaded, and counted as
//! kept. What is left in PreExisting afterwards differed from the
//! primary's content, or the primary does not have it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::engine::ids::Uid;
use crate::engine::update::Update;
use crate::store::Database;

use super::pull::KeepLocal;
use super::scan::LocalReader;
use super::vfs_reader::VfsReader;

/// Where pre-existing content goes, relative to the share.
pub const DIR: &str = "DfsrPrivate/PreExisting";

/// Moves every entry of the share (but `DfsrPrivate`) into PreExisting;
/// returns how many files and directories were there. A rename on the
/// share's file system: the files keep their data, xattrs (NT ACL, DOS
/// attributes, streams) and inode; the meet refuses paths in DfsrPrivate,
/// which only the member writes.
pub fn set_aside(share: &str, root: &Path) -> Result<u64, String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))? {
        let e = e.map_err(|e| format!("{}: {e}", root.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.eq_ignore_ascii_case(crate::meet::path::PRIVATE_NAME) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(0);
    }
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut n = 0;
    for name in names {
        n += count(&root.join(&name));
        std::fs::rename(root.join(&name), dir.join(&name)).map_err(|e| format!("[{share}] {name}: {e}"))?;
    }
    Ok(n)
}

/// Files and directories at and under `p`.
pub fn count(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => 1 + std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| count(&e.path())).sum::<u64>(),
        Ok(_) => 1,
        Err(_) => 0,
    }
}

/// Removes the directories under PreExisting that are empty now.
pub fn prune(root: &Path) {
    fn walk(p: &Path) -> bool {
        let Ok(rd) = std::fs::read_dir(p) else { return false };
        let mut empty = true;
        for e in rd.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && walk(&path) {
                let _ = std::fs::remove_dir(&path);
            } else {
                empty = false;
            }
        }
        empty
    }
    let dir = root.join(DIR);
    if walk(&dir) {
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Offers pre-existing files for downloads.
pub struct PreExisting {
    share: String,
    root: PathBuf,
    reader: Option<VfsReader>,
}

impl PreExisting {
    /// For `share` at `root`; None when it has no PreExisting content.
    pub fn of(share: &str, root: &Path) -> Option<PreExisting> {
        root.join(DIR).is_dir().then(|| PreExisting { share: share.into(), root: root.into(), reader: None })
    }
}

/// The path of `u` in its folder, from the names of its parents (as
/// received in this session, else as stored).
fn folder_path(db: &Database, received: &HashMap<Uid, Update>, u: &Update) -> Option<String> {
    let mut parts = vec![u.name.clone()];
    let mut at = u.parent;
    let root = Uid::root_of(u.content_set_id);
    for _ in 0..4096 {
        if at == root {
            parts.reverse();
            return Some(parts.join("/"));
        }
        let p = match received.get(&at) {
            Some(p) => p.clone(),
            None => db.update(&at).ok()??,
        };
        parts.push(p.name);
        at = p.parent;
    }
    None
}

impl KeepLocal for PreExisting {
    fn offer(&mut self, db: &Database, received: &HashMap<Uid, Update>, update: &Update, out: &Path) -> bool {
        if update.is_directory() || !update.present {
            return false;
        }
        let Some(rel) = folder_path(db, received, update) else { return false };
        let src = format!("{DIR}/{rel}");
        if !self.root.join(&src).is_file() {
            return false;
        }
        if self.reader.is_none() {
            match VfsReader::open(&self.share) {
                Ok(r) => self.reader = Some(r),
                Err(e) => {
                    tracing::warn!(share = self.share.as_str(), "member: pre-existing files: {}", e.reason);
                    return false;
                }
            }
        }
        let Some(reader) = self.reader.as_mut() else { return false };
        let temp = out.with_extension("kept.tmp");
        let same = match reader.stage(&src, &temp) {
            Ok(s) => s.hash == update.hash,
            Err(e) => {
                tracing::debug!(share = self.share.as_str(), "member: pre-existing {rel}: {}", e.reason);
                false
            }
        };
        if !same || std::fs::rename(&temp, out).is_err() {
            let _ = std::fs::remove_file(&temp);
            return false;
        }
        // Its content is staged now: the copy in PreExisting goes.
        let _ = std::fs::remove_file(self.root.join(&src));
        tracing::info!(share = self.share.as_str(), "member: {rel} kept from the pre-existing content, not downloaded");
        true
    }
}
