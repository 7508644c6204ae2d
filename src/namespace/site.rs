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
    #[error("site {0:?} already exists")]
    DuplicateSite(String),
    #[error("unknown site {0:?}")]
    UnknownSite(String),
    #[error("subnet {0:?} is not mapped to site {1:?}")]
    UnknownSubnet(String, String),
    #[error("site link {0:?} - {1:?} given twice")]
    DuplicateSiteLink(String, String),
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

/// Sites, subnets and site links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteMap {
    /// Known sites in the case they were first named with; a site can
    /// exist with no subnet yet (an admin adds it, then its subnets).
    sites: Vec<String>,
    subnets: Vec<(Subnet, String)>,
    /// Symmetric link costs, keyed by lower-cased site names (a < b).
    links: BTreeMap<(String, String), u32>,
}

impl SiteMap {
    pub fn new() -> Self {
        SiteMap::default()
    }

    /// Known sites, in the order they were added.
    pub fn sites(&self) -> impl Iterator<Item = &str> {
        self.sites.iter().map(String::as_str)
    }

    /// The site as it was first named, if known (case-insensitive).
    pub fn site(&self, name: &str) -> Option<&str> {
        let k = key(name);
        self.sites.iter().find(|s| key(s) == k).map(String::as_str)
    }

    /// Adds a site with no subnets yet.
    pub fn add_site(&mut self, name: &str) -> Result<(), SiteError> {
        check_site(name)?;
        if self.site(name).is_some() {
            return Err(SiteError::DuplicateSite(name.to_string()));
        }
        self.sites.push(name.to_string());
        Ok(())
    }

    /// Registers `name` if it is new (subnets and links name sites freely).
    fn ensure_site(&mut self, name: &str) {
        if self.site(name).is_none() {
            self.sites.push(name.to_string());
        }
    }

    /// Removes a site with its subnets and site links.
    pub fn remove_site(&mut self, name: &str) -> Result<(), SiteError> {
        let k = key(name);
        let i = self.sites.iter().position(|s| key(s) == k).ok_or_else(|| SiteError::UnknownSite(name.to_string()))?;
        self.sites.remove(i);
        self.subnets.retain(|(_, s)| key(s) != k);
        self.links.retain(|(a, b), _| *a != k && *b != k);
        Ok(())
    }

    /// Maps a subnet to a site (registering the site if new).
    pub fn add_subnet(&mut self, cidr: &str, site: &str) -> Result<(), SiteError> {
        check_site(site)?;
        let s = Subnet::parse(cidr)?;
        if self.subnets.iter().any(|(x, _)| *x == s) {
            return Err(SiteError::DuplicateSubnet(s.to_string()));
        }
        self.ensure_site(site);
        let canonical = self.site(site).unwrap_or(site).to_string();
        self.subnets.push((s, canonical));
        Ok(())
    }

    /// Unmaps a subnet from `site`; the site itself stays.
    pub fn remove_subnet(&mut self, cidr: &str, site: &str) -> Result<(), SiteError> {
        let s = Subnet::parse(cidr)?;
        let k = key(site);
        let i = self
            .subnets
            .iter()
            .position(|(x, n)| *x == s && key(n) == k)
            .ok_or_else(|| SiteError::UnknownSubnet(s.to_string(), site.to_string()))?;
        self.subnets.remove(i);
        Ok(())
    }

    /// Site links as `(a, b, cost)`, names as the sites were first named.
    pub fn link_costs(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        self.links.iter().map(|((a, b), &c)| (self.site(a).unwrap_or(a), self.site(b).unwrap_or(b), c))
    }

    pub fn subnets(&self) -> impl Iterator<Item = (&Subnet, &str)> {
        self.subnets.iter().map(|(s, n)| (s, n.as_str()))
    }

