//! The marshaled format inside a staged file (MS-FRS2 §3.2.4.1.14.1):
//! MARSHAL_BLOCK_HEADERs {u32 streamType, u32 blockSize, u32 flags} each
//! followed by blockSize bytes — metadata (1), compression (2), reparse (3),
//! security (6) — and finally flat data (4, blockSize 0) that runs to the
//! end as an MS-BKUP backup stream: WIN32_STREAM_ID {u32 id, u32
//! attributes, u64 size, u32 nameBytes, UTF-16 name} then the data.
//!
//! [`MarshalReader`] streams events (headers and data chunks) without
//! holding the file; [`MarshalWriter`] produces the format from streams.
//! Both compute the DFS-R file hash (§3.2.4.1.14.1 "File hash"): SHA-1
//! over the chunks of MS_TYPE_SECURITY_DATA and MS_TYPE_FLAT_DATA, not the
//! marshal headers. The flat-data chunk is everything after its header,
//! i.e. the whole MS-BKUP stream including its WIN32_STREAM_ID headers.

use super::frsx::FrsxError;
use super::security_descriptor::{SdError, SecurityDescriptor};
use sha1::{Digest, Sha1};
use std::io::{self, Read, Write};

pub const MS_TYPE_META_DATA: u32 = 1;
pub const MS_TYPE_COMPRESSION_DATA: u32 = 2;
pub const MS_TYPE_REPARSE_DATA: u32 = 3;
pub const MS_TYPE_FLAT_DATA: u32 = 4;
pub const MS_TYPE_SECURITY_DATA: u32 = 6;
pub const HEADER_FLAGS_END_OF_STREAM: u32 = 1;
pub const MARSHAL_HEADER_LEN: usize = 12;
/// §3.2.4.1.14.1 MS_TYPE_META_DATA: 4 + 4 + 40 + 2 + 6 + 8 + 8 bytes.
pub const METADATA_LEN: usize = 72;
/// "The marshaler version. It MUST be 3."
pub const MARSHAL_VERSION: u32 = 3;

/// MS-BKUP §2.2 stream ids.
pub const BACKUP_DATA: u32 = 1;
pub const BACKUP_ALTERNATE_DATA: u32 = 4;
pub const BACKUP_REPARSE_DATA: u32 = 8;
pub const BACKUP_SPARSE_BLOCK: u32 = 9;
pub const STREAM_SPARSE_ATTRIBUTE: u32 = 8;
const STREAM_ID_LEN: usize = 20;

/// Bounds on the small streams held in memory (types 1, 2, 3, 6): a
/// reparse buffer is at most 16 KiB (MS-FSCC), a descriptor with two full
/// 64 KiB ACLs stays below 256 KiB.
const MAX_SMALL_STREAM: usize = 256 << 10;
/// A stream name is an NTFS name (≤ 255 UTF-16 units) plus ":…:$DATA".
const MAX_NAME_BYTES: usize = 4096;
const CHUNK: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum MarshalError {
    #[error("marshaled offset {offset}: I/O error: {source}")]
    Io { offset: u64, source: io::Error },
    #[error(transparent)]
    Frsx(#[from] FrsxError),
    #[error("marshaled offset {offset}: data ends inside {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("marshaled offset {offset}: unknown stream type {stream_type}")]
    UnknownStreamType { offset: u64, stream_type: u32 },
    #[error("marshaled offset {offset}: header flags 0x{flags:x} (only END_OF_STREAM = 1 is defined)")]
    BadFlags { offset: u64, flags: u32 },
    #[error("marshaled offset {offset}: {what} of {size} bytes exceeds the limit")]
    TooLarge { offset: u64, what: &'static str, size: u64 },
    #[error("marshaled offset {offset}: stream type {found} interrupts unfinished stream type {pending}")]
    Interleaved { offset: u64, pending: u32, found: u32 },
    #[error("marshaled offset {offset}: metadata is {len} bytes, expected {METADATA_LEN}")]
    BadMetadataSize { offset: u64, len: usize },
    #[error("marshaled offset {offset}: metadata version {version}, expected 3")]
    BadMetadataVersion { offset: u64, version: u32 },
    #[error("marshaled offset {offset}: compression data is {len} bytes, expected 2")]
    BadCompressionSize { offset: u64, len: usize },
    #[error("marshaled offset {offset}: security descriptor: {source}")]
    Security { offset: u64, source: SdError },
    #[error("marshaled offset {offset}: stream name is not valid UTF-16 of even length")]
    BadStreamName { offset: u64 },
    #[error("marshaled offset {offset}: sparse block of {size} bytes cannot hold its 8-byte offset")]
    SparseTooShort { offset: u64, size: u64 },
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7]])
}

