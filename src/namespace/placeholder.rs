//! The `msdfs:` placeholder symlinks smbd needs beside our table: its path
//! walk only notices a link through such a symlink (PATH_NOT_COVERED, the
//! reparse-point listing), and Samba's NetDfs server reads them. Pure: what
//! each placeholder should hold; dfsrctl writes them.

use super::table::{Node, Table};

/// One link's placeholder: `<root share path>/<rel_path…>` → `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub root: String,
    pub rel_path: Vec<String>,
    /// Symlink text in Samba's format: `msdfs:host\share[\sub],host2\share2`.
    pub target: String,
}

/// Samba's `msdfs:` text for a node's targets (all of them: NetDfs lists
/// offline ones too; referrals come from our table, not from this text).
pub fn msdfs_text(node: &Node) -> String {
    let list: Vec<String> = node.targets.iter().map(|t| t.unc.components().join("\\")).collect();
    format!("msdfs:{}", list.join(","))
}

/// Every link's placeholder in the table.
pub fn placeholders(table: &Table) -> Vec<Placeholder> {
    let mut out = Vec::new();
    for root in table.roots() {
        for link in &root.links {
            out.push(Placeholder { root: root.name.clone(), rel_path: link.path.clone(), target: msdfs_text(&link.node) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_follows_samba_format() {
        let mut t = Table::new();
        t.add_root("ns").unwrap();
        t.add_link(r"ns\docs\link").unwrap();
        t.add_target_unc(r"ns\docs\link", r"\\fs1\docs").unwrap();
        t.add_target_unc(r"ns\docs\link", r"\\10.0.0.2\docs\sub").unwrap();
        let p = placeholders(&t);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].root, "ns");
        assert_eq!(p[0].rel_path, ["docs", "link"]);
        assert_eq!(p[0].target, r"msdfs:fs1\docs,10.0.0.2\docs\sub");
    }
}
