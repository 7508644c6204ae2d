//! NDR20 (little-endian), the transfer syntax of DCE/RPC that MS-FRS2 §2.1
//! uses ([C706] §14, [MS-RPCE] §2.2.5): a [`Writer`] and a hostile-input
//! [`Reader`], sans-IO.
//!
//! Conventions shared by both sides:
//! - Alignment is relative to the start of the stub data (the first byte the
//!   writer wrote / the reader was given). NDR20 has no trailing padding
//!   after a structure ([MS-RPCE] §2.2.5.3.4.1 applies that only to NDR64).
//! - Embedded `[unique]`/`[ptr]` pointers are a referent id (0 = null) in
//!   place, the pointee is *deferred*: written after the scalar part of the
//!   top-level parameter that contains it ([C706] §14.3.12.3). The writer
//!   queues pointees with [`Writer::unique_ptr`] and writes them, depth
//!   first, at [`Writer::flush_deferred`]. Top-level `[ref]` pointers have no
//!   wire representation; embedded `[ref]` pointers carry a non-zero id.
//! - Conformant arrays: `u32 max_count` then the elements. Varying arrays:
//!   `u32 offset` (always 0 here), `u32 actual_count`, then the elements.
//!   Conformant-varying arrays: both headers. Strings (`[string] WCHAR`)
//!   are varying/conformant-varying UTF-16LE arrays whose count includes
//!   the terminating NUL.
//!
//! The reader never panics and never allocates more than the input can
//! hold: every element count is checked against the bytes left before a
//! `Vec` is reserved.

use std::collections::HashMap;

/// Everything that can be wrong with received NDR. Every variant is the
/// sender's fault (a malformed or out-of-contract message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before a value (or its alignment padding) was complete.
    #[error("truncated: {need} bytes needed at offset {offset}, {remaining} left")]
    Truncated {
        /// Offset of the value in the stub data.
        offset: usize,
        /// Bytes the value needs.
        need: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Alignment padding was not zero (only checked by a strict reader).
    #[error("non-zero alignment padding at offset {offset}")]
    NonZeroPadding {
        /// Offset of the first non-zero padding byte.
        offset: usize,
    },
    /// An array or string claims more elements than the rest of the input
    /// could possibly hold (checked before allocating).
    #[error("{what}: count {count} at offset {offset} cannot fit in the {remaining} bytes left")]
    CountTooLarge {
        /// Which array.
        what: &'static str,
        /// The count on the wire.
        count: u32,
        /// Offset just past the count.
        offset: usize,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A varying array's offset was not 0 (MS-FRS2 never sends partial arrays).
    #[error("{what}: varying-array offset {offset} is not 0")]
    NonZeroOffset {
        /// Which array.
        what: &'static str,
        /// The offset on the wire.
        offset: u32,
    },
    /// A varying array's actual count exceeds its maximum count.
    #[error("{what}: actual count {actual} exceeds maximum count {max}")]
    ActualExceedsMax {
        /// Which array.
        what: &'static str,
        /// `actual_count` on the wire.
        actual: u32,
        /// `max_count` on the wire (or fixed by the IDL).
        max: u32,
    },
    /// A value that the IDL ties to another (`size_is`, `length_is`) differs.
    #[error("{what}: {found} on the wire, {expected} expected")]
    CountMismatch {
        /// Which value.
        what: &'static str,
        /// What the related field says.
        expected: u64,
        /// What was on the wire.
        found: u64,
    },
    /// A `[range]` (or spec-imposed) bound was violated.
    #[error("{what}: {value} outside {min}..={max}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value on the wire.
        value: u64,
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
    /// A string's last unit was not NUL (or the string was empty).
    #[error("{what}: string not NUL-terminated")]
    MissingNul {
        /// Which string.
        what: &'static str,
    },
    /// A NUL inside a string before its terminator.
    #[error("{what}: embedded NUL in string")]
    EmbeddedNul {
        /// Which string.
        what: &'static str,
    },
    /// A string was not valid UTF-16 (an unpaired surrogate).
    #[error("{what}: invalid UTF-16")]
    InvalidUtf16 {
        /// Which string.
        what: &'static str,
    },
    /// A string longer than the IDL or the caller allows.
    #[error("{what}: string of {len} units exceeds the limit of {max}")]
    StringTooLong {
        /// Which string.
        what: &'static str,
        /// Units on the wire (NUL included).
        len: u32,
        /// Limit (NUL included).
        max: u32,
    },
    /// A `[ref]` pointer embedded in a structure was null.
    #[error("{what}: null [ref] pointer")]
    NullRefPointer {
        /// Which pointer.
        what: &'static str,
    },
    /// An enumeration value the spec does not define.
    #[error("{what}: unknown value {value}")]
    BadEnum {
        /// Which enumeration.
        what: &'static str,
        /// The value on the wire.
        value: u32,
    },
    /// A union's discriminant differs from its `switch_is` field, or has no arm.
    #[error("{what}: bad union discriminant {found} (switch_is {expected})")]
    BadSwitch {
        /// Which union.
        what: &'static str,
        /// The `switch_is` value.
        expected: u32,
        /// The discriminant on the wire.
        found: u32,
    },
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// An opnum the interface does not define.
    #[error("unknown opnum {0}")]
    UnknownOpnum(u16),
}

/// Result of NDR decoding.
pub type Result<T> = std::result::Result<T, Error>;

/// GUIDs are the engine's one type: stored as their 16 wire bytes, the
/// NDR representation of [MS-DTYP] §2.3.4.2 (`u32 Data1`, `u16 Data2`,
/// `u16 Data3`, `u8 Data4[8]`, little-endian, aligned to 4).
pub use crate::engine::ids::Guid;

/// A pointee waiting to be written after the current top-level parameter.
type Deferred<'a> = Box<dyn FnOnce(&mut Writer<'a>) + 'a>;

