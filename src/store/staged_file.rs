//! Staged files made from local files: [`crate::staging::writer`] over a
//! file's main data (plain, or its data regions when sparse) and one file
//! per alternate stream, written to `out`. The I/O half of the writer, for
//! `dfsrctl staged create`, the seed and (next) the member's change capture.

use crate::staging::writer::{self, AlternateStream, FileHeader, MainData, Part};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// What to stage: the main data's file, stream files by name, and the header.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub data: PathBuf,
    pub streams: Vec<(String, PathBuf)>,
    pub header: FileHeader,
    /// Main data as sparse blocks (only its data regions are read).
    pub sparse: bool,
}

/// A file that could not be read or written, and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StagedFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes the staged file of `spec` to `out`, streaming every input;
/// returns the DFS-R hash of the marshaled file.
pub fn create(spec: &CreateSpec, out: &Path) -> Result<[u8; 20], StagedFileError> {
    let at = |p: &Path| {
        let path = p.to_path_buf();
        move |source| StagedFileError { path, source }
    };
    let open = |p: &Path| -> Result<(File, u64), StagedFileError> {
        let f = File::open(p).map_err(at(p))?;
        let n = f.metadata().map_err(at(p))?.len();
        Ok((f, n))
    };
    let (main, size) = open(&spec.data)?;
    let mut stream_files = Vec::new();
    for (name, p) in &spec.streams {
        let (f, n) = open(p)?;
        stream_files.push((name.as_str(), BufReader::with_capacity(1 << 16, f), n));
    }
    let mut streams: Vec<AlternateStream<'_>> =
        stream_files.iter_mut().map(|(name, r, n)| AlternateStream { name, reader: r, size: *n }).collect();
    let output = BufWriter::with_capacity(1 << 16, File::create(out).map_err(at(out))?);
    let result = if spec.sparse {
        let regions = crate::ffi::file_regions::data_regions(&main, size).map_err(at(&spec.data))?;
        let mut read_at = |off: u64, buf: &mut [u8]| std::os::unix::fs::FileExt::read_exact_at(&main, buf, off);
        writer::write_staged(output, &spec.header, size, MainData::Sparse { regions: &regions, read_at: &mut read_at }, &mut streams)
    } else {
        let mut r = BufReader::with_capacity(1 << 16, &main);
        writer::write_staged(output, &spec.header, size, MainData::Plain(&mut r), &mut streams)
    };
    match result {
        Ok((_, hash)) => Ok(hash),
        Err(e) => {
            let path = match &e.part {
                Part::Main => spec.data.clone(),
                Part::Stream(name) => spec.streams.iter().find(|(n, _)| n == name).map_or_else(|| out.into(), |(_, p)| p.clone()),
                Part::Output => out.into(),
            };
            Err(StagedFileError { path, source: e.source })
        }
    }
}
