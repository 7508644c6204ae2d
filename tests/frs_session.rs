//! A full MS-FRS2 session between our client (`dfsrctl sync`) and our
//! server (dfsrd's listener) over ncacn_ip_tcp with packet privacy:
//! EstablishConnection, EstablishSession, RequestVersionVector + AsyncPoll
//! (NOTIFY, then ALL), RequestUpdates in pages limited by credits,
//! InitializeFileTransferAsync + RawGetFileData in 256 KiB pieces +
//! RdcClose for every file and directory, including a 50 MB one — then the
//! pulled database and staged files are compared with the server's, and
//! the big file is unstaged and compared with the original bytes. The
//! session is captured and Debian's tshark, decrypting with the test
//! password, decodes it with no malformed packet.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::Path;

use serde_json::Value;
use support::tshark::{self, Capture};
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, TestDir, PASSWORD, USER};

const GROUP: &str = "5f0f3c6e-8a4b-4e0c-9d51-0a1b2c3d4e5f";
const FOLDER: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const BIG: usize = 50 * 1024 * 1024;
const PIECE: u64 = 262_144;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Deterministic bytes that do not compress (xorshift64*).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        v.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The records of a database dump by key, `kind` filtered.
fn records(conf: &Path, db: Option<&Path>, kinds: &[&str]) -> BTreeMap<String, Value> {
    let mut args = vec!["--json", "db", "dump"];
    let db_s;
    if let Some(p) = db {
        db_s = p.to_string_lossy().into_owned();
        args.extend(["--db", &db_s]);
    }
    let out = dfsrctl(conf, &args);
    assert!(out.status.success(), "db dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON record"))
        .filter(|v| kinds.iter().any(|k| v["type"] == *k))
        .map(|v| (v["key"].as_str().unwrap_or_default().to_string(), v))
        .collect()
}

/// `dfsrctl -s CONF ARGS…`, on CPU 0 when `pinned`.
fn dfsrctl_on(conf: &Path, pinned: bool, args: &[&str]) -> std::process::Output {
    if !pinned {
        return dfsrctl(conf, args);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dfsrctl");
    std::process::Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin)
        .arg("-s")
        .arg(conf)
        .args(args)
        .output()
        .expect("running taskset dfsrctl")
}

/// Moves `pid`, its threads and its children's (dfsrd's listener) to CPU 0.
fn pin_to_cpu0(pid: u32) {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for p in std::iter::once(pid.to_string()).chain(children.split_whitespace().map(str::to_string)) {
        let st = std::process::Command::new("taskset").args(["-a", "-p", "-c", "0", &p]).output().expect("taskset");
        assert!(st.status.success(), "taskset {p}: {}", String::from_utf8_lossy(&st.stderr));
    }
}

