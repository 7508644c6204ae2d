//! Version chain vectors (MS-FRS2 §2.2.1.4.1): which GVSNs a member knows.
//!
//! Kept as sorted, disjoint, non-adjacent inclusive ranges of versions per
//! database GUID, so equal sets have equal representations and the set
//! operations are linear merges. On the wire an entry `{dbGuid, low, high}`
//! covers the half-open interval `low+1..=high` (§2.2.1.4.1).

use std::collections::BTreeMap;

use thiserror::Error;

use super::ids::{Guid, Gvsn, Vsn};

/// Why a wire version vector was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionVectorError {
    /// `low > high` in an `FRS_VERSION_VECTOR` entry (§2.2.1.4.1 requires
    /// `high` at least `low`; `high == low` is an empty entry).
    #[error("version vector entry for {db} has low {low} above high {high}")]
    LowAboveHigh {
        /// The entry's database GUID.
        db: Guid,
        /// The entry's `low` (excluded bound).
        low: Vsn,
        /// The entry's `high` (included bound).
        high: Vsn,
    },
}

/// A non-empty inclusive range of versions `first..=last`.
///
/// Inclusive bounds never overflow: the wire's `low` is `first - 1`, and a
/// range starting at version 0 cannot come from the wire (0 is reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionRange {
    /// First version included.
    pub first: Vsn,
    /// Last version included; `first <= last`.
    pub last: Vsn,
}

impl VersionRange {
    /// `first..=last`, or `None` when empty (`first > last`).
    pub fn new(first: Vsn, last: Vsn) -> Option<Self> {
        (first <= last).then_some(VersionRange { first, last })
    }

    /// The range a wire entry `(low, high]` denotes (§2.2.1.4.1); `None` for
    /// the empty entry `low == high`, an error for `low > high`.
    pub fn from_wire(db: Guid, low: Vsn, high: Vsn) -> Result<Option<Self>, VersionVectorError> {
        if low > high {
            return Err(VersionVectorError::LowAboveHigh { db, low, high });
        }
        if low == high {
            return Ok(None);
        }
        Ok(Some(VersionRange {
            first: low + 1,
            last: high,
        }))
    }

    /// The wire `(low, high)` for this range. A range starting at 0 has no
    /// wire form; it is clamped to start at 1 (version 0 is reserved and
    /// never used for a GVSN, §3.3.4.6.2).
    pub fn to_wire(self) -> (Vsn, Vsn) {
        (self.first.saturating_sub(1), self.last)
    }

    /// Number of versions covered (saturating at `u64::MAX`).
    pub fn len(self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// Never true: a `VersionRange` always covers at least one version.
    pub fn is_empty(self) -> bool {
        false
    }

    /// True when `v` is in the range.
    pub fn contains(self, v: Vsn) -> bool {
        self.first <= v && v <= self.last
    }
}

/// A set of GVSNs: per database GUID, canonical ranges (sorted by `first`,
/// disjoint, and never adjacent: `a.last + 1 < b.first`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VersionVector {
    // Invariant: no empty Vec; each Vec canonical (see type doc).
    entries: BTreeMap<Guid, Vec<VersionRange>>,
}

/// True when `b` starts right after or inside `a` (so they merge).
fn touches(a: VersionRange, b: VersionRange) -> bool {
    b.first <= a.last.saturating_add(1)
}

/// Sorts and merges arbitrary ranges into canonical form (compaction).
fn canonicalize(mut ranges: Vec<VersionRange>) -> Vec<VersionRange> {
    ranges.sort_unstable();
    let mut out: Vec<VersionRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if touches(*prev, r) => prev.last = prev.last.max(r.last),
            _ => out.push(r),
        }
    }
    out
}

/// Union of two canonical lists, linear.
fn union_ranges(a: &[VersionRange], b: &[VersionRange]) -> Vec<VersionRange> {
    let mut out: Vec<VersionRange> = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = if j >= b.len() || (i < a.len() && a[i].first <= b[j].first) {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        match out.last_mut() {
            Some(prev) if touches(*prev, next) => prev.last = prev.last.max(next.last),
            _ => out.push(next),
        }
    }
    out
}

