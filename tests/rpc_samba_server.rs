//! Our DCE/RPC client (`ClientConnection`) with our gensec client context
//! against a real Samba RPC server: Debian's `samba-dcerpcd` with its
//! `rpcd_classic` helper (netdfs, srvsvc, wkssvc…) listening on
//! ncacn_ip_tcp on loopback, bound at packet privacy (auth level 6) over
//! NTLMSSP and SPNEGO: netdfs calls with a small and a multi-fragment
//! request, srvsvc share enumeration with a multi-fragment response, all
//! decoded and checked, and a wrong password refused.
//!
//! samba-dcerpcd runs standalone (`rpc start on demand helpers = no`, so
//! the test's smbd never starts one of its own) on the test smbd's private
//! smb.conf and directories, logging there too, in the same kind of
//! private mount namespace as that smbd, and is stopped by process group.
//! rpcd_classic's interfaces have a dynamic `ncacn_ip_tcp:` endpoint
//! (`endpoint("ncacn_np:[\\pipe\\netdfs]", "ncacn_ip_tcp:", "ncalrpc:")`
//! in dfs.idl); samba-dcerpcd puts all of a helper's port-less TCP
//! endpoints on one socket whose port is the first free one of `rpc server
//! dynamic port range` (source3/rpc_server/rpc_host.c,
//! `rpc_host_endpoint_find`; rpc_sock_helper.c,
//! `dcesrv_create_ncacn_ip_tcp_socket`; s3 has no per-service `rpc server
//! port`). Only rpcd_classic and rpcd_winreg (which rpcd_classic's svcctl
//! needs to start at all) run, so a range of two free high ports holds
//! both, and no epmapper is started (it would want port 135).

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use samba_dfsr::ffi::gensec::Gensec;
use samba_dfsr::wire::dcerpc::pdu::{ack_reason, status as fault, AckResult};
use samba_dfsr::wire::dcerpc::{
    AuthLevel, AuthType, BindRejection, ClientConfig, ClientConnection, ClientEvent, SyntaxId,
};
use samba_dfsr::wire::Guid;
use support::{Smbd, SmbdConfig, PASSWORD, SAMBA_VFS_DIR, USER};

const SAMBA_DCERPCD: &str = "/usr/libexec/samba/samba-dcerpcd";
/// Samba's default log directory (Debian).
const SAMBA_LOG_DIR: &str = "/var/log/samba";
const RPCD_CLASSIC: &str = "/usr/libexec/samba/rpcd_classic";
/// rpcd_classic's svcctl needs winreg (over the named pipe socket in the
/// ncalrpc directory) to start at all.
const RPCD_WINREG: &str = "/usr/libexec/samba/rpcd_winreg";

/// netdfs v3.0 (librpc/idl/dfs.idl).
fn netdfs_syntax() -> SyntaxId {
    SyntaxId::new("4fc742e0-4a10-11cf-8273-00aa004ae673".parse::<Guid>().ok().unwrap(), 3, 0)
}

/// `DFS_MANAGER_VERSION_NT4` (dfs.idl `dfs_ManagerVersion`): what Samba's
/// `_dfs_GetManagerVersion` (source3/rpc_server/dfs/srv_dfs_nt.c) answers
/// when `host msdfs` is on (the default); 0 when it is off.
const DFS_MANAGER_VERSION_NT4: u32 = 1;
/// `WERR_ACCESS_DENIED`: `_dfs_Add` for a caller whose uid is not 0.
const WERR_ACCESS_DENIED: u32 = 5;

/// `dfs_GetManagerVersion` (netdfs opnum 0):
/// `void dfs_GetManagerVersion([out] dfs_ManagerVersion *version)` — no
/// `[in]` parameters, so the request stub is empty; the response is the
/// `[v1_enum]` version, a little-endian u32.
const OP_GET_MANAGER_VERSION: u16 = 0;

/// `dfs_Add` (netdfs opnum 1):
/// ```idl
/// WERROR dfs_Add([in] [string,charset(UTF16)] uint16 *path,
///                [in] [string,charset(UTF16)] uint16 *server,
///                [in,unique] [string,charset(UTF16)] uint16 *share,
///                [in,unique] [string,charset(UTF16)] uint16 *comment,
///                [in] uint32 flags);
/// ```
const OP_ADD: u16 = 1;

