//! DFS-R members as hosts of their own: each a network namespace with its
//! own address on one bridge, its own smbd (port 445) and dfsrd (port
//! 5722), and the helpers that compare what they hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{dfsrctl, Dfsrd, Smbd, SmbdConfig, PASSWORD, USER};

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {}", args.join(" "));
}

/// `n` network namespaces on one bridge (in a namespace of its own):
/// addresses 10.NET.0.1 … 10.NET.0.n. Removed on drop.
pub struct Lab {
    pub ns: Vec<String>,
    pub addr: Vec<String>,
    switch: String,
}

impl Lab {
    pub fn new(net: u32, n: usize) -> Lab {
        let tag = std::process::id() % 100_000;
        let switch = format!("dfsr{tag}s{net}");
        ip(&["netns", "add", &switch]);
        ip(&["netns", "exec", &switch, "ip", "link", "add", "br0", "type", "bridge"]);
        ip(&["netns", "exec", &switch, "ip", "link", "set", "br0", "up"]);
        let mut lab = Lab { ns: Vec::new(), addr: Vec::new(), switch };
        for i in 0..n {
            let ns = format!("dfsr{tag}m{net}x{i}");
            let addr = format!("10.{net}.0.{}", i + 1);
            let (inner, outer) = (format!("dm{tag}x{i}"), format!("ds{tag}x{i}"));
            ip(&["netns", "add", &ns]);
            lab.ns.push(ns.clone());
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            ip(&["link", "add", &inner, "netns", &ns, "type", "veth", "peer", "name", &outer, "netns", &lab.switch]);
            ip(&["netns", "exec", &lab.switch, "ip", "link", "set", &outer, "master", "br0"]);
            ip(&["netns", "exec", &lab.switch, "ip", "link", "set", &outer, "up"]);
            ip(&["netns", "exec", &ns, "ip", "addr", "add", &format!("{addr}/24"), "dev", &inner]);
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"]);
            lab.addr.push(addr);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in self.ns.iter().chain(std::iter::once(&self.switch)) {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// One member: its smbd and dfsrd in its namespace, `[data]` its share.
pub struct Member {
    pub name: String,
    pub ns: String,
    pub addr: String,
    pub smbd: Smbd,
    pub dfsrd: Option<Dfsrd>,
}

impl Member {
    /// Starts smbd and dfsrd as member `name`, polling and scanning every
    /// second, with an account file for its partners in `creds_dir`.
    pub fn start(lab: &Lab, i: usize, name: &str, creds_dir: &Path, extra: &[String]) -> Member {
        let creds = creds_dir.join(format!("{name}.creds"));
        std::fs::write(&creds, format!("username = {USER}\npassword = {PASSWORD}\ndomain = DFSRTEST\n")).unwrap();
        std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut global = vec![
            format!("dfsr:member name = {name}"),
            format!("dfsr:partner credentials = {}", creds.display()),
            "dfsr:poll interval = 1".into(),
            "dfsr:scan interval = 1".into(),
        ];
        global.extend(extra.iter().cloned());
        let smbd = Smbd::start(SmbdConfig {
            netns: Some((lab.ns[i].clone(), lab.addr[i].clone())),
            log_level: "3".into(),
            global_extra: global,
            ..Default::default()
        });
        let dfsrd = Some(Dfsrd::start_in(&smbd.conf, Some(&lab.ns[i])));
        Member { name: name.into(), ns: lab.ns[i].clone(), addr: lab.addr[i].clone(), smbd, dfsrd }
    }

    /// Starts dfsrd again (after a stop or a kill).
    pub fn start_dfsrd(&mut self) {
        self.dfsrd = Some(Dfsrd::start_in(&self.smbd.conf, Some(&self.ns)));
    }

    /// dfsrctl on this member's smb.conf; panics unless it succeeds.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = dfsrctl(&self.smbd.conf, args);
        assert!(out.status.success(), "dfsrctl {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    pub fn in_ns(&self, prog: &str, args: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.ns, prog]).args(args).output().expect("running in the namespace")
    }

    /// smbclient on `[data]`, as the test user; panics on any NT_STATUS.
    pub fn smbclient(&self, commands: &str) -> String {
        let out = self.smbclient_raw(commands);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success() && !all.contains("NT_STATUS_"), "smbclient {commands:?} on {}: {all}", self.name);
        all
    }

    pub fn smbclient_raw(&self, commands: &str) -> Output {
        self.in_ns("smbclient", &[&format!("//{}/data", self.addr), "-U", &format!("{USER}%{PASSWORD}"), "-c", commands])
    }

    pub fn smbcacls(&self, path: &str, args: &[&str]) -> String {
        let mut a = vec![format!("//{}/data", self.addr), path.to_string(), "-U".into(), format!("{USER}%{PASSWORD}"), "--numeric".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = self.in_ns("smbcacls", &a);
        assert!(out.status.success(), "smbcacls {a:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    pub fn share(&self) -> PathBuf {
        self.smbd.share_path("data")
    }

    pub fn status(&self) -> String {
        let out = dfsrctl(&self.smbd.conf, &["replication", "status"]);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// The member's own report (`member-status.json`).
    pub fn report(&self) -> serde_json::Value {
        let p = self.smbd.dir.0.join("state/dfsr/member-status.json");
        std::fs::read_to_string(p).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(serde_json::Value::Null)
    }

    /// The update records of this member's database (`dfsrctl db dump`):
    /// uid, gvsn, name, present, … as JSON.
    pub fn updates(&self) -> Vec<serde_json::Value> {
        self.ctl(&["--json", "db", "dump"])
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "update")
            .map(|v| v["value"].clone())
            .collect()
    }

    /// The UID of the live file or directory named `name` (any parent).
    pub fn uid_of(&self, name: &str) -> Option<String> {
        self.updates()
            .into_iter()
            .find(|u| u["name"] == name && u["present"] == true)
            .and_then(|u| u["uid"].as_str().map(String::from))
    }
}

/// The database GUID part of a "GUID:N" version or UID.
pub fn originator(v: &serde_json::Value) -> String {
    v.as_str().and_then(|s| s.split(':').next()).unwrap_or_default().to_string()
}

/// One replication group `Sales` with folder `Docs` in `[data]` on every
/// member, the first primary, those in `read_only` read-only, connections
/// `pairs` (from, to) by index; made on the first member and imported on
/// the others.
pub fn configure(members: &[&Member], pairs: &[(usize, usize)], read_only: &[usize], dir: &Path) {
    let a = members[0];
    a.ctl(&["replication", "group", "add", "Sales"]);
    a.ctl(&["replication", "folder", "add", "Sales", "Docs"]);
    for m in members {
        a.ctl(&["replication", "member", "add", "Sales", &m.name, "--address", &m.addr]);
    }
    for (f, t) in pairs {
        a.ctl(&["replication", "connection", "add", "Sales", "--from", &members[*f].name, "--to", &members[*t].name]);
    }
    for (i, m) in members.iter().enumerate() {
        let mut args = vec!["replication", "membership", "set", "Sales", "Docs", &m.name, "--share", "data"];
        if i == 0 {
            args.push("--primary");
        }
        if read_only.contains(&i) {
            args.push("--read-only");
        }
        a.ctl(&args);
    }
    let doc = dir.join("sales.json");
    a.ctl(&["replication", "export", "Sales", doc.to_str().unwrap()]);
    for m in &members[1..] {
        m.ctl(&["replication", "import", doc.to_str().unwrap()]);
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file's data (None for a directory) and its compared xattrs.
pub type DiskEntry = (Option<Vec<u8>>, BTreeMap<String, Vec<u8>>);

/// Every file under `root` (not DfsrPrivate) with what must match on two
/// members: its data, and the xattrs of [`compared_xattrs`].
pub fn disk_tree(root: &Path) -> BTreeMap<String, DiskEntry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else { continue };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let name = r.to_string_lossy().into_owned();
            if name == "DfsrPrivate" {
                continue;
            }
            let Ok(md) = e.metadata() else { continue };
            let data = if md.is_dir() {
                stack.push(r.clone());
                None
            } else {
                std::fs::read(e.path()).ok()
            };
            out.insert(name, (data, compared_xattrs(&e.path())));
        }
    }
    out
}

/// How many files and directories are under `root` (not DfsrPrivate):
/// a cheap look before [`disk_tree`].
pub fn count_entries(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if d == root && e.file_name() == "DfsrPrivate" {
                continue;
            }
            n += 1;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    n
}

/// The xattrs that must be equal on two members: the streams
/// (`user.DosStream.*`, streams_xattr), `user.DOSATTRIB` (attributes and
/// create time) and the security descriptor inside `security.NTACL`
/// (acl_xattr; its hashes and timestamp are each server's own).
pub fn compared_xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = Command::new("getfattr").args(["--absolute-names", "-d", "-m", "-", "-e", "hex"]).arg(path).output().unwrap();
    let mut m = BTreeMap::new();
    for (k, v) in text(&out.stdout).lines().filter_map(|l| l.split_once('=')) {
        let bytes = hex(v.trim_start_matches("0x"));
        if k.starts_with("user.DosStream.") || k == "user.DOSATTRIB" {
            m.insert(k.to_string(), bytes);
        } else if k == "security.NTACL" {
            m.insert(k.to_string(), ntacl_sd(&bytes).map_or(bytes.clone(), <[u8]>::to_vec));
        }
    }
    m
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// The security descriptor of an NTACL v4 blob: after the description
/// "posix_acl", the time (8 bytes) and the POSIX ACL hash (64 bytes).
pub fn ntacl_sd(blob: &[u8]) -> Option<&[u8]> {
    let at = blob.windows(10).position(|w| w == b"posix_acl\0")?;
    blob.get(at + 10 + 8 + 64..)
}

/// What smbd shows of a file: attributes, create and write times, streams
/// (smbclient allinfo), and its security descriptor (smbcacls). A
/// directory's write time is left out: it follows its entries on each
/// member (a new entry is no new version of the directory).
pub fn shown(m: &Member, path: &str) -> String {
    let info = m.smbclient(&format!("allinfo \"{path}\""));
    let is_dir = info.lines().any(|l| l.starts_with("attributes:") && l.contains('D'));
    let keep: Vec<&str> = info
        .lines()
        .filter(|l| {
            l.starts_with("create_time:")
                || (l.starts_with("write_time:") && !is_dir)
                || l.starts_with("attributes:")
                || l.starts_with("stream:")
        })
        .collect();
    format!("{}\n{}", keep.join("\n"), m.smbcacls(path, &[]))
}

/// Polls `ok` every 250 ms for up to `secs`; panics with `on_timeout()`.
pub fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool, on_timeout: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {secs} s: {}", on_timeout());
        std::thread::sleep(Duration::from_millis(250));
    }
}