/// `a ∖ b` of two canonical lists, linear.
fn difference_ranges(a: &[VersionRange], b: &[VersionRange]) -> Vec<VersionRange> {
    let mut out = Vec::new();
    let mut j = 0;
    for &r in a {
        let mut cur = Some(r);
        // Skip b ranges entirely before r.
        while j < b.len() && b[j].last < r.first {
            j += 1;
        }
        let mut k = j;
        while let (Some(c), true) = (cur, k < b.len()) {
            let s = b[k];
            if s.first > c.last {
                break;
            }
            if s.first > c.first {
                out.push(VersionRange {
                    first: c.first,
                    last: s.first - 1,
                });
            }
            cur = if s.last >= c.last {
                None
            } else {
                Some(VersionRange {
                    first: s.last + 1,
                    last: c.last,
                })
            };
            if s.last > r.last {
                break; // s may still cut the next range of a
            }
            k += 1;
        }
        j = k;
        if let Some(c) = cur {
            out.push(c);
        }
    }
    out
}

/// True when every version of canonical `small` is in canonical `big`.
fn contains_all_ranges(big: &[VersionRange], small: &[VersionRange]) -> bool {
    let mut j = 0;
    for &r in small {
        while j < big.len() && big[j].last < r.first {
            j += 1;
        }
        // Canonical ranges are non-adjacent, so r must fit in one of them.
        match big.get(j) {
            Some(b) if b.first <= r.first && r.last <= b.last => {}
            _ => return false,
        }
    }
    true
}

