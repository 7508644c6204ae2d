//! The binary encoding of every value in the replication database.
//!
//! A value is `[record type: u8][format version: u8][payload]`. Integers
//! are little-endian, GUIDs their 16 wire bytes, strings and lists carry a
//! `u32` length prefix. The type byte lets `check` and `dump` read a value
//! without trusting its key; the format byte lets a later release change
//! one record's layout without a schema bump (decoders refuse formats they
//! do not know). Decoding never panics: short, long or malformed input is
//! a [`DecodeError`].

use std::path::PathBuf;

use thiserror::Error;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::rules::{ConflictRecord, LossReason};
use crate::engine::update::{FileTime, Update};
use crate::engine::version_vector::{VersionVector, VersionVectorError};

/// The kinds of value; the first byte of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordType {
    /// The schema version of the whole database.
    Schema = 1,
    /// One [`Update`], the maximal one held for its UID.
    Update = 2,
    /// The GVSN index: the UID whose update carries that GVSN.
    GvsnIndex = 3,
    /// A known version vector of one (group, folder).
    Vector = 4,
    /// Our own database GUID.
    DatabaseGuid = 5,
    /// The local version/clock counters of one folder.
    Originator = 6,
    /// Where the content of one UID stands (download / staging / install).
    Download = 7,
    /// A ConflictAndDeleted accounting record.
    Conflict = 8,
    /// One member of an index list: its neighbours ([`Links`]).
    ListLinks = 9,
    /// An index list's head: its first member.
    ListHead = 10,
}

impl RecordType {
    /// The type for a leading byte, if any.
    pub fn from_byte(b: u8) -> Option<RecordType> {
        Some(match b {
            1 => RecordType::Schema,
            2 => RecordType::Update,
            3 => RecordType::GvsnIndex,
            4 => RecordType::Vector,
            5 => RecordType::DatabaseGuid,
            6 => RecordType::Originator,
            7 => RecordType::Download,
            8 => RecordType::Conflict,
            9 => RecordType::ListLinks,
            10 => RecordType::ListHead,
            _ => return None,
        })
    }

    /// A short name for messages and `dump`.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Schema => "schema",
            RecordType::Update => "update",
            RecordType::GvsnIndex => "gvsn-index",
            RecordType::Vector => "version-vector",
            RecordType::DatabaseGuid => "database-guid",
            RecordType::Originator => "originator",
            RecordType::Download => "download",
            RecordType::Conflict => "conflict",
            RecordType::ListLinks => "list-links",
            RecordType::ListHead => "list-head",
        }
    }

    /// The one format version this build writes and reads.
    pub const fn format(self) -> u8 {
        1
    }
}

/// Longest string field accepted on decode (bytes). Names are at most 255
/// UTF-16 units (≤ 765 UTF-8 bytes); paths and reasons get more room. A
/// cap keeps a hostile length from asking for gigabytes.
pub const MAX_STRING: usize = 64 * 1024;