/// MS_TYPE_META_DATA (§3.2.4.1.14.1), with FILE_BASIC_INFORMATION
/// (MS-FSCC §2.4.7) unpacked. Times are FILETIMEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub version: u32,
    pub creation_time: i64,
    pub last_access_time: i64,
    pub last_write_time: i64,
    pub change_time: i64,
    pub attributes: u32,
    pub sd_control: u16,
    pub primary_data_size: u64,
}

impl Metadata {
    pub fn parse(b: &[u8], offset: u64) -> Result<Self, MarshalError> {
        if b.len() != METADATA_LEN {
            return Err(MarshalError::BadMetadataSize { offset, len: b.len() });
        }
        let version = le32(b, 0);
        if version != MARSHAL_VERSION {
            return Err(MarshalError::BadMetadataVersion { offset, version });
        }
        // Reserved fields "MUST be ignored on receipt".
        Ok(Metadata {
            version,
            creation_time: le64(b, 8) as i64,
            last_access_time: le64(b, 16) as i64,
            last_write_time: le64(b, 24) as i64,
            change_time: le64(b, 32) as i64,
            attributes: le32(b, 40),
            sd_control: u16::from_le_bytes([b[48], b[49]]),
            primary_data_size: le64(b, 56),
        })
    }

    pub fn encode(&self) -> [u8; METADATA_LEN] {
        let mut b = [0u8; METADATA_LEN];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[8..16].copy_from_slice(&self.creation_time.to_le_bytes());
        b[16..24].copy_from_slice(&self.last_access_time.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_write_time.to_le_bytes());
        b[32..40].copy_from_slice(&self.change_time.to_le_bytes());
        b[40..44].copy_from_slice(&self.attributes.to_le_bytes());
        b[48..50].copy_from_slice(&self.sd_control.to_le_bytes());
        b[56..64].copy_from_slice(&self.primary_data_size.to_le_bytes());
        b
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Data,
    AlternateData,
    Sparse,
    Reparse,
    Other(u32),
}

impl StreamKind {
    pub fn from_id(id: u32) -> Self {
        match id {
            BACKUP_DATA => StreamKind::Data,
            BACKUP_ALTERNATE_DATA => StreamKind::AlternateData,
            BACKUP_SPARSE_BLOCK => StreamKind::Sparse,
            BACKUP_REPARSE_DATA => StreamKind::Reparse,
            o => StreamKind::Other(o),
        }
    }

    /// The names `dfsrctl staged inspect --json` uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            StreamKind::Data => "data",
            StreamKind::AlternateData => "ads",
            StreamKind::Sparse => "sparse",
            StreamKind::Reparse => "reparse",
            StreamKind::Other(_) => "other",
        }
    }
}

/// One WIN32_STREAM_ID (MS-BKUP §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    pub id: u32,
    pub attributes: u32,
    /// Size field as written (for sparse blocks it includes the offset).
    pub size: u64,
    /// Name as stored, e.g. `:x:$DATA` (empty for the main data).
    pub raw_name: String,
    /// For BACKUP_SPARSE_BLOCK: where in the stream the data belongs.
    pub sparse_offset: Option<u64>,
    /// Marshaled offset of this header.
    pub offset: u64,
}

impl StreamHeader {
    pub fn kind(&self) -> StreamKind {
        StreamKind::from_id(self.id)
    }

    /// Bytes of stream data that follow (sparse: without the offset).
    pub fn data_len(&self) -> u64 {
        if self.sparse_offset.is_some() {
            self.size - 8
        } else {
            self.size
        }
    }

    /// The alternate stream's own name: `:x:$DATA` → `x`.
    pub fn name(&self) -> &str {
        let n = self.raw_name.strip_prefix(':').unwrap_or(&self.raw_name);
        n.strip_suffix(":$DATA").unwrap_or(n)
    }
}