impl VersionVector {
    /// The empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no GVSN is covered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of canonical ranges (what `to_wire` will emit).
    pub fn range_count(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    /// The database GUIDs present, in byte-wise order.
    pub fn databases(&self) -> impl Iterator<Item = &Guid> {
        self.entries.keys()
    }

    /// The canonical ranges of one database (empty when absent).
    pub fn ranges(&self, db: &Guid) -> &[VersionRange] {
        self.entries.get(db).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All `(db, range)` pairs in GVSN order.
    pub fn iter(&self) -> impl Iterator<Item = (Guid, VersionRange)> + '_ {
        self.entries
            .iter()
            .flat_map(|(g, rs)| rs.iter().map(move |r| (*g, *r)))
    }

    /// Adds one GVSN (a change we have now processed).
    pub fn insert(&mut self, gvsn: Gvsn) {
        self.insert_range(
            gvsn.db,
            VersionRange {
                first: gvsn.version,
                last: gvsn.version,
            },
        );
    }

    /// Adds an inclusive range of versions of one database.
    pub fn insert_range(&mut self, db: Guid, range: VersionRange) {
        let list = self.entries.entry(db).or_default();
        // First range that could touch `range`: the one before the first
        // range starting after `range.last + 1`.
        let lo = list.partition_point(|r| r.last.saturating_add(1) < range.first);
        let hi = list.partition_point(|r| r.first <= range.last.saturating_add(1));
        if lo == hi {
            list.insert(lo, range);
        } else {
            let first = list[lo].first.min(range.first);
            let last = list[hi - 1].last.max(range.last);
            list.splice(lo..hi, std::iter::once(VersionRange { first, last }));
        }
    }

    /// True when `gvsn` is covered.
    pub fn contains(&self, gvsn: &Gvsn) -> bool {
        let list = self.ranges(&gvsn.db);
        let i = list.partition_point(|r| r.last < gvsn.version);
        list.get(i).is_some_and(|r| r.contains(gvsn.version))
    }

    /// True when every GVSN of `other` is covered by `self` (`other ⊆ self`).
    pub fn contains_all(&self, other: &VersionVector) -> bool {
        other
            .entries
            .iter()
            .all(|(g, rs)| contains_all_ranges(self.ranges(g), rs))
    }

    /// `self ∪ other`, a linear merge per database.
    pub fn union(&self, other: &VersionVector) -> VersionVector {
        let mut entries = self.entries.clone();
        for (g, rs) in &other.entries {
            let merged = match entries.get(g) {
                Some(mine) => union_ranges(mine, rs),
                None => rs.clone(),
            };
            entries.insert(*g, merged);
        }
        VersionVector { entries }
    }

    /// Adds all of `other` to `self` (§3.3.4.6: done only once every update
    /// of a sync has been processed).
    pub fn merge(&mut self, other: &VersionVector) {
        *self = self.union(other);
    }

    /// `self ∖ other`: the GVSNs `self` covers and `other` does not, a linear
    /// merge per database.
    pub fn difference(&self, other: &VersionVector) -> VersionVector {
        let mut entries = BTreeMap::new();
        for (g, rs) in &self.entries {
            let d = match other.entries.get(g) {
                Some(theirs) => difference_ranges(rs, theirs),
                None => rs.clone(),
            };
            if !d.is_empty() {
                entries.insert(*g, d);
            }
        }
        VersionVector { entries }
    }

    /// What a client asks a partner for: `partner ∖ self`, the versions the
    /// partner has and we lack (§3.3.4.5, §3.3.4.6.1 `versionVectorDiff`).
    /// Note the direction: the earlier Samba attempt got it wrong.
    pub fn request_from(&self, partner: &VersionVector) -> VersionVector {
        partner.difference(self)
    }

    /// Drops every GVSN lexicographically `<= cursor` (byte-wise GUID, then
    /// version): the RequestUpdates pruning step on `UPDATE_STATUS_MORE`
    /// (§3.3.4.6.1).
    pub fn remove_through(&mut self, cursor: &Gvsn) {
        // Databases strictly below the cursor's GUID go entirely.
        let keep = self.entries.split_off(&cursor.db);
        self.entries = keep;
        if let Some(list) = self.entries.get_mut(&cursor.db) {
            let cut = list.partition_point(|r| r.last <= cursor.version);
            list.drain(..cut);
            if let Some(r) = list.first_mut() {
                if r.first <= cursor.version {
                    r.first = cursor.version + 1;
                }
            }
            if list.is_empty() {
                self.entries.remove(&cursor.db);
            }
        }
    }

    /// Builds a vector from wire triples `(dbGuid, low, high)` in any order,
    /// overlapping or not, compacting them into canonical form. Empty
    /// entries (`low == high`) are dropped; `low > high` is an error.
    pub fn from_wire<I>(triples: I) -> Result<Self, VersionVectorError>
    where
        I: IntoIterator<Item = (Guid, Vsn, Vsn)>,
    {
        let mut raw: BTreeMap<Guid, Vec<VersionRange>> = BTreeMap::new();
        for (db, low, high) in triples {
            if let Some(r) = VersionRange::from_wire(db, low, high)? {
                raw.entry(db).or_default().push(r);
            }
        }
        Ok(Self::from_raw(raw))
    }

    /// Compaction: canonical form from arbitrary ranges per database
    /// (sorted, overlapping and adjacent ranges merged).
    pub fn from_raw(raw: BTreeMap<Guid, Vec<VersionRange>>) -> Self {
        let entries = raw
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(g, v)| (g, canonicalize(v)))
            .collect();
        VersionVector { entries }
    }