/// Why a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The value ended before a field.
    #[error("truncated: needed {need} bytes at offset {at}, {have} left")]
    Truncated {
        /// Bytes the field needs.
        need: usize,
        /// Offset of the field.
        at: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// The type byte is not the one this key holds.
    #[error("record type {found} where {expected} was expected")]
    WrongType {
        /// The expected type's name.
        expected: &'static str,
        /// The byte found.
        found: u8,
    },
    /// A format version this build does not know.
    #[error("{record} record format {found} is not supported (only {supported})")]
    UnsupportedFormat {
        /// The record type's name.
        record: &'static str,
        /// The format byte found.
        found: u8,
        /// The format this build reads.
        supported: u8,
    },
    /// Bytes after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A string field is not UTF-8.
    #[error("string at offset {0} is not UTF-8")]
    BadUtf8(usize),
    /// A length prefix above its cap.
    #[error("length {len} at offset {at} exceeds the limit {max}")]
    TooLong {
        /// The length read.
        len: u64,
        /// Its offset.
        at: usize,
        /// The cap.
        max: usize,
    },
    /// An enum tag or boolean with an unknown value.
    #[error("bad {what} value {value} at offset {at}")]
    BadTag {
        /// What the byte encodes.
        what: &'static str,
        /// The value read.
        value: u8,
        /// Its offset.
        at: usize,
    },
    /// A version vector entry with `low > high`.
    #[error(transparent)]
    Vector(#[from] VersionVectorError),
}

/// A cursor over a value that returns errors, never panics, on short input.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let have = self.buf.len() - self.pos;
        if n > have {
            return Err(DecodeError::Truncated { need: n, at: self.pos, have });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// 0 or 1.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::BadTag { what, value, at }),
        }
    }

    /// A GUID's 16 wire bytes.
    pub fn guid(&mut self) -> Result<Guid, DecodeError> {
        Ok(Guid(self.array()?))
    }

    /// GUID then u64 LE.
    pub fn uid(&mut self) -> Result<Uid, DecodeError> {
        Ok(Uid::new(self.guid()?, self.u64()?))
    }

    /// GUID then u64 LE.
    pub fn gvsn(&mut self) -> Result<Gvsn, DecodeError> {
        Ok(Gvsn::new(self.guid()?, self.u64()?))
    }

    /// A `u32` length, capped at `max`.
    pub fn len(&mut self, max: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let len = self.u32()?;
        match usize::try_from(len) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(DecodeError::TooLong { len: len.into(), at, max }),
        }
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len(MAX_STRING)?;
        self.take(n)
    }

    /// Length-prefixed UTF-8.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::BadUtf8(at))
    }

    /// The record header: type and format must be this build's.
    pub fn header(&mut self, expected: RecordType) -> Result<(), DecodeError> {
        let found = self.u8()?;
        if found != expected as u8 {
            return Err(DecodeError::WrongType { expected: expected.name(), found });
        }
        let format = self.u8()?;
        if format != expected.format() {
            return Err(DecodeError::UnsupportedFormat {
                record: expected.name(),
                found: format,
                supported: expected.format(),
            });
        }
        Ok(())
    }

    /// Succeeds only when every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Appends fields to a value.
#[derive(Debug, Default)]
pub struct Writer {
    /// The encoded bytes so far.
    pub out: Vec<u8>,
}

impl Writer {
    /// A value of `ty`, header written.
    pub fn record(ty: RecordType) -> Self {
        Writer { out: vec![ty as u8, ty.format()] }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// Little-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Little-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// 16 wire bytes.
    pub fn guid(&mut self, g: &Guid) -> &mut Self {
        self.out.extend_from_slice(&g.0);
        self
    }

    /// GUID, u64 LE.
    pub fn uid(&mut self, u: &Uid) -> &mut Self {
        self.guid(&u.db).u64(u.version)
    }

    /// GUID, u64 LE.
    pub fn gvsn(&mut self, g: &Gvsn) -> &mut Self {
        self.guid(&g.db).u64(g.version)
    }

    /// u32 length then the bytes. Longer than [`MAX_STRING`] cannot be
    /// read back, so callers keep to that (names, paths and reasons do).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        // Saturate: an over-long field then fails to decode, loudly,
        // instead of being silently cut.
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.out.extend_from_slice(b);
        self
    }

    /// Length-prefixed UTF-8.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// The value.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// The schema record: `u32` schema version.
pub fn encode_schema(version: u32) -> Vec<u8> {
    Writer::record(RecordType::Schema).u32(version).finish()
}

/// Reads the schema record.
pub fn decode_schema(b: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::Schema)?;
    let v = r.u32()?;
    r.finish()?;
    Ok(v)
}

const UPDATE_PRESENT: u8 = 1;
const UPDATE_NAME_CONFLICT: u8 = 2;

/// An update, format 1: `u8 bits (1 present, 2 nameConflict)`, `u32
/// attributes`, `u64 fence, clock, createTime`, `GUID contentSetId`,
/// `[20] hash`, `[16] rdcSimilarity`, `uid`, `gvsn`, `parent` (GUID + u64
/// each), `u32 flags`, `string name`.
pub fn encode_update(u: &Update) -> Vec<u8> {
    let mut w = Writer::record(RecordType::Update);
    let bits = if u.present { UPDATE_PRESENT } else { 0 } | if u.name_conflict { UPDATE_NAME_CONFLICT } else { 0 };
    w.u8(bits).u32(u.attributes).u64(u.fence).u64(u.clock).u64(u.create_time).guid(&u.content_set_id);
    w.out.extend_from_slice(&u.hash);
    w.out.extend_from_slice(&u.rdc_similarity);
    w.uid(&u.uid).gvsn(&u.gvsn).uid(&u.parent).u32(u.flags).string(&u.name);
    w.finish()
}

