//! Where a member keeps staged files (MS-FRS2 §3.3.4.7.1 staging area):
//! one FRSX file per version of a file's content, named by its GVSN, under
//! `<state directory>/dfsr/staging` by default. The server reads them for
//! InitializeFileTransferAsync / RawGetFileData; a client writes a
//! download to a `.part` file and renames it once complete, so a staged
//! file that exists is always whole.

use std::path::{Path, PathBuf};

use crate::engine::ids::Gvsn;

/// The staging directory's name under `<state directory>/dfsr`.
pub const DIR_NAME: &str = "staging";

/// A staging directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingArea {
    dir: PathBuf,
}

impl StagingArea {
    /// The staging area in `dir` (not created here).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StagingArea { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The staged file of the content version `gvsn`.
    pub fn path_of(&self, gvsn: &Gvsn) -> PathBuf {
        self.dir.join(format!("{}-{:016x}.frsx", gvsn.db, gvsn.version))
    }

    /// Where a download of `gvsn` is written until it is complete.
    pub fn partial_path_of(&self, gvsn: &Gvsn) -> PathBuf {
        self.dir.join(format!("{}-{:016x}.frsx.part", gvsn.db, gvsn.version))
    }

    /// Makes every staged file written so far durable (with their names):
    /// one flush of the filesystem, due before a transaction that refers
    /// to files staged without a flush each.
    pub fn sync(&self) -> std::io::Result<()> {
        crate::ffi::sync_fs::sync_filesystem_of(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::Guid;

    #[test]
    fn names_are_per_version_and_partials_differ() {
        let a = StagingArea::new("/x");
        let g = |v| Gvsn::new(Guid([0xab; 16]), v);
        assert_ne!(a.path_of(&g(9)), a.path_of(&g(10)));
        assert_ne!(a.path_of(&g(9)), a.partial_path_of(&g(9)));
        assert!(a.path_of(&g(9)).starts_with("/x"));
        assert!(a.path_of(&g(9)).to_string_lossy().ends_with("-0000000000000009.frsx"));
    }
}
