//! Table + sites + client address + request → referral response
//! (MS-DFSC §3.2.5.5). Pure: the random source is a parameter.

use std::net::IpAddr;

use serde_json::{json, Value};
use thiserror::Error;

use super::ordering::{self, Candidate, Policy};
use super::referral::{
    self, Entry, ReferralError, Response, ServerType, Version, HEADER_REFERRAL_SERVERS, HEADER_STORAGE_SERVERS,
    HEADER_TARGET_FAILBACK,
};
use super::site::SiteMap;
use super::table::{eq_ci, Flags, Node, OrderingMode, Root, Table, Target, TargetState};

/// NTSTATUS values the caller reports for each error.
pub const STATUS_NOT_FOUND: u32 = 0xC000_0225;
pub const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// Empty path or a lone `\host`: a domain or DC referral request, which
    /// a server that is not a DC fails (§3.2.5.2, §3.2.5.3).
    #[error("not a root or link referral request: {0:?}")]
    NotRootOrLink(String),
    /// The namespace (second component) is not in the table (§3.2.5.5).
    #[error("no namespace for {0:?}")]
    UnknownNamespace(String),
    /// Every target is offline or was removed by in-site mode.
    #[error("no target available for {0:?}")]
    NoTargets(String),
    #[error(transparent)]
    Referral(#[from] ReferralError),
}

impl ResolveError {
    /// The NTSTATUS to fail the FSCTL with.
    pub fn nt_status(&self) -> u32 {
        match self {
            ResolveError::NotRootOrLink(_) | ResolveError::Referral(_) => STATUS_INVALID_PARAMETER,
            ResolveError::UnknownNamespace(_) | ResolveError::NoTargets(_) => STATUS_NOT_FOUND,
        }
    }
}

/// The answer: the response model, its encoding cut to the client's
/// maximum output size, and whether it overflowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReferral {
    pub response: Response,
    /// Wire bytes; truncated when `overflow`.
    pub bytes: Vec<u8>,
    /// Report STATUS_BUFFER_OVERFLOW with `bytes` (stock Samba behaviour).
    pub overflow: bool,
    /// Client's site, if its address is in a known subnet.
    pub client_site: Option<String>,
}

impl ResolvedReferral {
    /// The JSON the CLI prints.
    pub fn to_json(&self) -> Value {
        let r = &self.response;
        let wire = r.wire_header_flags();
        let mut flags = Vec::new();
        for (bit, name) in [(HEADER_REFERRAL_SERVERS, "R"), (HEADER_STORAGE_SERVERS, "S"), (HEADER_TARGET_FAILBACK, "T")] {
            if wire & bit != 0 {
                flags.push(name);
            }
        }
        let server_type = match r.server_type {
            ServerType::Root => "root",
            ServerType::Link => "link",
        };
        let entries: Vec<Value> = r
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({
                    "version": r.version.number(),
                    "server_type": server_type,
                    "ttl": r.ttl,
                    "path": r.dfs_path,
                    "target": e.target,
                    "target_set_boundary": r.entry_flags(i) & referral::ENTRY_TARGET_SET_BOUNDARY != 0,
                })
            })
            .collect();
        json!({
            "path_consumed": r.path_consumed,
            "header_flags": flags,
            "entries": entries,
            "overflow": self.overflow,
        })
    }
}

/// Components of the request path with the byte offset where each ends.
fn components(path: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, ch) in path.char_indices().chain(std::iter::once((path.len(), '\\'))) {
        if ch == '\\' {
            if i > start {
                out.push((&path[start..i], i));
            }
            start = i + 1;
        }
    }
    out
}

/// A target's site: explicit, else the site of its host when the host is
/// an IP address in a known subnet (§3.2.5.5 derives it from the address).
fn target_site<'a>(t: &'a Target, sites: &'a SiteMap) -> Option<&'a str> {
    if let Some(s) = &t.site {
        return Some(s);
    }
    let h = t.unc.host();
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    h.parse::<IpAddr>().ok().and_then(|ip| sites.site_of(ip))
}

