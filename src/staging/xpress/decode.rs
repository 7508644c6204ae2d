//! LZ77+Huffman decompression (MS-XCA §2.2.4).
//!
//! The bit reader follows §2.2.4 exactly: a 32-bit register refilled with
//! little-endian 16-bit words whenever fewer than 16 bits remain, and the
//! extra match-length bytes taken from the input position just past the
//! words already in the register. That position matters: the encoder places
//! those bytes there (§2.1.4.3), so a reader that buffers further ahead would
//! misplace them.

use super::huffman::{DecodeTable, TABLE_BYTES};
use super::{XpressError, BLOCK_OUTPUT};

/// How the end of the stream is recognised.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The container knows the decompressed size (FRSX blocks, §2.2.4:
    /// "the expected decompressed size has been written").
    Exact,
    /// Size unknown: the end is the EOF symbol (256) found where the input
    /// is used up and only zero padding follows (§2.1.4.3 FlushBits).
    Marker,
}

struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    /// Next bits, most significant first.
    reg: u32,
    /// Valid bits in `reg` minus 16 (the spec's ExtraBitCount).
    extra: i32,
    /// Zero bits appended past the end of the input; consuming them is an
    /// error, detected at the next refill or at the end.
    pad: i32,
}

impl<'a> Bits<'a> {
    fn start(input: &'a [u8], pos: usize) -> Self {
        let mut b = Bits { input, pos, reg: 0, extra: -16, pad: 0 };
        // §2.2.4: the first two words are read at the start of every block.
        b.push_word();
        b.extra = 0;
        b.push_word_at(0);
        b.extra = 16;
        b
    }

    #[inline(always)]
    fn next_word(&mut self) -> u32 {
        match self.input.get(self.pos..self.pos + 2) {
            Some(w) => {
                self.pos += 2;
                u16::from_le_bytes([w[0], w[1]]) as u32
            }
            None => {
                self.pad += 16;
                0
            }
        }
    }

    fn push_word(&mut self) {
        let w = self.next_word();
        self.reg = w << 16;
    }

    fn push_word_at(&mut self, shift: u32) {
        let w = self.next_word();
        self.reg |= w << shift;
    }

    /// §2.2.4: "If ExtraBitCount < 0, NextBits |= Read16Bits(..) << -ExtraBitCount".
    #[inline(always)]
    fn refill(&mut self) -> Result<(), XpressError> {
        if self.extra < 0 {
            if self.pad > 0 && self.extra + 16 < self.pad {
                return Err(XpressError::TruncatedInput { offset: self.input.len() });
            }
            let w = self.next_word();
            self.reg |= w << (-self.extra) as u32;
            self.extra += 16;
        }
        Ok(())
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        // n ≤ 15 < 32: the shift is always in range.
        self.reg <<= n;
        self.extra -= n as i32;
    }

    fn byte(&mut self) -> Result<u32, XpressError> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b as u32)
            }
            None => Err(XpressError::TruncatedInput { offset: self.pos }),
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], XpressError> {
        match self.input.get(self.pos..self.pos + N) {
            Some(s) => {
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                self.pos += N;
                Ok(a)
            }
            None => Err(XpressError::TruncatedInput { offset: self.pos }),
        }
    }

    /// Real (not padding) bits left in the register.
    fn real_bits(&self) -> i32 {
        self.extra + 16 - self.pad
    }

    /// True when the input is used up and every bit left is zero padding.
    fn only_padding_left(&self) -> bool {
        if self.pos + 1 < self.input.len() {
            return false;
        }
        let real = self.real_bits();
        if real < 0 {
            return false;
        }
        real == 0 || (self.reg as u64) >> (32 - real as u32) == 0
    }
}