/// Reads an update record.
pub fn decode_update(b: &[u8]) -> Result<Update, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::Update)?;
    let at = r.pos();
    let bits = r.u8()?;
    if bits & !(UPDATE_PRESENT | UPDATE_NAME_CONFLICT) != 0 {
        return Err(DecodeError::BadTag { what: "update bits", value: bits, at });
    }
    let u = Update {
        present: bits & UPDATE_PRESENT != 0,
        name_conflict: bits & UPDATE_NAME_CONFLICT != 0,
        attributes: r.u32()?,
        fence: r.u64()?,
        clock: r.u64()?,
        create_time: r.u64()?,
        content_set_id: r.guid()?,
        hash: r.array()?,
        rdc_similarity: r.array()?,
        uid: r.uid()?,
        gvsn: r.gvsn()?,
        parent: r.uid()?,
        flags: r.u32()?,
        name: r.string()?,
    };
    r.finish()?;
    Ok(u)
}

/// A GVSN index entry's value: the UID.
pub fn encode_gvsn_index(uid: &Uid) -> Vec<u8> {
    Writer::record(RecordType::GvsnIndex).uid(uid).finish()
}

/// Reads a GVSN index value.
pub fn decode_gvsn_index(b: &[u8]) -> Result<Uid, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::GvsnIndex)?;
    let uid = r.uid()?;
    r.finish()?;
    Ok(uid)
}

/// Most ranges a stored vector may hold (each 32 bytes): 16 MiB.
pub const MAX_VECTOR_RANGES: usize = 512 * 1024;

/// A version vector: `u32 count`, then `count` wire triples `GUID db, u64
/// low, u64 high` (the `(low, high]` of MS-FRS2 §2.2.1.4.1, as
/// [`VersionVector::to_wire`] gives them).
pub fn encode_vector(v: &VersionVector) -> Vec<u8> {
    let wire = v.to_wire();
    let mut w = Writer::record(RecordType::Vector);
    w.u32(u32::try_from(wire.len()).unwrap_or(u32::MAX));
    for (g, low, high) in &wire {
        w.guid(g).u64(*low).u64(*high);
    }
    w.finish()
}

/// Reads a version vector record.
pub fn decode_vector(b: &[u8]) -> Result<VersionVector, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::Vector)?;
    let n = r.len(MAX_VECTOR_RANGES)?;
    // The count is checked against what is left before allocating.
    let have = b.len() - r.pos();
    if n.saturating_mul(32) > have {
        return Err(DecodeError::Truncated { need: n * 32, at: r.pos(), have });
    }
    let mut triples = Vec::with_capacity(n);
    for _ in 0..n {
        triples.push((r.guid()?, r.u64()?, r.u64()?));
    }
    r.finish()?;
    Ok(VersionVector::from_wire(triples)?)
}

/// Our database GUID record.
pub fn encode_database_guid(g: &Guid) -> Vec<u8> {
    Writer::record(RecordType::DatabaseGuid).guid(g).finish()
}

/// Reads our database GUID record.
pub fn decode_database_guid(b: &[u8]) -> Result<Guid, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::DatabaseGuid)?;
    let g = r.guid()?;
    r.finish()?;
    Ok(g)
}

/// The two counters [`crate::engine::local_change::Originator`] needs to
/// resume after a restart, per replicated folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginatorState {
    /// The next version our database hands out.
    pub next_version: u64,
    /// The last clock handed out.
    pub last_clock: FileTime,
}

/// `u64 next_version, u64 last_clock`.
pub fn encode_originator(s: &OriginatorState) -> Vec<u8> {
    Writer::record(RecordType::Originator).u64(s.next_version).u64(s.last_clock).finish()
}

/// Reads an originator record.
pub fn decode_originator(b: &[u8]) -> Result<OriginatorState, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::Originator)?;
    let s = OriginatorState { next_version: r.u64()?, last_clock: r.u64()? };
    r.finish()?;
    Ok(s)
}

/// Where the content of one update stands, so a restart resumes a
/// download instead of starting over, and retries keep their back-off.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DownloadState {
    /// Wanted, nothing fetched yet.
    Pending,
    /// Partly fetched into staging; resume at `offset`.
    Downloading {
        /// Bytes of the staged file already written.
        offset: u64,
    },
    /// The staged file is complete and verified.
    Staged {
        /// Where it is.
        path: PathBuf,
        /// Its SHA-1 (the update's hash).
        hash: [u8; 20],
    },
    /// The meet installed it.
    Installed,
    /// The last attempt failed; `retries` drives the back-off.
    Failed {
        /// What went wrong.
        reason: String,
        /// Attempts so far.
        retries: u32,
    },
}

