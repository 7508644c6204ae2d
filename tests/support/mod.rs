//! Test support: a private smbd on 127.0.0.1 at a free high port, with its
//! own lock/state/cache/pid/private directories, a tdbsam user, and the
//! `dfsr.so` just built (bind-mounted over Samba's VFS module directory in
//! a private mount namespace, since `vfs objects` takes no paths). The smbd
//! is always stopped by pid (its process group), also when a test panics.
#![allow(dead_code)]

pub mod members;
pub mod tshark;

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Unix account the tests log in as; `./setup` creates it.
pub const USER: &str = "dfsrtest";
pub const PASSWORD: &str = "Dfsr-test-1";
pub const SAMBA_VFS_DIR: &str = "/usr/lib/x86_64-linux-gnu/samba/vfs";

/// Path of the module under test: `DFSR_MODULE_SO` (set by `make test`),
/// else `build/dfsr.so` of this checkout.
pub fn module_so() -> PathBuf {
    std::env::var_os("DFSR_MODULE_SO")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("build/dfsr.so"))
}

/// Path of our smbtorture suite module.
pub fn torture_so() -> PathBuf {
    std::env::var_os("DFSR_TORTURE_SO")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("build/smbtorture-dfsr.so"))
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a free port on 127.0.0.1");
    l.local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir, removed on drop unless