/// What the reader found next.
#[derive(Debug)]
pub enum Event<'a> {
    Metadata(Metadata),
    Compression(u16),
    /// MS_TYPE_REPARSE_DATA: FSCTL_GET_REPARSE_POINT reply bytes.
    Reparse(Vec<u8>),
    /// MS_TYPE_SECURITY_DATA, validated.
    Security { bytes: Vec<u8>, sd: SecurityDescriptor },
    /// Start of an MS-BKUP stream inside the flat data.
    StreamStart(StreamHeader),
    /// A chunk of the current stream's data.
    Data(&'a [u8]),
    StreamEnd,
}

enum State {
    Headers,
    Flat,
    InStream { left: u64 },
    Done,
}

/// Streaming unmarshaller over the decompressed bytes (for instance an
/// [`super::frsx::FrsxReader`]). Memory: one 64 KiB chunk plus the small
/// streams.
pub struct MarshalReader<R> {
    inner: R,
    offset: u64,
    state: State,
    buf: Vec<u8>,
    hash: Sha1,
    pending_end: bool,
}

impl<R: Read> MarshalReader<R> {
    pub fn new(inner: R) -> Self {
        MarshalReader { inner, offset: 0, state: State::Headers, buf: Vec::with_capacity(CHUNK), hash: Sha1::new(), pending_end: false }
    }

    /// Marshaled bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The DFS-R file hash; complete once `next` has returned `None`.
    pub fn frs_hash(&self) -> [u8; 20] {
        self.hash.clone().finalize().into()
    }

