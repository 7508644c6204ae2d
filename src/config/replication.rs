//! Replication configuration: replication groups, their replicated
//! folders, members, connections and memberships (MS-FRS2 §1.3: the
//! objects Active Directory holds for Windows; here an admin sets them
//! with `dfsrctl replication` and the store keeps them). Pure: edits are
//! checked against the whole configuration and either apply or change
//! nothing; what depends on smb.conf (shares and their paths) is asked of
//! the caller through [`ShareLookup`].
//!
//! Names compare case-insensitively (as Windows compares DFS-R object and
//! computer names); GUIDs are kept exactly, so `export` on one member and
//! `import` on another give both the same replica set, content set and
//! connection GUIDs — what the wire carries (§2.2.1.4).

use std::fmt;

use crate::engine::ids::Guid;

/// The MS-FRS2 port partners listen on when an address names none.
pub const DEFAULT_PORT: u16 = 5722;

/// Names longer than this are refused (Windows limits DFS-R object names
/// to 255 characters, §2.2.1.4's strings carry them).
pub const MAX_NAME_LEN: usize = 255;

/// One replicated folder (content set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub id: Guid,
    pub name: String,
}

/// One member server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: Guid,
    pub name: String,
    /// Where its dfsrd listens.
    pub address: Address,
}

/// `HOST[:PORT]` of a partner's MS-FRS2 listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Address {
    /// Parses `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
    pub fn parse(text: &str) -> Result<Address, ConfigError> {
        let bad = |why: &str| ConfigError::BadAddress { address: text.to_string(), why: why.to_string() };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match tail {
                "" => (h, None),
                t => (h, Some(t.strip_prefix(':').ok_or_else(|| bad("expected :PORT after ]"))?)),
            }
        } else {
            match text.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => (text, None), // a bare IPv6 address
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '@')) {
            return Err(bad("the host has a space, a control character, / \\ or @"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port is not 1-65535")),
                Ok(n) => n,
            },
        };
        Ok(Address { host: host.to_string(), port })
    }
}

/// A connection: `to` pulls from `from` (the connection object belongs to
/// the receiving member, as in AD; §3.3 is the client side it drives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: Guid,
    pub from: Guid,
    pub to: Guid,
    pub enabled: bool,
}

/// A member's part in a folder: which share holds it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub folder: Guid,
    pub member: Guid,
    pub share: String,
    /// Its content wins the initial sync (one per folder).
    pub primary: bool,
    /// Never originates changes (§3.2.4.1.3 CONTENTSET_READ_ONLY).
    pub read_only: bool,
}

/// One replication group (replica set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: Guid,
    pub name: String,
    pub folders: Vec<Folder>,
    pub members: Vec<Member>,
    pub connections: Vec<Connection>,
    pub memberships: Vec<Membership>,
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationConfig {
    pub groups: Vec<Group>,
}

