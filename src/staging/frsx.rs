//! The compressed data format around a marshaled file (MS-FRS2
//! §3.2.4.1.14.2, §2.2.1.4.15): the signature `FRSX`, then XPRESS blocks,
//! each a 12-byte header {`XBLO`, compressed size, uncompressed size ≤ 8192}
//! and its data, compressed with LZ77+Huffman exactly when that is smaller
//! (sizes equal ⇒ stored raw).
//!
//! [`encode_block`]/[`parse_block_header`]/[`decode_block`] are the sans-IO
//! core; [`FrsxReader`] and [`FrsxWriter`] stream over `Read`/`Write` with
//! memory O(one block) whatever the file size: offsets are u64 and nothing
//! holds the whole file, so multi-GiB staged files work by design.

use super::xpress::{Decoder, Encoder, XpressError};
use std::io::{self, Read, Write};

/// `FRSX` (§3.2.4.1.14.2).
pub const FRSX_SIGNATURE: [u8; 4] = *b"FRSX";
/// `XBLO` (§2.2.1.4.15.1).
pub const XBLO_SIGNATURE: [u8; 4] = *b"XBLO";
/// Largest uncompressed block (§2.2.1.4.15.1, X_CONFIG_XPRESS_BLOCK_SIZE).
pub const MAX_BLOCK: usize = 8192;
/// Size of an XPRESS block header (§2.2.1.4.15.1).
pub const BLOCK_HEADER_LEN: usize = 12;

/// What was wrong with a compressed staged stream, at which byte offset of
/// the compressed stream.
#[derive(Debug, thiserror::Error)]
pub enum FrsxError {
    #[error("I/O error at compressed offset {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("not a staged file: signature {found:02x?} at offset 0, expected \"FRSX\"")]
    BadSignature { found: Vec<u8> },
    #[error("block header at offset {offset}: signature {found:02x?}, expected \"XBLO\"")]
    BadBlockSignature { offset: u64, found: [u8; 4] },
    #[error("block header at offset {offset}: compressed size {compressed}, uncompressed size {uncompressed} (need 0 < compressed ≤ uncompressed ≤ 8192)")]
    BadBlockSizes { offset: u64, compressed: u32, uncompressed: u32 },
    #[error("stream ends inside the block starting at offset {offset}")]
    Truncated { offset: u64 },
    #[error("block at offset {offset}: {source}")]
    Xpress { offset: u64, source: XpressError },
}

/// A parsed XPRESS block header (§2.2.1.4.15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub compressed: u32,
    pub uncompressed: u32,
}

impl BlockHeader {
    /// Block data was compressed (§2.2.1.4.15: compressed < uncompressed).
    pub fn is_compressed(&self) -> bool {
        self.compressed < self.uncompressed
    }
}

/// Validates a block header found at `offset` (for error messages).
pub fn parse_block_header(h: &[u8; BLOCK_HEADER_LEN], offset: u64) -> Result<BlockHeader, FrsxError> {
    let sig = [h[0], h[1], h[2], h[3]];
    if sig != XBLO_SIGNATURE {
        return Err(FrsxError::BadBlockSignature { offset, found: sig });
    }
    let compressed = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let uncompressed = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    // §2.2.1.4.15.1: 0 < compressed ≤ uncompressed ≤ 8192.
    if compressed == 0 || compressed > uncompressed || uncompressed as usize > MAX_BLOCK {
        return Err(FrsxError::BadBlockSizes { offset, compressed, uncompressed });
    }
    Ok(BlockHeader { compressed, uncompressed })
}

/// Decodes one block's data (`data.len() == header.compressed`) into `out`.
pub fn decode_block(
    header: BlockHeader,
    data: &[u8],
    decoder: &mut Decoder,
    out: &mut Vec<u8>,
    offset: u64,
) -> Result<(), FrsxError> {
    if header.is_compressed() {
        decoder
            .decompress_exact(data, header.uncompressed as usize, out)
            .map_err(|source| FrsxError::Xpress { offset, source })
    } else {
        out.clear();
        out.extend_from_slice(data);
        Ok(())
    }
}

