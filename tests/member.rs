//! Two DFS-R members, each its own host: a network namespace with its own
//! address, its own smbd (port 445) and dfsrd (port 5722). Configured with
//! `dfsrctl replication` on FS1 and `import` on FS2; a tree written
//! through smbclient on FS1 must arrive on FS2 exact — data, streams, the
//! NT ACL, DOS attributes, create and write times, compared on disk and as
//! smbd shows them — and edits, renames, moves and deletes made on FS2
//! must arrive on FS1.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, TestDir, PASSWORD, USER};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {}", args.join(" "));
}

/// Two network namespaces joined by one veth pair: 10.N.0.1 and 10.N.0.2.
struct Pair {
    ns: [String; 2],
    addr: [String; 2],
}

impl Pair {
    fn new(net: u32) -> Pair {
        let tag = std::process::id() % 100_000;
        let ns = [format!("dfsr{tag}m{net}a"), format!("dfsr{tag}m{net}b")];
        let addr = [format!("10.{net}.0.1"), format!("10.{net}.0.2")];
        let veth = [format!("dm{tag}{net}a"), format!("dm{tag}{net}b")];
        for n in &ns {
            ip(&["netns", "add", n]);
            ip(&["netns", "exec", n, "ip", "link", "set", "lo", "up"]);
        }
        ip(&["link", "add", &veth[0], "netns", &ns[0], "type", "veth", "peer", "name", &veth[1], "netns", &ns[1]]);
        for i in 0..2 {
            ip(&["netns", "exec", &ns[i], "ip", "addr", "add", &format!("{}/24", addr[i]), "dev", &veth[i]]);
            ip(&["netns", "exec", &ns[i], "ip", "link", "set", &veth[i], "up"]);
        }
        Pair { ns, addr }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// One member: its smbd and dfsrd in its namespace.
struct Member {
    ns: String,
    addr: String,
    smbd: Smbd,
    _dfsrd: Dfsrd,
}

impl Member {
    fn start(ns: &str, addr: &str, name: &str, creds_dir: &Path) -> Member {
        let creds = creds_dir.join(format!("{name}.creds"));
        std::fs::write(&creds, format!("username = {USER}\npassword = {PASSWORD}\ndomain = DFSRTEST\n")).unwrap();
        std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let smbd = Smbd::start(SmbdConfig {
            netns: Some((ns.to_string(), addr.to_string())),
            log_level: "4".into(),
            global_extra: vec![
                format!("dfsr:member name = {name}"),
                format!("dfsr:partner credentials = {}", creds.display()),
                "dfsr:poll interval = 1".into(),
                "dfsr:scan interval = 1".into(),
            ],
            ..Default::default()
        });
        let _dfsrd = Dfsrd::start_in(&smbd.conf, Some(ns));
        Member { ns: ns.into(), addr: addr.into(), smbd, _dfsrd }
    }

    fn ctl(&self, args: &[&str]) -> String {
        let out = dfsrctl(&self.smbd.conf, args);
        assert!(out.status.success(), "dfsrctl {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    fn in_ns(&self, prog: &str, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.ns, prog]).args(args).output().expect("running in the namespace")
    }

    /// smbclient on `[data]` of this member, as the test user.
    fn smbclient(&self, commands: &str) -> String {
        let out = self.in_ns("smbclient", &[&format!("//{}/data", self.addr), "-U", &format!("{USER}%{PASSWORD}"), "-c", commands]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success() && !all.contains("NT_STATUS_"), "smbclient {commands:?}: {all}");
        all
    }

    fn smbcacls(&self, path: &str, args: &[&str]) -> String {
        let mut a = vec![format!("//{}/data", self.addr), path.to_string(), "-U".into(), format!("{USER}%{PASSWORD}"), "--numeric".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = self.in_ns("smbcacls", &a);
        assert!(out.status.success(), "smbcacls {a:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    fn share(&self) -> PathBuf {
        self.smbd.share_path("data")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file's data (None for a directory) and its compared xattrs.
type DiskEntry = (Option<Vec<u8>>, BTreeMap<String, Vec<u8>>);

/// Every file under `root` (not DfsrPrivate) with what must match on two
/// members: its data, its alternate streams and DOS attribute xattrs as
/// stored on disk.
fn disk_tree(root: &Path) -> BTreeMap<String, DiskEntry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap().flatten() {
            let r = rel.join(e.file_name());
            let name = r.to_string_lossy().into_owned();
            if name == "DfsrPrivate" {
                continue;
            }
            let md = e.metadata().unwrap();
            let data = if md.is_dir() {
                stack.push(r.clone());
                None
            } else {
                Some(std::fs::read(e.path()).unwrap())
            };
            out.insert(name, (data, streams_on_disk(&e.path())));
        }
    }
    out
}

/// The xattrs that must be equal on two members: the streams
/// (`user.DosStream.*`, streams_xattr), `user.DOSATTRIB` (attributes and
/// create time) and the security descriptor inside `security.NTACL`
/// (acl_xattr; its hashes and timestamp are each server's own).
fn streams_on_disk(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = Command::new("getfattr").args(["--absolute-names", "-d", "-m", "-", "-e", "hex"]).arg(path).output().unwrap();
    let mut m = BTreeMap::new();
    for (k, v) in text(&out.stdout).lines().filter_map(|l| l.split_once('=')) {
        let bytes = hex(v.trim_start_matches("0x"));
        if k.starts_with("user.DosStream.") || k == "user.DOSATTRIB" {
            m.insert(k.to_string(), bytes);
        } else if k == "security.NTACL" {
            m.insert(k.to_string(), ntacl_sd(&bytes).unwrap_or_else(|| panic!("{}: an NTACL without an SD", path.display())).to_vec());
        }
    }
    m
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// The security descriptor of an NTACL v4 blob: after the description
/// "posix_acl", the time (8 bytes) and the POSIX ACL hash (64 bytes).
fn ntacl_sd(blob: &[u8]) -> Option<&[u8]> {
    let at = blob.windows(10).position(|w| w == b"posix_acl\0")?;
    blob.get(at + 10 + 8 + 64..)
}

/// What smbd shows of a file: attributes, create and write times, streams
/// (smbclient allinfo), and its security descriptor (smbcacls).
fn shown(m: &Member, path: &str) -> String {
    let info = m.smbclient(&format!("allinfo \"{path}\""));
    let keep: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("create_time:") || l.starts_with("write_time:") || l.starts_with("attributes:") || l.starts_with("stream:"))
        .collect();
    format!("{}\n{}", keep.join("\n"), m.smbcacls(path, &[]))
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool, on_timeout: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {secs} s: {}", on_timeout());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn two_members_replicate_a_tree_both_ways_exactly() {
    let pair = Pair::new(91);
    let dir = TestDir::new("member");
    let a = Member::start(&pair.ns[0], &pair.addr[0], "FS1", &dir.0);
    let b = Member::start(&pair.ns[1], &pair.addr[1], "FS2", &dir.0);

    // The configuration, made on FS1 and imported on FS2.
    a.ctl(&["replication", "group", "add", "Sales"]);
    a.ctl(&["replication", "folder", "add", "Sales", "Docs"]);
    a.ctl(&["replication", "member", "add", "Sales", "FS1", "--address", &a.addr]);
    a.ctl(&["replication", "member", "add", "Sales", "FS2", "--address", &b.addr]);
    a.ctl(&["replication", "connection", "add", "Sales", "--from", "FS1", "--to", "FS2"]);
    a.ctl(&["replication", "connection", "add", "Sales", "--from", "FS2", "--to", "FS1"]);
    a.ctl(&["replication", "membership", "set", "Sales", "Docs", "FS1", "--share", "data", "--primary"]);
    a.ctl(&["replication", "membership", "set", "Sales", "Docs", "FS2", "--share", "data"]);
    let doc = dir.0.join("sales.json");
    a.ctl(&["replication", "export", "Sales", doc.to_str().unwrap()]);
    b.ctl(&["replication", "import", doc.to_str().unwrap()]);

    // The two standalone servers have their own local SIDs, so the
    // replicated owner is unknown on FS2: what lets FS2's user edit is an
    // ACE both know, as a group of the domain would be. The share root is
    // not replicated; the files inherit from it on FS1.
    a.smbcacls("\\", &["-a", "ACL:S-1-1-0:ALLOWED/OI|CI/FULL"]);

    // A tree written through smbclient on FS1.
    let src = dir.0.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut cmds = vec!["mkdir top".to_string(), "mkdir top\\mid".into(), "mkdir top\\mid\\deep".into()];
    for i in 0..60 {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, format!("file {i} ").repeat(i * 37 + 1)).unwrap();
        let at = ["top", "top\\mid", "top\\mid\\deep"][i % 3];
        cmds.push(format!("put {} {at}\\f{i}.txt", f.display()));
    }
    let big = src.join("big");
    let chunk: Vec<u8> = (0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&big, chunk.repeat(5)).unwrap();
    cmds.push(format!("put {} big.bin", big.display()));
    let s1 = src.join("s1");
    std::fs::write(&s1, b"first stream").unwrap();
    let s2 = src.join("s2");
    std::fs::write(&s2, b"second stream, longer").unwrap();
    cmds.push(format!("put {} streams.txt", s1.display()));
    cmds.push(format!("put {} streams.txt:one", s1.display()));
    cmds.push(format!("put {} streams.txt:two", s2.display()));
    cmds.push(format!("put {} hidden.txt", s1.display()));
    cmds.push("setmode hidden.txt +hr".into());
    cmds.push(format!("put {} dated.txt", s2.display()));
    // create, access, write, change
    cmds.push("utimes dated.txt 2001:02:03-04:05:06 2002:02:03-04:05:06 2003:02:03-04:05:06 2004:02:03-04:05:06".into());
    a.smbclient(&cmds.join("; "));
    a.smbcacls("top\\mid\\f1.txt", &["-a", "ACL:S-1-5-21-1-2-3-1001:ALLOWED/0x0/FULL"]);

    let want = ["top/mid/deep/f2.txt", "big.bin", "streams.txt", "hidden.txt", "dated.txt", "top/mid/f1.txt"];
    wait_for(
        "the tree on FS2",
        120,
        || disk_tree(&a.share()) == disk_tree(&b.share()) && disk_tree(&b.share()).len() == 3 + 60 + 4,
        || {
            format!(
                "FS1 has {} entries, FS2 {}; FS2 status: {}",
                disk_tree(&a.share()).len(),
                disk_tree(&b.share()).len(),
                b.ctl(&["replication", "status"])
            )
        },
    );
    for path in want.iter().chain(["top", "top/mid"].iter()) {
        let p = path.replace('/', "\\");
        assert_eq!(shown(&a, &p), shown(&b, &p), "{path}: not the same on both");
    }
    assert!(shown(&b, "top\\mid\\f1.txt").contains("S-1-5-21-1-2-3-1001"), "the ACL did not travel");
    assert!(shown(&b, "hidden.txt").contains("attributes: RHA") || shown(&b, "hidden.txt").contains("HR"), "{}", shown(&b, "hidden.txt"));
    assert!(shown(&b, "dated.txt").contains("2003"), "{}", shown(&b, "dated.txt"));

    // Edits on FS2 travel back: a write, a rename, a move, a delete.
    let edit = src.join("edit");
    std::fs::write(&edit, b"edited on FS2").unwrap();
    b.smbclient(&format!(
        "put {} top\\f0.txt; rename top\\f3.txt top\\renamed.txt; rename top\\mid\\f4.txt top\\mid\\deep\\moved.txt; del top\\mid\\deep\\f5.txt",
        edit.display()
    ));
    wait_for(
        "FS2's edits on FS1",
        60,
        || {
            let t = disk_tree(&a.share());
            t.get("top/f0.txt").and_then(|e| e.0.clone()).as_deref() == Some(&b"edited on FS2"[..])
                && t.contains_key("top/renamed.txt")
                && !t.contains_key("top/f3.txt")
                && t.contains_key("top/mid/deep/moved.txt")
                && !t.contains_key("top/mid/f4.txt")
                && !t.contains_key("top/mid/deep/f5.txt")
        },
        || format!("FS1 status: {}", a.ctl(&["replication", "status"])),
    );
    wait_for("both the same", 30, || disk_tree(&a.share()) == disk_tree(&b.share()), String::new);

}