/// Resolves a root or link referral request.
///
/// `request_path` is RequestFileName as sent; a doubled leading backslash
/// is trimmed to one, as Samba does, and the matched prefix is echoed back
/// in the request's case as the DFS path, with PathConsumed its UTF-16 byte
/// length (§2.2.4, §3.2.5.5). The response uses the version the client
/// asked for (1-4). A root with no configured targets refers to itself
/// (`\host\root` as the client named them), like Samba's self referral.
pub fn resolve(
    table: &Table,
    sites: &SiteMap,
    request_path: &str,
    client_ip: Option<IpAddr>,
    max_level: u16,
    max_output_size: u32,
    rng: &mut dyn FnMut() -> u64,
) -> Result<ResolvedReferral, ResolveError> {
    let version = Version::for_level(max_level)?;
    let mut path = request_path;
    while path.starts_with("\\\\") {
        path = &path[1..];
    }
    let comps = components(path);
    if comps.len() < 2 {
        return Err(ResolveError::NotRootOrLink(request_path.to_string()));
    }
    let root: &Root =
        table.root(comps[1].0).ok_or_else(|| ResolveError::UnknownNamespace(request_path.to_string()))?;
    let rest: Vec<&str> = comps[2..].iter().map(|c| c.0).collect();
    let link = root.match_link(&rest);

    let (node, server_type, consumed_end): (&Node, ServerType, usize) = match link {
        Some(l) => (&l.node, ServerType::Link, comps[1 + l.path.len()].1),
        None => (&root.node, ServerType::Root, comps[1].1),
    };
    let dfs_path = &path[..consumed_end];
    // An offline namespace or link refers nowhere (its targets are kept).
    if root.node.state == TargetState::Offline || node.state == TargetState::Offline {
        return Err(ResolveError::NoTargets(request_path.to_string()));
    }

    let mut header_flags = match (server_type, link.is_some_and(|l| l.interlink)) {
        (ServerType::Root, _) => HEADER_REFERRAL_SERVERS | HEADER_STORAGE_SERVERS,
        // §3.2.5.5: R for an interlink, S for link targets, not both.
        (ServerType::Link, true) => HEADER_REFERRAL_SERVERS,
        (ServerType::Link, false) => HEADER_STORAGE_SERVERS,
    };
    // §3.2.5.5: T for a root if enabled on the root; for a link if enabled
    // on the link or the root.
    if node.flags.contains(Flags::TARGET_FAILBACK) || root.node.flags.contains(Flags::TARGET_FAILBACK) {
        header_flags |= HEADER_TARGET_FAILBACK;
    }

    let client_site = client_ip.and_then(|ip| sites.site_of(ip));
    let policy = Policy {
        site_costing: root.ordering == OrderingMode::LowestCost || root.node.flags.contains(Flags::SITE_COSTING),
        in_site_only: root.ordering == OrderingMode::ExcludeOutOfSite
            || root.node.flags.contains(Flags::INSITE)
            || (link.is_some() && node.flags.contains(Flags::INSITE)),
    };

    let entries: Vec<Entry> = if node.targets.is_empty() && link.is_none() {
        vec![Entry { target: dfs_path.to_string(), target_set_boundary: true }]
    } else {
        let candidates: Vec<Candidate> = node
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == TargetState::Online)
            .map(|(index, t)| {
                let ts = target_site(t, sites);
                let same_site = matches!((client_site, ts), (Some(a), Some(b)) if eq_ci(a, b));
                let cost = match (client_site, ts) {
                    (Some(a), Some(b)) => sites.cost(a, b),
                    _ => None,
                };
                Candidate { index, class: t.priority.class(), rank: t.priority.rank(), same_site, cost }
            })
            .collect();
        ordering::order(&candidates, policy, rng)
            .into_iter()
            .map(|o| Entry { target: node.targets[o.index].unc.referral_form(), target_set_boundary: o.set_start })
            .collect()
    };
    if entries.is_empty() {
        return Err(ResolveError::NoTargets(request_path.to_string()));
    }
    finish(
        Response {
            path_consumed: referral::path_consumed(dfs_path)?,
            header_flags,
            version,
            server_type,
            ttl: node.ttl,
            dfs_path: dfs_path.to_string(),
            entries,
        },
        max_output_size,
        client_site,
    )
}

