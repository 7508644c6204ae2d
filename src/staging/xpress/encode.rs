//! LZ77+Huffman compression (MS-XCA §2.1).
//!
//! LZ77 phase (§2.1.4.1): hash chains over 3-byte prefixes with a bounded
//! chain walk and one-step lazy matching. Matches may reach back into
//! earlier 64 KiB blocks (the decoder keeps all output) and may run past a
//! block's 64 KiB mark: §2.2.4 only checks `OutputPosition >= BlockEnd`
//! before each symbol, and Windows does this too (a long run then needs one
//! table instead of one per 64 KiB).
//! Huffman phase (§2.1.4.2): length-limited canonical codes per block.
//! Final phase (§2.1.4.3): the spec's WriteBits/WriteByte/FlushBits scheme.

use super::huffman::{canonical_codes, code_lengths, pack_table, NUM_SYMBOLS};
use super::BLOCK_OUTPUT;

const HASH_BITS: u32 = 16;
const WINDOW_MASK: u32 = 0xFFFF;
/// §2.1.4.3: "match distances cannot be larger than 65,535".
const MAX_DIST: usize = 65535;
/// §2.1.4.3 says "match lengths cannot be longer than 65,538", but Windows
/// writes longer ones (a zero 16-bit length followed by a 32-bit one; see
/// the `repeating` test vector, one 65611-byte match) and we do the same, so
/// a long run costs one block table, not one per 64 KiB. The cap keeps the
/// length in 31 bits.
const MAX_LEN: usize = 1 << 30;
const MIN_LEN: usize = 3;

/// How hard the match finder works.
#[derive(Clone, Copy, Debug)]
pub struct Effort {
    /// Candidates examined per position (bounds the worst case).
    pub max_chain: u32,
    /// A match this long is taken without looking further.
    pub nice_len: usize,
    /// Length-3 matches farther than this cost more than three literals.
    pub far_3: usize,
    /// Only a match shorter than this is checked against one starting a
    /// byte later (lazy matching).
    pub max_lazy: usize,
    /// Positions inside a match longer than this are not all hashed: only
    /// its first and last few, which is where later matches tend to start.
    pub max_insert: usize,
    /// Once a match this long is found, only a quarter of the remaining
    /// chain is searched.
    pub good_len: usize,
    /// After this many literals in a row the search starts skipping
    /// positions (still hashing them), more the longer the run: random data
    /// then costs little time and loses almost nothing.
    pub skip_after: u32,
}

impl Default for Effort {
    fn default() -> Self {
        Effort {
            // Tuned on the MS-XCA vectors (sizes ~4 % under Windows') and
            // benches/xpress.rs (≥ 100 MB/s on mixed data).
            max_chain: 10,
            nice_len: 64,
            far_3: 8192,
            max_lazy: 32,
            max_insert: usize::MAX,
            good_len: 24,
            skip_after: 128,
        }
    }
}

#[derive(Clone, Copy)]
struct Token {
    /// 0 for a literal.
    dist: u32,
    /// Literal byte, or match length.
    value: u32,
}