/// `DFSR_KEEP_TEST_DIRS` is set (then its path is printed).
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "samba-dfsr-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        TestDir(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("DFSR_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept test directory {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// What to put into the private smb.conf.
#[derive(Clone)]
pub struct SmbdConfig {
    /// `log level` value, e.g. "3" or "1 dfsr:3".
    pub log_level: String,
    /// Extra lines for `[global]`.
    pub global_extra: Vec<String>,
    /// Extra lines for `[data]`.
    pub data_extra: Vec<String>,
    /// Extra shares: (name, lines); each gets `path = <dir>/shares/<name>`.
    pub extra_shares: Vec<(String, Vec<String>)>,
    /// Run inside this network namespace, listening on `address`:445 (as
    /// real servers do, e.g. for smbclient following a referral).
    pub netns: Option<(String, String)>,
}

impl Default for SmbdConfig {
    fn default() -> Self {
        SmbdConfig {
            log_level: "3".into(),
            global_extra: Vec::new(),
            data_extra: Vec::new(),
            extra_shares: Vec::new(),
            netns: None,
        }
    }
}

pub struct Smbd {
    pub dir: TestDir,
    pub port: u16,
    pub conf: PathBuf,
    pub log: PathBuf,
    child: Child,
    netns: Option<(String, String)>,
}

impl Smbd {
    /// Starts smbd with `[global] vfs objects = dfsr`, `[data]` (dfsr
    /// acl_xattr streams_xattr) and `[plain]` (acl_xattr streams_xattr).
    pub fn start(cfg: SmbdConfig) -> Smbd {
        check_user();
        let dir = TestDir::new("smbd");
        let d = dir.0.clone();
        for sub in ["lock", "state", "cache", "pid", "private", "ncalrpc", "vfs", "shares/data", "shares/plain"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        for (name, _) in &cfg.extra_shares {
            fs::create_dir_all(d.join("shares").join(name)).unwrap();
            set_mode(&d.join("shares").join(name), 0o777);
        }
        for share in ["data", "plain"] {
            set_mode(&d.join("shares").join(share), 0o777);
        }
        // Other tests' TestDirs sit beside ours: the parent must be searchable.
        set_mode(&d, 0o755);
        let vfs = d.join("vfs");
        populate_vfs_dir(&vfs);
        let port = if cfg.netns.is_some() { 445 } else { free_port() };
        let conf = d.join("smb.conf");
        let log = d.join("log.smbd");
        let text = smb_conf(&d, port, &cfg);
        fs::write(&conf, text).unwrap();
        add_samba_user(&conf);

        // A private mount namespace so smbd's VFS directory is ours, then
        // exec smbd: the pid we hold is smbd's, and the new process group
        // holds smbd and every child it forks.
        let script = format!(
            "mount --bind {vfs} {sys} && exec smbd --foreground --no-process-group -s {conf}",
            vfs = vfs.display(),
            sys = SAMBA_VFS_DIR,
            conf = conf.display()
        );
        // setpriv --pdeathsig: if the test process itself is killed, smbd
        // gets SIGTERM instead of living on.
        let mut cmd = match &cfg.netns {
            Some((ns, _)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "setpriv"]);
                c
            }
            None => Command::new("setpriv"),
        };
        let child = cmd
            .args(["--pdeathsig", "TERM", "--", "unshare", "-m", "--propagation", "private"])
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::from(fs::File::create(d.join("smbd.stdout")).unwrap()))
            .stderr(Stdio::from(fs::File::create(d.join("smbd.stderr")).unwrap()))
            .process_group(0)
            .spawn()
            .expect("starting unshare/smbd");
        let mut s = Smbd { dir, port, conf, log, child, netns: cfg.netns.clone() };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "smbd exited during start ({status}); stderr: {}; log: {}",
                    fs::read_to_string(self.dir.0.join("smbd.stderr")).unwrap_or_default(),
                    self.log_text()
                );
            }
            let listening = match &self.netns {
                None => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
                Some((ns, addr)) => Command::new("ip")
                    .args(["netns", "exec", ns, "bash", "-c"])
                    .arg(format!("exec 3<>/dev/tcp/{addr}/{}", self.port))
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false),
            };
            if listening {
                return;
            }
            if Instant::now() > deadline {
                panic!("smbd did not listen on port {} within 30 s; log: {}", self.port, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn share_path(&self, share: &str) -> PathBuf {
        self.dir.0.join("shares").join(share)
    }

    /// smbd's log (also its children's: one log file for all).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn unc(&self, share: &str) -> String {
        format!("//127.0.0.1/{share}")
    }

    pub fn credentials(&self) -> String {
        format!("{USER}%{PASSWORD}")
    }

    /// Runs `smbclient //127.0.0.1/SHARE -c COMMANDS` as the test user.
    pub fn smbclient(&self, share: &str, commands: &str) -> Output {
        Command::new("smbclient")
            .arg(self.unc(share))
            .args(["-p", &self.port.to_string(), "-U", &self.credentials(), "-c", commands])
            .output()
            .expect("running smbclient")
    }

    /// Runs smbtorture against SHARE with subunit output.
    pub fn smbtorture(&self, share: &str, extra: &[&str], tests: &[&str]) -> Output {
        Command::new("smbtorture")
            .arg(self.unc(share))
            .args(["-p", &self.port.to_string(), "-U", &self.credentials()])
            .arg("--format=subunit")
            .args(extra)
            .args(tests)
            .stdin(Stdio::null())
            .output()
            .expect("running smbtorture")
    }

    /// Stops smbd: SIGTERM to its process group, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        stop_process_group(&mut self.child);
        // samba-dcerpcd and its rpcd_* workers, started on demand by smbd,
        // leave the process group: find them by our config path.
        kill_processes_using(&self.conf);
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILL to every process whose command line names `conf`.
/// SIGTERM to the process group `child` leads, SIGKILL to the group after
/// 10 s (children that outlived SIGTERM go too), and reaps `child`.
pub fn stop_process_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let signal = |sig: &str| {
        let _ = Command::new("kill").args([sig, "--", &group]).stderr(Stdio::null()).status();
    };
    if let Ok(None) = child.try_wait() {
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    signal("-KILL");
    let _ = child.wait();
}

pub fn kill_processes_using(conf: &Path) {
    let needle = conf.to_string_lossy().into_owned();
    let Ok(dir) = fs::read_dir("/proc") else { return };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn check_user() {
    let ok = Command::new("id").arg(USER).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(matches!(ok, Ok(s) if s.success()), "unix user {USER} is missing: run ./setup");
}

/// Samba's VFS modules plus ours, copied (symlinks would loop under the
/// bind mount).
fn populate_vfs_dir(vfs: &Path) {
    for e in fs::read_dir(SAMBA_VFS_DIR).expect("reading Samba's VFS module directory") {
        let e = e.unwrap();
        if e.file_name() != "dfsr.so" {
            fs::copy(e.path(), vfs.join(e.file_name())).unwrap();
        }
    }
    let so = module_so();
    fs::copy(&so, vfs.join("dfsr.so")).unwrap_or_else(|e| panic!("copying {} (run `make`): {e}", so.display()));
}

fn smb_conf(d: &Path, port: u16, cfg: &SmbdConfig) -> String {
    let d = d.display();
    let interfaces = match &cfg.netns {
        Some((_, addr)) => format!("{addr}/32"),
        None => "lo".to_string(),
    };
    let mut s = format!(
        "[global]
\tnetbios name = DFSRTEST
\tworkgroup = DFSRTEST
\tserver role = standalone server
\tsmb ports = {port}
\tinterfaces = {interfaces}
\tbind interfaces only = yes
\tlock directory = {d}/lock
\tstate directory = {d}/state
\tcache directory = {d}/cache
\tpid directory = {d}/pid
\tprivate dir = {d}/private
\tncalrpc dir = {d}/ncalrpc
\tlog file = {d}/log.smbd
\tmax log size = 0
\tlog level = {level}
\tpassdb backend = tdbsam
\tserver min protocol = NT1
\tload printers = no
\tprinting = bsd
\tprintcap name = /dev/null
\tdisable spoolss = yes
\tdisable netbios = yes
\tvfs objects = dfsr
\tdfsr:test origin = global
",
        level = cfg.log_level
    );
    for l in &cfg.global_extra {
        s += &format!("\t{l}\n");
    }
    s += &format!(
        "
[data]
\tpath = {d}/shares/data
\tread only = no
\tvfs objects = dfsr acl_xattr streams_xattr
\tdfsr:test share = data
"
    );
    for l in &cfg.data_extra {
        s += &format!("\t{l}\n");
    }
    s += &format!(
        "
[plain]
\tpath = {d}/shares/plain
\tread only = no
\tvfs objects = acl_xattr streams_xattr
"
    );
    for (name, lines) in &cfg.extra_shares {
        s += &format!("\n[{name}]\n\tpath = {d}/shares/{name}\n");
        for l in lines {
            s += &format!("\t{l}\n");
        }
    }
    s
}

/// Adds root to the test smbd's tdbsam (Samba's NetDfs admin calls need
/// uid 0); returns its `user%password`.
pub fn add_root_user(conf: &Path) -> String {
    let mut child = Command::new("smbpasswd")
        .arg("-c")
        .arg(conf)
        .args(["-a", "-s", "root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running smbpasswd");
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "smbpasswd -a root failed");
    format!("root%{PASSWORD}")
}

fn add_samba_user(conf: &Path) {
    let mut child = Command::new("smbpasswd")
        .arg("-c")
        .arg(conf)
        .args(["-a", "-s", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running smbpasswd");
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "smbpasswd -a {USER}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Outcome of each test in a subunit stream (`success:`, `failure:`,
/// `error:`, `skip:`, `xfail:`, …), in the order they ended.
pub fn subunit_outcomes(stream: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in stream.lines() {
        let Some((kind, rest)) = line.split_once(": ") else { continue };
        let outcome = match kind {
            "success" | "successful" => "success",
            "failure" | "fail" => "failure",
            "error" => "error",
            "skip" => "skip",
            "xfail" => "xfail",
            "uxsuccess" => "uxsuccess",
            _ => continue,
        };
        let name = rest.trim_end_matches(" [").trim_end_matches('[').trim().to_string();
        out.push((name, outcome.to_string()));
    }
    out
}

/// Path of the dfsrd under test: `DFSRD` (set by `make test`), else
/// `build/dfsrd` of this checkout.
pub fn dfsrd_bin() -> PathBuf {
    std::env::var_os("DFSRD")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("build/dfsrd"))
}

/// A dfsrd in the foreground on the private smb.conf of a test smbd (or
/// any conf); stopped with SIGTERM on drop.
pub struct Dfsrd {
    pub conf: PathBuf,
    child: Child,
}

impl Dfsrd {
    pub fn start(conf: &Path) -> Dfsrd {
        Dfsrd::start_in(conf, None)
    }

    /// As [`Dfsrd::start`], inside network namespace `netns` when given.
    pub fn start_in(conf: &Path, netns: Option<&str>) -> Dfsrd {
        // Beside a test smbd's smb.conf is its VFS directory with the
        // dfsr.so under test: dfsrd loads the shares' modules too, so it
        // gets the same private mount (else it would load the installed
        // module). The execs keep the pid: the one we hold is dfsrd's.
        let vfs = conf.parent().map(|d| d.join("vfs")).filter(|v| v.is_dir());
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "setpriv"]);
                c
            }
            None => Command::new("setpriv"),
        };
        cmd.args(["--pdeathsig", "TERM", "--"]);
        match vfs {
            Some(vfs) => {
                let script = format!(
                    "mount --bind {} {SAMBA_VFS_DIR} && exec {} --foreground --no-process-group -s {}",
                    vfs.display(),
                    dfsrd_bin().display(),
                    conf.display()
                );
                cmd.args(["unshare", "-m", "--propagation", "private", "--", "sh", "-c", &script]);
            }
            None => {
                cmd.arg(dfsrd_bin()).args(["--foreground", "--no-process-group", "-s"]).arg(conf);
            }
        }
        let child = cmd.stdin(Stdio::null()).spawn().expect("starting dfsrd");
        let mut d = Dfsrd { conf: conf.into(), child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while dfsrctl(conf, &["meet", "ping"]).status.code() != Some(0) {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("dfsrd exited during start: {st}");
            }
            assert!(Instant::now() < deadline, "dfsrd did not answer ping within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: a crash, as far as dfsrd can tell.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        if let Ok(Some(st)) = self.child.try_wait() {
            return st;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Dfsrd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs this checkout's dfsrctl with `-s conf`.
pub fn dfsrctl(conf: &Path, args: &[&str]) -> Output {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dfsrctl");
    Command::new(bin).arg("-s").arg(conf).args(args).output().expect("running dfsrctl")
}

/// A staged file `DIR/NAME.staged` made by `dfsrctl staged create` from
/// `NAME.data` and one `NAME.<stream>` file per alternate stream, all
/// written into DIR; `args` are further `staged create` options (SD,
/// attributes, times).
pub fn staged_file(dir: &Path, name: &str, data: &[u8], streams: &[(&str, &[u8])], args: &[&str]) -> PathBuf {
    let main = dir.join(format!("{name}.data"));
    fs::write(&main, data).unwrap();
    let out = dir.join(format!("{name}.staged"));
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dfsrctl");
    let mut cmd = Command::new(bin);
    cmd.args(["staged", "create", "--data"]).arg(&main);
    for (sname, sdata) in streams {
        let f = dir.join(format!("{name}.{sname}"));
        fs::write(&f, sdata).unwrap();
        cmd.arg("--stream").arg(format!("{sname}={}", f.display()));
    }
    let o = cmd.args(args).arg(&out).output().unwrap();
    assert!(o.status.success(), "staged create {name}: {}", String::from_utf8_lossy(&o.stderr));
    out
}