/// First referent id handed out (what MIDL and Samba use).
pub const FIRST_REFERENT_ID: u32 = 0x0002_0000;

/// NDR20 writer. Infallible: every value has an encoding. `'a` is the
/// lifetime of the values whose pointees are deferred.
pub struct Writer<'a> {
    buf: Vec<u8>,
    next_referent: u32,
    deferred: Vec<Deferred<'a>>,
    full: HashMap<u64, u32>,
}

impl Default for Writer<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Writer<'a> {
    /// An empty writer; offset 0 is the start of the stub data.
    pub fn new() -> Self {
        Writer { buf: Vec::new(), next_referent: FIRST_REFERENT_ID, deferred: Vec::new(), full: HashMap::new() }
    }

    /// Flushes outstanding pointees and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush_deferred();
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Pads with zeros to a multiple of `n` (1, 2, 4 or 8).
    pub fn align(&mut self, n: usize) {
        if n <= 1 {
            return;
        }
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }

    /// `small`/`byte`/`unsigned char`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// `short`, aligned to 2.
    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `long`/`DWORD`, aligned to 4.
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Signed `long`, aligned to 4.
    pub fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    /// `hyper`/`DWORDLONG`/`ULONGLONG`, aligned to 8.
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Alias of [`Writer::u64`] (`hyper`).
    pub fn hyper(&mut self, v: u64) {
        self.u64(v);
    }

    /// A `FILETIME` ([MS-DTYP] §2.3.3): two `DWORD`s, aligned to 4 (not 8).
    pub fn filetime(&mut self, v: u64) {
        self.u32(v as u32);
        self.u32((v >> 32) as u32);
    }

    /// A boolean `long` (TRUE = 1).
    pub fn bool32(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    /// A GUID, aligned to 4.
    pub fn guid(&mut self, g: &Guid) {
        self.align(4);
        self.buf.extend_from_slice(&g.0);
    }

    /// Raw bytes (a fixed array of `byte`), no alignment.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn alloc_referent(&mut self) -> u32 {
        let id = self.next_referent;
        self.next_referent = self.next_referent.wrapping_add(4);
        id
    }

    /// Queues `f` to run after the current top-level parameter's scalars.
    pub fn defer(&mut self, f: impl FnOnce(&mut Writer<'a>) + 'a) {
        self.deferred.push(Box::new(f));
    }

    /// An embedded `[unique]` (or non-aliased `[ptr]`) pointer: 0 for null,
    /// else a fresh referent id, with `f` writing the pointee later.
    pub fn unique_ptr<T: ?Sized>(&mut self, v: Option<&'a T>, f: impl FnOnce(&mut Writer<'a>, &'a T) + 'a) {
        match v {
            None => self.u32(0),
            Some(v) => {
                let id = self.alloc_referent();
                self.u32(id);
                self.defer(move |w| f(w, v));
            }
        }
    }

    /// An embedded `[ref]` pointer: always a non-zero referent id.
    pub fn ref_ptr<T: ?Sized>(&mut self, v: &'a T, f: impl FnOnce(&mut Writer<'a>, &'a T) + 'a) {
        let id = self.alloc_referent();
        self.u32(id);
        self.defer(move |w| f(w, v));
    }

    /// An embedded full (`[ptr]`) pointer that may alias: `key` identifies
    /// the pointee (None = null). The pointee is written only the first time
    /// a key is seen; later occurrences reuse its referent id.
    pub fn full_ptr<T: ?Sized>(&mut self, key: Option<u64>, v: &'a T, f: impl FnOnce(&mut Writer<'a>, &'a T) + 'a) {
        let Some(key) = key else { return self.u32(0) };
        if let Some(&id) = self.full.get(&key) {
            return self.u32(id);
        }
        let id = self.alloc_referent();
        self.full.insert(key, id);
        self.u32(id);
        self.defer(move |w| f(w, v));
    }

    /// Writes every queued pointee, depth first (a pointee's own pointees
    /// follow it immediately), as NDR requires at the end of each top-level
    /// parameter.
    pub fn flush_deferred(&mut self) {
        let pending = std::mem::take(&mut self.deferred);
        for f in pending {
            f(self);
            self.flush_deferred();
        }
    }

    /// Conformant array: `u32 max_count = items.len()`, then each element.
    pub fn conformant_array<T>(&mut self, items: &'a [T], mut f: impl FnMut(&mut Self, &'a T)) {
        self.u32(items.len() as u32);
        for it in items {
            f(self, it);
        }
    }

    /// Conformant byte array (`[size_is(n)] byte *`): `u32 n`, bytes.
    pub fn conformant_bytes(&mut self, data: &[u8]) {
        self.u32(data.len() as u32);
        self.bytes(data);
    }

    /// Varying array header: offset 0, `actual_count`.
    pub fn varying_header(&mut self, actual_count: u32) {
        self.u32(0);
        self.u32(actual_count);
    }

    /// Conformant-varying array header: `max_count`, offset 0, `actual_count`.
    pub fn conformant_varying_header(&mut self, max_count: u32, actual_count: u32) {
        self.u32(max_count);
        self.u32(0);
        self.u32(actual_count);
    }

    /// Conformant-varying byte array (`[size_is(max), length_is(n)] byte *`).
    pub fn conformant_varying_bytes(&mut self, max_count: u32, data: &[u8]) {
        self.conformant_varying_header(max_count, data.len() as u32);
        self.bytes(data);
    }

    fn utf16z(&mut self, units: &[u16]) {
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
        self.buf.extend_from_slice(&[0, 0]);
    }

    /// A `[string] WCHAR s[N]` inside a structure: a varying array — offset
    /// 0, actual count (NUL included), UTF-16LE units, NUL.
    pub fn varying_string(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        self.u32(0);
        self.u32(units.len() as u32 + 1);
        self.utf16z(&units);
    }

    /// A `[string] wchar_t *` pointee: a conformant-varying array with
    /// max = actual = units + 1.
    pub fn conformant_varying_string(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        let n = units.len() as u32 + 1;
        self.conformant_varying_header(n, n);
        self.utf16z(&units);
    }

    /// A pipe ([C706] §14.3.11): chunks of `u32 count` + elements, ended by
    /// an empty chunk. Empty chunks in `chunks` are skipped (they would end
    /// the pipe early).
    pub fn byte_pipe(&mut self, chunks: &[Vec<u8>]) {
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            self.u32(c.len() as u32);
            self.bytes(c);
        }
        self.u32(0);
    }
}

