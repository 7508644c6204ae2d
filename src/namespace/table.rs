//! The partition knowledge table: namespaces (roots) with root targets,
//! links at any depth with link targets, and per-node TTL, flags, comments;
//! per-target state, priority and site.
//!
//! Every mutating call validates first and changes nothing on error.
//! Paths inside a namespace are addressed as `root` or `root\dir\link`
//! (leading backslashes and `/` separators are accepted). Names compare
//! case-insensitively (MS-DFSC §2.2.2: the request path "MUST NOT be
//! case-sensitive"), and keep the case they were created with.

use thiserror::Error;

/// Windows DFS-N default root referral TTL, seconds.
pub const DEFAULT_ROOT_TTL: u32 = 300;
/// Windows DFS-N default link (folder) referral TTL, seconds.
pub const DEFAULT_LINK_TTL: u32 = 1800;
/// Highest priority rank (MS-DFSNM §2.2.2.7: rank is 0..=31, 0 is best).
pub const MAX_PRIORITY_RANK: u8 = 31;
/// Longest name component accepted (NTFS component limit).
pub const MAX_COMPONENT_LEN: usize = 255;

/// Errors from table edits. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("unknown namespace root {0:?}")]
    UnknownRoot(String),
    #[error("namespace root {0:?} already exists")]
    DuplicateRoot(String),
    #[error("unknown link {0:?}")]
    UnknownLink(String),
    #[error("link {0:?} already exists")]
    DuplicateLink(String),
    #[error("link {0:?} would nest inside or contain link {1:?}")]
    LinkOverlap(String, String),
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error("target {0:?} already exists here")]
    DuplicateTarget(String),
    #[error("bad UNC path {0:?}: {1}")]
    BadUnc(String, &'static str),
    #[error("bad name {0:?}: {1}")]
    BadName(String, &'static str),
    #[error("bad path {0:?}: {1}")]
    BadPath(String, &'static str),
    #[error("priority rank {0} out of range 0..=31")]
    RankOutOfRange(u8),
    #[error("unknown flag bits {0:#x}")]
    UnknownFlags(u32),
}

/// Target state (MS-DFSNM DFS_STORAGE_STATE_ONLINE/OFFLINE). Offline targets
/// are left out of referrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetState {
    #[default]
    Online,
    Offline,
}

/// Priority class (MS-DFSNM §2.2.2.7 DFS_TARGET_PRIORITY_CLASS). The default
/// is SiteCostNormal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum PriorityClass {
    GlobalHigh,
    SiteCostHigh,
    #[default]
    SiteCostNormal,
    SiteCostLow,
    GlobalLow,
}

impl PriorityClass {
    pub const ALL: [PriorityClass; 5] = [
        PriorityClass::GlobalHigh,
        PriorityClass::SiteCostHigh,
        PriorityClass::SiteCostNormal,
        PriorityClass::SiteCostLow,
        PriorityClass::GlobalLow,
    ];

    fn to_byte(self) -> u8 {
        match self {
            PriorityClass::GlobalHigh => 0,
            PriorityClass::SiteCostHigh => 1,
            PriorityClass::SiteCostNormal => 2,
            PriorityClass::SiteCostLow => 3,
            PriorityClass::GlobalLow => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.get(usize::from(b)).copied()
    }
}

/// Target priority: class plus rank 0..=31 (lower rank first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Priority {
    class: PriorityClass,
    rank: u8,
}

impl Priority {
    pub fn new(class: PriorityClass, rank: u8) -> Result<Self, TableError> {
        if rank > MAX_PRIORITY_RANK {
            return Err(TableError::RankOutOfRange(rank));
        }
        Ok(Priority { class, rank })
    }
    pub fn class(&self) -> PriorityClass {
        self.class
    }
    pub fn rank(&self) -> u8 {
        self.rank
    }
    pub fn is_default(&self) -> bool {
        *self == Priority::default()
    }
}

/// Referral ordering mode of a namespace (the Windows "ordering method").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderingMode {
    /// Same site first, then by site-link cost (MS-DFSC §3.2.1.2).
    #[default]
    LowestCost,
    /// Same site first, then all others in random order (MS-DFSC §3.2.1.1).
    Random,
    /// Only targets in the client's site (in-site referrals).
    ExcludeOutOfSite,
}

impl OrderingMode {
    fn to_byte(self) -> u8 {
        match self {
            OrderingMode::LowestCost => 0,
            OrderingMode::Random => 1,
            OrderingMode::ExcludeOutOfSite => 2,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(OrderingMode::LowestCost),
            1 => Some(OrderingMode::Random),
            2 => Some(OrderingMode::ExcludeOutOfSite),
            _ => None,
        }
    }
}

/// Namespace/link property flags, with the MS-DFSNM §2.2.2.13 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(u32);

