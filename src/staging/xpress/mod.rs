//! LZ77+Huffman ("XPRESS Huffman", MS-XCA §2.1-2.2): the compression DFS-R
//! applies to each FRSX block (MS-FRS2 §3.1.1.1, §3.2.4.1.14.2).
//!
//! Our own implementation: table-driven decoding ([`Decoder`]) and a
//! hash-chain compressor ([`Encoder`]). Neither allocates more than the
//! output (bounded by the caller) plus fixed tables, and malformed input
//! yields an [`XpressError`], never a panic.

mod decode;
mod encode;
pub mod huffman;

pub use decode::Decoder;
pub use encode::{Effort, Encoder};

/// Each Huffman block covers 64 KiB of output (MS-XCA §2.2.4).
pub const BLOCK_OUTPUT: usize = 1 << 16;

/// What was wrong with a compressed stream, and where (byte offsets into
/// the compressed input, or into the decompressed output).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpressError {
    #[error("compressed data ends early at input offset {offset}")]
    TruncatedInput { offset: usize },
    #[error("invalid Huffman length table at input offset {offset}: {reason}")]
    InvalidTable { offset: usize, reason: &'static str },
    #[error("invalid match length field {value} at input offset {offset} (must be at least 15)")]
    BadMatchLength { offset: usize, value: usize },
    #[error("match at output offset {output_offset} refers {distance} bytes back, before the start of the data")]
    DistanceTooFar { output_offset: usize, distance: usize },
    #[error("match of {length} bytes at output offset {output_offset} runs past the output size {limit}")]
    MatchPastEnd { output_offset: usize, length: usize, limit: usize },
    #[error("no end-of-stream symbol where the input ends (input offset {offset})")]
    MissingEnd { offset: usize },
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    LimitExceeded { limit: usize },
}

/// Compresses `input` into a new MS-XCA LZ77+Huffman stream.
pub fn compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2 + 300);
    Encoder::new().compress_into(input, &mut out);
    out
}

/// Decompresses a stream whose decompressed size is known exactly.
pub fn decompress(input: &[u8], size: usize) -> Result<Vec<u8>, XpressError> {
    let mut out = Vec::new();
    Decoder::new().decompress_exact(input, size, &mut out)?;
    Ok(out)
}

/// Decompresses a stream of unknown size, ending at its EOF symbol, but
/// never producing more than `limit` bytes.
pub fn decompress_unknown_size(input: &[u8], limit: usize) -> Result<Vec<u8>, XpressError> {
    let mut out = Vec::new();
    Decoder::new().decompress_unknown(input, limit, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;

/// Test helpers shared with the other staging modules' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::noise;
}