/// NDR (little-endian) of a top-level `[ref] [string,charset(UTF16)]`
/// pointer: the conformant varying string inline (max_count, offset 0,
/// actual_count, UTF-16 code units with the NUL), padded to 4.
fn ndr_ref_string(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
    let n = units.len() as u32;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The `dfs_Add` request stub: `path` and `server` given, `share` and
/// `comment` NULL (unique pointers: referent id 0), `flags`.
fn dfs_add_stub(path: &str, server: &str, flags: u32) -> Vec<u8> {
    let mut s = Vec::new();
    ndr_ref_string(&mut s, path);
    ndr_ref_string(&mut s, server);
    s.extend_from_slice(&0u32.to_le_bytes()); // share: NULL
    s.extend_from_slice(&0u32.to_le_bytes()); // comment: NULL
    s.extend_from_slice(&flags.to_le_bytes());
    s
}

/// srvsvc v3.0 (librpc/idl/srvsvc.idl).
fn srvsvc_syntax() -> SyntaxId {
    SyntaxId::new("4b324fc8-1670-01d3-1278-5a47bf6ee188".parse::<Guid>().ok().unwrap(), 3, 0)
}

/// `srvsvc_NetShareEnumAll` (srvsvc opnum 15):
/// ```idl
/// WERROR srvsvc_NetShareEnumAll(
///     [in,unique] [string,charset(UTF16)] uint16 *server_unc,
///     [in,out,ref] srvsvc_NetShareInfoCtr *info_ctr,
///     [in] uint32 max_buffer,
///     [out,ref] uint32 *totalentries,
///     [in,out,unique] uint32 *resume_handle);
/// typedef struct { uint32 level; [switch_is(level)] srvsvc_NetShareCtr ctr; } srvsvc_NetShareInfoCtr;
/// typedef union { [case(0)] srvsvc_NetShareCtr0 *ctr0; ... } srvsvc_NetShareCtr;
/// typedef struct { uint32 count; [size_is(count)] srvsvc_NetShareInfo0 *array; } srvsvc_NetShareCtr0;
/// typedef struct { [string,charset(UTF16)] uint16 *name; } srvsvc_NetShareInfo0;
/// ```
const OP_NET_SHARE_ENUM_ALL: u16 = 15;

/// The level-0 `srvsvc_NetShareEnumAll` request: no server name, an
/// empty `srvsvc_NetShareCtr0`, no size limit, no resume handle.
fn share_enum_all_stub() -> Vec<u8> {
    let mut s = Vec::new();
    for v in [
        0u32,        // server_unc: NULL
        0,           // info_ctr->level
        0,           // union discriminant (switch_is(level))
        0x0002_0000, // ctr0: referent id
        0,           // *ctr0: count
        0,           // *ctr0: array NULL
        u32::MAX,    // max_buffer
        0,           // resume_handle: NULL
    ] {
        s.extend_from_slice(&v.to_le_bytes());
    }
    s
}

/// A little-endian NDR reader for the response stubs.
struct Ndr<'a> {
    b: &'a [u8],
    off: usize,
}

impl Ndr<'_> {
    fn u32(&mut self) -> u32 {
        self.off = (self.off + 3) & !3;
        let v = self.b.get(self.off..self.off + 4).unwrap_or_else(|| panic!("stub ends at {}", self.off));
        self.off += 4;
        u32::from_le_bytes(v.try_into().unwrap())
    }

    /// A conformant varying UTF-16 string (without its NUL).
    fn string(&mut self) -> String {
        let (max, offset, actual) = (self.u32(), self.u32(), self.u32());
        assert!(offset == 0 && actual <= max && actual > 0, "string header {max}/{offset}/{actual}");
        let bytes = &self.b[self.off..self.off + 2 * actual as usize];
        self.off += bytes.len();
        let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(units.last(), Some(&0), "string without NUL");
        String::from_utf16(&units[..units.len() - 1]).expect("UTF-16 share name")
    }
}