impl Flags {
    /// DFS_PROPERTY_FLAG_INSITE_REFERRALS.
    pub const INSITE: Flags = Flags(0x1);
    /// DFS_PROPERTY_FLAG_SITE_COSTING (root only).
    pub const SITE_COSTING: Flags = Flags(0x4);
    /// DFS_PROPERTY_FLAG_TARGET_FAILBACK (header T in V4, MS-DFSC §3.2.5.5).
    pub const TARGET_FAILBACK: Flags = Flags(0x8);
    const KNOWN: u32 = 0x1 | 0x4 | 0x8;

    pub const fn empty() -> Self {
        Flags(0)
    }
    pub fn from_bits(bits: u32) -> Result<Self, TableError> {
        if bits & !Self::KNOWN != 0 {
            return Err(TableError::UnknownFlags(bits & !Self::KNOWN));
        }
        Ok(Flags(bits))
    }
    pub fn bits(self) -> u32 {
        self.0
    }
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// A validated UNC path `\\host\share[\path…]`, stored without the doubled
/// leading backslash as referrals carry it (`\host\share…`, MS-DFSC §2.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unc {
    components: Vec<String>,
}

impl Unc {
    /// Accepts `\\host\share\…`, `\host\share\…` and `/` separators.
    pub fn parse(s: &str) -> Result<Self, TableError> {
        let bad = |why| TableError::BadUnc(s.to_string(), why);
        let trimmed = s.trim_start_matches(['\\', '/']);
        if trimmed.len() == s.len() {
            return Err(bad("must start with \\\\"));
        }
        let comps: Vec<&str> = trimmed.trim_end_matches(['\\', '/']).split(['\\', '/']).collect();
        if comps.len() < 2 {
            return Err(bad("needs a host and a share"));
        }
        check_host(comps[0]).map_err(bad)?;
        for c in &comps[1..] {
            check_component(c).map_err(bad)?;
        }
        Ok(Unc { components: comps.iter().map(|c| c.to_string()).collect() })
    }

    pub fn host(&self) -> &str {
        &self.components[0]
    }
    pub fn share(&self) -> &str {
        &self.components[1]
    }
    pub fn components(&self) -> &[String] {
        &self.components
    }
    /// The single-backslash form used in referral entries: `\host\share…`.
    pub fn referral_form(&self) -> String {
        let mut s = String::new();
        for c in &self.components {
            s.push('\\');
            s.push_str(c);
        }
        s
    }
    fn same_as(&self, other: &Unc) -> bool {
        self.components.len() == other.components.len()
            && self.components.iter().zip(&other.components).all(|(a, b)| eq_ci(a, b))
    }
}

impl std::fmt::Display for Unc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\\{}", self.referral_form())
    }
}

/// Case-insensitive name comparison (Unicode lower-casing, like Samba's
/// strcasecmp_m for the names that matter here).
pub fn eq_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        // The common case, without allocating (it runs per link per lookup).
        return a.eq_ignore_ascii_case(b);
    }
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// Characters Windows reserves in share and file names.
const RESERVED: &[char] = &['"', '\\', '/', '[', ']', ':', '|', '<', '>', '+', '=', ';', ',', '?', '*'];

fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty component");
    }
    if c.chars().count() > MAX_COMPONENT_LEN {
        return Err("component too long");
    }
    if c == "." || c == ".." {
        return Err("'.' and '..' are not names");
    }
    if c.chars().any(|ch| ch.is_control() || RESERVED.contains(&ch)) {
        return Err("reserved character");
    }
    if c.ends_with(' ') || c.ends_with('.') {
        return Err("trailing space or dot");
    }
    Ok(())
}

fn check_host(h: &str) -> Result<(), &'static str> {
    if h.is_empty() {
        return Err("empty host");
    }
    if h.len() > 255 {
        return Err("host too long");
    }
    // IPv6 literals are allowed bare or in brackets; everything else must be
    // a NetBIOS/DNS name.
    let unbracketed = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if h.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_') && !h.starts_with('.') {
        Ok(())
    } else {
        Err("bad host name")
    }
}

fn check_name(n: &str) -> Result<(), TableError> {
    check_component(n).map_err(|why| TableError::BadName(n.to_string(), why))
}

/// Splits a namespace path `root[\a\b…]` into validated components.
fn split_ns_path(p: &str) -> Result<Vec<String>, TableError> {
    let trimmed = p.trim_start_matches(['\\', '/']).trim_end_matches(['\\', '/']);
    if trimmed.is_empty() {
        return Err(TableError::BadPath(p.to_string(), "empty"));
    }
    trimmed
        .split(['\\', '/'])
        .map(|c| {
            check_component(c).map_err(|why| TableError::BadPath(p.to_string(), why))?;
            Ok(c.to_string())
        })
        .collect()
}

/// One root or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub unc: Unc,
    pub state: TargetState,
    pub priority: Priority,
    /// Explicit site; when `None` the site comes from the host if it is an
    /// IP address in a known subnet.
    pub site: Option<String>,
}