#[test]
fn client_pulls_a_folder_from_dfsrd_with_pages_and_a_50_mb_download() {
    let port = free_port();
    let smbd = Smbd::start(SmbdConfig { global_extra: vec![format!("dfsr:rpc port = {port}")], ..Default::default() });

    // The folder: a 50 MB file, 5 directories of 60 small files, one nested.
    let src = TestDir::new("frs-src");
    let big = noise(BIG, 0x9e37_79b9_7f4a_7c15);
    fs::write(src.0.join("big.bin"), &big).unwrap();
    for d in 0..5 {
        let dir = src.0.join(format!("dir{d}"));
        fs::create_dir_all(dir.join("nested")).unwrap();
        for f in 0..60 {
            fs::write(dir.join(format!("file{f:02}.txt")), format!("dir {d} file {f}\n").repeat(f + 1)).unwrap();
        }
        fs::write(dir.join("nested/deep.dat"), noise(70_000, d as u64 + 1)).unwrap();
    }
    let entries = 1 + 5 * (1 + 60 + 1 + 1);
    let out = dfsrctl(
        &smbd.conf,
        &["--json", "db", "seed", "--group", GROUP, "--folder", FOLDER, "--from", &src.0.to_string_lossy()],
    );
    assert!(out.status.success(), "seed: {}", String::from_utf8_lossy(&out.stderr));
    let seeded: Value = serde_json::from_slice(&out.stdout).expect("seed JSON");
    assert_eq!(seeded["updates"], entries as u64, "{seeded}");
    assert_eq!(seeded["files"], 1 + 5 * 61, "{seeded}");
    // Seeding the same folder twice is refused, nothing changed.
    let again = dfsrctl(&smbd.conf, &["db", "seed", "--group", GROUP, "--folder", FOLDER, "--from", &src.0.to_string_lossy()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already replicated"), "{again:?}");

    // A second folder in the same database gets versions of its own:
    // nothing of the first is replaced (one database GUID numbers both).
    let other = TestDir::new("frs-src2");
    fs::write(other.0.join("gpt.ini"), "[General]\nVersion=1\n").unwrap();
    let seed2 = dfsrctl(
        &smbd.conf,
        &["db", "seed", "--group", GROUP, "--folder", "0b0b0b0b-1111-4222-8333-444455556666", "--from", &other.0.to_string_lossy()],
    );
    assert!(seed2.status.success(), "second seed: {}", String::from_utf8_lossy(&seed2.stderr));
    assert_eq!(records(&smbd.conf, None, &["update"]).len(), entries + 1, "updates of both folders");
    let check = dfsrctl(&smbd.conf, &["db", "check"]);
    assert!(check.status.success(), "{check:?}");

    let dfsrd = Dfsrd::start(&smbd.conf);
    let client = TestDir::new("frs-client");
    let client_db = client.0.join("client.tdb");
    let client_staging = client.0.join("staging");
    let partner = format!("127.0.0.1:{port}");
    let sync = |credits: &str, auth: &str, password: &str, extra: &[&str]| {
        dfsrctl_on(
            &smbd.conf,
            extra.contains(&"--pinned"),
            &[
                "--json",
                "sync",
                "--partner",
                &partner,
                "--group",
                GROUP,
                "--folder",
                FOLDER,
                "--user",
                &format!("DFSRTEST\\{USER}"),
                "--password",
                password,
                "--auth",
                auth,
                "--credits",
                credits,
                "--timeout",
                "300",
                "--db",
                &client_db.to_string_lossy(),
                "--staging",
                &client_staging.to_string_lossy(),
            ]
            .into_iter()
            .chain(extra.iter().copied().filter(|a| *a != "--pinned"))
            .collect::<Vec<_>>(),
        )
    };

    // A wrong password never gets a session.
    let out = sync("100", "ntlmssp", "wrong-password", &[]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!client_staging.join("x").exists());

    // Captured for tshark: plain NTLMSSP (tshark follows SPNEGO-wrapped
    // NTLMSSP only to the first sealed PDU). Both ends send each PDU as a
    // TCP record of its own, since tshark decrypts one sealed PDU per
    // frame; and dfsrd's listener and the client run on one CPU, so that
    // loopback segments are captured in the order sent (from two CPUs a
    // burst can be captured out of order, and two PDUs then complete in
    // one frame).
    pin_to_cpu0(dfsrd.pid());
    let cap = Capture::start(&client.0, "session", port);
    let out = sync("100", "ntlmssp", PASSWORD, &["--pinned"]);
    let (pcap, stats) = cap.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync: {stderr}");
    assert_eq!(stats.dropped, 0, "the capture lost packets");
    let report: Value = serde_json::from_slice(&out.stdout).expect("sync JSON");
    let n = |k: &str| report[k].as_u64().unwrap_or_else(|| panic!("{k} in {report}"));
    // The first (ALL) page's live updates come again in the LIVE phase,
    // which asks with the full vector (§3.3.4.6.1); each is stored once.
    assert!(n("updates_received") >= entries as u64, "{report}");
    assert_eq!(n("installed"), entries as u64, "{report}");
    // 100 credits per page: at least ceil(entries / 100) pages.
    assert!(n("update_pages") >= (entries as u64).div_ceil(100), "{report}");
    // Every file and directory is staged content to download.
    assert_eq!(n("files_downloaded"), entries as u64, "{report}");
    assert_eq!((n("superseded"), n("held"), n("cancelled")), (0, 0, 0), "{report}");
    assert!(n("merges") >= 1 && n("async_polls") >= 2, "{report}");

    // The server's staged files, byte for byte, under the same names.
    let server_staging = smbd.dir.0.join("state/dfsr/staging");
    let mut staged_bytes = 0u64;
    let mut big_staged = None;
    // (The server's staging area also holds the second folder's file.)
    for e in fs::read_dir(&client_staging).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        let ours = fs::read(&p).unwrap();
        let theirs =
            fs::read(server_staging.join(&name)).unwrap_or_else(|e| panic!("{name:?} is not the server's: {e}"));
        assert!(ours == theirs, "{name:?} differs");
        staged_bytes += theirs.len() as u64;
        if theirs.len() > BIG {
            big_staged = Some(client_staging.join(&name));
        }
    }
    assert_eq!(n("bytes_downloaded"), staged_bytes, "{report}");
    assert_eq!(fs::read_dir(&client_staging).unwrap().count(), entries, "no leftovers (.part files)");
    // 256 KiB pieces: the big file took one InitializeFileTransferAsync and
    // then RawGetFileData calls of at most 256 KiB each.
    let big_staged = big_staged.expect("the 50 MB file's staged copy");
    let big_len = fs::metadata(&big_staged).unwrap().len();
    assert_eq!(n("largest_piece"), PIECE, "{report}");
    assert!(n("raw_get_file_data_calls") >= big_len.div_ceil(PIECE) - 1, "{report}");
    let out_dir = client.0.join("big-out");
    let x = dfsrctl(&smbd.conf, &["staged", "extract", &big_staged.to_string_lossy(), &out_dir.to_string_lossy()]);
    assert!(x.status.success(), "extract: {}", String::from_utf8_lossy(&x.stderr));
    assert!(fs::read(out_dir.join("data")).unwrap() == big, "the 50 MB file's content differs after the round trip");

    // The pulled database holds exactly the server's updates and vector.
    let mut theirs = records(&smbd.conf, None, &["update", "version-vector"]);
    theirs.retain(|_, v| !v.to_string().contains("0b0b0b0b-1111-4222-8333-444455556666"));
    let ours = records(&smbd.conf, Some(&client_db), &["update", "version-vector"]);
    assert_eq!(theirs.len(), entries + 1, "server records of the folder");
    assert_eq!(ours, theirs);
    let check = dfsrctl(&smbd.conf, &["db", "check", "--db", &client_db.to_string_lossy()]);
    assert!(check.status.success(), "{check:?}");

    // tshark decodes the whole session: every request and response
    // decrypted and taken by the frstrans dissector, no malformed packet,
    // no error.
    let summary = tshark::check(&pcap, port, Some(PASSWORD));
    assert!(summary.malformed().is_empty(), "malformed frames {:?}\n{}", summary.malformed(), summary.table());
    assert!(summary.expert_errors().is_empty(), "{:?}", summary.expert_errors());
    let undecoded: Vec<u32> = summary.undecoded().iter().map(|f| f.number).collect();
    assert!(undecoded.is_empty(), "frames not decrypted/decoded: {undecoded:?}");
    let calls = summary.calls();
    let opnums: std::collections::BTreeSet<u16> = calls.iter().flat_map(|f| f.frstrans_opnums.clone()).collect();
    assert_eq!(opnums, [1, 2, 3, 4, 5, 8, 12, 13].into_iter().collect(), "{}", summary.table());
    assert!(calls.iter().all(|f| f.sealed && f.decrypted), "{}", summary.table());
    let raw_calls = calls.iter().filter(|f| f.frstrans_opnums == [8]).count() as u64;
    assert_eq!(raw_calls, 2 * n("raw_get_file_data_calls"), "a request and a response per RawGetFileData");
    drop(pcap);

    // In sync: a second pull over SPNEGO finds nothing new.
    let out = sync("256", "spnego", PASSWORD, &[]);
    assert!(out.status.success(), "second sync: {}", String::from_utf8_lossy(&out.stderr));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((again["updates_received"].as_u64(), again["files_downloaded"].as_u64()), (Some(0), Some(0)), "{again}");

    // dfsrd logged the calls of the session.
    let log = smbd.log_text();
    for opnum in [1, 2, 3, 4, 8, 12, 13] {
        assert!(log.contains(&format!("opnum={opnum} status=0x0")), "opnum {opnum} not logged as answered");
    }
}