    fn io_err(&self, e: io::Error) -> MarshalError {
        // Errors of an underlying FrsxReader keep their type.
        if e.get_ref().is_some_and(|i| i.is::<FrsxError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(f) = inner.downcast::<FrsxError>() {
                    return MarshalError::Frsx(*f);
                }
            }
            return MarshalError::Io { offset: self.offset, source: io::Error::other("compressed stream error") };
        }
        MarshalError::Io { offset: self.offset, source: e }
    }

    /// Fills `self.buf` with exactly `n` bytes; `Ok(false)` on a clean EOF
    /// before the first byte.
    fn fill(&mut self, n: usize, what: &'static str) -> Result<bool, MarshalError> {
        self.buf.clear();
        self.buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match self.inner.read(&mut self.buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        if got == 0 && n > 0 {
            return Ok(false);
        }
        if got < n {
            return Err(MarshalError::Truncated { offset: self.offset + got as u64, what });
        }
        self.offset += n as u64;
        Ok(true)
    }

    fn need(&mut self, n: usize, what: &'static str) -> Result<(), MarshalError> {
        let at = self.offset;
        if !self.fill(n, what)? {
            return Err(MarshalError::Truncated { offset: at, what });
        }
        Ok(())
    }

    /// Next event; `Ok(None)` at the end of the marshaled data.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Event<'_>>, MarshalError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Headers => {
                    if let Some(e) = self.small_stream()? {
                        return Ok(Some(e));
                    }
                }
                State::Flat => {
                    if self.pending_end {
                        self.pending_end = false;
                        return Ok(Some(Event::StreamEnd));
                    }
                    let at = self.offset;
                    if !self.fill(STREAM_ID_LEN, "a WIN32_STREAM_ID header")? {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    self.hash.update(&self.buf);
                    let id = le32(&self.buf, 0);
                    let attributes = le32(&self.buf, 4);
                    let size = le64(&self.buf, 8);
                    let name_len = le32(&self.buf, 16) as usize;
                    if name_len > MAX_NAME_BYTES || name_len % 2 != 0 {
                        return Err(MarshalError::BadStreamName { offset: at });
                    }
                    self.need(name_len, "a stream name")?;
                    self.hash.update(&self.buf);
                    let units: Vec<u16> = self.buf.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                    let raw_name = String::from_utf16(&units).map_err(|_| MarshalError::BadStreamName { offset: at })?;
                    let mut sparse_offset = None;
                    if id == BACKUP_SPARSE_BLOCK {
                        if size < 8 {
                            return Err(MarshalError::SparseTooShort { offset: at, size });
                        }
                        self.need(8, "a sparse block offset")?;
                        self.hash.update(&self.buf);
                        sparse_offset = Some(le64(&self.buf, 0));
                    }
                    let h = StreamHeader { id, attributes, size, raw_name, sparse_offset, offset: at };
                    self.state = State::InStream { left: h.data_len() };
                    return Ok(Some(Event::StreamStart(h)));
                }
                State::InStream { left } => {
                    if left == 0 {
                        self.state = State::Flat;
                        return Ok(Some(Event::StreamEnd));
                    }
                    let n = left.min(CHUNK as u64) as usize;
                    self.need(n, "stream data")?;
                    self.hash.update(&self.buf);
                    let left = left - n as u64;
                    self.state = State::InStream { left };
                    if left == 0 {
                        self.state = State::Flat;
                        self.pending_end = true;
                    }
                    return Ok(Some(Event::Data(&self.buf)));
                }
            }
        }
    }

    /// Reads headers until a small stream is complete (returns it) or the
    /// flat data starts (returns None, state Flat) or the input ends.
    fn small_stream(&mut self) -> Result<Option<Event<'static>>, MarshalError> {
        let mut acc: Vec<u8> = Vec::new();
        let mut pending: Option<(u32, u64)> = None;
        loop {
            let at = self.offset;
            if !self.fill(MARSHAL_HEADER_LEN, "a MARSHAL_BLOCK_HEADER")? {
                if pending.is_some() {
                    return Err(MarshalError::Truncated { offset: at, what: "an unfinished stream" });
                }
                self.state = State::Done;
                return Ok(None);
            }
            let (t, size, flags) = (le32(&self.buf, 0), le32(&self.buf, 4), le32(&self.buf, 8));
            if flags & !HEADER_FLAGS_END_OF_STREAM != 0 {
                return Err(MarshalError::BadFlags { offset: at, flags });
            }
            if let Some((p, _)) = pending {
                if p != t {
                    return Err(MarshalError::Interleaved { offset: at, pending: p, found: t });
                }
            }
            match t {
                MS_TYPE_FLAT_DATA => {
                    // §3.2.4.1.14.1: last; blockSize and flags 0; the
                    // MS-BKUP data runs to the end.
                    self.state = State::Flat;
                    return Ok(None);
                }
                MS_TYPE_META_DATA | MS_TYPE_COMPRESSION_DATA | MS_TYPE_REPARSE_DATA | MS_TYPE_SECURITY_DATA => {}
                _ => return Err(MarshalError::UnknownStreamType { offset: at, stream_type: t }),
            }
            if acc.len() + size as usize > MAX_SMALL_STREAM {
                return Err(MarshalError::TooLarge { offset: at, what: "metadata/security/reparse stream", size: size as u64 });
            }
            let start = pending.map_or(at, |p| p.1);
            self.need(size as usize, "a stream chunk")?;
            if t == MS_TYPE_SECURITY_DATA {
                self.hash.update(&self.buf);
            }
            acc.extend_from_slice(&self.buf);
            if flags & HEADER_FLAGS_END_OF_STREAM == 0 {
                pending = Some((t, start));
                continue;
            }
            let data_at = start + MARSHAL_HEADER_LEN as u64;
            return Ok(Some(match t {
                MS_TYPE_META_DATA => Event::Metadata(Metadata::parse(&acc, data_at)?),
                MS_TYPE_COMPRESSION_DATA => {
                    if acc.len() != 2 {
                        return Err(MarshalError::BadCompressionSize { offset: data_at, len: acc.len() });
                    }
                    Event::Compression(u16::from_le_bytes([acc[0], acc[1]]))
                }
                MS_TYPE_REPARSE_DATA => Event::Reparse(acc),
                _ => {
                    let sd = SecurityDescriptor::parse(&acc).map_err(|source| MarshalError::Security { offset: data_at, source })?;
                    Event::Security { bytes: acc, sd }
                }
            }));
        }
    }
}

/// One MS-BKUP stream of an unmarshaled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStream {
    pub header: StreamHeader,
    pub data: Vec<u8>,
}

/// A whole marshaled file in memory (for small files and tests; use
/// [`MarshalReader`] for large ones).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarshaledFile {
    pub metadata: Option<Metadata>,
    pub compression: Option<u16>,
    pub reparse: Option<Vec<u8>>,
    pub security: Option<Vec<u8>>,
    pub streams: Vec<BackupStream>,
    pub frs_hash: [u8; 20],
}