impl Target {
    pub fn new(unc: &str) -> Result<Self, TableError> {
        Ok(Target { unc: Unc::parse(unc)?, state: TargetState::Online, priority: Priority::default(), site: None })
    }
}

/// What roots and links share: TTL, comment, flags and targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub ttl: u32,
    pub comment: String,
    pub flags: Flags,
    /// An offline root or link gets no referral (DFS_VOLUME_STATE_OFFLINE).
    pub state: TargetState,
    pub targets: Vec<Target>,
}

impl Node {
    fn new(ttl: u32) -> Self {
        Node { ttl, comment: String::new(), flags: Flags::empty(), state: TargetState::Online, targets: Vec::new() }
    }
    fn find_target(&self, unc: &Unc) -> Option<usize> {
        self.targets.iter().position(|t| t.unc.same_as(unc))
    }
}

/// A link: its path below the root (one or more components) and its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub path: Vec<String>,
    pub node: Node,
    /// The targets are other namespace roots (MS-DFSC §3.1.5.4.5): referral
    /// gets R without S.
    pub interlink: bool,
}

impl Link {
    /// `a\b\c`
    pub fn path_string(&self) -> String {
        self.path.join("\\")
    }
}

/// A namespace root (a share on this server) with its root targets and links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub node: Node,
    pub ordering: OrderingMode,
    pub links: Vec<Link>,
}

impl Root {
    fn find_link(&self, path: &[String]) -> Option<usize> {
        self.links
            .iter()
            .position(|l| l.path.len() == path.len() && l.path.iter().zip(path).all(|(a, b)| eq_ci(a, b)))
    }

    /// The link whose path is a whole-component, case-insensitive prefix of
    /// `rest` (MS-DFSC §3.2.5.5); links never nest, so there is at most one,
    /// but the longest wins anyway.
    pub fn match_link<S: AsRef<str>>(&self, rest: &[S]) -> Option<&Link> {
        self.links
            .iter()
            .filter(|l| l.path.len() <= rest.len() && l.path.iter().zip(rest).all(|(a, b)| eq_ci(a, b.as_ref())))
            .max_by_key(|l| l.path.len())
    }
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    roots: Vec<Root>,
}

/// Which node an edit applies to.
enum NodeRef {
    Root(usize),
    Link(usize, usize),
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    pub fn root(&self, name: &str) -> Option<&Root> {
        self.roots.iter().find(|r| eq_ci(&r.name, name))
    }

    fn root_index(&self, name: &str) -> Result<usize, TableError> {
        self.roots.iter().position(|r| eq_ci(&r.name, name)).ok_or_else(|| TableError::UnknownRoot(name.to_string()))
    }

    fn resolve_node(&self, path: &str) -> Result<NodeRef, TableError> {
        let comps = split_ns_path(path)?;
        let ri = self.root_index(&comps[0])?;
        if comps.len() == 1 {
            return Ok(NodeRef::Root(ri));
        }
        let li = self.roots[ri].find_link(&comps[1..]).ok_or_else(|| TableError::UnknownLink(path.to_string()))?;
        Ok(NodeRef::Link(ri, li))
    }

    fn node_mut(&mut self, r: &NodeRef) -> &mut Node {
        match *r {
            NodeRef::Root(ri) => &mut self.roots[ri].node,
            NodeRef::Link(ri, li) => &mut self.roots[ri].links[li].node,
        }
    }

    /// The node (root or link) at `path`.
    pub fn node(&self, path: &str) -> Result<&Node, TableError> {
        Ok(match self.resolve_node(path)? {
            NodeRef::Root(ri) => &self.roots[ri].node,
            NodeRef::Link(ri, li) => &self.roots[ri].links[li].node,
        })
    }

    /// Adds a namespace root (TTL defaults to 300 s).
    pub fn add_root(&mut self, name: &str) -> Result<(), TableError> {
        check_name(name)?;
        if self.root(name).is_some() {
            return Err(TableError::DuplicateRoot(name.to_string()));
        }
        self.roots.push(Root {
            name: name.to_string(),
            node: Node::new(DEFAULT_ROOT_TTL),
            ordering: OrderingMode::default(),
            links: Vec::new(),
        });
        Ok(())
    }

    pub fn remove_root(&mut self, name: &str) -> Result<Root, TableError> {
        let ri = self.root_index(name)?;
        Ok(self.roots.remove(ri))
    }

