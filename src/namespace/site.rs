//! Sites: a subnet → site map (IPv4 and IPv6, longest prefix wins, like
//! MS-NRPC §3.5.4.3.8 DsrAddressToSiteNamesW) and site-link costs, with the
//! cost between two sites being the cheapest path over site links (the
//! intent of MS-DRSR §4.1.16 for DFS site costing).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SiteError {
    #[error("bad subnet {0:?}: {1}")]
    BadSubnet(String, &'static str),
    #[error("bad site name {0:?}")]
    BadSiteName(String),
    #[error("subnet {0:?} already mapped")]
    DuplicateSubnet(String),
}

/// An address prefix, stored with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` or `x::y/n`; a bare address is a host prefix.
    pub fn parse(s: &str) -> Result<Self, SiteError> {
        let bad = |why| SiteError::BadSubnet(s.to_string(), why);
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad("bad address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad("bad prefix length"))?,
        };
        if prefix > max {
            return Err(bad("prefix length too long"));
        }
        Ok(Subnet { addr: mask(addr, prefix), prefix })
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a dual-stack socket
/// reports IPv4 clients) are looked up as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((bits & m).into())
        }
    }
}

fn check_site(name: &str) -> Result<(), SiteError> {
    if name.is_empty() || name.len() > 63 || name.chars().any(|c| c.is_control() || "\\/:*?\"<>|,;=+[] ".contains(c)) {
        return Err(SiteError::BadSiteName(name.to_string()));
    }
    Ok(())
}

fn key(site: &str) -> String {
    site.to_lowercase()
}

/// Subnets and site links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteMap {
    subnets: Vec<(Subnet, String)>,
    /// Symmetric link costs, keyed by lower-cased site names (a < b).
    links: BTreeMap<(String, String), u32>,
}

impl SiteMap {
    pub fn new() -> Self {
        SiteMap::default()
    }

    pub fn add_subnet(&mut self, cidr: &str, site: &str) -> Result<(), SiteError> {
        check_site(site)?;
        let s = Subnet::parse(cidr)?;
        if self.subnets.iter().any(|(x, _)| *x == s) {
            return Err(SiteError::DuplicateSubnet(s.to_string()));
        }
        self.subnets.push((s, site.to_string()));
        Ok(())
    }

    pub fn subnets(&self) -> impl Iterator<Item = (&Subnet, &str)> {
        self.subnets.iter().map(|(s, n)| (s, n.as_str()))
    }

    /// Sets the cost of the site link between `a` and `b` (both directions).
    pub fn set_link_cost(&mut self, a: &str, b: &str, cost: u32) -> Result<(), SiteError> {
        check_site(a)?;
        check_site(b)?;
        let (ka, kb) = (key(a), key(b));
        let k = if ka <= kb { (ka, kb) } else { (kb, ka) };
        self.links.insert(k, cost);
        Ok(())
    }

    /// The site of `ip`: the longest matching prefix.
    pub fn site_of(&self, ip: IpAddr) -> Option<&str> {
        self.subnets
            .iter()
            .filter(|(s, _)| s.contains(ip))
            .max_by_key(|(s, _)| s.prefix)
            .map(|(_, n)| n.as_str())
    }

