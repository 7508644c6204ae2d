//! The Debian packages `setup` installs are the ones the README's
//! Requirements table lists, and each is installed (issue 12: a package
//! this machine had from earlier work hid a missing one from CI).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names in `setup`'s `packages=( ... )` array, comments dropped.
fn setup_packages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest().join("setup")).expect("read setup");
    let start = text.find("packages=(").expect("setup has a packages=( array") + "packages=(".len();
    let end = start + text[start..].find("\n)").expect("the packages array ends with a line ')'");
    text[start..end]
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .map(str::to_owned)
        .collect()
}

/// The backticked names in the first column of the README's package table
/// (the table under "### Debian packages").
fn readme_packages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest().join("README.md")).expect("read README.md");
    let start = text.find("### Debian packages").expect("README has a Debian packages section");
    let mut names = BTreeSet::new();
    for line in text[start..].lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let first = line.split('|').nth(1).unwrap_or("");
        let mut parts = first.split('`');
        parts.next();
        while let (Some(name), _) = (parts.next(), parts.next()) {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn readme_table_names_exactly_the_packages_setup_installs() {
    let setup = setup_packages();
    let readme = readme_packages();
    assert!(setup.contains("samba-vfs-modules") && setup.contains("attr"), "setup: {setup:?}");
    let only_setup: Vec<_> = setup.difference(&readme).collect();
    let only_readme: Vec<_> = readme.difference(&setup).collect();
    assert!(
        only_setup.is_empty() && only_readme.is_empty(),
        "in setup but not in the README's table: {only_setup:?}; in the README but not in setup: {only_readme:?}"
    );
}

#[test]
fn every_setup_package_is_installed() {
    let missing: Vec<String> = setup_packages()
        .into_iter()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output().expect("run dpkg-query");
            !String::from_utf8_lossy(&out.stdout).contains("install ok installed")
        })
        .collect();
    assert!(missing.is_empty(), "not installed (run ./setup): {missing:?}");
}