/// Appends one block (header and data) for `data` (≤ 8192 bytes, not
/// empty) to `out`, stored raw when compression does not shrink it.
pub fn encode_block(data: &[u8], encoder: &mut Encoder, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    debug_assert!(!data.is_empty() && data.len() <= MAX_BLOCK);
    scratch.clear();
    encoder.compress_into(data, scratch);
    let stored: &[u8] = if scratch.len() < data.len() { scratch } else { data };
    out.extend_from_slice(&XBLO_SIGNATURE);
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(stored);
}

/// Reads exactly `buf.len()` bytes, or reports how many it got before EOF.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Streaming decompressor: yields the marshaled bytes of a staged file.
///
/// Header and data of a block are each read in full whatever the reads
/// return (the earlier Samba attempt read fixed 8192-byte chunks, so a raw
/// 8192-byte block plus its 12-byte header never fitted).
pub struct FrsxReader<R> {
    inner: R,
    /// Compressed bytes consumed so far.
    offset: u64,
    started: bool,
    done: bool,
    decoder: Decoder,
    compressed: Vec<u8>,
    block: Vec<u8>,
    block_pos: usize,
    /// Uncompressed bytes produced so far.
    produced: u64,
}

impl<R: Read> FrsxReader<R> {
    pub fn new(inner: R) -> Self {
        FrsxReader {
            inner,
            offset: 0,
            started: false,
            done: false,
            decoder: Decoder::new(),
            compressed: Vec::with_capacity(MAX_BLOCK),
            block: Vec::with_capacity(MAX_BLOCK),
            block_pos: 0,
            produced: 0,
        }
    }

    /// Compressed bytes consumed so far.
    pub fn compressed_offset(&self) -> u64 {
        self.offset
    }

    /// Uncompressed bytes returned so far.
    pub fn uncompressed_offset(&self) -> u64 {
        self.produced - (self.block.len() - self.block_pos) as u64
    }

    fn io(&self, source: io::Error) -> FrsxError {
        FrsxError::Io { offset: self.offset, source }
    }