/// Decodes the level-0 `srvsvc_NetShareEnumAll` response: the share
/// names, `totalentries` and the WERROR.
fn decode_share_enum_all(stub: &[u8]) -> (Vec<String>, u32, u32) {
    let mut r = Ndr { b: stub, off: 0 };
    assert_eq!((r.u32(), r.u32()), (0, 0), "info_ctr level and discriminant");
    assert_ne!(r.u32(), 0, "ctr0 is NULL");
    let count = r.u32();
    assert_ne!(r.u32(), 0, "ctr0->array is NULL");
    assert_eq!(r.u32(), count, "array size_is(count)");
    let ptrs: Vec<u32> = (0..count).map(|_| r.u32()).collect();
    let names = ptrs.iter().filter(|p| **p != 0).map(|_| r.string()).collect::<Vec<_>>();
    assert_eq!(names.len(), count as usize, "a NULL share name");
    let total = r.u32();
    if r.u32() != 0 {
        r.u32(); // *resume_handle
    }
    let werror = r.u32();
    assert_eq!(r.off, stub.len(), "bytes after the WERROR");
    (names, total, werror)
}

fn u32_stub(stub: &[u8]) -> u32 {
    assert_eq!(stub.len(), 4, "a 4-byte stub expected, got {stub:02x?}");
    u32::from_le_bytes(stub.try_into().unwrap())
}

/// The first of two consecutive ports free on 127.0.0.1 and ::1 (what
/// samba-dcerpcd binds with `interfaces = lo`).
fn free_port_pair() -> u16 {
    let v6 = TcpListener::bind("[::1]:0").is_ok();
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok() && (!v6 || TcpListener::bind(("::1", p)).is_ok());
    for _ in 0..1000 {
        let p = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if p < u16::MAX && free(p) && free(p + 1) {
            return p;
        }
    }
    panic!("no two consecutive free ports on loopback");
}

/// An unauthenticated bind of `interface` on `port`: `Ok` when the server
/// accepts the presentation context, else how it refused.
fn plain_bind(port: u16, interface: SyntaxId) -> Result<(), BindRejection> {
    let mut conn = ClientConnection::new(ClientConfig::new(interface), None).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        while let Some(out) = conn.poll_transmit() {
            sock.write_all(&out).unwrap();
        }
        let n = sock.read(&mut buf).unwrap_or_else(|e| panic!("bind on {port}: {e}"));
        assert!(n > 0, "bind on {port}: connection closed");
        conn.receive(&buf[..n]).unwrap_or_else(|e| panic!("bind on {port}: {e}"));
        match conn.poll_event() {
            None => {}
            Some(ClientEvent::Bound { .. }) => return Ok(()),
            Some(ClientEvent::BindRejected(r)) => return Err(r),
            Some(ev) => panic!("bind on {port}: {ev:?}"),
        }
    }
}

/// samba-dcerpcd (foreground, own process group) serving rpcd_classic and
/// rpcd_winreg on the test smbd's smb.conf; stopped by process group on
/// drop.
struct Dcerpcd {
    child: Child,
    conf: PathBuf,
    stderr: PathBuf,
    dir: PathBuf,
}

