//! Target ordering for a referral (MS-DFSC §3.2.1.1, §3.2.1.2, §3.2.5.5).
//!
//! Targets are grouped into *target sets* of equal sort key and shuffled
//! within each set; the sets are what V4 marks with TargetSetBoundary.
//! Sort key, most significant first:
//! 1. priority group: GlobalHigh, then the three SiteCost classes, then
//!    GlobalLow (§3.2.5.5 groups 1-3);
//! 2. site cost: with site costing, the cheapest site-link path from the
//!    client's site (same site 0, unknown last, §3.2.1.2); without it, just
//!    same site before the rest (§3.2.1.1);
//! 3. within group 2, SiteCostHigh / Normal / Low;
//! 4. rank, lower first.
//!
//! The random source is a parameter so tests are deterministic.

use super::table::PriorityClass;

/// The PRNG that shuffles referral targets for load sharing (not for
/// anything secret).
pub use crate::engine::rng::SplitMix64;

/// Uniform index in `0..n` (n > 0) by multiply-shift: no modulo bias worth
/// mentioning for the small n seen here.
fn below(rng: &mut dyn FnMut() -> u64, n: usize) -> usize {
    ((u128::from(rng()) * n as u128) >> 64) as usize
}

/// Fisher-Yates shuffle.
pub fn shuffle<T>(items: &mut [T], rng: &mut dyn FnMut() -> u64) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// What ordering needs to know about one (online) target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the target in the caller's list.
    pub index: usize,
    pub class: PriorityClass,
    pub rank: u8,
    /// Target is in the client's site (false when either site is unknown).
    pub same_site: bool,
    /// Site-link cost from the client's site; `None` = unknown/unreachable.
    pub cost: Option<u32>,
}

/// How to order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Sort by site-link cost (§3.2.1.2) rather than just same-site first.
    pub site_costing: bool,
    /// Drop out-of-site targets from group 2 (§3.2.5.5 in-site mode).
    pub in_site_only: bool,
}

/// One output position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordered {
    pub index: usize,
    /// First target of a target set (V4 TargetSetBoundary, §2.2.5.4).
    pub set_start: bool,
}

fn group(c: PriorityClass) -> u8 {
    match c {
        PriorityClass::GlobalHigh => 0,
        PriorityClass::SiteCostHigh | PriorityClass::SiteCostNormal | PriorityClass::SiteCostLow => 1,
        PriorityClass::GlobalLow => 2,
    }
}

fn sub_class(c: PriorityClass) -> u8 {
    match c {
        PriorityClass::SiteCostHigh => 0,
        PriorityClass::SiteCostLow => 2,
        _ => 1,
    }
}

