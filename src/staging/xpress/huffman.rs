//! Canonical Huffman codes for LZ77+Huffman (MS-XCA §2.1.4.2, §2.2.4).
//!
//! The 512-symbol alphabet is described by a 256-byte table of 4-bit code
//! lengths (even symbols in the low nibble, §2.1.4.3). Codes are canonical:
//! assigned in order of (length, symbol), most significant bit first.

/// Number of symbols: 256 literals and 256 match symbols (§2.1).
pub const NUM_SYMBOLS: usize = 512;
/// Longest code the 4-bit length table can express (§2.1.4.2).
pub const MAX_CODE_LEN: u32 = 15;
/// Size of the length table at the start of every block (§2.1.4.3).
pub const TABLE_BYTES: usize = 256;

/// Bits resolved by the first-level decode table; longer codes take one more
/// lookup in a 16-entry subtable. 11 bits keep the hot table at 8 KiB (L1)
/// instead of the 128 KiB a flat 2^15 table would need, and building it per
/// 8 KiB FRSX block stays cheap.
const PRIMARY_BITS: u32 = 11;
const SUB_BITS: u32 = MAX_CODE_LEN - PRIMARY_BITS;
const SUB_FLAG: u32 = 1 << 31;

/// Why a length table does not describe a usable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableProblem {
    /// No symbol has a code.
    Empty,
    /// The lengths claim more code space than exists (MS-XCA §2.2.4: "If
    /// CurrentTableEntry >= 2^15 … not valid").
    Oversubscribed,
    /// Some code space is left unused (MS-XCA §2.2.4: "If CurrentTableEntry
    /// does not equal 2^15 … not valid").
    Incomplete,
}

impl TableProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            TableProblem::Empty => "no symbol has a code",
            TableProblem::Oversubscribed => "code lengths oversubscribe the code space",
            TableProblem::Incomplete => "code lengths leave code space unused",
        }
    }
}

/// Table-driven decoder for one block's code.
///
/// Entries pack `symbol << 4 | code length`; a primary entry with
/// `SUB_FLAG` instead holds the index of a 16-entry subtable.
pub struct DecodeTable {
    primary: Vec<u32>,
    sub: Vec<u32>,
}

impl Default for DecodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl DecodeTable {
    pub fn new() -> Self {
        DecodeTable { primary: vec![0; 1 << PRIMARY_BITS], sub: Vec::with_capacity(1 << 10) }
    }

    /// Rebuilds the table from a block's 256-byte length table.
    pub fn build(&mut self, table: &[u8; TABLE_BYTES]) -> Result<(), TableProblem> {
        let mut lens = [0u8; NUM_SYMBOLS];
        for (i, &b) in table.iter().enumerate() {
            lens[2 * i] = b & 15;
            lens[2 * i + 1] = b >> 4;
        }
        let mut count = [0u32; 16];
        for &l in &lens {
            count[l as usize] += 1;
        }
        count[0] = 0;
        // Kraft sum in units of 2^-15: must be exactly 2^15 (§2.2.4).
        let space: u32 = (1..=15).map(|l| count[l] << (15 - l)).sum();
        if space == 0 {
            return Err(TableProblem::Empty);
        }
        if space > 1 << 15 {
            return Err(TableProblem::Oversubscribed);
        }
        if space < 1 << 15 {
            return Err(TableProblem::Incomplete);
        }
        // First canonical code of each length.
        let mut next = [0u32; 16];
        let mut code = 0u32;
        for l in 1..=15 {
            code = (code + count[l - 1]) << 1;
            next[l] = code;
        }
        self.sub.clear();
        // Visit symbols in canonical order (length, then symbol): codes then
        // increase monotonically, so long codes sharing a primary prefix are
        // adjacent and each prefix gets exactly one fresh subtable. Stale
        // entries from the previous block are all overwritten because the
        // code is complete.
        let mut last_prefix = usize::MAX;
        let mut base = 0usize;
        // Counting sort of the coded symbols by length (stable in symbol).
        let mut offs = [0usize; 16];
        for l in 1..15 {
            offs[l + 1] = offs[l] + count[l] as usize;
        }
        let mut sorted = [0u16; NUM_SYMBOLS];
        for (sym, &l) in lens.iter().enumerate() {
            if l != 0 {
                sorted[offs[l as usize]] = sym as u16;
                offs[l as usize] += 1;
            }
        }
        let coded = (1..=15).map(|l| count[l] as usize).sum::<usize>();
        {
            for &sym in &sorted[..coded] {
                let sym = sym as usize;
                let len = lens[sym] as u32;
                let c = next[len as usize];
                next[len as usize] += 1;
                let entry = (sym as u32) << 4 | len;
                if len <= PRIMARY_BITS {
                    let start = (c << (PRIMARY_BITS - len)) as usize;
                    let n = 1usize << (PRIMARY_BITS - len);
                    self.primary[start..start + n].fill(entry);
                } else {
                    let prefix = (c >> (len - PRIMARY_BITS)) as usize;
                    if prefix != last_prefix {
                        base = self.sub.len();
                        self.sub.resize(base + (1 << SUB_BITS), 0);
                        self.primary[prefix] = SUB_FLAG | base as u32;
                        last_prefix = prefix;
                    }
                    let low = c & ((1 << (len - PRIMARY_BITS)) - 1);
                    let start = base + (low << (MAX_CODE_LEN - len)) as usize;
                    let n = 1usize << (MAX_CODE_LEN - len);
                    self.sub[start..start + n].fill(entry);
                }
            }
        }
        Ok(())
    }