impl Dcerpcd {
    fn start(smbd: &Smbd) -> Dcerpcd {
        // As for the harness's smbd: a private mount namespace with the
        // test's VFS module directory (rpcd_classic's srvsvc/netdfs code
        // connects to shares, which load their `vfs objects`), then exec,
        // so the pid we hold is samba-dcerpcd's and its process group
        // holds the rpcd_* workers it forks and execs. `-l`: the workers
        // get it as `--log-basename` and log beside smbd (log.rpcd_*);
        // the `--list-interfaces` runs of the helpers get only the config
        // file and would log to Samba's default directory, so that is
        // the test's too (`samba-log/`).
        let d = &smbd.dir.0;
        let log_dir = d.join("samba-log");
        fs::create_dir_all(&log_dir).unwrap();
        let script = format!(
            "mount --bind {vfs} {SAMBA_VFS_DIR} && mount --bind {log_dir} {SAMBA_LOG_DIR} && \
             exec {SAMBA_DCERPCD} --foreground --no-process-group -s {conf} -l {d} {RPCD_CLASSIC} {RPCD_WINREG}",
            vfs = d.join("vfs").display(),
            log_dir = log_dir.display(),
            conf = smbd.conf.display(),
            d = d.display(),
        );
        let stderr = d.join("dcerpcd.stderr");
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "TERM", "--", "unshare", "-m", "--propagation", "private"])
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::from(fs::File::create(d.join("dcerpcd.stdout")).unwrap()))
            .stderr(Stdio::from(fs::File::create(&stderr).unwrap()))
            .process_group(0)
            .spawn()
            .expect("starting samba-dcerpcd");
        Dcerpcd { child, conf: smbd.conf.clone(), stderr, dir: d.clone() }
    }

    /// Waits until every port in `ports` accepts connections.
    fn wait_listening(&mut self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok()) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("samba-dcerpcd exited during start ({st}): {}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "samba-dcerpcd did not listen on {ports:?} within 30 s: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// samba-dcerpcd's stderr and the logs of it and its workers.
    fn logs(&self) -> String {
        let mut s = fs::read_to_string(&self.stderr).unwrap_or_default();
        for name in ["log.samba-dcerpcd", "log.rpcd_classic", "log.rpcd_winreg"] {
            s += &format!("\n--- {name}\n{}", fs::read_to_string(self.dir.join(name)).unwrap_or_default());
        }
        s
    }

    /// SIGTERM to the process group, SIGKILL after 10 s, then SIGKILL to
    /// anything left that runs a Samba RPC server on our smb.conf; returns
    /// the pids of those (none when the process group held them all).
    fn stop(&mut self) -> Vec<u32> {
        support::stop_process_group(&mut self.child);
        // SIGKILLed group members take a moment to disappear from /proc.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rpc_server_pids(&self.conf).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = rpc_server_pids(&self.conf);
        for pid in &left {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        left
    }
}

impl Drop for Dcerpcd {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Pids of samba-dcerpcd and rpcd_* processes running on `conf`.
fn rpc_server_pids(conf: &Path) -> Vec<u32> {
    let needle = conf.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else { continue };
        // A zombie (state Z) is dead already, only not reaped yet.
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains(&needle) && (cmdline.contains("samba-dcerpcd") || cmdline.contains("rpcd_")) {
            pids.push(pid);
        }
    }
    pids
}

/// How an authenticated association ended before all calls were answered.
#[derive(Debug)]
enum Failure {
    /// bind_nak, refused context, or a fault instead of alter_context_resp.
    BindRejected(BindRejection),
    /// Anything else (I/O, a protocol error our client detected); shown
    /// through `Debug` in failure messages.
    #[allow(dead_code)]
    Other(String),
}

/// What an authenticated association did.
struct Outcome {
    events: Vec<ClientEvent>,
    /// Every PDU our client sent.
    sent: Vec<Vec<u8>>,
}

/// Binds `interface` with our client and a gensec client context at
/// packet privacy, offering `max_frag`-byte fragments, makes `calls` over
/// a blocking socket, and returns once each has a response or fault.
fn sealed_calls(
    conf: &Path,
    port: u16,
    interface: SyntaxId,
    (auth_type, max_frag): (AuthType, u16),
    password: &str,
    calls: &[(u16, &[u8])],
) -> Result<Outcome, Failure> {
    let other = |e: String| Failure::Other(e);
    let sec = Gensec::client(Some(conf), USER, "DFSRTEST", password, "127.0.0.1", auth_type, AuthLevel::PRIVACY)
        .map_err(|e| other(format!("gensec: {e}")))?;
    let mut cfg = ClientConfig::new(interface);
    cfg.auth_level = AuthLevel::PRIVACY;
    cfg.max_frag = max_frag;
    let mut conn = ClientConnection::new(cfg, Some(Box::new(sec))).map_err(|e| other(e.to_string()))?;
    for (opnum, stub) in calls {
        conn.call(*opnum, stub, None).map_err(|e| other(e.to_string()))?;
    }
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| other(e.to_string()))?;
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Outcome { events: Vec::new(), sent: Vec::new() };
    let mut answered = 0;
    let mut buf = vec![0u8; 65536];
    while answered < calls.len() {
        while let Some(pdu) = conn.poll_transmit() {
            sock.write_all(&pdu).map_err(|e| other(format!("write: {e}")))?;
            out.sent.push(pdu);
        }
        let n = sock.read(&mut buf).map_err(|e| other(format!("read after {:?}: {e}", out.events)))?;
        if n == 0 {
            return Err(other(format!("server closed the connection after {:?}", out.events)));
        }
        conn.receive(&buf[..n]).map_err(|e| other(format!("receive after {:?}: {e}", out.events)))?;
        while let Some(ev) = conn.poll_event() {
            match ev {
                ClientEvent::Response { .. } | ClientEvent::Fault { .. } => answered += 1,
                ClientEvent::BindRejected(r) => return Err(Failure::BindRejected(r)),
                _ => {}
            }
            out.events.push(ev);
        }
    }
    Ok(out)
}