/// What an edit refused, naming the object and the reason.
/// A share inside (or around) another replicated share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedShare {
    pub share: String,
    pub path: String,
    pub other: String,
    pub other_path: String,
    pub group: String,
    pub folder: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} name {name:?}: {why}")]
    BadName { what: &'static str, name: String, why: &'static str },
    #[error("address {address:?}: {why}")]
    BadAddress { address: String, why: String },
    #[error("replication group {0:?} does not exist")]
    NoGroup(String),
    #[error("replication group {group:?} has no folder {folder:?}")]
    NoFolder { group: String, folder: String },
    #[error("replication group {group:?} has no member {member:?}")]
    NoMember { group: String, member: String },
    #[error("replication group {group:?} has no connection from {from:?} to {to:?}")]
    NoConnection { group: String, from: String, to: String },
    #[error("replication group {group:?}: {member:?} is not a member of folder {folder:?}")]
    NoMembership { group: String, folder: String, member: String },
    #[error("{what} {name:?} already exists{within}")]
    Duplicate { what: &'static str, name: String, within: String },
    #[error("GUID {id} is already the {what} {name:?}")]
    DuplicateId { id: Guid, what: &'static str, name: String },
    #[error("a connection needs two different members (got {0:?} twice)")]
    SelfConnection(String),
    #[error("folder {folder:?} of group {group:?} already has a primary member, {primary:?}")]
    SecondPrimary { group: String, folder: String, primary: String },
    #[error("{member:?} cannot be both primary and read-only: a read-only member's content never wins")]
    PrimaryReadOnly { member: String },
    #[error("share [{share}]: {why}")]
    Share { share: String, why: String },
    #[error("share [{}] ({}) is inside share [{}] ({}), folder {:?} of group {:?}", .0.share, .0.path, .0.other, .0.other_path, .0.folder, .0.group)]
    NestedShare(Box<NestedShare>),
    #[error("[{share}] already holds folder {folder:?} of group {group:?} here")]
    ShareTaken { share: String, group: String, folder: String },
    #[error("bad configuration document: {0}")]
    Document(String),
}

/// What the caller knows of this server's shares (from smb.conf).
pub trait ShareLookup {
    /// `Some((path, vfs objects))` of a share that exists.
    fn share(&self, name: &str) -> Option<(String, Vec<String>)>;
}

/// Which member this server is: `dfsr:member name` when set, else the
/// NetBIOS name (smb.conf's `netbios name`, whose default is the host
/// name, as Samba computes it; `testparm` prints it).
pub fn local_member_name(option: Option<&str>, netbios_name: &str) -> String {
    match option.map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => n.to_string(),
        None => netbios_name.trim().to_uppercase(),
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Checks an object name: 1-255 characters, no control characters and
/// none of `\ / : * ? " < > |` (they cannot be file or computer names).
pub fn check_name(what: &'static str, name: &str) -> Result<(), ConfigError> {
    let bad = |why| Err(ConfigError::BadName { what, name: name.to_string(), why });
    if name.trim().is_empty() {
        return bad("empty");
    }
    if name != name.trim() {
        return bad("leading or trailing spaces");
    }
    if name.chars().count() > MAX_NAME_LEN {
        return bad("longer than 255 characters");
    }
    if name.chars().any(|c| c.is_control() || matches!(c, '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|')) {
        return bad("has a control character or one of \\ / : * ? \" < > |");
    }
    Ok(())
}

impl Group {
    pub fn folder(&self, name: &str) -> Result<&Folder, ConfigError> {
        self.folders
            .iter()
            .find(|f| same_name(&f.name, name))
            .ok_or_else(|| ConfigError::NoFolder { group: self.name.clone(), folder: name.to_string() })
    }

    pub fn member(&self, name: &str) -> Result<&Member, ConfigError> {
        self.members
            .iter()
            .find(|m| same_name(&m.name, name))
            .ok_or_else(|| ConfigError::NoMember { group: self.name.clone(), member: name.to_string() })
    }

    pub fn member_by_id(&self, id: &Guid) -> Option<&Member> {
        self.members.iter().find(|m| m.id == *id)
    }

    pub fn folder_by_id(&self, id: &Guid) -> Option<&Folder> {
        self.folders.iter().find(|f| f.id == *id)
    }

    /// The name of a member by GUID (`?` when the document is broken).
    pub fn member_name(&self, id: &Guid) -> &str {
        self.member_by_id(id).map_or("?", |m| m.name.as_str())
    }

    pub fn folder_name(&self, id: &Guid) -> &str {
        self.folder_by_id(id).map_or("?", |f| f.name.as_str())
    }

    fn connection_index(&self, from: &str, to: &str) -> Result<usize, ConfigError> {
        let (f, t) = (self.member(from)?.id, self.member(to)?.id);
        self.connections.iter().position(|c| c.from == f && c.to == t).ok_or_else(|| ConfigError::NoConnection {
            group: self.name.clone(),
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    pub fn connection(&self, from: &str, to: &str) -> Result<&Connection, ConfigError> {
        Ok(&self.connections[self.connection_index(from, to)?])
    }

    pub fn membership(&self, folder: &Guid, member: &Guid) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.folder == *folder && m.member == *member)
    }

    /// Every GUID in the group with what it names, to refuse reuse.
    fn ids(&self) -> Vec<(Guid, &'static str, &str)> {
        let mut v = vec![(self.id, "replication group", self.name.as_str())];
        v.extend(self.folders.iter().map(|f| (f.id, "folder", f.name.as_str())));
        v.extend(self.members.iter().map(|m| (m.id, "member", m.name.as_str())));
        v.extend(self.connections.iter().map(|c| (c.id, "connection", "")));
        v
    }
}

impl ReplicationConfig {
    pub fn group(&self, name: &str) -> Result<&Group, ConfigError> {
        self.groups.iter().find(|g| same_name(&g.name, name)).ok_or_else(|| ConfigError::NoGroup(name.to_string()))
    }

    fn group_mut(&mut self, name: &str) -> Result<&mut Group, ConfigError> {
        self.groups
            .iter_mut()
            .find(|g| same_name(&g.name, name))
            .ok_or_else(|| ConfigError::NoGroup(name.to_string()))
    }

    fn check_id_free(&self, id: &Guid) -> Result<(), ConfigError> {
        for g in &self.groups {
            if let Some((_, what, name)) = g.ids().into_iter().find(|(i, _, _)| i == id) {
                return Err(ConfigError::DuplicateId { id: *id, what, name: name.to_string() });
            }
        }
        Ok(())
    }

    /// `group add`.
    pub fn add_group(&mut self, name: &str, id: Guid) -> Result<&Group, ConfigError> {
        check_name("replication group", name)?;
        if self.group(name).is_ok() {
            return Err(ConfigError::Duplicate { what: "replication group", name: name.into(), within: String::new() });
        }
        self.check_id_free(&id)?;
        self.groups.push(Group {
            id,
            name: name.into(),
            folders: vec![],
            members: vec![],
            connections: vec![],
            memberships: vec![],
        });
        Ok(self.groups.last().expect("just pushed"))
    }

    /// `folder add`.
    pub fn add_folder(&mut self, group: &str, name: &str, id: Guid) -> Result<&Folder, ConfigError> {
        check_name("folder", name)?;
        self.check_id_free(&id)?;
        let g = self.group_mut(group)?;
        if g.folder(name).is_ok() {
            return Err(ConfigError::Duplicate { what: "folder", name: name.into(), within: format!(" in {:?}", g.name) });
        }
        g.folders.push(Folder { id, name: name.into() });
        Ok(g.folders.last().expect("just pushed"))
    }

    /// `member add`.
    pub fn add_member(&mut self, group: &str, name: &str, address: Address, id: Guid) -> Result<&Member, ConfigError> {
        check_name("member", name)?;
        self.check_id_free(&id)?;
        let g = self.group_mut(group)?;
        if g.member(name).is_ok() {
            return Err(ConfigError::Duplicate { what: "member", name: name.into(), within: format!(" in {:?}", g.name) });
        }
        g.members.push(Member { id, name: name.into(), address });
        Ok(g.members.last().expect("just pushed"))
    }

    /// `connection add`.
    pub fn add_connection(
        &mut self,
        group: &str,
        from: &str,
        to: &str,
        enabled: bool,
        id: Guid,
    ) -> Result<&Connection, ConfigError> {
        self.check_id_free(&id)?;
        let g = self.group_mut(group)?;
        let (f, t) = (g.member(from)?.id, g.member(to)?.id);
        if f == t {
            return Err(ConfigError::SelfConnection(from.into()));
        }
        if g.connection(from, to).is_ok() {
            return Err(ConfigError::Duplicate {
                what: "connection",
                name: format!("{from} -> {to}"),
                within: format!(" in {:?}", g.name),
            });
        }
        g.connections.push(Connection { id, from: f, to: t, enabled });
        Ok(g.connections.last().expect("just pushed"))
    }

    /// `connection set --enabled`.
    pub fn set_connection_enabled(&mut self, group: &str, from: &str, to: &str, enabled: bool) -> Result<(), ConfigError> {
        let g = self.group_mut(group)?;
        let i = g.connection_index(from, to)?;
        g.connections[i].enabled = enabled;
        Ok(())
    }

    /// `membership set`: adds or replaces `member`'s membership of
    /// `folder`. When the member is this server (`local`), the share must
    /// exist here, stack the `dfsr` VFS module, hold no other replicated
    /// folder and not nest with another replicated share.
    pub fn set_membership(
        &mut self,
        group: &str,
        folder: &str,
        member: &str,
        share: &str,
        (primary, read_only): (bool, bool),
        local: Option<(&str, &dyn ShareLookup)>,
    ) -> Result<(), ConfigError> {
        let g = self.group(group)?;
        let (fid, mid) = (g.folder(folder)?.id, g.member(member)?.id);
        if share.is_empty() || share.contains(['/', '\\', '[', ']']) {
            return Err(ConfigError::Share { share: share.into(), why: "not a share name".into() });
        }
        if primary && read_only {
            return Err(ConfigError::PrimaryReadOnly { member: member.into() });
        }
        if primary {
            if let Some(p) = g.memberships.iter().find(|m| m.folder == fid && m.primary && m.member != mid) {
                return Err(ConfigError::SecondPrimary {
                    group: g.name.clone(),
                    folder: g.folder_name(&fid).into(),
                    primary: g.member_name(&p.member).into(),
                });
            }
        }
        let new = Membership { folder: fid, member: mid, share: share.into(), primary, read_only };
        if let Some((me, shares)) = local {
            if same_name(me, member) {
                self.check_local_share(&new, g.id, shares)?;
            }
        }
        let g = self.group_mut(group)?;
        match g.memberships.iter_mut().find(|m| m.folder == fid && m.member == mid) {
            Some(m) => *m = new,
            None => g.memberships.push(new),
        }
        Ok(())
    }

    /// The memberships of member `me` (by name) in every group.
    pub fn local_memberships<'a>(&'a self, me: &'a str) -> impl Iterator<Item = (&'a Group, &'a Membership)> + 'a {
        self.groups.iter().flat_map(move |g| {
            let mid = g.members.iter().find(|m| same_name(&m.name, me)).map(|m| m.id);
            g.memberships.iter().filter(move |m| Some(m.member) == mid).map(move |m| (g, m))
        })
    }

    fn check_local_share(&self, new: &Membership, group: Guid, shares: &dyn ShareLookup) -> Result<(), ConfigError> {
        let share_err = |why: &str| ConfigError::Share { share: new.share.clone(), why: why.into() };
        let (path, vfs) = shares.share(&new.share).ok_or_else(|| share_err("not in smb.conf"))?;
        if !vfs.iter().any(|m| m == "dfsr") {
            return Err(share_err("its `vfs objects` has no dfsr (the meet installs, and changes are seen, through it)"));
        }
        let norm = |p: &str| format!("{}/", p.trim_end_matches('/'));
        for g in &self.groups {
            let Some(me) = g.member_by_id(&new.member) else { continue };
            for (og, other) in self.local_memberships(&me.name) {
                if og.id == group && other.folder == new.folder {
                    continue; // the membership being replaced
                }
                if same_name(&other.share, &new.share) {
                    return Err(ConfigError::ShareTaken {
                        share: new.share.clone(),
                        group: og.name.clone(),
                        folder: og.folder_name(&other.folder).into(),
                    });
                }
                let Some((other_path, _)) = shares.share(&other.share) else { continue };
                let (a, b) = (norm(&path), norm(&other_path));
                if a.starts_with(&b) || b.starts_with(&a) {
                    return Err(ConfigError::NestedShare(Box::new(NestedShare {
                        share: new.share.clone(),
                        path,
                        other: other.share.clone(),
                        other_path,
                        group: og.name.clone(),
                        folder: og.folder_name(&other.folder).into(),
                    })));
                }
            }
        }
        Ok(())
    }

    /// Whether this server, member `me`, serves the connection a partner
    /// asks for in EstablishConnection (§3.2.4.1.2): the connection must
    /// be configured in that replication group, from us, and enabled.
    /// A server with no replication group at all serves any (what
    /// `dfsrctl sync` pulls from before a configuration exists).
    pub fn check_served_connection(&self, replica_set: &Guid, connection: &Guid, me: &str) -> Result<(), String> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let g = self
            .groups
            .iter()
            .find(|g| g.id == *replica_set)
            .ok_or_else(|| format!("no replication group {replica_set} is configured here"))?;
        let c = g
            .connections
            .iter()
            .find(|c| c.id == *connection)
            .ok_or_else(|| format!("replication group {:?} has no connection {connection}", g.name))?;
        let from = g.member_name(&c.from);
        if !same_name(from, me) {
            return Err(format!("connection {connection} of {:?} pulls from {from:?}, not from this member ({me})", g.name));
        }
        if !c.enabled {
            return Err(format!("connection {from} -> {} of {:?} is disabled", g.member_name(&c.to), g.name));
        }
        Ok(())
    }

    /// `remove group`.
    pub fn remove_group(&mut self, name: &str) -> Result<Group, ConfigError> {
        let i = self.groups.iter().position(|g| same_name(&g.name, name)).ok_or_else(|| ConfigError::NoGroup(name.into()))?;
        Ok(self.groups.remove(i))
    }

    /// `remove folder`: with its memberships.
    pub fn remove_folder(&mut self, group: &str, name: &str) -> Result<(), ConfigError> {
        let g = self.group_mut(group)?;
        let id = g.folder(name)?.id;
        g.folders.retain(|f| f.id != id);
        g.memberships.retain(|m| m.folder != id);
        Ok(())
    }

    /// `remove member`: with its connections and memberships.
    pub fn remove_member(&mut self, group: &str, name: &str) -> Result<(), ConfigError> {
        let g = self.group_mut(group)?;
        let id = g.member(name)?.id;
        g.members.retain(|m| m.id != id);
        g.connections.retain(|c| c.from != id && c.to != id);
        g.memberships.retain(|m| m.member != id);
        Ok(())
    }

    /// `remove connection`.
    pub fn remove_connection(&mut self, group: &str, from: &str, to: &str) -> Result<(), ConfigError> {
        let g = self.group_mut(group)?;
        let i = g.connection_index(from, to)?;
        g.connections.remove(i);
        Ok(())
    }

    /// `remove membership`.
    pub fn remove_membership(&mut self, group: &str, folder: &str, member: &str) -> Result<(), ConfigError> {
        let g = self.group_mut(group)?;
        let (fid, mid) = (g.folder(folder)?.id, g.member(member)?.id);
        let before = g.memberships.len();
        g.memberships.retain(|m| !(m.folder == fid && m.member == mid));
        if g.memberships.len() == before {
            return Err(ConfigError::NoMembership { group: g.name.clone(), folder: folder.into(), member: member.into() });
        }
        Ok(())
    }

    /// `import`: the group of another member's `export`, GUIDs kept. A
    /// group with the same GUID is replaced (an admin re-imports after
    /// changing it elsewhere); another group with its name, or a GUID in
    /// use by another group, is refused. This server's memberships in it
    /// are checked like `membership set`.
    pub fn import_group(&mut self, group: Group, local: Option<(&str, &dyn ShareLookup)>) -> Result<(), ConfigError> {
        validate_group(&group)?;
        let mut rest = self.clone();
        rest.groups.retain(|g| g.id != group.id);
        if rest.group(&group.name).is_ok() {
            return Err(ConfigError::Duplicate {
                what: "replication group",
                name: group.name.clone(),
                within: " (with another GUID)".into(),
            });
        }
        for (id, _, _) in group.ids() {
            rest.check_id_free(&id)?;
        }
        if let Some((me, shares)) = local {
            let mut check = rest.clone();
            check.groups.push(Group { memberships: vec![], ..group.clone() });
            for m in &group.memberships {
                if group.member_by_id(&m.member).is_some_and(|x| same_name(&x.name, me)) {
                    check.check_local_share(m, group.id, shares)?;
                    check.groups.last_mut().expect("pushed").memberships.push(m.clone());
                }
            }
        }
        rest.groups.push(group);
        *self = rest;
        Ok(())
    }
}

/// A document's group is whole: names valid and unique, references to
/// existing members and folders, at most one primary per folder.
fn validate_group(g: &Group) -> Result<(), ConfigError> {
    check_name("replication group", &g.name)?;
    let mut ids: Vec<Guid> = Vec::new();
    let mut unique = |id: Guid, what: &'static str, name: &str| {
        if ids.contains(&id) {
            return Err(ConfigError::DuplicateId { id, what, name: name.into() });
        }
        ids.push(id);
        Ok(())
    };
    unique(g.id, "replication group", &g.name)?;
    for (i, f) in g.folders.iter().enumerate() {
        check_name("folder", &f.name)?;
        unique(f.id, "folder", &f.name)?;
        if g.folders[..i].iter().any(|o| same_name(&o.name, &f.name)) {
            return Err(ConfigError::Duplicate { what: "folder", name: f.name.clone(), within: format!(" in {:?}", g.name) });
        }
    }
    for (i, m) in g.members.iter().enumerate() {
        check_name("member", &m.name)?;
        unique(m.id, "member", &m.name)?;
        if g.members[..i].iter().any(|o| same_name(&o.name, &m.name)) {
            return Err(ConfigError::Duplicate { what: "member", name: m.name.clone(), within: format!(" in {:?}", g.name) });
        }
    }
    for (i, c) in g.connections.iter().enumerate() {
        unique(c.id, "connection", "")?;
        let (Some(f), Some(t)) = (g.member_by_id(&c.from), g.member_by_id(&c.to)) else {
            return Err(ConfigError::Document(format!("connection {} names a member that is not in the group", c.id)));
        };
        if c.from == c.to {
            return Err(ConfigError::SelfConnection(f.name.clone()));
        }
        if g.connections[..i].iter().any(|o| o.from == c.from && o.to == c.to) {
            return Err(ConfigError::Duplicate {
                what: "connection",
                name: format!("{} -> {}", f.name, t.name),
                within: format!(" in {:?}", g.name),
            });
        }
    }
    for (i, m) in g.memberships.iter().enumerate() {
        if g.folder_by_id(&m.folder).is_none() || g.member_by_id(&m.member).is_none() {
            return Err(ConfigError::Document("a membership names a folder or member that is not in the group".into()));
        }
        if g.memberships[..i].iter().any(|o| o.folder == m.folder && o.member == m.member) {
            return Err(ConfigError::Document(format!(
                "two memberships of {:?} in folder {:?}",
                g.member_name(&m.member),
                g.folder_name(&m.folder)
            )));
        }
        if m.primary {
            if let Some(p) = g.memberships[..i].iter().find(|o| o.folder == m.folder && o.primary) {
                return Err(ConfigError::SecondPrimary {
                    group: g.name.clone(),
                    folder: g.folder_name(&m.folder).into(),
                    primary: g.member_name(&p.member).into(),
                });
            }
        }
    }
    Ok(())
}

// ---- JSON: the export document and the store's record ----

use serde_json::{json, Map, Value};

/// The export format's version (`"format"` in the document).
pub const DOCUMENT_FORMAT: u64 = 1;

impl Group {
    /// The group as JSON: GUIDs and names; connections and memberships
    /// name their members and folders (by name: readable, and unique in
    /// a group).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "name": self.name,
            "folders": self.folders.iter().map(|f| json!({"id": f.id.to_string(), "name": f.name})).collect::<Vec<_>>(),
            "members": self.members.iter().map(|m| json!({
                "id": m.id.to_string(), "name": m.name, "address": m.address.to_string()})).collect::<Vec<_>>(),
            "connections": self.connections.iter().map(|c| json!({
                "id": c.id.to_string(), "from": self.member_name(&c.from), "to": self.member_name(&c.to),
                "enabled": c.enabled})).collect::<Vec<_>>(),
            "memberships": self.memberships.iter().map(|m| json!({
                "folder": self.folder_name(&m.folder), "member": self.member_name(&m.member),
                "share": m.share, "primary": m.primary, "read_only": m.read_only})).collect::<Vec<_>>(),
        })
    }

    /// Reads [`Group::to_json`]'s form back; every field is checked.
    pub fn from_json(v: &Value) -> Result<Group, ConfigError> {
        let o = obj(v, "group")?;
        let mut g = Group {
            id: guid(o, "id", "group")?,
            name: text(o, "name", "group")?.to_string(),
            folders: vec![],
            members: vec![],
            connections: vec![],
            memberships: vec![],
        };
        for f in array(o, "folders")? {
            let f = obj(f, "folder")?;
            g.folders.push(Folder { id: guid(f, "id", "folder")?, name: text(f, "name", "folder")?.into() });
        }
        for m in array(o, "members")? {
            let m = obj(m, "member")?;
            g.members.push(Member {
                id: guid(m, "id", "member")?,
                name: text(m, "name", "member")?.into(),
                address: Address::parse(text(m, "address", "member")?)?,
            });
        }
        let member_id = |g: &Group, name: &str| {
            g.member(name).map(|m| m.id).map_err(|_| ConfigError::Document(format!("no member {name:?} in the group")))
        };
        for c in array(o, "connections")? {
            let c = obj(c, "connection")?;
            let (from, to) = (member_id(&g, text(c, "from", "connection")?)?, member_id(&g, text(c, "to", "connection")?)?);
            g.connections.push(Connection { id: guid(c, "id", "connection")?, from, to, enabled: flag(c, "enabled", "connection")? });
        }
        for m in array(o, "memberships")? {
            let m = obj(m, "membership")?;
            let folder_name = text(m, "folder", "membership")?;
            let folder = g
                .folder(folder_name)
                .map(|f| f.id)
                .map_err(|_| ConfigError::Document(format!("no folder {folder_name:?} in the group")))?;
            g.memberships.push(Membership {
                folder,
                member: member_id(&g, text(m, "member", "membership")?)?,
                share: text(m, "share", "membership")?.into(),
                primary: flag(m, "primary", "membership")?,
                read_only: flag(m, "read_only", "membership")?,
            });
        }
        validate_group(&g)?;
        Ok(g)
    }

    /// The `export` document.
    pub fn export_document(&self) -> Value {
        json!({"format": DOCUMENT_FORMAT, "kind": "samba-dfsr replication group", "group": self.to_json()})
    }

    /// Reads an `export` document.
    pub fn from_document(text: &str) -> Result<Group, ConfigError> {
        let v: Value = serde_json::from_str(text).map_err(|e| ConfigError::Document(e.to_string()))?;
        let o = obj(&v, "document")?;
        match o.get("format").and_then(Value::as_u64) {
            Some(DOCUMENT_FORMAT) => {}
            other => return Err(ConfigError::Document(format!("format {other:?} is not {DOCUMENT_FORMAT}"))),
        }
        Group::from_json(o.get("group").ok_or_else(|| ConfigError::Document("no \"group\"".into()))?)
    }
}