/// Orders `candidates` under `policy`, shuffling within target sets.
pub fn order(candidates: &[Candidate], policy: Policy, rng: &mut dyn FnMut() -> u64) -> Vec<Ordered> {
    let key = |c: &Candidate| {
        let cost: u64 = if policy.site_costing {
            if c.same_site {
                0
            } else {
                // Unknown cost sorts after every known one.
                c.cost.map_or(u64::from(u32::MAX) + 1, u64::from)
            }
        } else {
            u64::from(!c.same_site)
        };
        (group(c.class), cost, sub_class(c.class), c.rank)
    };
    let mut kept: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !(policy.in_site_only && group(c.class) == 1 && !c.same_site))
        .collect();
    // Stable sort keeps the caller's order inside a set before the shuffle,
    // so a given seed always gives the same result.
    kept.sort_by_key(|c| key(c));
    let mut out = Vec::with_capacity(kept.len());
    let mut start = 0;
    while start < kept.len() {
        let k = key(kept[start]);
        let end = start + kept[start..].iter().take_while(|c| key(c) == k).count();
        let mut set: Vec<usize> = kept[start..end].iter().map(|c| c.index).collect();
        shuffle(&mut set, rng);
        for (i, index) in set.into_iter().enumerate() {
            out.push(Ordered { index, set_start: i == 0 });
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(index: usize, class: PriorityClass, rank: u8, same_site: bool, cost: Option<u32>) -> Candidate {
        Candidate { index, class, rank, same_site, cost }
    }

    fn normal(index: usize, same_site: bool, cost: Option<u32>) -> Candidate {
        cand(index, PriorityClass::SiteCostNormal, 0, same_site, cost)
    }

    fn sets(o: &[Ordered]) -> Vec<Vec<usize>> {
        let mut v: Vec<Vec<usize>> = Vec::new();
        for x in o {
            if x.set_start {
                v.push(Vec::new());
            }
            v.last_mut().expect("first entry starts a set").push(x.index);
        }
        for s in &mut v {
            s.sort();
        }
        v
    }

    #[test]
    fn splitmix_known_values() {
        // Reference values of SplitMix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn lowest_cost_groups_by_cost() {
        let c = [
            normal(0, false, Some(200)),
            normal(1, true, Some(0)),
            normal(2, false, Some(100)),
            normal(3, false, None),
            normal(4, false, Some(100)),
            normal(5, true, Some(0)),
        ];
        let mut r = SplitMix64::new(1);
        let o = order(&c, Policy { site_costing: true, in_site_only: false }, &mut || r.next_u64());
        assert_eq!(sets(&o), vec![vec![1, 5], vec![2, 4], vec![0], vec![3]]);
    }

    #[test]
    fn random_mode_is_same_site_then_rest() {
        let c = [normal(0, false, Some(200)), normal(1, true, None), normal(2, false, Some(100)), normal(3, false, None)];
        let mut r = SplitMix64::new(2);
        let o = order(&c, Policy::default(), &mut || r.next_u64());
        assert_eq!(sets(&o), vec![vec![1], vec![0, 2, 3]]);
    }

    #[test]
    fn in_site_only_keeps_global_classes() {
        let c = [
            normal(0, false, Some(1)),
            normal(1, true, None),
            cand(2, PriorityClass::GlobalLow, 0, false, None),
            cand(3, PriorityClass::GlobalHigh, 0, false, None),
            cand(4, PriorityClass::SiteCostHigh, 0, false, None),
        ];
        let mut r = SplitMix64::new(3);
        let o = order(&c, Policy { site_costing: true, in_site_only: true }, &mut || r.next_u64());
        assert_eq!(o.iter().map(|x| x.index).collect::<Vec<_>>(), vec![3, 1, 2]);
        let only_out = [normal(0, false, Some(1))];
        assert!(order(&only_out, Policy { site_costing: false, in_site_only: true }, &mut || r.next_u64()).is_empty());
    }

    #[test]
    fn priority_classes_and_ranks() {
        let c = [
            cand(0, PriorityClass::GlobalLow, 0, true, Some(0)),
            cand(1, PriorityClass::SiteCostLow, 0, true, Some(0)),
            cand(2, PriorityClass::SiteCostNormal, 3, true, Some(0)),
            cand(3, PriorityClass::SiteCostNormal, 1, true, Some(0)),
            cand(4, PriorityClass::SiteCostHigh, 9, false, Some(10)),
            cand(5, PriorityClass::SiteCostHigh, 9, true, Some(0)),
            cand(6, PriorityClass::GlobalHigh, 5, false, None),
            cand(7, PriorityClass::GlobalHigh, 2, false, None),
            cand(8, PriorityClass::SiteCostNormal, 0, false, Some(10)),
            cand(9, PriorityClass::SiteCostLow, 0, false, Some(10)),
        ];
        let mut r = SplitMix64::new(4);
        let o = order(&c, Policy { site_costing: true, in_site_only: false }, &mut || r.next_u64());
        // GlobalHigh (rank 2 then 5); cost 0: High, Normal r1, Normal r3, Low;
        // cost 10: High, Normal, Low; GlobalLow last.
        assert_eq!(o.iter().map(|x| x.index).collect::<Vec<_>>(), vec![7, 6, 5, 3, 2, 1, 4, 8, 9, 0]);
        assert!(o.iter().all(|x| x.set_start));
    }

    #[test]
    fn shuffle_is_uniform_within_five_percent() {
        // 4 same-site targets and 3 in a cost group: every position of each
        // set sees every member about equally often over 10 000 orderings.
        let c = [
            normal(0, true, Some(0)),
            normal(1, true, Some(0)),
            normal(2, true, Some(0)),
            normal(3, true, Some(0)),
            normal(4, false, Some(5)),
            normal(5, false, Some(5)),
            normal(6, false, Some(5)),
        ];
        let mut r = SplitMix64::new(0x5eed);
        let mut counts = [[0u32; 7]; 7];
        const N: u32 = 10_000;
        for _ in 0..N {
            let o = order(&c, Policy { site_costing: true, in_site_only: false }, &mut || r.next_u64());
            assert_eq!(sets(&o), vec![vec![0, 1, 2, 3], vec![4, 5, 6]]);
            for (pos, x) in o.iter().enumerate() {
                counts[pos][x.index] += 1;
            }
        }
        let check = |positions: std::ops::Range<usize>, members: std::ops::Range<usize>| {
            let expect = f64::from(N) / members.len() as f64;
            for p in positions {
                for m in members.clone() {
                    let got = f64::from(counts[p][m]);
                    assert!((got - expect).abs() / expect < 0.05, "pos {p} member {m}: {got} vs {expect}");
                }
            }
        };
        check(0..4, 0..4);
        check(4..7, 4..7);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let c: Vec<Candidate> = (0..10).map(|i| normal(i, false, Some(1))).collect();
        let run = |seed| {
            let mut r = SplitMix64::new(seed);
            order(&c, Policy::default(), &mut || r.next_u64())
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