    /// Adds a link `root\a\b…` (TTL defaults to 1800 s). Links never nest:
    /// a link inside another link's path, or containing one, is refused.
    pub fn add_link(&mut self, path: &str) -> Result<(), TableError> {
        let comps = split_ns_path(path)?;
        if comps.len() < 2 {
            return Err(TableError::BadPath(path.to_string(), "a link needs a root and a name"));
        }
        let ri = self.root_index(&comps[0])?;
        let rest = &comps[1..];
        let root = &self.roots[ri];
        if root.find_link(rest).is_some() {
            return Err(TableError::DuplicateLink(path.to_string()));
        }
        for l in &root.links {
            let n = l.path.len().min(rest.len());
            if l.path[..n].iter().zip(&rest[..n]).all(|(a, b)| eq_ci(a, b)) {
                return Err(TableError::LinkOverlap(path.to_string(), l.path_string()));
            }
        }
        self.roots[ri].links.push(Link { path: rest.to_vec(), node: Node::new(DEFAULT_LINK_TTL), interlink: false });
        Ok(())
    }

    pub fn remove_link(&mut self, path: &str) -> Result<Link, TableError> {
        match self.resolve_node(path)? {
            NodeRef::Link(ri, li) => Ok(self.roots[ri].links.remove(li)),
            NodeRef::Root(_) => Err(TableError::UnknownLink(path.to_string())),
        }
    }

    /// Adds a target to a root or link. Duplicates (case-insensitive UNC)
    /// are refused; there is no cap on the number of targets.
    pub fn add_target(&mut self, path: &str, target: Target) -> Result<(), TableError> {
        let r = self.resolve_node(path)?;
        let node = self.node_mut(&r);
        if node.find_target(&target.unc).is_some() {
            return Err(TableError::DuplicateTarget(target.unc.to_string()));
        }
        if let Some(site) = &target.site {
            check_name(site)?;
        }
        node.targets.push(target);
        Ok(())
    }

    /// Convenience: adds an online, default-priority target by UNC.
    pub fn add_target_unc(&mut self, path: &str, unc: &str) -> Result<(), TableError> {
        self.add_target(path, Target::new(unc)?)
    }

    fn target_mut(&mut self, path: &str, unc: &str) -> Result<&mut Target, TableError> {
        let unc = Unc::parse(unc)?;
        let r = self.resolve_node(path)?;
        let node = self.node_mut(&r);
        let i = node.find_target(&unc).ok_or_else(|| TableError::UnknownTarget(unc.to_string()))?;
        Ok(&mut node.targets[i])
    }

    pub fn remove_target(&mut self, path: &str, unc: &str) -> Result<Target, TableError> {
        let u = Unc::parse(unc)?;
        let r = self.resolve_node(path)?;
        let node = self.node_mut(&r);
        let i = node.find_target(&u).ok_or_else(|| TableError::UnknownTarget(u.to_string()))?;
        Ok(node.targets.remove(i))
    }

    pub fn set_target_state(&mut self, path: &str, unc: &str, state: TargetState) -> Result<(), TableError> {
        self.target_mut(path, unc)?.state = state;
        Ok(())
    }

    pub fn set_target_priority(&mut self, path: &str, unc: &str, priority: Priority) -> Result<(), TableError> {
        self.target_mut(path, unc)?.priority = priority;
        Ok(())
    }

    pub fn set_target_site(&mut self, path: &str, unc: &str, site: Option<&str>) -> Result<(), TableError> {
        if let Some(s) = site {
            check_name(s)?;
        }
        self.target_mut(path, unc)?.site = site.map(str::to_string);
        Ok(())
    }

    pub fn set_ttl(&mut self, path: &str, ttl: u32) -> Result<(), TableError> {
        let r = self.resolve_node(path)?;
        self.node_mut(&r).ttl = ttl;
        Ok(())
    }

    pub fn set_comment(&mut self, path: &str, comment: &str) -> Result<(), TableError> {
        let r = self.resolve_node(path)?;
        self.node_mut(&r).comment = comment.to_string();
        Ok(())
    }

    /// Takes a whole root or link online or offline.
    pub fn set_node_state(&mut self, path: &str, state: TargetState) -> Result<(), TableError> {
        let r = self.resolve_node(path)?;
        self.node_mut(&r).state = state;
        Ok(())
    }

    /// Sets property flags. SITE_COSTING only means something on a root
    /// (MS-DFSC §3.2.5.5: "enabled for the DFS namespace").
    pub fn set_flags(&mut self, path: &str, flags: Flags) -> Result<(), TableError> {
        let r = self.resolve_node(path)?;
        if matches!(r, NodeRef::Link(..)) && flags.contains(Flags::SITE_COSTING) {
            return Err(TableError::BadPath(path.to_string(), "SITE_COSTING is a namespace-wide flag"));
        }
        self.node_mut(&r).flags = flags;
        Ok(())
    }

    pub fn set_ordering(&mut self, root: &str, mode: OrderingMode) -> Result<(), TableError> {
        let ri = self.root_index(root)?;
        self.roots[ri].ordering = mode;
        Ok(())
    }

    pub fn set_interlink(&mut self, path: &str, interlink: bool) -> Result<(), TableError> {
        match self.resolve_node(path)? {
            NodeRef::Link(ri, li) => {
                self.roots[ri].links[li].interlink = interlink;
                Ok(())
            }
            NodeRef::Root(_) => Err(TableError::UnknownLink(path.to_string())),
        }
    }