/// Reusable decompressor (keeps the decode table allocation).
#[derive(Default)]
pub struct Decoder {
    table: DecodeTable,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder { table: DecodeTable::new() }
    }

    /// Decompresses `input`, whose decompressed size is known to be `size`
    /// (as FRSX block headers state it), replacing the contents of `out`.
    pub fn decompress_exact(
        &mut self,
        input: &[u8],
        size: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), XpressError> {
        out.clear();
        out.resize(size, 0);
        if size == 0 {
            return Ok(());
        }
        self.run(input, out, size, End::Exact).map(|_| ())
    }

    /// Decompresses a stream of unknown decompressed size, ending at the
    /// EOF symbol (§2.1.4.3). Fails with `LimitExceeded` rather than
    /// produce more than `limit` bytes.
    pub fn decompress_unknown(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), XpressError> {
        out.clear();
        let n = self.run(input, out, limit, End::Marker)?;
        out.truncate(n);
        Ok(())
    }

    /// Decodes blocks into `out`; returns the number of bytes produced.
    /// In `Exact` mode `out.len() == limit` already; in `Marker` mode `out`
    /// grows a block at a time, never past `limit`.
    fn run(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
        end: End,
    ) -> Result<usize, XpressError> {
        let mut pos = 0usize;
        let mut op = 0usize;
        loop {
            // §2.2.4: each block starts with its 256-byte length table.
            let table: &[u8; TABLE_BYTES] = input
                .get(pos..pos + TABLE_BYTES)
                .and_then(|t| t.try_into().ok())
                .ok_or(XpressError::TruncatedInput { offset: pos })?;
            self.table
                .build(table)
                .map_err(|p| XpressError::InvalidTable { offset: pos, reason: p.as_str() })?;
            let mut bits = Bits::start(input, pos + TABLE_BYTES);
            let block_end = match end {
                End::Exact => (op + BLOCK_OUTPUT).min(limit),
                End::Marker => {
                    let want = op.saturating_add(BLOCK_OUTPUT).min(limit);
                    if out.len() < want {
                        out.resize(want, 0);
                    }
                    op.saturating_add(BLOCK_OUTPUT)
                }
            };
            let (new_op, finished) =
                decode_block(&self.table, &mut bits, out, op, block_end, limit, end)?;
            op = new_op;
            if finished {
                return Ok(op);
            }
            match end {
                End::Exact => {
                    if op >= limit {
                        if bits.real_bits() < 0 {
                            return Err(XpressError::TruncatedInput { offset: input.len() });
                        }
                        // Windows does not insist on the EOF symbol after
                        // the last byte; neither do we (lenient like it).
                        return Ok(op);
                    }
                }
                End::Marker => {
                    // A block is over. If what is left cannot hold another
                    // block (table + two words), the EOF symbol must follow
                    // in this block's bit stream.
                    if input.len().saturating_sub(bits.pos) < TABLE_BYTES + 4 {
                        let at = bits.pos;
                        let (sym, len) = self.table.lookup(bits.reg >> 17);
                        bits.consume(len);
                        bits.refill()?;
                        if sym != 256 || !bits.only_padding_left() {
                            return Err(XpressError::MissingEnd { offset: at });
                        }
                        return Ok(op);
                    }
                    if op >= limit {
                        return Err(XpressError::LimitExceeded { limit });
                    }
                }
            }
            pos = bits.pos;
        }
    }
}

/// Decodes symbols until `op` reaches `block_end` (§2.2.4 block loop).
/// Returns the new output position and whether the EOF marker was seen.
#[inline(never)]
fn decode_block(
    table: &DecodeTable,
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    mut op: usize,
    block_end: usize,
    limit: usize,
    end: End,
) -> Result<(usize, bool), XpressError> {
    while op < block_end {
        let (sym, len) = table.lookup(bits.reg >> 17);
        bits.consume(len);
        bits.refill()?;
        if sym < 256 {
            // In Marker mode `out` was sized to min(block_end, limit).
            match out.get_mut(op) {
                Some(b) => *b = sym as u8,
                None => return Err(XpressError::LimitExceeded { limit }),
            }
            op += 1;
            continue;
        }
        if sym == 256 && end == End::Marker && bits.only_padding_left() {
            return Ok((op, true));
        }
        let s = sym - 256;
        let mut length = (s & 15) as usize;
        let dbits = s >> 4;
        if length == 15 {
            // §2.2.4: one extra byte, then (if 255) two more bytes.
            let at = bits.pos;
            let b = bits.byte()? as usize;
            length = b + 15;
            if b == 255 {
                let v = u16::from_le_bytes(bits.bytes::<2>()?) as usize;
                length = if v == 0 {
                    // Windows' extension for lengths beyond 16 bits: a zero
                    // 16-bit field is followed by a 32-bit one (as Samba's
                    // lzxpress_huffman decoder also accepts).
                    u32::from_le_bytes(bits.bytes::<4>()?) as usize
                } else if v < 15 {
                    // §2.2.4: "If MatchLength < 15 … The compressed data is invalid."
                    return Err(XpressError::BadMatchLength { offset: at, value: v });
                } else {
                    v
                };
            }
        }
        let length = length + 3;
        let dist = if dbits == 0 {
            1
        } else {
            let d = (1usize << dbits) + ((bits.reg as u64) >> (32 - dbits)) as usize;
            bits.consume(dbits);
            bits.refill()?;
            d
        };
        if dist > op {
            return Err(XpressError::DistanceTooFar { output_offset: op, distance: dist });
        }
        let stop = op.checked_add(length).filter(|&e| e <= limit).ok_or(
            XpressError::MatchPastEnd { output_offset: op, length, limit },
        )?;
        if stop > out.len() {
            // Only in Marker mode: a match reaching past the block's space.
            out.resize(stop, 0);
        }
        copy_match(out, op, dist, length);
        op = stop;
    }
    Ok((op, false))
}

/// Copies `len` bytes from `dist` back (byte-wise semantics, §2.2.4: the
/// source may overlap the destination).
#[inline(always)]
fn copy_match(out: &mut [u8], op: usize, dist: usize, len: usize) {
    let src = op - dist;
    if dist >= len {
        out.copy_within(src..src + len, op);
    } else if dist == 1 {
        let b = out[src];
        out[op..op + len].fill(b);
    } else {
        // [src, op + done) repeats with period `dist`, so it can be copied
        // in ever-doubling non-overlapping chunks.
        let mut done = 0;
        while done < len {
            let n = (dist + done).min(len - done);
            out.copy_within(src..src + n, op + done);
            done += n;
        }
    }
}