fn responses(events: &[ClientEvent]) -> Vec<&[u8]> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Response { stub, .. } => Some(stub.as_slice()),
            _ => None,
        })
        .collect()
}

#[test]
fn our_client_binds_sealed_to_samba_dcerpcd() {
    // rpcd_classic and rpcd_winreg each get one TCP port of the range.
    let low = free_port_pair();
    // Enough shares that srvsvc's share list spans response fragments.
    let share_names: Vec<String> = (0..250).map(|i| format!("share_with_a_longish_name_{i:03}")).collect();
    let smbd = Smbd::start(SmbdConfig {
        extra_shares: share_names.iter().map(|n| (n.clone(), Vec::new())).collect(),
        global_extra: vec![
            "rpc start on demand helpers = no".into(),
            format!("rpc server dynamic port range = {low}-{}", low + 1),
        ],
        ..Default::default()
    });
    let mut dcerpcd = Dcerpcd::start(&smbd);
    dcerpcd.wait_listening(&[low, low + 1]);

    // Which of them is rpcd_classic's is up to the order the helpers
    // answered `--list-interfaces`: the other port (winreg's) refuses
    // netdfs as an unsupported abstract syntax.
    let outcomes = [plain_bind(low, netdfs_syntax()), plain_bind(low + 1, netdfs_syntax())];
    let port = match &outcomes {
        [Ok(()), Err(r)] | [Err(r), Ok(())] => {
            let refused = BindRejection::Context {
                result: AckResult::ProviderRejection,
                reason: ack_reason::ABSTRACT_SYNTAX_NOT_SUPPORTED,
            };
            assert_eq!(*r, refused, "netdfs on winreg's port");
            if outcomes[0].is_ok() {
                low
            } else {
                low + 1
            }
        }
        _ => panic!("netdfs served on exactly one of {low}, {}: {outcomes:?}\n{}", low + 1, dcerpcd.logs()),
    };

    // A dfs_Add path long enough that the sealed request needs several
    // fragments (Samba reassembles, unseals and decodes them all before
    // `_dfs_Add` refuses a caller that is not root).
    let filler = "x".repeat(12_000);
    let add = dfs_add_stub(&format!("\\\\DFSRTEST\\data\\{filler}"), "127.0.0.1", 0);
    assert!(add.len() > 3 * 5840, "the dfs_Add stub must span fragments");
    let filler_utf16: Vec<u8> = filler[..64].encode_utf16().flat_map(u16::to_le_bytes).collect();

    let mut expected_shares: Vec<String> = share_names.clone();
    expected_shares.extend(["data", "plain", "IPC$"].map(String::from));
    expected_shares.sort();

    // Both mechanisms, with Samba's default fragment size and with one
    // below the 2048 bytes Samba's server negotiates at least.
    let variants = [AuthType::NTLMSSP, AuthType::SPNEGO].into_iter().flat_map(|a| [(a, 5840u16), (a, 1024)]);
    for v in variants {
        let (_, max_frag) = v;
        // netdfs: a small call, a multi-fragment request, a small call.
        let calls: [(u16, &[u8]); 3] = [(OP_GET_MANAGER_VERSION, &[]), (OP_ADD, &add), (OP_GET_MANAGER_VERSION, &[])];
        let out = sealed_calls(&smbd.conf, port, netdfs_syntax(), v, PASSWORD, &calls)
            .unwrap_or_else(|e| panic!("{v:?}: {e:?}\n{}", dcerpcd.logs()));
        // Samba: fragments of MIN(MAX(2048, offered), 5840) each way, and
        // header signing whenever the client offers it.
        let negotiated = match &out.events[0] {
            ClientEvent::Bound { max_xmit_frag, max_recv_frag, header_signing, .. } => {
                (*max_xmit_frag, *max_recv_frag, *header_signing)
            }
            e => panic!("{v:?}: {e:?}"),
        };
        assert_eq!(negotiated, (max_frag, max_frag.max(2048), true), "{v:?}");
        let stubs = responses(&out.events);
        assert_eq!(stubs.len(), 3, "{v:?}: {:?}", out.events);
        assert_eq!(u32_stub(stubs[0]), DFS_MANAGER_VERSION_NT4, "{v:?}");
        assert_eq!(u32_stub(stubs[1]), WERR_ACCESS_DENIED, "{v:?}");
        assert_eq!(u32_stub(stubs[2]), DFS_MANAGER_VERSION_NT4, "{v:?}");
        assert!(out.sent.iter().all(|p| p.len() <= usize::from(max_frag)), "{v:?}: a PDU over {max_frag} bytes");
        // Request PDUs (ptype 0): the two small calls and dfs_Add in at
        // least as many fragments as the size limit demands.
        let requests = out.sent.iter().filter(|p| p[2] == 0).count();
        assert!(requests >= 2 + add.len().div_ceil(usize::from(max_frag)), "{v:?}: {requests} request PDUs");
        // Sealed: the path never crossed the wire in clear.
        let wire = out.sent.concat();
        assert!(
            !wire.windows(filler_utf16.len()).any(|w| w == filler_utf16),
            "{v:?}: the dfs_Add path was sent unencrypted"
        );

        // srvsvc on the same port: a response of several sealed fragments.
        let enum_all = share_enum_all_stub();
        let out = sealed_calls(&smbd.conf, port, srvsvc_syntax(), v, PASSWORD, &[(OP_NET_SHARE_ENUM_ALL, &enum_all)])
            .unwrap_or_else(|e| panic!("{v:?}, srvsvc: {e:?}\n{}", dcerpcd.logs()));
        let stubs = responses(&out.events);
        assert_eq!(stubs.len(), 1, "{v:?}, srvsvc: {:?}", out.events);
        assert!(stubs[0].len() > 3 * 5840, "the share list must span response fragments: {} bytes", stubs[0].len());
        let (mut names, total, werror) = decode_share_enum_all(stubs[0]);
        names.sort();
        assert_eq!((werror, total as usize), (0, expected_shares.len()), "{v:?}");
        assert_eq!(names, expected_shares, "{v:?}");
    }

    // A wrong password. NTLMSSP: the client's AUTHENTICATE goes in auth3,
    // which has no reply, so our client considers itself bound; Samba
    // marks the association invalid and answers the first request with
    // fault nca_s_proto_error + did-not-execute and disconnects
    // (dcesrv_core.c: `auth_invalid` → `dcesrv_fault_disconnect`).
    let get_version: [(u16, &[u8]); 1] = [(OP_GET_MANAGER_VERSION, &[])];
    let out =
        sealed_calls(&smbd.conf, port, netdfs_syntax(), (AuthType::NTLMSSP, 5840), "wrong-password", &get_version)
            .unwrap_or_else(|e| panic!("NTLMSSP, wrong password: {e:?}"));
    assert!(
        matches!(
            out.events.as_slice(),
            [
                ClientEvent::Bound { .. },
                ClientEvent::Fault { status: fault::NCA_S_PROTO_ERROR, did_not_execute: true, .. }
            ]
        ),
        "NTLMSSP, wrong password: {:?}",
        out.events
    );
    // SPNEGO: the NTLMSSP AUTHENTICATE goes in alter_context; Samba
    // answers it with fault sec_pkg_error (`dcesrv_auth_complete` failed).
    let r = sealed_calls(&smbd.conf, port, netdfs_syntax(), (AuthType::SPNEGO, 5840), "wrong-password", &get_version);
    assert!(
        matches!(r, Err(Failure::BindRejected(BindRejection::Fault(fault::SEC_PKG_ERROR)))),
        "SPNEGO, wrong password: {:?}",
        r.map(|o| o.events)
    );

    // Samba's own account of it (rpcd_classic's auth log): the eight good
    // logins as dfsrtest, the two bad ones refused as wrong passwords.
    let log = fs::read_to_string(smbd.dir.0.join("log.rpcd_classic")).unwrap_or_default();
    let auth_lines = |status: &str| {
        log.lines()
            .filter(|l| l.contains("Auth: [DCE/RPC") && l.contains("[DFSRTEST]\\[dfsrtest]") && l.contains(status))
            .count()
    };
    assert_eq!(auth_lines("status [NT_STATUS_OK]"), 8, "{log}");
    assert_eq!(auth_lines("status [NT_STATUS_WRONG_PASSWORD]"), 2, "{log}");

    // Stopping the process group stops samba-dcerpcd and all its workers.
    assert_eq!(dcerpcd.stop(), Vec::<u32>::new(), "RPC server processes outside the process group");
    assert_eq!(rpc_server_pids(&smbd.conf), Vec::<u32>::new(), "RPC server processes left over");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still served");
}
