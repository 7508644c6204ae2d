//! The pure layers stay pure (README "Layout"; issue 13): no non-test code
//! of `src/engine`, `src/wire` or `src/staging` opens files, sockets or
//! threads or reads a clock. Time and bytes come from the caller; the edges
//! (`store`, `net`, `meet`, `member`) do the I/O.

use std::fs;
use std::path::{Path, PathBuf};

const PURE: &[&str] = &["src/engine", "src/wire", "src/staging"];

/// What I/O or a clock looks like in Rust source.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "SystemTime::now",
    "Instant::now",
    "File::open",
    "File::create",
    "OpenOptions",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "/dev/urandom",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `text` without the items under `#[cfg(test)]` (a `mod tests { … }` or
/// `mod tests;`), found by matching braces from the attribute on. Files
/// named `tests.rs` are test code as a whole.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        // Test code is dropped but its lines are kept, so line numbers stay
        // the file's.
        let item = &rest[at..];
        // The item ends at `;` (before any brace) or at the brace that
        // closes its first `{`.
        let semi = item.find(';');
        let open = item.find('{');
        let end = match (semi, open) {
            (Some(s), Some(o)) if s < o => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(o)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[o..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        out.extend(std::iter::repeat('\n').take(item[..end].matches('\n').count()));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every `path:line: pattern` of non-test code under `dirs` containing
/// one of `forbidden`.
fn violations(root: &Path, dirs: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for d in dirs {
        rust_files(&root.join(d), &mut files);
    }
    files.sort();
    let mut found = Vec::new();
    for f in files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in non_test_code(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in forbidden {
                if code.contains(pat) {
                    found.push(format!("{}:{}: {pat}: {}", f.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn engine_wire_and_staging_do_no_io_and_read_no_clock() {
    let found = violations(Path::new(env!("CARGO_MANIFEST_DIR")), PURE, FORBIDDEN);
    assert!(found.is_empty(), "I/O or a clock in a pure layer:\n{}", found.join("\n"));
}

/// `net` is an edge (issue 13): sockets and threads around the wire; what
/// the calls answer comes through its own seam (`net::rpc_service`), so it
/// uses neither the application (`member`) nor the database (`store`).
#[test]
fn net_does_not_use_the_member_or_the_store() {
    let found = violations(Path::new(env!("CARGO_MANIFEST_DIR")), &["src/net"], &["crate::member", "crate::store"]);
    assert!(found.is_empty(), "the net edge depends on the application:\n{}", found.join("\n"));
}

/// The guard itself: it sees forbidden code outside test modules and
/// ignores it inside them.
#[test]
fn the_guard_finds_io_outside_tests_only() {
    let code = "use std::fs::File;\nfn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { let _ = std::time::Instant::now(); { } }\n}\nfn h() { std::thread::spawn(|| {}); }\n";
    let kept = non_test_code(code);
    assert!(kept.contains("std::fs") && kept.contains("std::thread") && !kept.contains("Instant::now"), "{kept}");
    assert_eq!(non_test_code("a\n#[cfg(test)]\nmod tests;\nb"), "a\n\n\nb");

    let dir = std::env::temp_dir().join(format!("samba-dfsr-layers-{}", std::process::id()));
    fs::create_dir_all(dir.join("src/engine")).unwrap();
    fs::write(dir.join("src/engine/x.rs"), code).unwrap();
    fs::write(dir.join("src/engine/tests.rs"), "use std::net::TcpStream;\n").unwrap();
    let found = violations(&dir, &["src/engine"], FORBIDDEN);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("src/engine/x.rs:1: std::fs"), "{found:?}");
}
