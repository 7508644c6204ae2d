//! Version-vector difference (what a member asks a partner for, MS-FRS2
//! §3.3.4.6): two vectors of 10 000 ranges each over 4 database GUIDs, our
//! range merge beside the naive peer (expand both to version sets and take
//! the set difference), in one run; prints times and the ratio.
//! `BENCH_RANGES` changes the size.

use samba_dfsr::engine::ids::Guid;
use samba_dfsr::engine::version_vector::{VersionRange, VersionVector};
use std::collections::BTreeSet;
use std::time::Instant;

fn vector(ranges: usize, shift: u64) -> VersionVector {
    let mut v = VersionVector::new();
    for i in 0..ranges as u64 {
        let db = Guid::from_bytes([(i % 4) as u8 + 1; 16]);
        let first = 10 + (i / 4) * 20 + shift;
        if let Some(r) = VersionRange::new(first, first + 9) {
            v.insert_range(db, r);
        }
    }
    v
}

fn naive(v: &VersionVector) -> BTreeSet<(Guid, u64)> {
    v.iter().flat_map(|(db, r)| (r.first..=r.last).map(move |x| (db, x))).collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BENCH_RANGES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let ours = vector(n, 0);
    let theirs = vector(n, 5);
    let (mut ranges_t, mut naive_t) = (Vec::new(), Vec::new());
    let mut sizes = (0, 0);
    for _ in 0..9 {
        let t = Instant::now();
        let d = ours.request_from(&theirs);
        ranges_t.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (a, b) = (naive(&ours), naive(&theirs));
        let nd: Vec<_> = b.difference(&a).collect();
        naive_t.push(t.elapsed().as_secs_f64());
        sizes = (naive(&d).len(), nd.len());
    }
    assert_eq!(sizes.0, sizes.1, "the two differences disagree");
    let (r, s) = (median(ranges_t), median(naive_t));
    println!(
        "VV difference, {n} ranges each ({} versions missing): ranges {:.3} ms, naive sets {:.3} ms, ratio ranges/naive {:.4}",
        sizes.0,
        r * 1e3,
        s * 1e3,
        r / s
    );
}
