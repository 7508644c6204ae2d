//! What smbd's DFS hooks mean for our table (pure). Samba's NetDfs server
//! (rpcd_classic) and smbd's path walk go through `read_dfs_pathat`,
//! `create_dfs_pathat` and `unlinkat` of a link, on the namespace root's
//! share: the dfsr module answers them from the table and writes their
//! changes into it, so NetDfsAdd of a target, NetDfsRemove and a client
//! deleting a link all land in the table, not only in the `msdfs:`
//! placeholder.

use super::placeholder::msdfs_text;
use super::table::{Table, TableError, Unc};

/// The table path (`share\a\b`) of `rel` (smbd's `a/b`) in `share`.
fn table_path(share: &str, rel: &str) -> String {
    format!("{share}/{}", rel.trim_matches('/'))
}

/// A target as smbd's `struct referral` carries it (`host\share\sub`,
/// with or without leading backslashes) as a UNC.
fn target_unc(alternate_path: &str) -> Result<String, TableError> {
    let bare = alternate_path.trim_start_matches(['\\', '/']);
    Unc::parse(&format!("\\\\{bare}")).map(|u| u.to_string())
}

/// Whether `rel` in `share` is one of our links.
pub fn is_link(table: &Table, share: &str, rel: &str) -> bool {
    table.root(share).is_some() && rel.contains(|c| c != '/') && table.node(&table_path(share, rel)).is_ok()
}

/// The link's targets in Samba's `msdfs:` text and its TTL, for
/// `read_dfs_pathat`; None when `rel` is not one of our links.
pub fn link_text(table: &Table, share: &str, rel: &str) -> Option<(String, u32)> {
    if !is_link(table, share, rel) {
        return None;
    }
    let node = table.node(&table_path(share, rel)).ok()?;
    Some((msdfs_text(node), node.ttl))
}

/// What `set_targets` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `share` is not one of our roots: smbd's own handling applies.
    NotOurs,
    Unchanged,
    Updated,
}

/// `create_dfs_pathat`: the link's targets become `targets` (smbd's
/// alternate paths). Targets already there keep their state, priority and
/// site; new ones come online with default priority; missing ones go. A
/// link the root does not have yet is created. Empty entries are skipped:
/// NetDfsRemove blanks the one it removes. Nothing changes on error.
pub fn set_targets(table: &mut Table, share: &str, rel: &str, targets: &[&str]) -> Result<Change, TableError> {
    if table.root(share).is_none() {
        return Ok(Change::NotOurs);
    }
    let path = table_path(share, rel);
    let wanted = targets
        .iter()
        .filter(|t| !t.trim_matches(['\\', '/']).is_empty())
        .map(|t| target_unc(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut edited = table.clone();
    if !is_link(&edited, share, rel) {
        edited.add_link(&path)?;
    }
    let same = |a: &str, b: &str| super::table::eq_ci(a, b);
    let existing: Vec<String> = edited.node(&path)?.targets.iter().map(|t| t.unc.to_string()).collect();
    for old in &existing {
        if !wanted.iter().any(|w| same(w, old)) {
            edited.remove_target(&path, old)?;
        }
    }
    for new in &wanted {
        if !existing.iter().any(|o| same(o, new)) {
            edited.add_target_unc(&path, new)?;
        }
    }
    if edited == *table {
        return Ok(Change::Unchanged);
    }
    *table = edited;
    Ok(Change::Updated)
}

/// `unlinkat` of `rel`: when it is one of our links, the link goes.
/// Returns whether it was ours.
pub fn remove_link(table: &mut Table, share: &str, rel: &str) -> Result<bool, TableError> {
    if !is_link(table, share, rel) {
        return Ok(false);
    }
    table.remove_link(&table_path(share, rel))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::table::TargetState;

    fn table() -> Table {
        let mut t = Table::new();
        t.add_root("ns").unwrap();
        t.add_link(r"ns\docs\link").unwrap();
        t.add_target_unc(r"ns\docs\link", r"\\fs1\docs").unwrap();
        t.add_target_unc(r"ns\docs\link", r"\\10.0.0.2\docs\sub").unwrap();
        t.set_target_state(r"ns\docs\link", r"\\10.0.0.2\docs\sub", TargetState::Offline).unwrap();
        t
    }

    #[test]
    fn links_are_found_case_insensitively_and_only_ours() {
        let t = table();
        assert_eq!(link_text(&t, "NS", "Docs/LINK"), Some((r"msdfs:fs1\docs,10.0.0.2\docs\sub".into(), 1800)));
        assert_eq!(link_text(&t, "ns", "docs"), None);
        assert_eq!(link_text(&t, "other", "docs/link"), None);
        assert_eq!(link_text(&t, "ns", ""), None);
    }

    #[test]
    fn netdfs_add_and_remove_keep_what_the_table_knows() {
        let mut t = table();
        // NetDfsAdd: smbd hands the old list (as read) plus the new one.
        let c = set_targets(&mut t, "ns", "docs/link", &[r"\fs1\docs", r"\10.0.0.2\docs\sub", r"10.5.5.5\two"]).unwrap();
        assert_eq!(c, Change::Updated);
        let n = t.node(r"ns\docs\link").unwrap();
        assert_eq!(n.targets.len(), 3);
        assert_eq!(n.targets[1].state, TargetState::Offline, "kept its state");
        assert_eq!(n.targets[2].unc.to_string(), r"\\10.5.5.5\two");
        // The same list again changes nothing.
        let c = set_targets(&mut t, "ns", "docs/link", &[r"fs1\docs", r"10.0.0.2\docs\sub", r"10.5.5.5\two"]).unwrap();
        assert_eq!(c, Change::Unchanged);
        // NetDfsRemove of one target: smbd blanks it in the list.
        set_targets(&mut t, "ns", "docs/link", &[r"\fs1\docs", "", r"\10.5.5.5\two"]).unwrap();
        let n = t.node(r"ns\docs\link").unwrap();
        assert_eq!(n.targets.iter().map(|t| t.unc.to_string()).collect::<Vec<_>>(), [r"\\fs1\docs", r"\\10.5.5.5\two"]);
        // The last one: smbd unlinks the placeholder.
        assert!(remove_link(&mut t, "ns", "docs/link").unwrap());
        assert!(t.node(r"ns\docs\link").is_err());
        assert!(!remove_link(&mut t, "ns", "docs/link").unwrap());
    }

    #[test]
    fn new_links_and_foreign_shares() {
        let mut t = table();
        assert_eq!(set_targets(&mut t, "ns", "new", &[r"h\s"]).unwrap(), Change::Updated);
        assert_eq!(t.node(r"ns\new").unwrap().targets.len(), 1);
        let before = t.clone();
        assert_eq!(set_targets(&mut t, "other", "x", &[r"h\s"]).unwrap(), Change::NotOurs);
        // A bad target changes nothing.
        assert!(set_targets(&mut t, "ns", "docs/link", &[r"h\s", "nohost"]).is_err());
        assert_eq!(t, before);
    }
}
