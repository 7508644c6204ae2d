//! `dfsrctl xpress compress|decompress IN OUT`: raw MS-XCA LZ77+Huffman
//! streams (the format of shared/testdata/xca/compressed-huffman/*.lzhuff).
//!
//! Wiring in main.rs:
//! ```ignore
//! mod xpress;
//! // in enum Command:
//! /// LZ77+Huffman (MS-XCA) streams
//! Xpress {
//!     #[command(subcommand)]
//!     cmd: xpress::XpressCommand,
//! },
//! // in main():
//! Command::Xpress { cmd } => xpress::run(cmd).map_err(CliError::Other),
//! // with CliError gaining: #[error("{0}")] Other(Box<dyn std::error::Error>),
//! ```
//! An error names the file and, for corrupt data, the byte offset.

use clap::Subcommand;
use samba_dfsr::staging::xpress;
use std::path::PathBuf;

#[derive(Subcommand, Debug, Clone)]
pub enum XpressCommand {
    /// Compress IN into an MS-XCA LZ77+Huffman stream OUT.
    Compress { input: PathBuf, output: PathBuf },
    /// Decompress the MS-XCA stream IN into OUT.
    Decompress {
        input: PathBuf,
        output: PathBuf,
        /// Exact decompressed size, when known (the stream does not record
        /// it; without it the end is found from the EOF symbol).
        #[arg(long)]
        size: Option<usize>,
        /// Refuse to produce more than this many bytes.
        #[arg(long, default_value_t = 1 << 32)]
        limit: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum XpressCliError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Corrupt { path: PathBuf, source: xpress::XpressError },
}

/// Runs one `dfsrctl xpress` subcommand. The streams are whole-buffer
/// operations (an MS-XCA stream has no framing to stream by).
pub fn run(cmd: &XpressCommand) -> Result<(), Box<dyn std::error::Error>> {
    run_typed(cmd).map_err(|e| e.into())
}

pub fn run_typed(cmd: &XpressCommand) -> Result<(), XpressCliError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|source| XpressCliError::Io { path: p.clone(), source });
    let write = |p: &PathBuf, d: &[u8]| std::fs::write(p, d).map_err(|source| XpressCliError::Io { path: p.clone(), source });
    match cmd {
        XpressCommand::Compress { input, output } => {
            let data = read(input)?;
            write(output, &xpress::compress(&data))
        }
        XpressCommand::Decompress { input, output, size, limit } => {
            let data = read(input)?;
            let out = match size {
                Some(n) => xpress::decompress(&data, *n),
                None => xpress::decompress_unknown_size(&data, *limit),
            }
            .map_err(|source| XpressCliError::Corrupt { path: input.clone(), source })?;
            write(output, &out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_then_decompress_files() {
        let dir = std::env::temp_dir().join(format!("dfsrctl-xpress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a"), dir.join("a.lzhuff"), dir.join("a.out"));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        std::fs::write(&a, &data).unwrap();
        run_typed(&XpressCommand::Compress { input: a.clone(), output: b.clone() }).unwrap();
        run_typed(&XpressCommand::Decompress { input: b.clone(), output: c.clone(), size: None, limit: 1 << 30 }).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), data);
        std::fs::write(&b, b"junk").unwrap();
        let e = run_typed(&XpressCommand::Decompress { input: b.clone(), output: c.clone(), size: Some(10), limit: 1 << 30 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.lzhuff") && e.contains("offset 0"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