    /// Looks up the symbol whose code starts the 15 bits in `bits15`.
    /// Returns `(symbol, code length)`.
    #[inline(always)]
    pub fn lookup(&self, bits15: u32) -> (u32, u32) {
        let e = self.primary[(bits15 >> SUB_BITS) as usize];
        let e = if e & SUB_FLAG == 0 {
            e
        } else {
            let i = (e & !SUB_FLAG) as usize + (bits15 & ((1 << SUB_BITS) - 1)) as usize;
            // In range by construction; `get` keeps a corrupt state from panicking.
            self.sub.get(i).copied().unwrap_or(0)
        };
        (e >> 4, e & 15)
    }
}

/// Computes code lengths (≤ 15) for the given symbol frequencies.
/// Symbols with frequency 0 get length 0. At least two symbols get codes, so
/// the code is complete as §2.2.4 demands even when only one symbol occurs.
pub fn code_lengths(freq: &[u32; NUM_SYMBOLS]) -> [u8; NUM_SYMBOLS] {
    let mut lens = [0u8; NUM_SYMBOLS];
    let mut syms: Vec<usize> = (0..NUM_SYMBOLS).filter(|&s| freq[s] > 0).collect();
    match syms.len() {
        0 => {
            lens[0] = 1;
            lens[256] = 1;
            return lens;
        }
        1 => {
            // A one-symbol code would fill only half the code space.
            let other = if syms[0] == 0 { 1 } else { 0 };
            lens[syms[0]] = 1;
            lens[other] = 1;
            return lens;
        }
        _ => {}
    }
    // Huffman's algorithm with two queues over leaves sorted by frequency.
    syms.sort_by_key(|&s| (freq[s], s));
    let n = syms.len();
    let leaf_w: Vec<u64> = syms.iter().map(|&s| freq[s] as u64).collect();
    let mut node_w: Vec<u64> = Vec::with_capacity(n);
    let mut parent: Vec<usize> = vec![0; 2 * n]; // leaves 0..n, internal n..
    let (mut li, mut ni) = (0usize, 0usize);
    let take = |node_w: &Vec<u64>, li: &mut usize, ni: &mut usize| -> (usize, u64) {
        if *li < n && (*ni >= node_w.len() || leaf_w[*li] <= node_w[*ni]) {
            *li += 1;
            (*li - 1, leaf_w[*li - 1])
        } else {
            *ni += 1;
            (n + *ni - 1, node_w[*ni - 1])
        }
    };
    for _ in 0..n - 1 {
        let (a, wa) = take(&node_w, &mut li, &mut ni);
        let (b, wb) = take(&node_w, &mut li, &mut ni);
        let id = n + node_w.len();
        node_w.push(wa + wb);
        parent[a] = id;
        parent[b] = id;
    }
    // Depths: the root is the last internal node; parents have higher ids.
    let total = n + node_w.len();
    let mut depth = vec![0u32; total];
    for id in (0..total - 1).rev() {
        depth[id] = depth[parent[id]] + 1;
    }
    let mut count = [0u32; 64];
    for &d in &depth[..n] {
        count[d.min(63) as usize] += 1;
    }
    limit_lengths(&mut count, MAX_CODE_LEN as usize);
    // Longest codes to the rarest symbols (syms is sorted rarest first).
    let mut i = 0;
    for len in (1..=MAX_CODE_LEN as usize).rev() {
        for _ in 0..count[len] {
            lens[syms[i]] = len as u8;
            i += 1;
        }
    }
    lens
}