    /// Decodes the next block; `Ok(None)` at the clean end of the stream.
    pub fn next_block(&mut self) -> Result<Option<&[u8]>, FrsxError> {
        if !self.started {
            let mut sig = [0u8; 4];
            let n = read_full(&mut self.inner, &mut sig).map_err(|e| self.io(e))?;
            if n < 4 || sig != FRSX_SIGNATURE {
                return Err(FrsxError::BadSignature { found: sig[..n].to_vec() });
            }
            self.offset = 4;
            self.started = true;
        }
        if self.done {
            return Ok(None);
        }
        let start = self.offset;
        let mut h = [0u8; BLOCK_HEADER_LEN];
        let n = read_full(&mut self.inner, &mut h).map_err(|e| self.io(e))?;
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        if n < BLOCK_HEADER_LEN {
            return Err(FrsxError::Truncated { offset: start });
        }
        let header = parse_block_header(&h, start)?;
        self.offset += BLOCK_HEADER_LEN as u64;
        self.compressed.resize(header.compressed as usize, 0);
        let n = read_full(&mut self.inner, &mut self.compressed).map_err(|e| self.io(e))?;
        if n < self.compressed.len() {
            return Err(FrsxError::Truncated { offset: start });
        }
        self.offset += n as u64;
        decode_block(header, &self.compressed, &mut self.decoder, &mut self.block, start)?;
        self.block_pos = self.block.len();
        self.produced += self.block.len() as u64;
        Ok(Some(&self.block))
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for FrsxReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.block_pos >= self.block.len() {
            match self.next_block() {
                Ok(Some(_)) => self.block_pos = 0,
                Ok(None) => return Ok(0),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        let n = buf.len().min(self.block.len() - self.block_pos);
        buf[..n].copy_from_slice(&self.block[self.block_pos..self.block_pos + n]);
        self.block_pos += n;
        Ok(n)
    }
}

/// Streaming compressor: marshaled bytes in, a staged file out, one 8192-
/// byte block at a time. Call [`FrsxWriter::finish`] to write the last
/// partial block.
pub struct FrsxWriter<W: Write> {
    inner: W,
    started: bool,
    encoder: Encoder,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    out: Vec<u8>,
    written: u64,
}

impl<W: Write> FrsxWriter<W> {
    pub fn new(inner: W) -> Self {
        FrsxWriter {
            inner,
            started: false,
            encoder: Encoder::new(),
            pending: Vec::with_capacity(MAX_BLOCK),
            scratch: Vec::with_capacity(MAX_BLOCK + 512),
            out: Vec::with_capacity(MAX_BLOCK + BLOCK_HEADER_LEN),
            written: 0,
        }
    }

    /// Compressed bytes written so far.
    pub fn compressed_len(&self) -> u64 {
        self.written
    }

    fn emit(&mut self) -> io::Result<()> {
        self.out.clear();
        if !self.started {
            self.out.extend_from_slice(&FRSX_SIGNATURE);
            self.started = true;
        }
        if !self.pending.is_empty() {
            encode_block(&self.pending, &mut self.encoder, &mut self.scratch, &mut self.out);
            self.pending.clear();
        }
        self.inner.write_all(&self.out)?;
        self.written += self.out.len() as u64;
        Ok(())
    }

    /// Writes the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for FrsxWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(MAX_BLOCK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == MAX_BLOCK {
            self.emit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks other than the last must be full (§3.2.4.1.14.2), so a
        // flush cannot cut one short; it only flushes what is complete.
        self.inner.flush()
    }
}

/// Compresses a whole buffer into the staged-file format.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut w = FrsxWriter::new(Vec::with_capacity(data.len() / 2 + 64));
    // Writing to a Vec cannot fail.
    let _ = w.write_all(data);
    w.finish().unwrap_or_default()
}