    /// Cheapest path cost from `a` to `b` over site links (Dijkstra; site
    /// lists are small). Same site → 0; unreachable → `None`.
    pub fn cost(&self, a: &str, b: &str) -> Option<u32> {
        let (src, dst) = (key(a), key(b));
        if src == dst {
            return Some(0);
        }
        let mut dist: BTreeMap<&str, u64> = BTreeMap::new();
        let mut frontier: BTreeSet<(u64, &str)> = BTreeSet::new();
        dist.insert(&src, 0);
        frontier.insert((0, &src));
        while let Some((d, site)) = frontier.pop_first() {
            if site == dst {
                return Some(u32::try_from(d).unwrap_or(u32::MAX));
            }
            if dist.get(site).is_some_and(|&best| best < d) {
                continue;
            }
            for ((x, y), &c) in &self.links {
                let next = if x == site {
                    y.as_str()
                } else if y == site {
                    x.as_str()
                } else {
                    continue;
                };
                let nd = d + u64::from(c);
                if dist.get(next).map_or(true, |&old| nd < old) {
                    dist.insert(next, nd);
                    frontier.insert((nd, next));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_ipv4_and_ipv6() {
        let mut m = SiteMap::new();
        m.add_subnet("10.0.0.0/8", "Corp").unwrap();
        m.add_subnet("10.1.0.0/16", "Paris").unwrap();
        m.add_subnet("10.1.2.0/24", "ParisLab").unwrap();
        m.add_subnet("2001:db8::/32", "V6Corp").unwrap();
        m.add_subnet("2001:db8:1::/48", "V6Paris").unwrap();
        m.add_subnet("192.168.7.7", "Host").unwrap();
        assert_eq!(m.site_of(ip("10.9.9.9")), Some("Corp"));
        assert_eq!(m.site_of(ip("10.1.9.9")), Some("Paris"));
        assert_eq!(m.site_of(ip("10.1.2.3")), Some("ParisLab"));
        assert_eq!(m.site_of(ip("::ffff:10.1.2.3")), Some("ParisLab"));
        assert_eq!(m.site_of(ip("11.0.0.1")), None);
        assert_eq!(m.site_of(ip("2001:db8:1:2::5")), Some("V6Paris"));
        assert_eq!(m.site_of(ip("2001:db8:2::5")), Some("V6Corp"));
        assert_eq!(m.site_of(ip("2001:db9::1")), None);
        assert_eq!(m.site_of(ip("192.168.7.7")), Some("Host"));
        assert_eq!(m.site_of(ip("192.168.7.8")), None);
        // Host bits are cleared, so the same subnet written two ways is a duplicate.
        assert!(matches!(m.add_subnet("10.1.2.77/24", "X"), Err(SiteError::DuplicateSubnet(_))));
    }

    #[test]
    fn default_route_and_bad_input() {
        let mut m = SiteMap::new();
        m.add_subnet("0.0.0.0/0", "Any4").unwrap();
        m.add_subnet("::/0", "Any6").unwrap();
        assert_eq!(m.site_of(ip("8.8.8.8")), Some("Any4"));
        assert_eq!(m.site_of(ip("fe80::1")), Some("Any6"));
        assert!(matches!(m.add_subnet("10.0.0.0/33", "A"), Err(SiteError::BadSubnet(..))));
        assert!(matches!(m.add_subnet("::/129", "A"), Err(SiteError::BadSubnet(..))));
        assert!(matches!(m.add_subnet("10.0.0/8", "A"), Err(SiteError::BadSubnet(..))));
        assert!(matches!(m.add_subnet("10.0.0.0/x", "A"), Err(SiteError::BadSubnet(..))));
        assert!(matches!(m.add_subnet("10.0.0.0/8", "a/b"), Err(SiteError::BadSiteName(_))));
        assert!(matches!(m.set_link_cost("", "b", 1), Err(SiteError::BadSiteName(_))));
        assert_eq!(Subnet::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn costs_are_cheapest_paths() {
        let mut m = SiteMap::new();
        m.set_link_cost("A", "B", 100).unwrap();
        m.set_link_cost("B", "C", 100).unwrap();
        m.set_link_cost("a", "c", 500).unwrap();
        m.set_link_cost("C", "D", 1).unwrap();
        assert_eq!(m.cost("A", "a"), Some(0));
        assert_eq!(m.cost("A", "B"), Some(100));
        assert_eq!(m.cost("b", "a"), Some(100));
        assert_eq!(m.cost("A", "C"), Some(200));
        assert_eq!(m.cost("A", "D"), Some(201));
        assert_eq!(m.cost("A", "Z"), None);
        m.set_link_cost("A", "C", 50).unwrap();
        assert_eq!(m.cost("A", "D"), Some(51));
    }
}