/// What a full pointer's referent id said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPtr {
    /// Null.
    Null,
    /// A referent not seen before: its pointee follows (deferred).
    New(u32),
    /// A referent seen before: no pointee on the wire.
    Seen(u32),
}

/// NDR20 cursor over untrusted bytes. Every method returns an [`Error`]
/// instead of panicking; offsets in errors are relative to the stub start.
#[derive(Debug, Clone)]
pub struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
    strict_padding: bool,
    full_seen: std::collections::HashSet<u32>,
}

impl<'b> Reader<'b> {
    /// A lenient reader: padding bytes may hold anything (Windows does not
    /// promise zeros).
    pub fn new(buf: &'b [u8]) -> Self {
        Reader { buf, pos: 0, strict_padding: false, full_seen: Default::default() }
    }

    /// A reader that also rejects non-zero alignment padding.
    pub fn strict(buf: &'b [u8]) -> Self {
        Reader { strict_padding: true, ..Reader::new(buf) }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Errors with [`Error::TrailingBytes`] unless the input is used up.
    pub fn expect_end(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(Error::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8]> {
        if self.remaining() < n {
            return Err(Error::Truncated { offset: self.pos, need: n, remaining: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips padding to a multiple of `n`; padding must exist (and be zero
    /// for a strict reader).
    pub fn align(&mut self, n: usize) -> Result<()> {
        if n <= 1 {
            return Ok(());
        }
        let pad = (n - self.pos % n) % n;
        let at = self.pos;
        let p = self.take(pad)?;
        if self.strict_padding {
            if let Some(i) = p.iter().position(|&b| b != 0) {
                return Err(Error::NonZeroPadding { offset: at + i });
            }
        }
        Ok(())
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// `short`, aligned to 2.
    pub fn u16(&mut self) -> Result<u16> {
        self.align(2)?;
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// `long`, aligned to 4.
    pub fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Signed `long`.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }

    /// `hyper`, aligned to 8.
    pub fn u64(&mut self) -> Result<u64> {
        self.align(8)?;
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Alias of [`Reader::u64`].
    pub fn hyper(&mut self) -> Result<u64> {
        self.u64()
    }

    /// `FILETIME`: two `DWORD`s aligned to 4.
    pub fn filetime(&mut self) -> Result<u64> {
        let lo = self.u32()?;
        let hi = self.u32()?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    /// A boolean `long`: any non-zero value is TRUE.
    pub fn bool32(&mut self) -> Result<bool> {
        Ok(self.u32()? != 0)
    }

    /// A `[range(0,1)] long`: only 0 and 1 are accepted.
    pub fn bool32_strict(&mut self, what: &'static str) -> Result<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::OutOfRange { what, value: v.into(), min: 0, max: 1 }),
        }
    }

    /// A GUID, aligned to 4.
    pub fn guid(&mut self) -> Result<Guid> {
        self.align(4)?;
        Ok(Guid(self.array::<16>()?))
    }

    /// A fixed byte array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        Ok(self.take(n)?.to_vec())
    }

    /// Checks that `count` elements of at least `min_size` bytes can fit in
    /// what is left, so that allocating `count` of them is bounded by the
    /// input size.
    pub fn check_count(&self, what: &'static str, count: u32, min_size: usize) -> Result<()> {
        let need = (count as usize).checked_mul(min_size.max(1));
        match need {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(Error::CountTooLarge { what, count, offset: self.pos, remaining: self.remaining() }),
        }
    }

    /// Reads `count` elements with `f` after [`Reader::check_count`].
    pub fn elements<T>(
        &mut self,
        what: &'static str,
        count: u32,
        min_size: usize,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.check_count(what, count, min_size)?;
        let mut v = Vec::with_capacity(count as usize);
        for _ in 0..count {
            v.push(f(self)?);
        }
        Ok(v)
    }

    /// A conformant array's `max_count` (checked against the input size).
    pub fn conformant_count(&mut self, what: &'static str, min_size: usize) -> Result<u32> {
        let n = self.u32()?;
        self.check_count(what, n, min_size)?;
        Ok(n)
    }

    /// A conformant array: `max_count`, then the elements.
    pub fn conformant_array<T>(
        &mut self,
        what: &'static str,
        min_size: usize,
        f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.u32()?;
        self.elements(what, n, min_size, f)
    }

    /// A conformant byte array.
    pub fn conformant_bytes(&mut self, what: &'static str) -> Result<Vec<u8>> {
        let n = self.conformant_count(what, 1)?;
        self.bytes(n as usize)
    }

    /// A varying array header (offset, actual count): offset must be 0,
    /// actual ≤ `max`, and `actual` elements must fit.
    pub fn varying_header(&mut self, what: &'static str, max: u32, min_size: usize) -> Result<u32> {
        let offset = self.u32()?;
        if offset != 0 {
            return Err(Error::NonZeroOffset { what, offset });
        }
        let actual = self.u32()?;
        if actual > max {
            return Err(Error::ActualExceedsMax { what, actual, max });
        }
        self.check_count(what, actual, min_size)?;
        Ok(actual)
    }

    /// A conformant-varying header: returns `(max_count, actual_count)`.
    pub fn conformant_varying_header(&mut self, what: &'static str, min_size: usize) -> Result<(u32, u32)> {
        let max = self.u32()?;
        let actual = self.varying_header(what, max, min_size)?;
        Ok((max, actual))
    }

    /// A conformant-varying byte array: `(max_count, bytes)`.
    pub fn conformant_varying_bytes(&mut self, what: &'static str) -> Result<(u32, Vec<u8>)> {
        let (max, n) = self.conformant_varying_header(what, 1)?;
        Ok((max, self.bytes(n as usize)?))
    }

    fn utf16z(&mut self, what: &'static str, n: u32) -> Result<String> {
        if n == 0 {
            return Err(Error::MissingNul { what });
        }
        let raw = self.take(2 * n as usize)?;
        let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let (last, body) = units.split_last().ok_or(Error::MissingNul { what })?;
        if *last != 0 {
            return Err(Error::MissingNul { what });
        }
        if body.contains(&0) {
            return Err(Error::EmbeddedNul { what });
        }
        String::from_utf16(body).map_err(|_| Error::InvalidUtf16 { what })
    }

    /// A `[string] WCHAR s[max]` inside a structure (varying array): at most
    /// `max` units including the NUL.
    pub fn varying_string(&mut self, what: &'static str, max: u32) -> Result<String> {
        let offset = self.u32()?;
        if offset != 0 {
            return Err(Error::NonZeroOffset { what, offset });
        }
        let n = self.u32()?;
        if n > max {
            return Err(Error::StringTooLong { what, len: n, max });
        }
        self.check_count(what, n, 2)?;
        self.utf16z(what, n)
    }

    /// A conformant-varying string, at most `limit` units (NUL included).
    pub fn conformant_varying_string(&mut self, what: &'static str, limit: u32) -> Result<String> {
        let max = self.u32()?;
        if max > limit {
            return Err(Error::StringTooLong { what, len: max, max: limit });
        }
        let n = self.varying_header(what, max, 2)?;
        self.utf16z(what, n)
    }

    /// An embedded unique pointer's referent id: `None` for null. The caller
    /// reads the pointee where NDR defers it.
    pub fn unique_ptr(&mut self) -> Result<Option<u32>> {
        let id = self.u32()?;
        Ok((id != 0).then_some(id))
    }

    /// An embedded `[ref]` pointer: must not be null.
    pub fn ref_ptr(&mut self, what: &'static str) -> Result<u32> {
        self.unique_ptr()?.ok_or(Error::NullRefPointer { what })
    }

    /// An embedded full pointer: tells whether a pointee follows.
    pub fn full_ptr(&mut self) -> Result<FullPtr> {
        let id = self.u32()?;
        if id == 0 {
            return Ok(FullPtr::Null);
        }
        Ok(if self.full_seen.insert(id) { FullPtr::New(id) } else { FullPtr::Seen(id) })
    }

    /// A byte pipe: chunks until an empty one. Chunks are returned as sent.
    pub fn byte_pipe(&mut self, what: &'static str) -> Result<Vec<Vec<u8>>> {
        let mut chunks = Vec::new();
        loop {
            let n = self.u32()?;
            if n == 0 {
                return Ok(chunks);
            }
            self.check_count(what, n, 1)?;
            chunks.push(self.bytes(n as usize)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_align_relative_to_start() {
        let mut w = Writer::new();
        w.u8(1);
        w.u16(0x0302);
        w.u8(4);
        w.u32(0x0807_0605);
        w.u8(9);
        w.u64(0x1122_3344_5566_7788);
        let b = w.finish();
        assert_eq!(b, [1, 0, 2, 3, 4, 0, 0, 0, 5, 6, 7, 8, 9, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        let mut r = Reader::strict(&b);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 0x0302);
        assert_eq!(r.u8().unwrap(), 4);
        assert_eq!(r.u32().unwrap(), 0x0807_0605);
        assert_eq!(r.u8().unwrap(), 9);
        assert_eq!(r.u64().unwrap(), 0x1122_3344_5566_7788);
        r.expect_end().unwrap();
    }

    #[test]
    fn guid_wire_and_display() {
        let g = "897e2e5f-93f3-4376-9c9c-fd2277495c27".parse::<Guid>().ok().unwrap();
        assert_eq!(&g.0[..4], &[0x5f, 0x2e, 0x7e, 0x89]);
        assert_eq!(g.to_string(), "897e2e5f-93f3-4376-9c9c-fd2277495c27");
        assert_eq!("{897e2e5f-93f3-4376-9c9c-fd2277495c27}".parse::<Guid>().ok(), Some(g));
        assert_eq!("897e2e5f-93f3-4376-9c9c-fd2277495c2".parse::<Guid>().ok(), None);
        let mut w = Writer::new();
        w.u8(7);
        w.guid(&g);
        let b = w.finish();
        assert_eq!(b.len(), 20);
        let mut r = Reader::new(&b);
        r.u8().unwrap();
        assert_eq!(r.guid().unwrap(), g);
    }

    #[test]
    fn deferred_pointees_follow_scalars_depth_first() {
        // struct { u32 *a; u32 *b; u32 c } where *a points to a struct with
        // its own pointer: order must be c's scalars, *a, **a, *b. Referent
        // ids are handed out in writing order (a, b, then a's inner).
        let (a, inner, b) = (0xaau32, 0xcc_u32, 0xbbu32);
        let inner: &u32 = &inner;
        let mut w = Writer::new();
        w.unique_ptr(Some(&a), move |w, v| {
            w.u32(*v);
            w.unique_ptr(Some(inner), |w, v| w.u32(*v));
        });
        w.unique_ptr(Some(&b), |w, v| w.u32(*v));
        w.unique_ptr::<u32>(None, |w, v| w.u32(*v));
        w.u32(0x11);
        w.flush_deferred();
        let words: Vec<u32> = w.finish().chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(words, [0x20000, 0x20004, 0, 0x11, 0xaa, 0x20008, 0xcc, 0xbb]);
    }

    #[test]
    fn full_pointers_alias() {
        let v = 5u32;
        let mut w = Writer::new();
        w.full_ptr(Some(1), &v, |w, v| w.u32(*v));
        w.full_ptr(Some(1), &v, |w, v| w.u32(*v));
        w.full_ptr(None, &v, |w, v| w.u32(*v));
        let b = w.finish();
        assert_eq!(b.len(), 16);
        let mut r = Reader::new(&b);
        assert_eq!(r.full_ptr().unwrap(), FullPtr::New(0x20000));
        assert_eq!(r.full_ptr().unwrap(), FullPtr::Seen(0x20000));
        assert_eq!(r.full_ptr().unwrap(), FullPtr::Null);
        assert_eq!(r.u32().unwrap(), 5);
    }

    #[test]
    fn ref_pointer_must_not_be_null() {
        let mut r = Reader::new(&[0, 0, 0, 0]);
        assert_eq!(r.ref_ptr("x"), Err(Error::NullRefPointer { what: "x" }));
        let mut w = Writer::new();
        w.ref_ptr(&3u16, |w, v| w.u16(*v));
        assert_eq!(w.finish(), [0, 0, 2, 0, 3, 0]);
    }

    #[test]
    fn strings() {
        let mut w = Writer::new();
        w.varying_string("aé");
        w.conformant_varying_string("");
        let b = w.finish();
        assert_eq!(b, [0, 0, 0, 0, 3, 0, 0, 0, b'a', 0, 0xe9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        let mut r = Reader::new(&b);
        assert_eq!(r.varying_string("s", 3).unwrap(), "aé");
        assert_eq!(r.conformant_varying_string("t", 10).unwrap(), "");
        r.expect_end().unwrap();
        // Limit counts the NUL.
        assert!(matches!(Reader::new(&b).varying_string("s", 2), Err(Error::StringTooLong { len: 3, max: 2, .. })));
    }

    #[test]
    fn malformed_strings() {
        // No NUL terminator.
        let b = [0, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', 0];
        assert_eq!(Reader::new(&b).varying_string("s", 10), Err(Error::MissingNul { what: "s" }));
        // Zero units.
        let b = [0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Reader::new(&b).varying_string("s", 10), Err(Error::MissingNul { what: "s" }));
        // Embedded NUL.
        let b = [0, 0, 0, 0, 3, 0, 0, 0, b'a', 0, 0, 0, 0, 0];
        assert_eq!(Reader::new(&b).varying_string("s", 10), Err(Error::EmbeddedNul { what: "s" }));
        // Unpaired surrogate.
        let b = [0, 0, 0, 0, 2, 0, 0, 0, 0x00, 0xd8, 0, 0];
        assert_eq!(Reader::new(&b).varying_string("s", 10), Err(Error::InvalidUtf16 { what: "s" }));
        // Non-zero offset.
        let b = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        assert_eq!(Reader::new(&b).varying_string("s", 10), Err(Error::NonZeroOffset { what: "s", offset: 1 }));
        // Huge count: rejected before allocating.
        let b = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert!(matches!(Reader::new(&b).varying_string("s", u32::MAX), Err(Error::CountTooLarge { .. })));
        // Conformant-varying: actual > max.
        let b = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a', 0, 0, 0];
        assert!(matches!(
            Reader::new(&b).conformant_varying_string("s", 10),
            Err(Error::ActualExceedsMax { actual: 2, max: 1, .. })
        ));
        // Conformant-varying: max above the caller's limit.
        let b = [11, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(Reader::new(&b).conformant_varying_string("s", 10), Err(Error::StringTooLong { .. })));
    }

    #[test]
    fn truncation_and_padding() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(Error::Truncated { offset: 0, need: 4, remaining: 3 }));
        // Alignment padding that runs past the end is truncation too.
        let mut r = Reader::new(&[1, 2]);
        r.u8().unwrap();
        assert_eq!(r.u32(), Err(Error::Truncated { offset: 1, need: 3, remaining: 1 }));
        // Strict readers reject non-zero padding; lenient ones skip it.
        let b = [1, 0xee, 2, 0];
        let mut r = Reader::strict(&b);
        r.u8().unwrap();
        assert_eq!(r.u16(), Err(Error::NonZeroPadding { offset: 1 }));
        let mut r = Reader::new(&b);
        r.u8().unwrap();
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(Reader::new(&[0]).expect_end(), Err(Error::TrailingBytes(1)));
    }

    #[test]
    fn huge_counts_are_rejected_before_allocating() {
        let b = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let mut r = Reader::new(&b);
        let e = r.conformant_array("a", 32, |r| r.u64()).unwrap_err();
        assert!(matches!(e, Error::CountTooLarge { count: u32::MAX, remaining: 4, .. }), "{e}");
        let b = [3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3];
        assert!(matches!(
            Reader::new(&b).conformant_varying_bytes("d"),
            Err(Error::ActualExceedsMax { actual: 4, max: 3, .. })
        ));
        let b = [9, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3];
        assert!(matches!(Reader::new(&b).conformant_varying_bytes("d"), Err(Error::CountTooLarge { count: 4, .. })));
    }

    #[test]
    fn pipes() {
        let mut w = Writer::new();
        w.byte_pipe(&[vec![1, 2, 3], vec![], vec![4]]);
        let b = w.finish();
        assert_eq!(b, [3, 0, 0, 0, 1, 2, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        let mut r = Reader::new(&b);
        assert_eq!(r.byte_pipe("p").unwrap(), vec![vec![1, 2, 3], vec![4]]);
        r.expect_end().unwrap();
        // A pipe without its terminating empty chunk is truncated.
        assert!(matches!(Reader::new(&b[..16]).byte_pipe("p"), Err(Error::Truncated { .. })));
        assert!(matches!(Reader::new(&b[..12]).byte_pipe("p"), Err(Error::CountTooLarge { count: 1, .. })));
    }
}