/// Reusable compressor: keeps its hash tables between calls, so compressing
/// many 8 KiB FRSX blocks does not clear 200 KiB of tables each time.
pub struct Encoder {
    head: Vec<u32>,
    prev: Vec<u32>,
    /// Added to input positions before they go in the tables; moving it
    /// past the previous input makes old entries fail the distance check
    /// instead of clearing the tables.
    base: u32,
    tokens: Vec<Token>,
    effort: Effort,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self::with_effort(Effort::default())
    }

    pub fn with_effort(effort: Effort) -> Self {
        Encoder {
            head: vec![0; 1 << HASH_BITS],
            prev: vec![0; (WINDOW_MASK + 1) as usize],
            base: 0,
            tokens: Vec::with_capacity(BLOCK_OUTPUT),
            effort,
        }
    }

    /// Appends the MS-XCA LZ77+Huffman stream for `input` to `out`.
    pub fn compress_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if (self.base as u64) + (input.len() as u64) + 1 >= u32::MAX as u64 {
            self.head.fill(0);
            self.prev.fill(0);
            self.base = 0;
        }
        let mut pos = 0;
        loop {
            let mut freq = [0u32; NUM_SYMBOLS];
            self.tokens.clear();
            let end = self.parse(input, pos, &mut freq);
            let last = end == input.len();
            if last {
                // §2.1.4.3: append the EOF symbol 256 to the last block.
                freq[256] += 1;
            }
            write_block(&self.tokens, &freq, last, out);
            pos = end;
            if last {
                break;
            }
        }
        // Wrapping is fine: positions only ever compare by distance, and
        // the table reset above keeps stale entries out of range.
        self.base = self.base.wrapping_add(input.len() as u32).wrapping_add(1);
    }

    #[inline(always)]
    fn hash(input: &[u8], i: usize) -> usize {
        let v = (input[i] as u32) | (input[i + 1] as u32) << 8 | (input[i + 2] as u32) << 16;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    }

    #[inline(always)]
    fn insert(&mut self, input: &[u8], i: usize) -> u32 {
        let h = Self::hash(input, i);
        let p = self.base.wrapping_add(i as u32);
        let cand = self.head[h];
        self.head[h] = p;
        self.prev[(p & WINDOW_MASK) as usize] = cand;
        cand
    }

    /// Inserts position `i` and returns the best (length, distance) match
    /// ending no later than `end`.
    #[inline(always)]
    fn find(&mut self, input: &[u8], i: usize, end: usize) -> (usize, usize) {
        if i + MIN_LEN > input.len() {
            return (0, 0);
        }
        let mut cand = self.insert(input, i);
        let max_len = (end - i).min(MAX_LEN);
        if max_len < MIN_LEN {
            return (0, 0);
        }
        let here = self.base.wrapping_add(i as u32);
        let reach = i.min(MAX_DIST);
        let (mut best_len, mut best_dist) = (MIN_LEN - 1, 0);
        let cur = &input[i..i + max_len];
        let mut budget = self.effort.max_chain;
        while budget > 0 {
            budget -= 1;
            let d = here.wrapping_sub(cand) as usize;
            if d == 0 || d > reach {
                break;
            }
            let c = &input[i - d..];
            // Cheap reject: a longer match must agree at best_len.
            if c[best_len] == cur[best_len] && c[..2] == cur[..2] {
                let l = match_len(c, cur);
                if l > best_len {
                    best_len = l;
                    best_dist = d;
                    if l >= self.effort.nice_len || l == max_len {
                        break;
                    }
                    if l >= self.effort.good_len {
                        budget /= 4;
                    }
                }
            }
            cand = self.prev[(cand & WINDOW_MASK) as usize];
        }
        if best_len == MIN_LEN && best_dist > self.effort.far_3 {
            return (0, 0);
        }
        if best_len >= MIN_LEN {
            (best_len, best_dist)
        } else {
            (0, 0)
        }
    }

    fn insert_range(&mut self, input: &[u8], from: usize, to: usize) {
        let to = to.min(input.len().saturating_sub(MIN_LEN - 1));
        for j in from..to {
            self.insert(input, j);
        }
    }

    /// LZ77 phase for one block (§2.1.4.1), counting symbol frequencies.
    /// The block takes symbols until its output reaches 64 KiB; returns
    /// where the next block starts.
    fn parse(&mut self, input: &[u8], start: usize, freq: &mut [u32; NUM_SYMBOLS]) -> usize {
        let mut i = start;
        let end = input.len();
        let block_end = (start + BLOCK_OUTPUT).min(end);
        if i >= end {
            return i;
        }
        let mut cur = self.find(input, i, end);
        let mut misses = 0u32;
        while i < block_end {
            if cur.0 < MIN_LEN {
                self.literal(input[i], freq);
                i += 1;
                misses += 1;
                if misses > self.effort.skip_after {
                    // Long literal run: emit a few more unsearched.
                    let skip = (((misses - self.effort.skip_after) >> 5) as usize).min(15);
                    let stop = (i + skip).min(block_end);
                    while i < stop {
                        // Still hashed (cheap), so later copies of this
                        // stretch can be found.
                        if i + MIN_LEN <= input.len() {
                            self.insert(input, i);
                        }
                        self.literal(input[i], freq);
                        i += 1;
                    }
                }
                if i < block_end {
                    cur = self.find(input, i, end);
                }
                continue;
            }
            misses = 0;
            let mut inserted_to = i + 1;
            if cur.0 < self.effort.max_lazy && i + 1 < block_end {
                let next = self.find(input, i + 1, end);
                inserted_to = i + 2;
                if next.0 > cur.0 {
                    self.literal(input[i], freq);
                    i += 1;
                    cur = next;
                    continue;
                }
            }
            let (len, dist) = cur;
            self.matched(len, dist, freq);
            if len <= self.effort.max_insert {
                self.insert_range(input, inserted_to, i + len);
            } else {
                self.insert_range(input, inserted_to, i + 4);
                self.insert_range(input, i + len - 4, i + len);
            }
            i += len;
            if i < block_end {
                cur = self.find(input, i, end);
            }
        }
        i
    }

    #[inline(always)]
    fn literal(&mut self, b: u8, freq: &mut [u32; NUM_SYMBOLS]) {
        freq[b as usize] += 1;
        self.tokens.push(Token { dist: 0, value: b as u32 });
    }

    #[inline(always)]
    fn matched(&mut self, len: usize, dist: usize, freq: &mut [u32; NUM_SYMBOLS]) {
        freq[match_symbol(len, dist)] += 1;
        self.tokens.push(Token { dist: dist as u32, value: len as u32 });
    }
}