/// Moves codes longer than `max` to `max` and restores the Kraft equality
/// by lengthening shorter codes (the zlib/miniz heuristic).
fn limit_lengths(count: &mut [u32; 64], max: usize) {
    let over: u32 = count[max + 1..].iter().sum();
    if over == 0 {
        return;
    }
    for c in count[max + 1..].iter_mut() {
        *c = 0;
    }
    count[max] += over;
    let mut total: u64 = (1..=max).map(|l| (count[l] as u64) << (max - l)).sum();
    while total > 1 << max {
        count[max] -= 1;
        for l in (1..max).rev() {
            if count[l] != 0 {
                count[l] -= 1;
                count[l + 1] += 2;
                break;
            }
        }
        total -= 1;
    }
}

/// Canonical codes for the given lengths (§2.2.4 ordering: by length, then
/// by symbol), each to be written most significant bit first.
pub fn canonical_codes(lens: &[u8; NUM_SYMBOLS]) -> [u16; NUM_SYMBOLS] {
    let mut count = [0u32; 16];
    for &l in lens.iter() {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 16];
    let mut code = 0u32;
    for l in 1..=15 {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    let mut codes = [0u16; NUM_SYMBOLS];
    for s in 0..NUM_SYMBOLS {
        let l = lens[s] as usize;
        if l != 0 {
            codes[s] = next[l] as u16;
            next[l] += 1;
        }
    }
    codes
}

/// Packs lengths into the 256-byte table: even symbols in the low nibble
/// (§2.1.4.3).
pub fn pack_table(lens: &[u8; NUM_SYMBOLS]) -> [u8; TABLE_BYTES] {
    let mut t = [0u8; TABLE_BYTES];
    for (i, b) in t.iter_mut().enumerate() {
        *b = lens[2 * i] | lens[2 * i + 1] << 4;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lens: &[u8; NUM_SYMBOLS]) -> u32 {
        lens.iter().filter(|&&l| l > 0).map(|&l| 1u32 << (15 - l)).sum()
    }

    #[test]
    fn spec_nibble_order() {
        // §2.1.4.3: lengths 5, 6, 7, 8 for symbols 0..3 give bytes 0x65 0x87.
        let mut lens = [0u8; NUM_SYMBOLS];
        lens[..4].copy_from_slice(&[5, 6, 7, 8]);
        let t = pack_table(&lens);
        assert_eq!(&t[..2], &[0x65, 0x87]);
    }

    #[test]
    fn lengths_are_complete_and_limited() {
        // Fibonacci frequencies force a deep tree that must be limited to 15.
        let mut freq = [0u32; NUM_SYMBOLS];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freq.iter_mut().take(30) {
            *f = a;
            let c = a.saturating_add(b);
            a = b;
            b = c;
        }
        let lens = code_lengths(&freq);
        assert!(lens.iter().all(|&l| l <= 15));
        assert!(lens[..30].iter().all(|&l| l > 0));
        assert_eq!(kraft(&lens), 1 << 15);
        let mut t = DecodeTable::new();
        t.build(&pack_table(&lens)).expect("valid table");
    }

    #[test]
    fn single_symbol_still_complete() {
        let mut freq = [0u32; NUM_SYMBOLS];
        freq[256] = 1;
        let lens = code_lengths(&freq);
        assert_eq!(kraft(&lens), 1 << 15);
        assert_eq!(lens[256], 1);
    }

    #[test]
    fn decode_table_resolves_every_code() {
        let mut freq = [0u32; NUM_SYMBOLS];
        for (i, f) in freq.iter_mut().enumerate() {
            *f = (i as u32 * 7919) % 1000 + 1;
        }
        freq[3] = 1_000_000; // a short code
        freq[500] = 1; // long codes
        freq[501] = 1;
        let lens = code_lengths(&freq);
        let codes = canonical_codes(&lens);
        let mut t = DecodeTable::new();
        t.build(&pack_table(&lens)).expect("valid table");
        for s in 0..NUM_SYMBOLS {
            let l = lens[s] as u32;
            let bits15 = (codes[s] as u32) << (15 - l);
            assert_eq!(t.lookup(bits15), (s as u32, l), "symbol {s}");
            assert_eq!(t.lookup(bits15 | ((1 << (15 - l)) - 1)), (s as u32, l));
        }
    }

    #[test]
    fn rejects_bad_tables() {
        let mut t = DecodeTable::new();
        assert_eq!(t.build(&[0; 256]), Err(TableProblem::Empty));
        let mut bad = [0u8; 256];
        bad[0] = 0x11; // two 1-bit codes: complete
        bad[1] = 0x01; // a third: oversubscribed
        assert_eq!(t.build(&bad), Err(TableProblem::Oversubscribed));
        let mut inc = [0u8; 256];
        inc[0] = 0x21; // 1 + 2 bits: 3/4 of the space
        assert_eq!(t.build(&inc), Err(TableProblem::Incomplete));
    }
}