    /// Sets the cost of the site link between `a` and `b` (both directions).
    pub fn set_link_cost(&mut self, a: &str, b: &str, cost: u32) -> Result<(), SiteError> {
        check_site(a)?;
        check_site(b)?;
        self.ensure_site(a);
        self.ensure_site(b);
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

    // ---- serialization -------------------------------------------------

    /// Compact versioned binary record: magic `DFSS`, version byte, then
    /// little-endian counts and length-prefixed UTF-8 strings: the sites,
    /// the subnets (`cidr`, site) and the site links (a, b, cost).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(SITES_MAGIC);
        w.push(SITES_FORMAT_VERSION);
        put_u32(&mut w, self.sites.len() as u32);
        for s in &self.sites {
            put_str(&mut w, s);
        }
        put_u32(&mut w, self.subnets.len() as u32);
        for (net, site) in &self.subnets {
            put_str(&mut w, &net.to_string());
            put_str(&mut w, site);
        }
        put_u32(&mut w, self.links.len() as u32);
        for ((a, b), cost) in &self.links {
            put_str(&mut w, a);
            put_str(&mut w, b);
            put_u32(&mut w, *cost);
        }
        w
    }

    /// Decodes a record from [`SiteMap::encode`]. Hostile bytes give an
    /// error, never a panic; content goes through the editing API's checks.
    pub fn decode(bytes: &[u8]) -> Result<SiteMap, SiteDecodeError> {
        let mut r = Reader { b: bytes };
        if r.take(4)? != SITES_MAGIC {
            return Err(SiteDecodeError::BadMagic);
        }
        let v = r.u8()?;
        if v != SITES_FORMAT_VERSION {
            return Err(SiteDecodeError::UnsupportedVersion(v));
        }
        let mut m = SiteMap::new();
        for _ in 0..r.count()? {
            m.add_site(&r.string()?)?;
        }
        for _ in 0..r.count()? {
            let cidr = r.string()?;
            let site = r.string()?;
            m.add_subnet(&cidr, &site)?;
        }
        for _ in 0..r.count()? {
            let a = r.string()?;
            let b = r.string()?;
            let cost = r.u32()?;
            let (ka, kb) = (key(&a), key(&b));
            if m.links.contains_key(&(ka.clone(), kb.clone())) || m.links.contains_key(&(kb, ka)) {
                return Err(SiteError::DuplicateSiteLink(a, b).into());
            }
            m.set_link_cost(&a, &b, cost)?;
        }
        if !r.b.is_empty() {
            return Err(SiteDecodeError::TrailingBytes(r.b.len()));
        }
        Ok(m)
    }
}

const SITES_MAGIC: &[u8; 4] = b"DFSS";
/// Bump when the record layout changes; decode refuses unknown versions.
pub const SITES_FORMAT_VERSION: u8 = 1;