    /// The wire triples `(dbGuid, low, high)` in GVSN order, one per
    /// canonical range.
    pub fn to_wire(&self) -> Vec<(Guid, Vsn, Vsn)> {
        self.iter()
            .map(|(g, r)| {
                let (low, high) = r.to_wire();
                (g, low, high)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn g(n: u8) -> Guid {
        Guid([n; 16])
    }

    fn r(first: Vsn, last: Vsn) -> VersionRange {
        VersionRange::new(first, last).unwrap()
    }

    fn is_canonical(v: &VersionVector) -> bool {
        v.entries.values().all(|rs| {
            !rs.is_empty()
                && rs.iter().all(|r| r.first <= r.last)
                && rs
                    .windows(2)
                    .all(|w| w[0].last.saturating_add(1) < w[1].first)
        })
    }

    #[test]
    fn wire_entry_is_half_open() {
        let v = VersionVector::from_wire([(g(1), 8, 10)]).unwrap();
        assert!(!v.contains(&Gvsn::new(g(1), 8)));
        assert!(v.contains(&Gvsn::new(g(1), 9)));
        assert!(v.contains(&Gvsn::new(g(1), 10)));
        assert!(!v.contains(&Gvsn::new(g(1), 11)));
        assert_eq!(v.to_wire(), vec![(g(1), 8, 10)]);
    }

    #[test]
    fn wire_validation() {
        assert_eq!(
            VersionVector::from_wire([(g(1), 5, 4)]),
            Err(VersionVectorError::LowAboveHigh {
                db: g(1),
                low: 5,
                high: 4
            })
        );
        let empty = VersionVector::from_wire([(g(1), 5, 5)]).unwrap();
        assert!(empty.is_empty());
        let max = VersionVector::from_wire([(g(1), u64::MAX - 1, u64::MAX)]).unwrap();
        assert!(max.contains(&Gvsn::new(g(1), u64::MAX)));
    }

    #[test]
    fn compaction_merges_adjacent_and_overlapping() {
        let v = VersionVector::from_wire([
            (g(1), 10, 20),
            (g(1), 0, 10),
            (g(1), 15, 30),
            (g(1), 40, 50),
        ])
        .unwrap();
        assert_eq!(v.to_wire(), vec![(g(1), 0, 30), (g(1), 40, 50)]);
    }

    #[test]
    fn insert_merges_neighbours() {
        let mut v = VersionVector::new();
        v.insert(Gvsn::new(g(1), 10));
        v.insert(Gvsn::new(g(1), 12));
        assert_eq!(v.range_count(), 2);
        v.insert(Gvsn::new(g(1), 11));
        assert_eq!(v.ranges(&g(1)), &[r(10, 12)]);
        v.insert_range(g(1), r(1, 100));
        assert_eq!(v.ranges(&g(1)), &[r(1, 100)]);
        v.insert(Gvsn::new(g(1), u64::MAX));
        v.insert(Gvsn::new(g(1), u64::MAX - 1));
        assert_eq!(v.ranges(&g(1)), &[r(1, 100), r(u64::MAX - 1, u64::MAX)]);
    }

    #[test]
    fn request_is_partner_minus_ours() {
        let ours = VersionVector::from_wire([(g(1), 0, 100)]).unwrap();
        let partner = VersionVector::from_wire([(g(1), 0, 150), (g(2), 8, 20)]).unwrap();
        let req = ours.request_from(&partner);
        assert_eq!(req.to_wire(), vec![(g(1), 100, 150), (g(2), 8, 20)]);
    }

    #[test]
    fn difference_splits_ranges() {
        let a = VersionVector::from_wire([(g(1), 0, 100)]).unwrap();
        let b =
            VersionVector::from_wire([(g(1), 10, 20), (g(1), 30, 40), (g(1), 90, 200)]).unwrap();
        assert_eq!(
            a.difference(&b).to_wire(),
            vec![(g(1), 0, 10), (g(1), 20, 30), (g(1), 40, 90)]
        );
    }

    #[test]
    fn remove_through_cursor() {
        let mut v =
            VersionVector::from_wire([(g(1), 0, 50), (g(2), 0, 50), (g(2), 60, 70), (g(3), 0, 5)])
                .unwrap();
        v.remove_through(&Gvsn::new(g(2), 30));
        assert_eq!(
            v.to_wire(),
            vec![(g(2), 30, 50), (g(2), 60, 70), (g(3), 0, 5)]
        );
        v.remove_through(&Gvsn::new(g(2), 70));
        assert_eq!(v.to_wire(), vec![(g(3), 0, 5)]);
        v.remove_through(&Gvsn::new(g(9), 0));
        assert!(v.is_empty());
    }

    #[test]
    fn large_difference_is_fast() {
        // 10 000 ranges each; a quadratic algorithm would take ~1e8 steps.
        let a =
            VersionVector::from_wire((0..10_000u64).map(|i| (g(1), i * 10, i * 10 + 5))).unwrap();
        let b = VersionVector::from_wire((0..10_000u64).map(|i| (g(1), i * 10 + 3, i * 10 + 8)))
            .unwrap();
        let start = std::time::Instant::now();
        let d = a.difference(&b);
        let u = a.union(&b);
        assert!(u.contains_all(&a) && u.contains_all(&b));
        assert_eq!(d.range_count(), 10_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    /// Small domain: 3 databases, versions 1..=40.
    fn arb_vv() -> impl Strategy<Value = VersionVector> {
        prop::collection::vec((1u8..4, 0u64..40, 0u64..8), 0..12).prop_map(|t| {
            VersionVector::from_wire(
                t.into_iter()
                    .map(|(d, low, n)| (g(d), low, (low + n).min(40))),
            )
            .unwrap()
        })
    }

    fn model(v: &VersionVector) -> BTreeSet<(u8, u64)> {
        let mut s = BTreeSet::new();
        for d in 1u8..4 {
            for ver in 0..=41u64 {
                if v.contains(&Gvsn::new(g(d), ver)) {
                    s.insert((d, ver));
                }
            }
        }
        s
    }

    proptest! {
        // Keep failures in the test output, not in files outside the module.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn union_laws(a in arb_vv(), b in arb_vv(), c in arb_vv()) {
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
            prop_assert_eq!(a.union(&a), a.clone());
            prop_assert!(is_canonical(&a.union(&b)));
        }

        #[test]
        fn difference_laws(a in arb_vv(), b in arb_vv()) {
            let d = a.difference(&b);
            prop_assert!(is_canonical(&d));
            prop_assert!(model(&d).is_disjoint(&model(&b)));
            prop_assert_eq!(d.union(&b), a.union(&b));
            prop_assert!(a.contains_all(&d));
            prop_assert_eq!(b.request_from(&a), d);
        }

        #[test]
        fn agrees_with_set_model(a in arb_vv(), b in arb_vv(), d in 1u8..4, ver in 0u64..42) {
            let (ma, mb) = (model(&a), model(&b));
            let mu: BTreeSet<_> = ma.union(&mb).copied().collect();
            let md: BTreeSet<_> = ma.difference(&mb).copied().collect();
            prop_assert_eq!(model(&a.union(&b)), mu);
            prop_assert_eq!(model(&a.difference(&b)), md);
            prop_assert_eq!(a.contains_all(&b), mb.is_subset(&ma));
            let mut ins = a.clone();
            ins.insert(Gvsn::new(g(d), ver));
            let mut mi = ma.clone();
            mi.insert((d, ver));
            prop_assert_eq!(model(&ins), mi);
            prop_assert!(is_canonical(&ins));
            let mut pruned = a.clone();
            pruned.remove_through(&Gvsn::new(g(d), ver));
            let mp: BTreeSet<_> = ma.iter().filter(|&&(x, y)| (g(x), y) > (g(d), ver)).copied().collect();
            prop_assert_eq!(model(&pruned), mp);
            prop_assert!(is_canonical(&pruned));
        }

        #[test]
        fn compaction_is_canonical(
            t in prop::collection::vec((1u8..4, 0u64..40, 0u64..8), 0..12),
            seed in any::<u64>(),
        ) {
            let triples: Vec<_> = t.iter().map(|&(d, low, n)| (g(d), low, low + n)).collect();
            let mut shuffled = triples.clone();
            // Deterministic shuffle from the seed.
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let a = VersionVector::from_wire(triples).unwrap();
            let b = VersionVector::from_wire(shuffled).unwrap();
            prop_assert!(is_canonical(&a));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(VersionVector::from_wire(a.to_wire()).unwrap(), a);
        }
    }
}