/// Length of the common prefix of `a` and `b` (b is the shorter bound).
#[inline(always)]
fn match_len(a: &[u8], b: &[u8]) -> usize {
    let max = b.len();
    let mut l = 0;
    while l + 8 <= max {
        let x = u64::from_le_bytes(a[l..l + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[l..l + 8].try_into().unwrap_or([0; 8]));
        let diff = x ^ y;
        if diff != 0 {
            return l + (diff.trailing_zeros() / 8) as usize;
        }
        l += 8;
    }
    while l < max && a[l] == b[l] {
        l += 1;
    }
    l
}

/// GetHighBit (§2.1.4.1): index of the highest set bit; `d > 0`.
#[inline(always)]
fn high_bit(d: usize) -> u32 {
    usize::BITS - 1 - d.leading_zeros()
}

/// §2.1.4.1: 256 + min(Length − 3, 15) + 16 × GetHighBit(Distance).
#[inline(always)]
fn match_symbol(len: usize, dist: usize) -> usize {
    256 + (len - 3).min(15) + 16 * high_bit(dist) as usize
}

/// The §2.1.4.3 bit writer: 16-bit words filled most significant bit first,
/// with one word slot reserved ahead (OutputPosition2) so that extra length
/// bytes land where the decoder reads them.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    free: u32,
    next: u32,
    pos1: usize,
    pos2: usize,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        let pos1 = out.len();
        out.extend_from_slice(&[0; 4]);
        BitWriter { out, free: 16, next: 0, pos1, pos2: pos1 + 2 }
    }

    #[inline(always)]
    fn bits(&mut self, n: u32, v: u32) {
        if self.free >= n {
            self.free -= n;
            self.next = (self.next << n) | v;
        } else {
            self.next = (self.next << self.free) | (v >> (n - self.free));
            let w = (self.next as u16).to_le_bytes();
            self.out[self.pos1] = w[0];
            self.out[self.pos1 + 1] = w[1];
            self.pos1 = self.pos2;
            self.pos2 = self.out.len();
            self.out.extend_from_slice(&[0, 0]);
            self.free = self.free + 16 - n;
            self.next = v;
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    fn flush(self) {
        let w = ((self.next << self.free) as u16).to_le_bytes();
        self.out[self.pos1] = w[0];
        self.out[self.pos1 + 1] = w[1];
        // The word at pos2 is already zero (§2.1.4.3 FlushBits).
    }
}

/// Huffman and final phases for one block (§2.1.4.2, §2.1.4.3).
fn write_block(tokens: &[Token], freq: &[u32; NUM_SYMBOLS], eof: bool, out: &mut Vec<u8>) {
    let lens = code_lengths(freq);
    let codes = canonical_codes(&lens);
    out.extend_from_slice(&pack_table(&lens));
    out.reserve(tokens.len() * 4 + 8);
    let mut w = BitWriter::new(out);
    for t in tokens {
        if t.dist == 0 {
            let s = t.value as usize;
            w.bits(lens[s] as u32, codes[s] as u32);
        } else {
            let (len, dist) = (t.value as usize, t.dist as usize);
            let s = match_symbol(len, dist);
            w.bits(lens[s] as u32, codes[s] as u32);
            if len - 3 >= 15 {
                w.byte((len - 3 - 15).min(255) as u8);
                if len - 3 - 15 >= 255 {
                    if len - 3 <= 0xFFFF {
                        for b in ((len - 3) as u16).to_le_bytes() {
                            w.byte(b);
                        }
                    } else {
                        // Windows' long form: 16-bit zero, then 32 bits.
                        for b in [0, 0].into_iter().chain(((len - 3) as u32).to_le_bytes()) {
                            w.byte(b);
                        }
                    }
                }
            }
            let hb = high_bit(dist);
            w.bits(hb, (dist - (1 << hb)) as u32);
        }
    }
    if eof {
        w.bits(lens[256] as u32, codes[256] as u32);
    }
    w.flush();
}