/// Unmarshals from any reader into the typed model.
pub fn unmarshal<R: Read>(r: R) -> Result<MarshaledFile, MarshalError> {
    let mut m = MarshalReader::new(r);
    let mut f = MarshaledFile::default();
    while let Some(e) = m.next()? {
        match e {
            Event::Metadata(x) => f.metadata = Some(x),
            Event::Compression(c) => f.compression = Some(c),
            Event::Reparse(r) => f.reparse = Some(r),
            Event::Security { bytes, .. } => f.security = Some(bytes),
            Event::StreamStart(header) => f.streams.push(BackupStream { header, data: Vec::new() }),
            Event::Data(d) => {
                if let Some(s) = f.streams.last_mut() {
                    s.data.extend_from_slice(d);
                }
            }
            Event::StreamEnd => {}
        }
    }
    f.frs_hash = m.frs_hash();
    Ok(f)
}

/// Streaming marshaller. Call in order: `metadata`, optionally
/// `compression`/`reparse`/`security`, then streams, then `finish`.
pub struct MarshalWriter<W: Write> {
    inner: W,
    hash: Sha1,
    flat: bool,
    written: u64,
}

impl<W: Write> MarshalWriter<W> {
    pub fn new(inner: W) -> Self {
        MarshalWriter { inner, hash: Sha1::new(), flat: false, written: 0 }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn small(&mut self, t: u32, data: &[u8]) -> io::Result<()> {
        let mut h = [0u8; MARSHAL_HEADER_LEN];
        h[0..4].copy_from_slice(&t.to_le_bytes());
        h[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[8..12].copy_from_slice(&HEADER_FLAGS_END_OF_STREAM.to_le_bytes());
        self.put(&h)?;
        self.put(data)
    }

    pub fn metadata(&mut self, m: &Metadata) -> io::Result<()> {
        self.small(MS_TYPE_META_DATA, &m.encode())
    }

    pub fn compression(&mut self, format: u16) -> io::Result<()> {
        self.small(MS_TYPE_COMPRESSION_DATA, &format.to_le_bytes())
    }

    pub fn reparse(&mut self, data: &[u8]) -> io::Result<()> {
        self.small(MS_TYPE_REPARSE_DATA, data)
    }

    pub fn security(&mut self, sd: &[u8]) -> io::Result<()> {
        self.hash.update(sd);
        self.small(MS_TYPE_SECURITY_DATA, sd)
    }

    fn flat_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        if !self.flat {
            self.flat = true;
            let mut h = [0u8; MARSHAL_HEADER_LEN];
            h[0..4].copy_from_slice(&MS_TYPE_FLAT_DATA.to_le_bytes());
            self.put(&h)?;
        }
        self.hash.update(b);
        self.put(b)
    }

    fn stream_header(&mut self, id: u32, attributes: u32, size: u64, raw_name: &str) -> io::Result<()> {
        let name: Vec<u8> = raw_name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let mut h = [0u8; STREAM_ID_LEN];
        h[0..4].copy_from_slice(&id.to_le_bytes());
        h[4..8].copy_from_slice(&attributes.to_le_bytes());
        h[8..16].copy_from_slice(&size.to_le_bytes());
        h[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
        self.flat_bytes(&h)?;
        self.flat_bytes(&name)
    }

    fn copy_exact<R: Read>(&mut self, mut src: R, size: u64) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK.min(size.max(1) as usize)];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            src.read_exact(&mut buf[..n])?;
            self.flat_bytes(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// The main (unnamed) data stream, `size` bytes read from `src`.
    pub fn data<R: Read>(&mut self, src: R, size: u64) -> io::Result<()> {
        self.stream_header(BACKUP_DATA, 0, size, "")?;
        self.copy_exact(src, size)
    }

    /// The main stream of a sparse file: its data follows as sparse blocks
    /// ([`Self::sparse_block`]); what no block covers is a hole.
    pub fn sparse_data(&mut self) -> io::Result<()> {
        self.stream_header(BACKUP_DATA, STREAM_SPARSE_ATTRIBUTE, 0, "")
    }

    /// A named alternate data stream (stored as `:name:$DATA`).
    pub fn alternate<R: Read>(&mut self, name: &str, src: R, size: u64) -> io::Result<()> {
        self.stream_header(BACKUP_ALTERNATE_DATA, 0, size, &format!(":{name}:$DATA"))?;
        self.copy_exact(src, size)
    }

    /// A sparse block: data at `offset` of the preceding stream.
    pub fn sparse_block(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.stream_header(BACKUP_SPARSE_BLOCK, 0, data.len() as u64 + 8, "")?;
        self.flat_bytes(&offset.to_le_bytes())?;
        self.flat_bytes(data)
    }

    /// Ends the marshaled data; returns the writer and the DFS-R hash.
    pub fn finish(mut self) -> io::Result<(W, [u8; 20])> {
        if !self.flat {
            self.flat_bytes(&[])?;
        }
        self.inner.flush()?;
        Ok((self.inner, self.hash.finalize().into()))
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::frsx;
    use crate::staging::security_descriptor::SecurityDescriptor;

    fn meta() -> Metadata {
        Metadata {
            version: 3,
            creation_time: 133_000_000_000_000_000,
            last_access_time: 133_000_000_010_000_000,
            last_write_time: 133_000_000_020_000_000,
            change_time: 133_000_000_030_000_000,
            attributes: 0x20,
            sd_control: 0x8004,
            primary_data_size: 5,
        }
    }

    fn sample() -> (Vec<u8>, [u8; 20], Vec<u8>) {
        let sd = SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;FA;;;SY)").unwrap().to_bytes();
        let mut w = MarshalWriter::new(Vec::new());
        w.metadata(&meta()).unwrap();
        w.security(&sd).unwrap();
        w.data(&b"hello"[..], 5).unwrap();
        w.alternate("Zone.Identifier", &b"[ZoneTransfer]"[..], 14).unwrap();
        w.sparse_block(4096, b"xyz").unwrap();
        let (bytes, hash) = w.finish().unwrap();
        (bytes, hash, sd)
    }

    #[test]
    fn layout_matches_the_spec() {
        let (b, _, sd) = sample();
        // §4.2.3-style: type 1, size, END flag, then 72 metadata bytes.
        assert_eq!(&b[0..12], &[1, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(le32(&b, 12), 3);
        let sec = 12 + 72;
        assert_eq!(le32(&b, sec), 6);
        assert_eq!(le32(&b, sec + 4) as usize, sd.len());
        let flat = sec + 12 + sd.len();
        assert_eq!(&b[flat..flat + 12], &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // WIN32_STREAM_ID of the main data: id 1, attrs 0, size 5, no name.
        assert_eq!(le32(&b, flat + 12), 1);
        assert_eq!(le64(&b, flat + 20), 5);
        assert_eq!(le32(&b, flat + 28), 0);
        assert_eq!(&b[flat + 32..flat + 37], b"hello");
    }

    #[test]
    fn hash_covers_security_and_flat_chunks_only() {
        let (b, hash, sd) = sample();
        let flat = 12 + 72 + 12 + sd.len() + 12;
        let mut h = Sha1::new();
        h.update(&sd);
        h.update(&b[flat..]);
        let want: [u8; 20] = h.finalize().into();
        assert_eq!(hash, want);
        let f = unmarshal(&b[..]).unwrap();
        assert_eq!(f.frs_hash, want);
        // Changing a time does not change the hash (§3.2.4.1.14.1).
        let mut m2 = meta();
        m2.last_write_time += 1;
        let mut w = MarshalWriter::new(Vec::new());
        w.metadata(&m2).unwrap();
        w.security(&sd).unwrap();
        w.data(&b"hello"[..], 5).unwrap();
        w.alternate("Zone.Identifier", &b"[ZoneTransfer]"[..], 14).unwrap();
        w.sparse_block(4096, b"xyz").unwrap();
        assert_eq!(w.finish().unwrap().1, want);
    }

    #[test]
    fn round_trip_model() {
        let (b, hash, sd) = sample();
        let f = unmarshal(&b[..]).unwrap();
        assert_eq!(f.metadata, Some(meta()));
        assert_eq!(f.security.as_deref(), Some(&sd[..]));
        assert_eq!(f.streams.len(), 3);
        assert_eq!(f.streams[0].header.kind(), StreamKind::Data);
        assert_eq!(f.streams[0].data, b"hello");
        assert_eq!(f.streams[1].header.kind(), StreamKind::AlternateData);
        assert_eq!(f.streams[1].header.raw_name, ":Zone.Identifier:$DATA");
        assert_eq!(f.streams[1].header.name(), "Zone.Identifier");
        assert_eq!(f.streams[2].header.sparse_offset, Some(4096));
        assert_eq!(f.streams[2].data, b"xyz");
        assert_eq!(f.frs_hash, hash);
        // Through FRSX too.
        let staged = frsx::compress(&b);
        let f2 = unmarshal(frsx::FrsxReader::new(&staged[..])).unwrap();
        assert_eq!(f2, f);
    }

    #[test]
    fn malformed_marshaled_data() {
        let (b, _, sd) = sample();
        // Every truncation fails cleanly (or ends at a stream boundary).
        for cut in 0..b.len() {
            let _ = unmarshal(&b[..cut]);
        }
        assert!(matches!(unmarshal(&b[..50]), Err(MarshalError::Truncated { offset: 50, .. })));
        let mut bad = b.clone();
        bad[0] = 5;
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::UnknownStreamType { offset: 0, stream_type: 5 })));
        let mut bad = b.clone();
        bad[8] = 3;
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::BadFlags { offset: 0, flags: 3 })));
        let mut bad = b.clone();
        bad[12] = 2;
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::BadMetadataVersion { offset: 12, version: 2 })));
        let mut bad = b.clone();
        bad[12 + 72 + 12] = 9; // SD revision
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::Security { offset: 96, .. })));
        let mut bad = b.clone();
        let sz = 12 + 72 + 4;
        bad[sz..sz + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::TooLarge { .. })));
        // Stream name of odd length.
        let flat = 12 + 72 + 12 + sd.len() + 12;
        let mut bad = b.clone();
        bad[flat + 16] = 3;
        assert!(matches!(unmarshal(&bad[..]), Err(MarshalError::BadStreamName { .. })));
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0xA5;
            let _ = unmarshal(&bad[..]);
        }
    }

    /// The library half of `dfsrctl staged create/inspect/extract`: a 3 MB
    /// main stream, two alternate streams and an SD survive marshal →
    /// FRSX → unmarshal with bytes, SDDL and times intact.
    #[test]
    fn three_megabyte_file_with_streams_and_sd() {
        let main = crate::staging::xpress::tests_support::noise(3_000_000, 11)
            .iter()
            .enumerate()
            .map(|(i, b)| if (i >> 15) % 2 == 0 { *b } else { b"abcdefgh"[i % 8] })
            .collect::<Vec<u8>>();
        let s1 = b"[ZoneTransfer]\r\nZoneId=3\r\n".to_vec();
        let s2 = vec![0x5Au8; 70_000];
        let sddl = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;;0x1200a9;;;WD)S:(AU;FA;FA;;;WD)";
        let sd = SecurityDescriptor::from_sddl(sddl).unwrap().to_bytes();
        let t = crate::staging::filetime::from_iso8601("2022-12-31T23:59:59.9999999Z").unwrap();
        let m = Metadata { creation_time: t, primary_data_size: main.len() as u64, ..meta() };
        let mut w = MarshalWriter::new(frsx::FrsxWriter::new(Vec::new()));
        w.metadata(&m).unwrap();
        w.security(&sd).unwrap();
        w.data(&main[..], main.len() as u64).unwrap();
        w.alternate("one", &s1[..], s1.len() as u64).unwrap();
        w.alternate("two", &s2[..], s2.len() as u64).unwrap();
        let (fw, hash) = w.finish().unwrap();
        let staged = fw.finish().unwrap();
        assert!(staged.len() < main.len());
        let f = unmarshal(frsx::FrsxReader::new(&staged[..])).unwrap();
        assert_eq!(f.frs_hash, hash);
        let got = f.metadata.unwrap();
        assert_eq!(crate::staging::filetime::to_iso8601(got.creation_time), "2022-12-31T23:59:59.9999999Z");
        assert_eq!(got, m);
        let sd_back = SecurityDescriptor::parse(f.security.as_deref().unwrap()).unwrap();
        assert_eq!(sd_back.to_sddl().unwrap(), sddl);
        assert_eq!(f.streams.len(), 3);
        assert!(f.streams[0].data == main);
        assert_eq!((f.streams[1].header.name(), &f.streams[1].data), ("one", &s1));
        assert_eq!((f.streams[2].header.name(), &f.streams[2].data), ("two", &s2));
    }
}