    // ---- serialization -------------------------------------------------

    /// Compact versioned binary record: magic `DFSN`, version byte, then
    /// little-endian counts and length-prefixed UTF-8 strings.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        w.push(FORMAT_VERSION);
        put_u32(&mut w, self.roots.len() as u32);
        for r in &self.roots {
            put_str(&mut w, &r.name);
            w.push(r.ordering.to_byte());
            put_node(&mut w, &r.node);
            put_u32(&mut w, r.links.len() as u32);
            for l in &r.links {
                put_u32(&mut w, l.path.len() as u32);
                for c in &l.path {
                    put_str(&mut w, c);
                }
                w.push(u8::from(l.interlink));
                put_node(&mut w, &l.node);
            }
        }
        w
    }

    /// Decodes a record from [`Table::encode`]. Hostile bytes give an error,
    /// never a panic; the result is re-validated through the same checks as
    /// the editing API.
    pub fn decode(bytes: &[u8]) -> Result<Table, DecodeError> {
        let mut r = Reader { b: bytes };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let v = r.u8()?;
        if v != FORMAT_VERSION && v != 1 {
            return Err(DecodeError::UnsupportedVersion(v));
        }
        // Built directly, with the editing API's checks done through hash
        // sets: a table of 10 000 links decodes in linear time (every smbd
        // process decodes it for its first referral).
        let mut t = Table::new();
        let nroots = r.count()?;
        for _ in 0..nroots {
            let name = r.string()?;
            check_name(&name)?;
            if t.root(&name).is_some() {
                return Err(TableError::DuplicateRoot(name).into());
            }
            let ordering = r.u8()?;
            let ordering = OrderingMode::from_byte(ordering).ok_or(DecodeError::BadEnum("ordering", ordering))?;
            let node = read_node(&mut r, v, &name, false)?;
            let nlinks = r.count()?;
            let mut links = Vec::with_capacity(nlinks.min(1 << 16));
            let mut keys = std::collections::HashSet::with_capacity(nlinks.min(1 << 16));
            for _ in 0..nlinks {
                let ncomp = r.count()?;
                let mut path = Vec::with_capacity(ncomp.min(64));
                for _ in 0..ncomp {
                    let c = r.string()?;
                    check_component(&c).map_err(|why| TableError::BadPath(format!("{name}\\{c}"), why))?;
                    path.push(c);
                }
                let full = format!("{name}\\{}", path.join("\\"));
                if path.is_empty() {
                    return Err(TableError::BadPath(full, "a link needs a root and a name").into());
                }
                if !keys.insert(link_key(&path)) {
                    return Err(TableError::DuplicateLink(full).into());
                }
                let interlink = match r.u8()? {
                    0 => false,
                    1 => true,
                    x => return Err(DecodeError::BadEnum("interlink", x)),
                };
                let node = read_node(&mut r, v, &full, true)?;
                links.push(Link { path, node, interlink });
            }
            // Links never nest: no link's proper prefix is another link.
            for l in &links {
                for n in 1..l.path.len() {
                    let prefix = &l.path[..n];
                    if keys.contains(&link_key(prefix)) {
                        return Err(TableError::LinkOverlap(
                            format!("{name}\\{}", l.path_string()),
                            prefix.join("\\"),
                        )
                        .into());
                    }
                }
            }
            t.roots.push(Root { name, node, ordering, links });
        }
        if !r.b.is_empty() {
            return Err(DecodeError::TrailingBytes(r.b.len()));
        }
        Ok(t)
    }
}

const MAGIC: &[u8; 4] = b"DFSN";
/// Bump when the record layout changes; decode refuses unknown versions.
/// 2 added the root/link state (version 1 records still decode, online).
pub const FORMAT_VERSION: u8 = 2;