/// Decompresses a whole staged file held in memory.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, FrsxError> {
    let mut r = FrsxReader::new(data);
    let mut out = Vec::new();
    while let Some(b) = r.next_block()? {
        out.extend_from_slice(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        crate::staging::xpress::tests_support::noise(n, seed)
    }

    #[test]
    fn incompressible_full_block_is_stored_raw() {
        let data = noise(MAX_BLOCK, 1);
        let c = compress(&data);
        assert_eq!(&c[..4], b"FRSX");
        assert_eq!(&c[4..8], b"XBLO");
        assert_eq!(u32::from_le_bytes(c[8..12].try_into().unwrap()), 8192);
        assert_eq!(u32::from_le_bytes(c[12..16].try_into().unwrap()), 8192);
        assert_eq!(c.len(), 4 + 12 + 8192);
        assert_eq!(decompress(&c).unwrap(), data);
    }

    /// A reader that returns at most 8192 bytes per call, like the socket
    /// reads of the earlier Samba attempt.
    struct Chunky<'a>(&'a [u8], usize);
    impl Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn blocks_split_at_8192_and_survive_short_reads() {
        let mut data = noise(3 * MAX_BLOCK, 2);
        data.resize(data.len() + 2 * MAX_BLOCK + 100, b'a');
        let c = compress(&data);
        for chunk in [1usize, 7, 8192, 100_000] {
            let mut r = FrsxReader::new(Chunky(&c, chunk));
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert!(out == data, "chunk size {chunk}");
        }
        // Walk the blocks: three raw, two compressed full, one short.
        let mut r = FrsxReader::new(&c[..]);
        let mut sizes = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            sizes.push(b.len());
        }
        assert_eq!(sizes, vec![8192, 8192, 8192, 8192, 8192, 100]);
        assert!(c.len() < 3 * 8192 + 1000);
    }

    #[test]
    fn empty_stream_is_just_the_signature() {
        let c = compress(&[]);
        assert_eq!(c, b"FRSX");
        assert_eq!(decompress(&c).unwrap(), b"");
    }

    #[test]
    fn malformed_streams_report_offsets() {
        assert!(matches!(decompress(b"FRS"), Err(FrsxError::BadSignature { .. })));
        assert!(matches!(decompress(b"ABCD"), Err(FrsxError::BadSignature { .. })));
        let c = compress(&noise(10_000, 3));
        let mut bad = c.clone();
        bad[4] = b'Y';
        assert!(matches!(decompress(&bad), Err(FrsxError::BadBlockSignature { offset: 4, .. })));
        // Second block header starts at 4 + 12 + 8192.
        let second = 4 + 12 + 8192;
        let mut bad = c.clone();
        bad[second + 8..second + 12].copy_from_slice(&9000u32.to_le_bytes());
        assert!(matches!(
            decompress(&bad),
            Err(FrsxError::BadBlockSizes { offset, uncompressed: 9000, .. }) if offset == second as u64
        ));
        assert!(matches!(decompress(&c[..second + 5]), Err(FrsxError::Truncated { offset }) if offset == second as u64));
        assert!(matches!(decompress(&c[..c.len() - 1]), Err(FrsxError::Truncated { .. })));
        // Corrupt compressed data: a compressed block whose stream is cut.
        let z = compress(&vec![b'q'; 5000]);
        let mut bad = z.clone();
        for b in &mut bad[16..16 + 256] {
            *b = 0;
        }
        assert!(matches!(decompress(&bad), Err(FrsxError::Xpress { offset: 4, .. })));
    }

    struct ChanWriter(SyncSender<Vec<u8>>);
    impl Write for ChanWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.send(buf.to_vec()).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    struct ChanReader(Receiver<Vec<u8>>, Vec<u8>, usize);
    impl Read for ChanReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while self.2 >= self.1.len() {
                match self.0.recv() {
                    Ok(v) => {
                        self.1 = v;
                        self.2 = 0;
                    }
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.1.len() - self.2);
            buf[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
            self.2 += n;
            Ok(n)
        }
    }

    /// Deterministic generator of a long stream: alternating compressible
    /// and incompressible stretches, produced on the fly.
    struct Gen {
        x: u64,
        pos: u64,
    }
    impl Gen {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf.iter_mut() {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                // 1 MiB stretches alternate between noise and text-like bytes.
                *b = if (self.pos >> 20) & 1 == 0 {
                    (self.x >> 32) as u8
                } else {
                    b"stagedfile "[(self.x % 11) as usize]
                };
                self.pos += 1;
            }
        }
    }

    /// Pushes a large generated stream through writer → reader over a
    /// bounded channel: both sides hold O(block) memory (nothing here
    /// buffers the whole stream), so the same code handles 4 GiB files.
    #[test]
    fn large_stream_in_constant_memory() {
        let total: u64 = if cfg!(debug_assertions) { 16 << 20 } else { 256 << 20 };
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let writer = std::thread::spawn(move || {
            let mut w = FrsxWriter::new(ChanWriter(tx));
            let mut g = Gen { x: 42, pos: 0 };
            let mut buf = vec![0u8; 65536 + 3]; // odd size: blocks straddle writes
            let mut left = total;
            while left > 0 {
                let n = (buf.len() as u64).min(left) as usize;
                g.fill(&mut buf[..n]);
                w.write_all(&buf[..n]).unwrap();
                left -= n as u64;
            }
            w.finish().unwrap();
        });
        let mut r = FrsxReader::new(ChanReader(rx, Vec::new(), 0));
        let mut g = Gen { x: 42, pos: 0 };
        let mut got = 0u64;
        let mut want = vec![0u8; MAX_BLOCK];
        while let Some(b) = r.next_block().unwrap() {
            g.fill(&mut want[..b.len()]);
            assert!(b == &want[..b.len()], "mismatch near offset {got}");
            got += b.len() as u64;
        }
        writer.join().unwrap();
        assert_eq!(got, total);
        assert!(r.compressed_offset() < total, "text stretches must compress");
    }
}