/// `u8 tag` (0 Pending, 1 Downloading, 2 Staged, 3 Installed, 4 Failed),
/// then `u64 offset` / `bytes path, [20] hash` / `string reason, u32
/// retries`.
pub fn encode_download(s: &DownloadState) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut w = Writer::record(RecordType::Download);
    match s {
        DownloadState::Pending => {
            w.u8(0);
        }
        DownloadState::Downloading { offset } => {
            w.u8(1).u64(*offset);
        }
        DownloadState::Staged { path, hash } => {
            w.u8(2).bytes(path.as_os_str().as_bytes());
            w.out.extend_from_slice(hash);
        }
        DownloadState::Installed => {
            w.u8(3);
        }
        DownloadState::Failed { reason, retries } => {
            w.u8(4).string(reason).u32(*retries);
        }
    }
    w.finish()
}

/// Reads a download-state record.
pub fn decode_download(b: &[u8]) -> Result<DownloadState, DecodeError> {
    use std::os::unix::ffi::OsStrExt;
    let mut r = Reader::new(b);
    r.header(RecordType::Download)?;
    let at = r.pos();
    let s = match r.u8()? {
        0 => DownloadState::Pending,
        1 => DownloadState::Downloading { offset: r.u64()? },
        2 => DownloadState::Staged { path: std::ffi::OsStr::from_bytes(r.bytes()?).into(), hash: r.array()? },
        3 => DownloadState::Installed,
        4 => DownloadState::Failed { reason: r.string()?, retries: r.u32()? },
        value => return Err(DecodeError::BadTag { what: "download state", value, at }),
    };
    r.finish()?;
    Ok(s)
}

fn loss_tag(r: LossReason) -> u8 {
    match r {
        LossReason::LostConflict => 0,
        LossReason::NameConflict => 1,
        LossReason::Deleted => 2,
        LossReason::ParentDeleted => 3,
    }
}

/// `uid`, `gvsn`, `string name`, `parent`, `u8 reason` (0 lost conflict,
/// 1 name conflict, 2 deleted, 3 parent deleted), `u64 at`.
pub fn encode_conflict(c: &ConflictRecord) -> Vec<u8> {
    Writer::record(RecordType::Conflict)
        .uid(&c.uid)
        .gvsn(&c.gvsn)
        .string(&c.name)
        .uid(&c.parent)
        .u8(loss_tag(c.reason))
        .u64(c.at)
        .finish()
}

/// Reads a ConflictAndDeleted record.
pub fn decode_conflict(b: &[u8]) -> Result<ConflictRecord, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::Conflict)?;
    let uid = r.uid()?;
    let gvsn = r.gvsn()?;
    let name = r.string()?;
    let parent = r.uid()?;
    let at = r.pos();
    let reason = match r.u8()? {
        0 => LossReason::LostConflict,
        1 => LossReason::NameConflict,
        2 => LossReason::Deleted,
        3 => LossReason::ParentDeleted,
        value => return Err(DecodeError::BadTag { what: "loss reason", value, at }),
    };
    let c = ConflictRecord { uid, gvsn, name, parent, reason, at: r.u64()? };
    r.finish()?;
    Ok(c)
}

/// A member's neighbours in an index list (the children of a directory,
/// the updates of a folder; see `keys`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Links {
    /// The member before it; `None` for the first (the head names it).
    pub prev: Option<Uid>,
    /// The member after it; `None` for the last.
    pub next: Option<Uid>,
}

const LINK_PREV: u8 = 1;
const LINK_NEXT: u8 = 2;

/// `u8 bits (1 prev, 2 next)`, then the previous and the next UID when
/// their bit is set.
pub fn encode_links(l: &Links) -> Vec<u8> {
    let mut w = Writer::record(RecordType::ListLinks);
    w.u8(if l.prev.is_some() { LINK_PREV } else { 0 } | if l.next.is_some() { LINK_NEXT } else { 0 });
    if let Some(p) = &l.prev {
        w.uid(p);
    }
    if let Some(n) = &l.next {
        w.uid(n);
    }
    w.finish()
}

/// Reads a list member's links.
pub fn decode_links(b: &[u8]) -> Result<Links, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::ListLinks)?;
    let at = r.pos();
    let bits = r.u8()?;
    if bits & !(LINK_PREV | LINK_NEXT) != 0 {
        return Err(DecodeError::BadTag { what: "link bits", value: bits, at });
    }
    let prev = if bits & LINK_PREV != 0 { Some(r.uid()?) } else { None };
    let next = if bits & LINK_NEXT != 0 { Some(r.uid()?) } else { None };
    r.finish()?;
    Ok(Links { prev, next })
}