fn finish(mut response: Response, max_output: u32, client_site: Option<&str>) -> Result<ResolvedReferral, ResolveError> {
    // Offsets are 16-bit: drop trailing targets that cannot be addressed
    // (§3.2.5.5 "MAY silently drop targets that will not fit").
    let encoded = loop {
        match referral::encode_limited(&response, max_output) {
            Err(ReferralError::TooLarge) if response.entries.len() > 1 => {
                response.entries.pop();
            }
            other => break other?,
        }
    };
    Ok(ResolvedReferral {
        response,
        bytes: encoded.bytes,
        overflow: encoded.overflow,
        client_site: client_site.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::ordering::SplitMix64;
    use crate::namespace::table::{Priority, PriorityClass};

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn sites() -> SiteMap {
        let mut m = SiteMap::new();
        m.add_subnet("10.1.0.0/16", "Paris").unwrap();
        m.add_subnet("10.2.0.0/16", "Lyon").unwrap();
        m.add_subnet("10.3.0.0/16", "Tokyo").unwrap();
        m.add_subnet("2001:db8:1::/48", "Paris").unwrap();
        m.set_link_cost("Paris", "Lyon", 10).unwrap();
        m.set_link_cost("Paris", "Tokyo", 100).unwrap();
        m
    }

    fn table() -> Table {
        let mut t = Table::new();
        t.add_root("Pub").unwrap();
        t.add_target_unc("Pub", r"\\rootA\Pub").unwrap();
        t.add_link(r"Pub\Dir\Link").unwrap();
        for h in ["10.3.0.1", "10.2.0.1", "10.1.0.1", "10.1.0.2", "lyonfs", "offline"] {
            t.add_target_unc(r"Pub\Dir\Link", &format!(r"\\{h}\data")).unwrap();
        }
        t.set_target_site(r"Pub\Dir\Link", r"\\lyonfs\data", Some("Lyon")).unwrap();
        t.set_target_state(r"Pub\Dir\Link", r"\\offline\data", TargetState::Offline).unwrap();
        t.add_root("Self").unwrap();
        t
    }

    fn run(t: &Table, path: &str, client: Option<IpAddr>, level: u16) -> Result<ResolvedReferral, ResolveError> {
        let mut r = SplitMix64::new(7);
        resolve(t, &sites(), path, client, level, 65536, &mut || r.next_u64())
    }

    fn targets(r: &ResolvedReferral) -> Vec<&str> {
        r.response.entries.iter().map(|e| e.target.as_str()).collect()
    }

    #[test]
    fn root_referral() {
        let r = run(&table(), r"\SRV\pub", ip("10.1.0.9"), 3).unwrap();
        assert_eq!(r.response.server_type, ServerType::Root);
        assert_eq!(r.response.dfs_path, r"\SRV\pub");
        assert_eq!(r.response.path_consumed, 16);
        assert_eq!(r.response.ttl, 300);
        assert_eq!(r.response.header_flags, HEADER_REFERRAL_SERVERS | HEADER_STORAGE_SERVERS);
        assert_eq!(targets(&r), vec![r"\rootA\Pub"]);
        assert_eq!(r.client_site.as_deref(), Some("Paris"));
        assert!(!r.overflow);
        // A deeper path with no link under it is still a root referral.
        let r = run(&table(), r"\SRV\pub\Dir\other\file", None, 3).unwrap();
        assert_eq!(r.response.server_type, ServerType::Root);
        assert_eq!(r.response.path_consumed, 16);
        // Doubled leading backslash trimmed as Samba does.
        let r = run(&table(), r"\\SRV\pub", None, 3).unwrap();
        assert_eq!(r.response.dfs_path, r"\SRV\pub");
    }

    #[test]
    fn self_referral_for_root_without_targets() {
        let r = run(&table(), r"\srv.example.com\self", None, 4).unwrap();
        assert_eq!(targets(&r), vec![r"\srv.example.com\self"]);
        assert!(r.response.entries[0].target_set_boundary);
    }

    #[test]
    fn link_referral_lowest_cost() {
        let r = run(&table(), r"\srv\PUB\dir\LINK\sub\file.txt", ip("10.1.5.5"), 4).unwrap();
        assert_eq!(r.response.server_type, ServerType::Link);
        assert_eq!(r.response.dfs_path, r"\srv\PUB\dir\LINK");
        assert_eq!(r.response.path_consumed, 2 * r"\srv\PUB\dir\LINK".len() as u16);
        assert_eq!(r.response.ttl, 1800);
        assert_eq!(r.response.header_flags, HEADER_STORAGE_SERVERS);
        let t = targets(&r);
        assert_eq!(t.len(), 5, "offline target left out");
        let mut first: Vec<&str> = t[..2].to_vec();
        first.sort();
        assert_eq!(first, vec![r"\10.1.0.1\data", r"\10.1.0.2\data"]);
        let mut lyon: Vec<&str> = t[2..4].to_vec();
        lyon.sort();
        assert_eq!(lyon, vec![r"\10.2.0.1\data", r"\lyonfs\data"]);
        assert_eq!(t[4], r"\10.3.0.1\data");
        let b: Vec<bool> = r.response.entries.iter().map(|e| e.target_set_boundary).collect();
        assert_eq!(b, vec![true, false, true, false, true]);
    }

    #[test]
    fn ipv6_client_site() {
        let r = run(&table(), r"\srv\pub\dir\link", ip("2001:db8:1::77"), 4).unwrap();
        assert_eq!(r.client_site.as_deref(), Some("Paris"));
        assert!(targets(&r)[0].starts_with(r"\10.1.0."));
    }

    #[test]
    fn random_and_in_site_modes() {
        let mut t = table();
        t.set_ordering("Pub", OrderingMode::Random).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", ip("10.1.5.5"), 4).unwrap();
        let b: Vec<bool> = r.response.entries.iter().map(|e| e.target_set_boundary).collect();
        assert_eq!(b, vec![true, false, true, false, false]);

        t.set_ordering("Pub", OrderingMode::ExcludeOutOfSite).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", ip("10.2.5.5"), 3).unwrap();
        let mut got = targets(&r);
        got.sort();
        assert_eq!(got, vec![r"\10.2.0.1\data", r"\lyonfs\data"]);
        // No in-site target for an unknown client: nothing to return.
        assert_eq!(
            run(&t, r"\srv\pub\dir\link", ip("192.0.2.1"), 3).unwrap_err().nt_status(),
            STATUS_NOT_FOUND
        );

        // INSITE on the link alone also restricts it.
        let mut t = table();
        t.set_flags(r"Pub\Dir\Link", Flags::INSITE).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", ip("10.3.0.9"), 3).unwrap();
        assert_eq!(targets(&r), vec![r"\10.3.0.1\data"]);
    }

    #[test]
    fn priority_overrides_site() {
        let mut t = table();
        let l = r"Pub\Dir\Link";
        t.set_target_priority(l, r"\\10.3.0.1\data", Priority::new(PriorityClass::GlobalHigh, 0).unwrap()).unwrap();
        t.set_target_priority(l, r"\\10.1.0.1\data", Priority::new(PriorityClass::GlobalLow, 0).unwrap()).unwrap();
        t.set_target_priority(l, r"\\lyonfs\data", Priority::new(PriorityClass::SiteCostHigh, 0).unwrap()).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", ip("10.1.5.5"), 4).unwrap();
        assert_eq!(
            targets(&r),
            vec![r"\10.3.0.1\data", r"\10.1.0.2\data", r"\lyonfs\data", r"\10.2.0.1\data", r"\10.1.0.1\data"]
        );
    }

    #[test]
    fn failback_and_interlink_flags() {
        let mut t = table();
        t.set_flags(r"Pub\Dir\Link", Flags::TARGET_FAILBACK).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", None, 4).unwrap();
        assert_eq!(r.response.wire_header_flags(), HEADER_STORAGE_SERVERS | HEADER_TARGET_FAILBACK);
        let r3 = run(&t, r"\srv\pub\dir\link", None, 3).unwrap();
        assert_eq!(r3.response.wire_header_flags(), HEADER_STORAGE_SERVERS);
        // Root failback applies to root and links.
        let mut t = table();
        t.set_flags("Pub", Flags::TARGET_FAILBACK).unwrap();
        for p in [r"\srv\pub", r"\srv\pub\dir\link"] {
            let r = run(&t, p, None, 4).unwrap();
            assert_ne!(r.response.wire_header_flags() & HEADER_TARGET_FAILBACK, 0);
        }
        t.set_interlink(r"Pub\Dir\Link", true).unwrap();
        let r = run(&t, r"\srv\pub\dir\link", None, 3).unwrap();
        assert_eq!(r.response.wire_header_flags(), HEADER_REFERRAL_SERVERS);
    }

    #[test]
    fn versions_follow_the_client() {
        for level in 1..=4u16 {
            let r = run(&table(), r"\srv\pub\dir\link", None, level).unwrap();
            assert_eq!(r.response.version.number(), level);
            assert_eq!(u16::from_le_bytes([r.bytes[8], r.bytes[9]]), level);
        }
        assert_eq!(run(&table(), r"\srv\pub", None, 7).unwrap().response.version, Version::V4);
        assert!(matches!(run(&table(), r"\srv\pub", None, 0), Err(ResolveError::Referral(_))));
    }

    #[test]
    fn errors() {
        let e = run(&table(), r"\srv\nope\x", None, 3).unwrap_err();
        assert!(matches!(e, ResolveError::UnknownNamespace(_)));
        assert_eq!(e.nt_status(), STATUS_NOT_FOUND);
        for p in ["", r"\srv", r"\srv\"] {
            let e = run(&table(), p, None, 3).unwrap_err();
            assert_eq!(e.nt_status(), STATUS_INVALID_PARAMETER, "{p:?}");
        }
        let mut t = table();
        for h in ["10.3.0.1", "10.2.0.1", "10.1.0.1", "10.1.0.2", "lyonfs"] {
            t.set_target_state(r"Pub\Dir\Link", &format!(r"\\{h}\data"), TargetState::Offline).unwrap();
        }
        assert!(matches!(run(&t, r"\srv\pub\dir\link", None, 3), Err(ResolveError::NoTargets(_))));
        // Offline root or link: no referral; back online: answered again.
        let mut t2 = t.clone();
        t2.set_node_state("pub", TargetState::Offline).unwrap();
        assert!(matches!(run(&t2, r"\srv\pub", None, 3), Err(ResolveError::NoTargets(_))));
    }

    #[test]
    fn overflow_truncates() {
        let t = table();
        let mut r = SplitMix64::new(1);
        let full = resolve(&t, &sites(), r"\srv\pub\dir\link", None, 3, 65536, &mut || r.next_u64()).unwrap();
        let mut r = SplitMix64::new(1);
        let cut = resolve(&t, &sites(), r"\srv\pub\dir\link", None, 3, 60, &mut || r.next_u64()).unwrap();
        assert!(cut.overflow);
        assert_eq!(cut.bytes, &full.bytes[..60]);
        assert_eq!(cut.to_json()["overflow"], true);
    }

    #[test]
    fn many_targets_no_cap() {
        let mut t = Table::new();
        t.add_root("r").unwrap();
        t.add_link(r"r\big").unwrap();
        for i in 0..256 {
            t.add_target_unc(r"r\big", &format!(r"\\host{i:03}\share")).unwrap();
        }
        let r = run(&t, r"\srv\r\big", None, 4).unwrap();
        assert_eq!(r.response.entries.len(), 256);
        assert_eq!(u16::from_le_bytes([r.bytes[2], r.bytes[3]]), 256);
        let mut all = targets(&r);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn json_shape() {
        let r = run(&table(), r"\srv\Pub", None, 4).unwrap();
        assert_eq!(
            r.to_json(),
            serde_json::json!({
                "path_consumed": 16,
                "header_flags": ["R", "S"],
                "entries": [{
                    "version": 4, "server_type": "root", "ttl": 300, "path": "\\srv\\Pub",
                    "target": "\\rootA\\Pub", "target_set_boundary": true
                }],
                "overflow": false,
            })
        );
        let r = run(&table(), r"\srv\Pub\dir\link", None, 3).unwrap();
        let j = r.to_json();
        assert_eq!(j["header_flags"], serde_json::json!(["S"]));
        assert_eq!(j["entries"][0]["server_type"], "link");
        assert_eq!(j["entries"][0]["target_set_boundary"], false);
        assert_eq!(j["entries"][0]["ttl"], 1800);
    }

    #[test]
    fn resolution_shuffle_uniform() {
        // 10 000 resolutions: the two Paris targets lead equally often and
        // the two Lyon ones split positions 2/3 equally, within 5 %.
        let t = table();
        let mut r = SplitMix64::new(0xdf5);
        let mut rng = || r.next_u64();
        let (mut paris_first, mut lyon_first) = (0u32, 0u32);
        const N: u32 = 10_000;
        for _ in 0..N {
            let res = resolve(&t, &sites(), r"\srv\pub\dir\link", ip("10.1.0.50"), 4, 65536, &mut rng).unwrap();
            let tg = targets(&res);
            paris_first += u32::from(tg[0] == r"\10.1.0.1\data");
            lyon_first += u32::from(tg[2] == r"\lyonfs\data");
        }
        for c in [paris_first, lyon_first] {
            let dev = (f64::from(c) - f64::from(N) / 2.0).abs() / (f64::from(N) / 2.0);
            assert!(dev < 0.05, "{c}");
        }
    }
}