/// Errors decoding a serialized table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated")]
    Truncated,
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported record version {0}")]
    UnsupportedVersion(u8),
    #[error("string is not UTF-8")]
    BadUtf8,
    #[error("bad {0} value {1}")]
    BadEnum(&'static str, u8),
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    #[error("invalid table content: {0}")]
    Invalid(#[from] TableError),
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u32(w, s.len() as u32);
    w.extend_from_slice(s.as_bytes());
}

fn put_node(w: &mut Vec<u8>, n: &Node) {
    put_u32(w, n.ttl);
    put_u32(w, n.flags.bits());
    w.push(match n.state {
        TargetState::Online => 0,
        TargetState::Offline => 1,
    });
    put_str(w, &n.comment);
    put_u32(w, n.targets.len() as u32);
    for t in &n.targets {
        put_str(w, &t.unc.referral_form());
        w.push(match t.state {
            TargetState::Online => 0,
            TargetState::Offline => 1,
        });
        w.push(t.priority.class.to_byte());
        w.push(t.priority.rank);
        match &t.site {
            None => w.push(0),
            Some(s) => {
                w.push(1);
                put_str(w, s);
            }
        }
    }
}

/// The case-insensitive identity of a link path (as `eq_ci` compares).
fn link_key<S: AsRef<str>>(path: &[S]) -> String {
    path.iter().map(|c| c.as_ref().to_lowercase()).collect::<Vec<_>>().join("\\")
}

/// One root's or link's node, checked as the editing API checks it.
fn read_node(r: &mut Reader<'_>, version: u8, path: &str, is_link: bool) -> Result<Node, DecodeError> {
    let ttl = r.u32()?;
    let flags = Flags::from_bits(r.u32()?)?;
    if is_link && flags.contains(Flags::SITE_COSTING) {
        return Err(TableError::BadPath(path.to_string(), "SITE_COSTING is a namespace-wide flag").into());
    }
    let state = if version >= 2 {
        match r.u8()? {
            0 => TargetState::Online,
            1 => TargetState::Offline,
            x => return Err(DecodeError::BadEnum("node state", x)),
        }
    } else {
        TargetState::Online
    };
    let comment = r.string()?;
    let mut node = Node { ttl, comment, flags, state, targets: Vec::new() };
    let n = r.count()?;
    let mut seen = std::collections::HashSet::with_capacity(n.min(1 << 12));
    for _ in 0..n {
        let unc = r.string()?;
        let mut target = Target::new(&format!("\\{unc}"))?;
        let st = r.u8()?;
        target.state = match st {
            0 => TargetState::Online,
            1 => TargetState::Offline,
            x => return Err(DecodeError::BadEnum("state", x)),
        };
        let c = r.u8()?;
        let class = PriorityClass::from_byte(c).ok_or(DecodeError::BadEnum("priority class", c))?;
        target.priority = Priority::new(class, r.u8()?)?;
        target.site = match r.u8()? {
            0 => None,
            1 => {
                let site = r.string()?;
                check_name(&site)?;
                Some(site)
            }
            x => return Err(DecodeError::BadEnum("site marker", x)),
        };
        if !seen.insert(link_key(target.unc.components())) {
            return Err(TableError::DuplicateTarget(target.unc.to_string()).into());
        }
        node.targets.push(target);
    }
    Ok(node)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A count of following items; each item takes at least one byte, so a
    /// count larger than what is left is refused before any allocation.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.b.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| DecodeError::BadUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new();
        t.add_root("Public").unwrap();
        t.add_target_unc("Public", r"\\srv1\Public").unwrap();
        t.add_target_unc("Public", r"\\srv2.example.com\Public").unwrap();
        t.add_link(r"Public\Docs\Eng").unwrap();
        t.add_target_unc(r"Public\Docs\Eng", r"\\fs1\eng").unwrap();
        t.add_target_unc(r"Public\Docs\Eng", r"\\10.0.0.5\eng\sub").unwrap();
        t.set_target_state(r"Public\Docs\Eng", r"\\fs1\eng", TargetState::Offline).unwrap();
        t.set_target_priority(r"Public\Docs\Eng", r"\\10.0.0.5\eng\sub", Priority::new(PriorityClass::GlobalLow, 7).unwrap())
            .unwrap();
        t.set_target_site(r"Public\Docs\Eng", r"\\fs1\eng", Some("Paris")).unwrap();
        t.set_comment("Public", "the public namespace").unwrap();
        t.set_comment(r"Public\Docs\Eng", "ingénierie").unwrap();
        t.set_ttl(r"Public\Docs\Eng", 42).unwrap();
        t.set_flags("Public", Flags::SITE_COSTING | Flags::TARGET_FAILBACK).unwrap();
        t.set_flags(r"Public\Docs\Eng", Flags::INSITE).unwrap();
        t.set_ordering("Public", OrderingMode::Random).unwrap();
        t.add_link(r"Public\other").unwrap();
        t.set_interlink(r"Public\other", true).unwrap();
        t.add_root("Empty").unwrap();
        t
    }

    #[test]
    fn defaults() {
        let t = sample();
        assert_eq!(t.node("Empty").unwrap().ttl, DEFAULT_ROOT_TTL);
        assert_eq!(t.node(r"public\OTHER").unwrap().ttl, DEFAULT_LINK_TTL);
        assert_eq!(t.root("empty").unwrap().ordering, OrderingMode::LowestCost);
        let tg = &t.node(r"Public").unwrap().targets[0];
        assert_eq!(tg.state, TargetState::Online);
        assert_eq!(tg.priority.class(), PriorityClass::SiteCostNormal);
        assert_eq!(tg.priority.rank(), 0);
        assert!(tg.priority.is_default());
    }

    #[test]
    fn case_insensitive_lookup_keeps_case() {
        let t = sample();
        let r = t.root("PUBLIC").unwrap();
        assert_eq!(r.name, "Public");
        assert_eq!(r.links[0].path, vec!["Docs", "Eng"]);
        assert_eq!(t.node(r"/public/docs/ENG").unwrap().ttl, 42);
    }

    #[test]
    fn errors_change_nothing() {
        let mut t = sample();
        let before = t.clone();
        assert_eq!(t.add_root("public"), Err(TableError::DuplicateRoot("public".into())));
        assert!(matches!(t.add_target_unc("Nope", r"\\a\b"), Err(TableError::UnknownRoot(_))));
        assert!(matches!(t.add_target_unc("Public", r"\\SRV1\public"), Err(TableError::DuplicateTarget(_))));
        assert!(matches!(t.add_target_unc("Public", r"srv1\public"), Err(TableError::BadUnc(..))));
        assert!(matches!(t.add_target_unc("Public", r"\\srv1"), Err(TableError::BadUnc(..))));
        assert!(matches!(t.add_target_unc("Public", r"\\srv*\x"), Err(TableError::BadUnc(..))));
        assert!(matches!(t.add_target_unc("Public", r"\\srv\sh:are"), Err(TableError::BadUnc(..))));
        assert!(matches!(t.add_target_unc("Public", r"\\srv\a\\b"), Err(TableError::BadUnc(..))));
        assert_eq!(Priority::new(PriorityClass::GlobalHigh, 32), Err(TableError::RankOutOfRange(32)));
        assert!(matches!(t.add_root("a<b"), Err(TableError::BadName(..))));
        assert!(matches!(t.add_root(".."), Err(TableError::BadName(..))));
        assert!(matches!(t.add_root(""), Err(TableError::BadName(..))));
        assert!(matches!(t.add_link(r"Public\Docs\Eng"), Err(TableError::DuplicateLink(_))));
        assert!(matches!(t.add_link(r"Public\docs"), Err(TableError::LinkOverlap(..))));
        assert!(matches!(t.add_link(r"Public\Docs\Eng\deeper"), Err(TableError::LinkOverlap(..))));
        assert!(matches!(t.add_link(r"Public\a?b"), Err(TableError::BadPath(..))));
        assert!(matches!(t.add_link("Public"), Err(TableError::BadPath(..))));
        assert!(matches!(t.add_link(r"Nope\x"), Err(TableError::UnknownRoot(_))));
        assert!(matches!(t.set_ttl(r"Public\nolink", 1), Err(TableError::UnknownLink(_))));
        assert!(matches!(t.remove_target("Public", r"\\srv9\x"), Err(TableError::UnknownTarget(_))));
        assert!(matches!(t.set_target_site("Public", r"\\srv1\Public", Some("bad/site")), Err(TableError::BadName(..))));
        assert!(matches!(t.set_flags(r"Public\other", Flags::SITE_COSTING), Err(TableError::BadPath(..))));
        assert!(matches!(Flags::from_bits(0x2), Err(TableError::UnknownFlags(0x2))));
        let mut bad_site = Target::new(r"\\x\y").unwrap();
        bad_site.site = Some("a|b".into());
        assert!(matches!(t.add_target("Public", bad_site), Err(TableError::BadName(..))));
        assert_eq!(t, before);
    }

    #[test]
    fn unc_forms() {
        let u = Unc::parse(r"\\Srv\Share\a\b\").unwrap();
        assert_eq!(u.host(), "Srv");
        assert_eq!(u.share(), "Share");
        assert_eq!(u.referral_form(), r"\Srv\Share\a\b");
        assert_eq!(u.to_string(), r"\\Srv\Share\a\b");
        assert!(Unc::parse("//srv/share").is_ok());
        assert!(Unc::parse(r"\\fe80::1\share").is_ok());
        assert!(Unc::parse(r"\\[::1]\share").is_ok());
        assert!(Unc::parse(r"\\srv\share.").is_err());
    }

    #[test]
    fn remove_and_no_cap() {
        let mut t = sample();
        t.add_link(r"Public\big").unwrap();
        for i in 0..256 {
            t.add_target_unc(r"Public\big", &format!(r"\\host{i}\share")).unwrap();
        }
        assert_eq!(t.node(r"Public\big").unwrap().targets.len(), 256);
        let removed = t.remove_target(r"Public\big", r"\\HOST7\SHARE").unwrap();
        assert_eq!(removed.unc.host(), "host7");
        assert_eq!(t.node(r"Public\big").unwrap().targets.len(), 255);
        assert!(t.remove_link(r"Public\big").is_ok());
        assert!(matches!(t.remove_link("Public"), Err(TableError::UnknownLink(_))));
        assert!(t.remove_root("empty").is_ok());
        assert_eq!(t.roots().len(), 1);
    }

    #[test]
    fn link_match_is_whole_component_case_insensitive() {
        let t = sample();
        let r = t.root("Public").unwrap();
        assert_eq!(r.match_link(&["docs", "eng", "x"]).unwrap().path_string(), r"Docs\Eng");
        assert!(r.match_link(&["docs", "engine"]).is_none());
        assert!(r.match_link(&["docs"]).is_none());
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut t = sample();
        t.set_node_state(r"Public\Docs\Eng", TargetState::Offline).unwrap();
        let bytes = t.encode();
        assert_eq!(&bytes[..5], b"DFSN\x02");
        assert_eq!(Table::decode(&bytes).unwrap(), t);
        assert_eq!(Table::decode(&Table::new().encode()).unwrap(), Table::new());
        // A version 1 record (before node states) still reads.
        assert_eq!(Table::decode(b"DFSN\x01\x00\x00\x00\x00").unwrap(), Table::new());
    }

    #[test]
    fn decode_rejects_hostile_bytes() {
        let t = sample();
        let bytes = t.encode();
        assert_eq!(Table::decode(b"XXXX\x01"), Err(DecodeError::BadMagic));
        assert_eq!(Table::decode(b"DFSN\x09"), Err(DecodeError::UnsupportedVersion(9)));
        assert_eq!(Table::decode(b"DF"), Err(DecodeError::Truncated));
        // Every truncation fails cleanly.
        for n in 0..bytes.len() {
            assert!(Table::decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Table::decode(&extra), Err(DecodeError::TrailingBytes(1)));
        // Huge counts do not allocate or panic.
        assert_eq!(Table::decode(b"DFSN\x01\xff\xff\xff\xff"), Err(DecodeError::Truncated));
        // Flip every byte in turn: never a panic (errors or a valid table).
        for i in 0..bytes.len() {
            for x in [0x00u8, 0xff, 0x80, 0x5c] {
                let mut b = bytes.clone();
                b[i] = x;
                let _ = Table::decode(&b);
            }
        }
        // A duplicate target smuggled into a record is refused.
        let mut d = Table::new();
        d.add_root("r").unwrap();
        d.add_target_unc("r", r"\\a\b").unwrap();
        d.add_target_unc("r", r"\\a\c").unwrap();
        let mut enc = d.encode();
        let pos = enc.windows(4).rposition(|w| w == br"\a\c").unwrap();
        enc[pos + 3] = b'b';
        assert!(matches!(Table::decode(&enc), Err(DecodeError::Invalid(TableError::DuplicateTarget(_)))));
        // A bad rank is refused.
        let mut p = Table::new();
        p.add_root("r").unwrap();
        p.add_target_unc("r", r"\\a\b").unwrap();
        let mut enc = p.encode();
        let n = enc.len();
        enc[n - 6] = 40; // rank, site marker, then the u32 link count
        assert_eq!(Table::decode(&enc), Err(DecodeError::Invalid(TableError::RankOutOfRange(40))));
    }

    #[test]
    fn decode_refuses_what_the_editing_api_refuses() {
        let mut base = Table::new();
        base.add_root("ns").unwrap();
        base.add_link(r"ns\a\b").unwrap();
        base.add_target_unc(r"ns\a\b", r"\\h\s").unwrap();
        assert_eq!(Table::decode(&base.encode()).unwrap(), base);
        let tampered = |f: &dyn Fn(&mut Table)| {
            let mut t = base.clone();
            f(&mut t);
            Table::decode(&t.encode())
        };
        let dup_link = tampered(&|t| {
            let l = t.roots[0].links[0].clone();
            t.roots[0].links.push(Link { path: vec!["A".into(), "B".into()], ..l });
        });
        assert!(matches!(dup_link, Err(DecodeError::Invalid(TableError::DuplicateLink(_)))), "{dup_link:?}");
        let nested = tampered(&|t| {
            let l = t.roots[0].links[0].clone();
            t.roots[0].links.push(Link { path: vec!["a".into()], ..l });
        });
        assert!(matches!(nested, Err(DecodeError::Invalid(TableError::LinkOverlap(..)))), "{nested:?}");
        let dup_target = tampered(&|t| {
            let tg = t.roots[0].links[0].node.targets[0].clone();
            t.roots[0].links[0].node.targets.push(Target { unc: Unc::parse(r"\\H\S").unwrap(), ..tg });
        });
        assert!(matches!(dup_target, Err(DecodeError::Invalid(TableError::DuplicateTarget(_)))), "{dup_target:?}");
        let costing = tampered(&|t| t.roots[0].links[0].node.flags = Flags::SITE_COSTING);
        assert!(matches!(costing, Err(DecodeError::Invalid(TableError::BadPath(..)))), "{costing:?}");
        let bad_component = tampered(&|t| t.roots[0].links[0].path[1] = "x:y".into());
        assert!(bad_component.is_err());
        let dup_root = tampered(&|t| {
            let r = t.roots[0].clone();
            t.roots.push(Root { name: "NS".into(), ..r });
        });
        assert!(matches!(dup_root, Err(DecodeError::Invalid(TableError::DuplicateRoot(_)))), "{dup_root:?}");
    }
}