/// A list's head: the first member's UID.
pub fn encode_list_head(first: &Uid) -> Vec<u8> {
    Writer::record(RecordType::ListHead).uid(first).finish()
}

/// Reads a list's head.
pub fn decode_list_head(b: &[u8]) -> Result<Uid, DecodeError> {
    let mut r = Reader::new(b);
    r.header(RecordType::ListHead)?;
    let first = r.uid()?;
    r.finish()?;
    Ok(first)
}

/// The name `dump` uses for a loss reason.
pub fn loss_reason_name(r: LossReason) -> &'static str {
    match r {
        LossReason::LostConflict => "lost-conflict",
        LossReason::NameConflict => "name-conflict",
        LossReason::Deleted => "deleted",
        LossReason::ParentDeleted => "parent-deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::update::fence;

    pub(crate) fn update(db: u8, v: u64, gv: u64, parent: u64, name: &str) -> Update {
        Update {
            present: true,
            name_conflict: false,
            attributes: 0x20,
            fence: fence::DEFAULT,
            clock: 0x01d9_0000_0000_0000 + v,
            create_time: 0x01d8_0000_0000_0000,
            content_set_id: Guid([0xcc; 16]),
            hash: [0xab; 20],
            rdc_similarity: [0x5a; 16],
            uid: Uid::new(Guid([db; 16]), v),
            gvsn: Gvsn::new(Guid([db; 16]), gv),
            parent: Uid::new(Guid([db; 16]), parent),
            name: name.into(),
            flags: 0x10,
        }
    }

    #[test]
    fn update_round_trip() {
        let mut u = update(1, 9, 12, 1, "Ünïcødé ✓.txt");
        assert_eq!(decode_update(&encode_update(&u)).unwrap(), u);
        u.present = false;
        u.name_conflict = true;
        u.name = String::new();
        assert_eq!(decode_update(&encode_update(&u)).unwrap(), u);
        // Layout: header, bits, then fixed fields; 2+1+4+24+16+20+16+72+4+4.
        assert_eq!(encode_update(&u).len(), 163);
        assert_eq!(&encode_update(&u)[..3], &[2, 1, 2]);
    }

    #[test]
    fn other_round_trips() {
        let uid = Uid::new(Guid([3; 16]), 77);
        assert_eq!(decode_gvsn_index(&encode_gvsn_index(&uid)).unwrap(), uid);
        assert_eq!(decode_schema(&encode_schema(7)).unwrap(), 7);
        assert_eq!(decode_database_guid(&encode_database_guid(&Guid([9; 16]))).unwrap(), Guid([9; 16]));
        let o = OriginatorState { next_version: 1 << 40, last_clock: u64::MAX };
        assert_eq!(decode_originator(&encode_originator(&o)).unwrap(), o);
        let v =
            VersionVector::from_wire([(Guid([1; 16]), 8, 20), (Guid([2; 16]), 0, u64::MAX), (Guid([1; 16]), 30, 31)])
                .unwrap();
        assert_eq!(decode_vector(&encode_vector(&v)).unwrap(), v);
        assert_eq!(decode_vector(&encode_vector(&VersionVector::new())).unwrap(), VersionVector::new());
        for s in [
            DownloadState::Pending,
            DownloadState::Downloading { offset: 123_456_789 },
            DownloadState::Staged { path: "/var/lib/samba/dfsr/staging/a b".into(), hash: [7; 20] },
            DownloadState::Installed,
            DownloadState::Failed { reason: "sharing violation".into(), retries: 9 },
        ] {
            assert_eq!(decode_download(&encode_download(&s)).unwrap(), s);
        }
        for reason in
            [LossReason::LostConflict, LossReason::NameConflict, LossReason::Deleted, LossReason::ParentDeleted]
        {
            let c = ConflictRecord::new(&update(4, 10, 11, 1, "x"), reason, 99);
            assert_eq!(decode_conflict(&encode_conflict(&c)).unwrap(), c);
        }
        let (a, b) = (Uid::new(Guid([5; 16]), 1), Uid::new(Guid([6; 16]), u64::MAX));
        for l in [
            Links::default(),
            Links { prev: Some(a), next: None },
            Links { prev: None, next: Some(b) },
            Links { prev: Some(a), next: Some(b) },
        ] {
            assert_eq!(decode_links(&encode_links(&l)).unwrap(), l);
        }
        // Header, bits, then only the UIDs that are there.
        assert_eq!(encode_links(&Links { prev: None, next: Some(b) }).len(), 3 + 24);
        assert_eq!(decode_list_head(&encode_list_head(&b)).unwrap(), b);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let values = [
            encode_update(&update(1, 9, 12, 1, "name")),
            encode_vector(&VersionVector::from_wire([(Guid([1; 16]), 8, 20)]).unwrap()),
            encode_download(&DownloadState::Staged { path: "/p".into(), hash: [1; 20] }),
            encode_download(&DownloadState::Failed { reason: "r".into(), retries: 1 }),
            encode_conflict(&ConflictRecord::new(&update(4, 10, 11, 1, "x"), LossReason::Deleted, 1)),
            encode_gvsn_index(&Uid::new(Guid([1; 16]), 9)),
            encode_originator(&OriginatorState { next_version: 9, last_clock: 0 }),
            encode_links(&Links { prev: Some(Uid::new(Guid([1; 16]), 9)), next: Some(Uid::new(Guid([2; 16]), 1)) }),
            encode_list_head(&Uid::new(Guid([1; 16]), 9)),
        ];
        for v in &values {
            for n in 0..v.len() {
                let cut = &v[..n];
                let errs = [
                    decode_update(cut).err(),
                    decode_vector(cut).err(),
                    decode_download(cut).err(),
                    decode_conflict(cut).err(),
                    decode_gvsn_index(cut).err(),
                    decode_originator(cut).err(),
                    decode_links(cut).err(),
                    decode_list_head(cut).err(),
                ];
                assert!(errs.iter().all(Option::is_some), "prefix {n} of {v:?} decoded");
            }
            // One extra byte is refused too.
            let mut long = v.clone();
            long.push(0);
            let ok = decode_update(&long).is_ok()
                || decode_vector(&long).is_ok()
                || decode_download(&long).is_ok()
                || decode_conflict(&long).is_ok()
                || decode_gvsn_index(&long).is_ok()
                || decode_originator(&long).is_ok()
                || decode_links(&long).is_ok()
                || decode_list_head(&long).is_ok();
            assert!(!ok, "{long:?} decoded with a trailing byte");
        }
        let u = encode_update(&update(1, 9, 12, 1, "name"));
        assert!(matches!(decode_update(&u[..50]), Err(DecodeError::Truncated { at: 47, need: 20, have: 3 })));
    }

    #[test]
    fn wrong_type_format_and_tags() {
        let mut u = encode_update(&update(1, 9, 12, 1, "n"));
        assert_eq!(decode_gvsn_index(&u), Err(DecodeError::WrongType { expected: "gvsn-index", found: 2 }));
        u[1] = 2;
        assert_eq!(decode_update(&u), Err(DecodeError::UnsupportedFormat { record: "update", found: 2, supported: 1 }));
        u[1] = 1;
        u[2] = 0x80;
        assert!(matches!(decode_update(&u), Err(DecodeError::BadTag { what: "update bits", .. })));
        let mut l = encode_links(&Links::default());
        l[2] = 4;
        assert!(matches!(decode_links(&l), Err(DecodeError::BadTag { what: "link bits", .. })));
        // A name that is not UTF-8.
        let mut u = encode_update(&update(1, 9, 12, 1, "ab"));
        let n = u.len();
        u[n - 1] = 0xff;
        assert!(matches!(decode_update(&u), Err(DecodeError::BadUtf8(_))));
        // A huge length prefix is refused before any allocation.
        let mut u = encode_update(&update(1, 9, 12, 1, ""));
        let n = u.len();
        u[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_update(&u), Err(DecodeError::TooLong { .. })));
        let mut v = encode_vector(&VersionVector::new());
        v[2..6].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(decode_vector(&v), Err(DecodeError::Truncated { .. })));
        // low > high from a hostile vector.
        let mut v = Writer::record(RecordType::Vector);
        v.u32(1).guid(&Guid([1; 16])).u64(9).u64(3);
        assert!(matches!(decode_vector(&v.finish()), Err(DecodeError::Vector(_))));
        let mut d = encode_download(&DownloadState::Pending);
        d[2] = 9;
        assert!(matches!(decode_download(&d), Err(DecodeError::BadTag { what: "download state", .. })));
        assert!(matches!(decode_schema(&[]), Err(DecodeError::Truncated { .. })));
        assert_eq!(RecordType::from_byte(0), None);
        for b in 1..=8 {
            assert_eq!(RecordType::from_byte(b).map(|t| t as u8), Some(b));
        }
    }
}