impl ReplicationConfig {
    pub fn to_json(&self) -> Value {
        json!({"groups": self.groups.iter().map(Group::to_json).collect::<Vec<_>>()})
    }

    pub fn from_json(v: &Value) -> Result<ReplicationConfig, ConfigError> {
        let o = obj(v, "configuration")?;
        let mut c = ReplicationConfig::default();
        for g in array(o, "groups")? {
            let g = Group::from_json(g)?;
            c.import_group(g, None)?;
        }
        Ok(c)
    }
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| ConfigError::Document(format!("the {what} is not an object")))
}

fn text<'a>(o: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, ConfigError> {
    o.get(key).and_then(Value::as_str).ok_or_else(|| ConfigError::Document(format!("the {what} has no string {key:?}")))
}

fn flag(o: &Map<String, Value>, key: &str, what: &str) -> Result<bool, ConfigError> {
    o.get(key).and_then(Value::as_bool).ok_or_else(|| ConfigError::Document(format!("the {what} has no boolean {key:?}")))
}

fn guid(o: &Map<String, Value>, key: &str, what: &str) -> Result<Guid, ConfigError> {
    let t = text(o, key, what)?;
    t.parse().map_err(|_| ConfigError::Document(format!("the {what}'s {key} {t:?} is not a GUID")))
}

fn array<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, ConfigError> {
    o.get(key).and_then(Value::as_array).ok_or_else(|| ConfigError::Document(format!("no array {key:?}")))
}

#[cfg(test)]
mod tests;