/// Errors decoding a serialized site map.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SiteDecodeError {
    #[error("site record truncated")]
    Truncated,
    #[error("bad site record magic")]
    BadMagic,
    #[error("unsupported site record version {0}")]
    UnsupportedVersion(u8),
    #[error("string in site record is not UTF-8")]
    BadUtf8,
    #[error("{0} trailing bytes after site record")]
    TrailingBytes(usize),
    #[error("invalid site content: {0}")]
    Invalid(#[from] SiteError),
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u32(w, s.len() as u32);
    w.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SiteDecodeError> {
        if self.b.len() < n {
            return Err(SiteDecodeError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, SiteDecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SiteDecodeError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A count of following items; each takes at least four bytes, so a
    /// count larger than what is left is refused before any loop runs.
    fn count(&mut self) -> Result<usize, SiteDecodeError> {
        let n = self.u32()? as usize;
        if n > self.b.len() {
            return Err(SiteDecodeError::Truncated);
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, SiteDecodeError> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| SiteDecodeError::BadUtf8)
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

    fn sample() -> SiteMap {
        let mut m = SiteMap::new();
        m.add_site("Empty").unwrap();
        m.add_subnet("10.1.0.0/16", "Paris").unwrap();
        m.add_subnet("2001:db8:1::/48", "paris").unwrap();
        m.add_subnet("10.2.0.0/16", "Lyon").unwrap();
        m.set_link_cost("Paris", "Lyon", 100).unwrap();
        m.set_link_cost("Lyon", "Berlin", 7).unwrap();
        m
    }

    #[test]
    fn site_registry() {
        let mut m = sample();
        assert_eq!(m.sites().collect::<Vec<_>>(), vec!["Empty", "Paris", "Lyon", "Berlin"]);
        // Subnets keep the site's first spelling.
        assert_eq!(m.site_of(ip("2001:db8:1::9")), Some("Paris"));
        assert_eq!(m.link_costs().collect::<Vec<_>>(), vec![("Berlin", "Lyon", 7), ("Lyon", "Paris", 100)]);
        assert_eq!(m.add_site("PARIS"), Err(SiteError::DuplicateSite("PARIS".into())));
        assert!(matches!(m.remove_subnet("10.9.0.0/16", "Paris"), Err(SiteError::UnknownSubnet(..))));
        assert!(matches!(m.remove_subnet("10.2.0.0/16", "Paris"), Err(SiteError::UnknownSubnet(..))));
        m.remove_subnet("10.1.0.0/16", "paris").unwrap();
        assert_eq!(m.site_of(ip("10.1.0.1")), None);
        m.remove_site("lyon").unwrap();
        assert_eq!(m.sites().collect::<Vec<_>>(), vec!["Empty", "Paris", "Berlin"]);
        assert_eq!(m.site_of(ip("10.2.0.1")), None);
        assert_eq!(m.cost("Paris", "Berlin"), None);
        assert_eq!(m.remove_site("Lyon"), Err(SiteError::UnknownSite("Lyon".into())));
    }

    #[test]
    fn encode_decode_round_trip() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(&bytes[..5], b"DFSS\x01");
        let back = SiteMap::decode(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.site_of(ip("10.2.3.4")), Some("Lyon"));
        assert_eq!(back.cost("Paris", "Berlin"), Some(107));
        assert_eq!(SiteMap::decode(&SiteMap::new().encode()).unwrap(), SiteMap::new());
    }

    #[test]
    fn decode_rejects_hostile_bytes() {
        let bytes = sample().encode();
        assert_eq!(SiteMap::decode(b"DFSN\x01"), Err(SiteDecodeError::BadMagic));
        assert_eq!(SiteMap::decode(b"DFSS\x02"), Err(SiteDecodeError::UnsupportedVersion(2)));
        assert_eq!(SiteMap::decode(b""), Err(SiteDecodeError::Truncated));
        for n in 0..bytes.len() {
            assert!(SiteMap::decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(SiteMap::decode(&extra), Err(SiteDecodeError::TrailingBytes(1)));
        assert_eq!(SiteMap::decode(b"DFSS\x01\xff\xff\xff\xff"), Err(SiteDecodeError::Truncated));
        for i in 0..bytes.len() {
            for x in [0x00u8, 0xff, 0x80, 0x2f, 0x41] {
                let mut b = bytes.clone();
                b[i] = x;
                let _ = SiteMap::decode(&b);
            }
        }
        // A subnet smuggled in twice, a bad prefix and a repeated link are refused.
        let mut d = SiteMap::new();
        d.add_subnet("10.1.0.0/16", "A").unwrap();
        d.add_subnet("10.2.0.0/16", "A").unwrap();
        let mut enc = d.encode();
        let pos = enc.windows(4).rposition(|w| w == b"10.2").unwrap();
        enc[pos + 3] = b'1';
        assert!(matches!(SiteMap::decode(&enc), Err(SiteDecodeError::Invalid(SiteError::DuplicateSubnet(_)))));
        enc[pos + 3] = b'x';
        assert!(matches!(SiteMap::decode(&enc), Err(SiteDecodeError::Invalid(SiteError::BadSubnet(..)))));
        let mut l = SiteMap::new();
        l.set_link_cost("a", "b", 1).unwrap();
        l.set_link_cost("a", "c", 2).unwrap();
        let mut enc = l.encode();
        let n = enc.len();
        enc[n - 5] = b'b'; // second link's far end: a-c becomes a-b
        assert!(matches!(SiteMap::decode(&enc), Err(SiteDecodeError::Invalid(SiteError::DuplicateSiteLink(..)))));
    }
}
