//! `cargo bench --bench wire`: the MS-FRS2 wire over loopback with packet
//! privacy, beside Samba's SMB3 with encryption, in one run. Not a test: it
//! prints.
//!
//! - Transfer: one incompressible file of BENCH_MB MiB (default 200).
//!   dfsrd serves its staged copy (`dfsrctl db seed`) through
//!   InitializeFileTransferAsync + RawGetFileData calls of 256 KiB, one at a
//!   time as a DFS-R client does, NTLMSSP-sealed; the bytes are counted and
//!   dropped. The peer: `smbclient --client-protection=encrypt -m SMB3 … -c "get FILE /dev/null"`
//!   of the same file from the same machine's smbd (SMB3 encryption on).
//!   Best of BENCH_ROUNDS (default 3) each, interleaved.
//! - Calls: CheckConnectivity calls per second on one sealed association
//!   (BENCH_CALLS, default 5000).

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use samba_dfsr::ffi::gensec::Gensec;
use samba_dfsr::engine::ids::Guid;
use samba_dfsr::store::Database;
use samba_dfsr::wire::dcerpc::{AuthLevel, AuthType};
use samba_dfsr::wire::frstrans::convert::update_to_wire;
use samba_dfsr::wire::frstrans::{
    protocol_version, CheckConnectivityRequest, ContextRequest, EstablishConnectionRequest, EstablishSessionRequest,
    FileDataRequest, InitializeFileTransferAsyncRequest, Request, Response, StagingPolicy,
};
use samba_dfsr::net::rpc_client::{Completion, RpcClient};
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, TestDir, PASSWORD, USER};

const GROUP: &str = "5f0f3c6e-8a4b-4e0c-9d51-0a1b2c3d4e5f";
const FOLDER: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const PIECE: u32 = 262_144;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn noise(len: usize) -> Vec<u8> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One blocking call.
fn call(c: &mut RpcClient, r: &Request) -> Response {
    let id = c.start(r.opnum(), &r.to_bytes()).expect("call");
    loop {
        for (done, comp) in c.wait(Duration::from_secs(30)).expect("answer") {
            if done == id {
                match comp {
                    Completion::Reply(stub) => return Response::decode(r.opnum(), &stub).expect("decodable"),
                    Completion::Fault(f) => panic!("fault {f:#x}"),
                }
            }
        }
    }
}

fn connect(conf: &std::path::Path, port: u16) -> RpcClient {
    let sec = Gensec::client(Some(conf), USER, "DFSRTEST", PASSWORD, "127.0.0.1", AuthType::NTLMSSP, AuthLevel::PRIVACY)
        .expect("gensec");
    RpcClient::connect("127.0.0.1", port, Some(Box::new(sec)), AuthLevel::PRIVACY, Duration::from_secs(10)).expect("bind")
}

fn main() {
    let mb = env("BENCH_MB", 200) as usize;
    let rounds = env("BENCH_ROUNDS", 3);
    let calls = env("BENCH_CALLS", 5000);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let smbd = Smbd::start(SmbdConfig { global_extra: vec![format!("dfsr:rpc port = {port}")], ..Default::default() });
    let src = TestDir::new("bench-wire");
    let data = noise(mb << 20);
    fs::write(src.0.join("big.bin"), &data).unwrap();
    fs::write(smbd.share_path("data").join("big.bin"), &data).unwrap();
    drop(data);
    let out = dfsrctl(&smbd.conf, &["db", "seed", "--group", GROUP, "--folder", FOLDER, "--from", &src.0.to_string_lossy()]);
    assert!(out.status.success(), "seed: {}", String::from_utf8_lossy(&out.stderr));
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let folder = FOLDER.parse::<Guid>().unwrap();
    let group = GROUP.parse::<Guid>().unwrap();
    let update = {
        let db = Database::open_existing(&smbd.dir.0.join("state/dfsr/dfsr.tdb")).expect("server database");
        db.folder_updates(&folder).unwrap().into_iter().find(|u| u.name == "big.bin").expect("big.bin seeded")
    };
    let conn_id = Guid([0x42; 16]);

    let mut c = connect(&smbd.conf, port);
    let r = call(
        &mut c,
        &Request::EstablishConnection(EstablishConnectionRequest {
            replica_set_id: group,
            connection_id: conn_id,
            downstream_protocol_version: protocol_version::WINBLUE_SERVER,
            downstream_flags: 0,
        }),
    );
    assert_eq!(r.status(), 0);
    let r = call(
        &mut c,
        &Request::EstablishSession(EstablishSessionRequest { connection_id: conn_id, content_set_id: folder }),
    );
    assert_eq!(r.status(), 0);

    let mut frs_best = 0f64;
    let mut smb_best = 0f64;
    let mut staged_len = 0u64;
    for _ in 0..rounds {
        // MS-FRS2: InitializeFileTransferAsync, RawGetFileData × n, RdcClose.
        let t = Instant::now();
        let init = Request::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncRequest {
            connection_id: conn_id,
            frs_update: update_to_wire(&update),
            rdc_desired: false,
            staging_policy: StagingPolicy::ServerDefault,
            buffer_size: PIECE,
        }));
        let Response::InitializeFileTransferAsync(r) = call(&mut c, &init) else { panic!() };
        assert_eq!(r.status, 0);
        let mut n = r.data.len() as u64;
        let mut eof = r.is_end_of_file;
        while !eof {
            let Response::RawGetFileData(p) =
                call(&mut c, &Request::RawGetFileData(FileDataRequest { server_context: r.server_context, buffer_size: PIECE }))
            else {
                panic!()
            };
            assert_eq!(p.status, 0);
            n += p.data.len() as u64;
            eof = p.is_end_of_file;
        }
        call(&mut c, &Request::RdcClose(ContextRequest { server_context: r.server_context }));
        let secs = t.elapsed().as_secs_f64();
        staged_len = n;
        frs_best = frs_best.max(n as f64 / secs / 1e6);

        // SMB3, encrypted, the same file from the same machine.
        let t = Instant::now();
        let out = Command::new("smbclient")
            .arg(smbd.unc("data"))
            .args(["-p", &smbd.port.to_string(), "-U", &smbd.credentials(), "--client-protection=encrypt", "-m", "SMB3"])
            .args(["-c", "get big.bin /dev/null"])
            .output()
            .expect("smbclient");
        assert!(out.status.success(), "smbclient: {}", String::from_utf8_lossy(&out.stderr));
        let secs = t.elapsed().as_secs_f64();
        smb_best = smb_best.max((mb << 20) as f64 / secs / 1e6);
    }

    let t = Instant::now();
    let check = Request::CheckConnectivity(CheckConnectivityRequest {
        replica_set_id: group,
        connection_id: conn_id,
    });
    for _ in 0..calls {
        assert_eq!(call(&mut c, &check).status(), 0);
    }
    let cps = calls as f64 / t.elapsed().as_secs_f64();

    println!("MS-FRS2 wire over loopback, packet privacy (NTLMSSP seal), best of {rounds}:");
    println!("  file: {mb} MiB incompressible, staged {staged_len} bytes, pieces of {PIECE} bytes");
    println!("  RawGetFileData (dfsrd):          {frs_best:8.1} MB/s");
    println!("  smbclient encrypted SMB3 get:   {smb_best:8.1} MB/s   RawGetFileData/smbclient = {:.2}", frs_best / smb_best);
    println!("  CheckConnectivity:               {cps:8.0} calls/s ({calls} calls, one association)");
}
