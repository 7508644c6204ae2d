//! The meet end to end: staged files made with `dfsrctl staged create`,
//! installed by dfsrd through the share's VFS stack (dfsr acl_xattr
//! streams_xattr) over IRPC, and checked over SMB with smbclient against
//! the real smbd serving the same share.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{dfsrctl, Dfsrd, Smbd, SmbdConfig, TestDir};

fn staged(dir: &Path, name: &str, data: &[u8], streams: &[(&str, &[u8])], sddl: &str, attrs: &str) -> PathBuf {
    let times = ["--creation-time", "2024-01-02T03:04:05Z", "--last-write-time", "2024-02-03T04:05:06Z"];
    let mut args = vec!["--sddl", sddl, "--attributes", attrs];
    args.extend(times);
    support::staged_file(dir, name, data, streams, &args)
}

fn install(smbd: &Smbd, path: &str, staged: &Path) -> std::process::Output {
    dfsrctl(&smbd.conf, &["meet", "install", "--share", "data", "--path", path, staged.to_str().unwrap()])
}

fn smbclient_ok(smbd: &Smbd, cmds: &str) -> String {
    let o = smbd.smbclient("data", cmds);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "smbclient {cmds}: {text}{}", String::from_utf8_lossy(&o.stderr));
    text
}

/// (type, flags, mask, SID) of each ACE in smbclient's `showacls` output.
fn aces(text: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("type: ") {
            let (ty, flags) = rest.split_once(" (").unwrap_or((rest, ""));
            let flags = flags.split("flags: ").nth(1).unwrap_or("").split(' ').next().unwrap_or("");
            cur = vec![ty.to_string(), flags.to_string()];
        } else if let Some(rest) = line.strip_prefix("Permissions: ") {
            cur.push(rest.split(':').next().unwrap_or("").to_string());
        } else if let Some(sid) = line.strip_prefix("SID: ") {
            if cur.len() == 3 {
                out.push((cur[0].clone(), cur[1].clone(), cur[2].clone(), sid.to_string()));
            }
            cur.clear();
        }
    }
    out
}

fn installing_is_empty(smbd: &Smbd) {
    let d = smbd.share_path("data").join("DfsrPrivate/Installing");
    let n = fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
    assert_eq!(n, 0, "{} is not empty", d.display());
}

// Everyone may read and write, SYSTEM and Administrators own it; a deny
// ACE and inheritance flags must survive exactly.
const SDDL: &str = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(D;;WD;;;AN)(A;;FA;;;WD)(A;OICI;FA;;;BA)";

#[test]
fn install_new_file_replace_read_only_and_remove() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let s1 = staged(&work.0, "v1", &data, &[("one", b"stream one\n"), ("Zone.Identifier", &[7u8; 3000])], SDDL, "0x21");

    let o = install(&smbd, "dir/sub/file.bin", &s1);
    assert!(o.status.success(), "install: {}", String::from_utf8_lossy(&o.stderr));
    installing_is_empty(&smbd);

    // Content over SMB.
    let back = work.0.join("back.bin");
    smbclient_ok(&smbd, &format!("get dir/sub/file.bin {}", back.display()));
    assert!(fs::read(&back).unwrap() == data, "content differs");
    // Streams, attributes and times over SMB.
    let info = smbclient_ok(&smbd, "allinfo dir/sub/file.bin");
    assert!(info.contains("create_time:    Tue Jan  2 03:04:05 2024 UTC"), "{info}");
    assert!(info.contains("write_time:     Sat Feb  3 04:05:06 2024 UTC"), "{info}");
    assert!(info.contains("attributes: RA (21)"), "{info}");
    assert!(info.contains("stream: [:one:$DATA], 11 bytes"), "{info}");
    assert!(info.contains("stream: [:Zone.Identifier:$DATA], 3000 bytes"), "{info}");
    let sback = work.0.join("one");
    smbclient_ok(&smbd, &format!("get dir/sub/file.bin:one {}", sback.display()));
    assert_eq!(fs::read(&sback).unwrap(), b"stream one\n");
    // The SD as a client reads it: owner, group, control, and each ACE
    // in order with its type, flags, mask and SID.
    let acl = smbclient_ok(&smbd, "showacls; ls dir/sub/file.bin");
    assert_eq!(
        aces(&acl),
        vec![
            ("ACCESS ALLOWED".to_string(), "0x03".to_string(), "0x1f01ff".to_string(), "S-1-5-18".to_string()),
            ("ACCESS DENIED".into(), "0x00".into(), "0x40000".into(), "S-1-5-7".into()),
            ("ACCESS ALLOWED".into(), "0x00".into(), "0x1f01ff".into(), "S-1-1-0".into()),
            ("ACCESS ALLOWED".into(), "0x03".into(), "0x1f01ff".into(), "S-1-5-32-544".into()),
        ],
        "{acl}"
    );
    assert!(acl.contains("Owner SID:\tS-1-5-32-544") && acl.contains("Group SID:\tS-1-5-18"), "{acl}");
    assert!(acl.contains("SEC_DESC_DACL_PROTECTED"), "{acl}");

    // Replace the read-only file with a new version.
    let s2 = staged(&work.0, "v2", b"second version\n", &[], SDDL, "0x20");
    let o = install(&smbd, "dir/sub/file.bin", &s2);
    assert!(o.status.success(), "replace: {}", String::from_utf8_lossy(&o.stderr));
    smbclient_ok(&smbd, &format!("get dir/sub/file.bin {}", back.display()));
    assert_eq!(fs::read(&back).unwrap(), b"second version\n");
    assert!(smbclient_ok(&smbd, "allinfo dir/sub/file.bin").contains("attributes: A (20)"));
    installing_is_empty(&smbd);

    // Remove.
    let o = dfsrctl(&smbd.conf, &["meet", "remove", "--share", "data", "--path", "dir/sub/file.bin"]);
    assert!(o.status.success(), "remove: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!smbd.share_path("data").join("dir/sub/file.bin").exists());

    let st = dfsrctl(&smbd.conf, &["--json", "meet", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!((v["installs_ok"].as_u64(), v["removes_ok"].as_u64()), (Some(2), Some(1)));
}

#[test]
fn open_file_is_not_touched_and_install_is_retryable() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let v1 = staged(&work.0, "v1", b"old content\n", &[], SDDL, "0x20");
    let v2 = staged(&work.0, "v2", b"new content\n", &[], SDDL, "0x20");
    assert!(install(&smbd, "held.txt", &v1).status.success());

    // A client holds the file open (smbclient's `open`: read/write, share
    // read/write, no delete sharing) while the install comes.
    let mut client = Command::new("smbclient")
        .arg(smbd.unc("data"))
        .args(["-p", &smbd.port.to_string(), "-U", &smbd.credentials()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.as_mut().unwrap();
    stdin.write_all(b"open held.txt\n").unwrap();
    stdin.flush().unwrap();
    // Wait until smbd lists the open (smbstatus reads the same lock
    // directory).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let st = Command::new("smbstatus").arg("-s").arg(&smbd.conf).arg("-L").output().unwrap();
        if String::from_utf8_lossy(&st.stdout).contains("held.txt") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "smbclient's open never showed in smbstatus");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = install(&smbd, "held.txt", &v2);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("NT_STATUS_SHARING_VIOLATION"), "{err}");
    assert!(err.contains("retry later"), "{err}");
    assert_eq!(fs::read(smbd.share_path("data").join("held.txt")).unwrap(), b"old content\n");
    installing_is_empty(&smbd);
    let st = dfsrctl(&smbd.conf, &["--json", "meet", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(v["installs_retry"].as_u64().unwrap() >= 1, "{v}");

    // The client goes; the retry succeeds.
    client.stdin.as_mut().unwrap().write_all(b"quit\n").unwrap();
    let _ = client.wait_with_output();
    let o = install(&smbd, "held.txt", &v2);
    assert!(o.status.success(), "retry: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(smbd.share_path("data").join("held.txt")).unwrap(), b"new content\n");
}

#[test]
fn bad_staged_file_is_refused_and_leaves_nothing() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let junk = work.0.join("junk.staged");
    fs::write(&junk, b"FRSXnot really a staged file").unwrap();
    let o = install(&smbd, "junk.txt", &junk);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("NT_STATUS_FILE_CORRUPT_ERROR") && err.contains(junk.to_str().unwrap()), "{err}");
    // Refused before the share was touched at all.
    assert_eq!(fs::read_dir(smbd.share_path("data")).unwrap().count(), 0);
    let o = install(&smbd, "missing.txt", &work.0.join("nonexistent.staged"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NT_STATUS_OBJECT_NAME_NOT_FOUND"));
}

fn sha256_of(path: &Path) -> Option<Vec<u8>> {
    let o = Command::new("sha256sum").arg(path).output().ok()?;
    Some(o.stdout.split(|b| *b == b' ').next()?.to_vec())
}

#[test]
fn kill_9_during_a_200_mb_install_never_leaves_a_partial_file() {
    let smbd = Smbd::start(SmbdConfig::default());
    let work = TestDir::new("meet");
    let old = staged(&work.0, "old", b"old version\n", &[], SDDL, "0x20");
    // 200 MB, half incompressible, half repetitive: both block kinds.
    let mut big = Vec::with_capacity(200 << 20);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while big.len() < 200 << 20 {
        for _ in 0..(1 << 16) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.push(x as u8);
        }
        big.extend(std::iter::repeat_n(b"dfsr ".as_slice(), 1 << 13).flatten());
    }
    let new = staged(&work.0, "new", &big, &[], SDDL, "0x20");
    let new_sha = sha256_of(&work.0.join("new.data")).unwrap();
    let old_sha = sha256_of(&work.0.join("old.data")).unwrap();
    drop(big);
    let target = smbd.share_path("data").join("big.bin");

    let mut dfsrd = Dfsrd::start(&smbd.conf);
    assert!(install(&smbd, "big.bin", &old).status.success());
    let (mut saw_old, mut saw_new) = (0, 0);
    for round in 0..20u64 {
        let client = Command::new(env!("CARGO_BIN_EXE_dfsrctl"))
            .arg("-s")
            .arg(&smbd.conf)
            .args(["meet", "install", "--share", "data", "--path", "big.bin"])
            .arg(&new)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the install (about 0.4 s here).
        std::thread::sleep(std::time::Duration::from_millis(20 + round * 20));
        dfsrd.kill9();
        let _ = client.wait_with_output();
        let sha = sha256_of(&target).expect("the target file must exist");
        if sha == old_sha {
            saw_old += 1;
        } else {
            assert_eq!(sha, new_sha, "round {round}: big.bin is neither the old nor the new version");
            saw_new += 1;
        }
        // Restart: the interrupted temporary is cleared.
        dfsrd = Dfsrd::start(&smbd.conf);
        installing_is_empty(&smbd);
        if sha == new_sha {
            assert!(install(&smbd, "big.bin", &old).status.success());
        }
    }
    println!("kill -9 rounds: {saw_old} left the old version, {saw_new} the new one");
    assert!(saw_old > 0, "no kill landed during an install");
}

#[test]
fn directories_are_created_with_their_sd_attributes_and_times() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let dir = staged(&work.0, "dir", b"", &[], SDDL, "0x12");
    let o = install(&smbd, "a/new dir", &dir);
    assert!(o.status.success(), "install: {}", String::from_utf8_lossy(&o.stderr));
    assert!(smbd.share_path("data").join("a/new dir").is_dir());
    let info = smbclient_ok(&smbd, "allinfo \"a/new dir\"");
    assert!(info.contains("attributes: HD (12)"), "{info}");
    assert!(info.contains("create_time:    Tue Jan  2 03:04:05 2024 UTC"), "{info}");
    // A file may then go inside it.
    let f = staged(&work.0, "f", b"inside\n", &[], SDDL, "0x20");
    assert!(install(&smbd, "a/new dir/f.txt", &f).status.success());
    assert_eq!(fs::read(smbd.share_path("data").join("a/new dir/f.txt")).unwrap(), b"inside\n");
}

#[test]
fn a_replaced_loser_goes_to_conflict_and_deleted_with_a_manifest() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let v1 = staged(&work.0, "v1", b"local version\n", &[], SDDL, "0x20");
    let v2 = staged(&work.0, "v2", b"winning version\n", &[], SDDL, "0x20");
    assert!(install(&smbd, "c.txt", &v1).status.success());
    let uid = "6d2b9f4e-5a1c-4e0b-9b7e-3f1d8c2a7e51:42";
    let o = dfsrctl(
        &smbd.conf,
        &["meet", "install", "--share", "data", "--path", "c.txt", "--lost-to-conflict", "--uid", uid, v2.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(smbd.share_path("data").join("c.txt")).unwrap(), b"winning version\n");
    let cad = smbd.share_path("data").join("DfsrPrivate/ConflictAndDeleted");
    let mut names: Vec<String> =
        fs::read_dir(&cad).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("c.txt-") && names[1] == format!("{}.manifest.json", names[0]), "{names:?}");
    assert_eq!(fs::read(cad.join(&names[0])).unwrap(), b"local version\n");
    let m: serde_json::Value = serde_json::from_slice(&fs::read(cad.join(&names[1])).unwrap()).unwrap();
    assert_eq!(m["original_path"], "c.txt");
    assert_eq!(m["uid"], "{6d2b9f4e-5a1c-4e0b-9b7e-3f1d8c2a7e51}-v42");
    assert!(m["time"].as_str().unwrap().starts_with("20"), "{m}");
    // A bad UID is refused by the client before anything happens.
    let o = dfsrctl(&smbd.conf, &["meet", "install", "--share", "data", "--path", "c.txt", "--uid", "nope", v1.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("NT_STATUS_INVALID_PARAMETER"));
}

#[test]
fn veto_files_hides_the_private_folder_from_clients_but_not_from_the_meet() {
    let smbd = Smbd::start(SmbdConfig { data_extra: vec!["veto files = /DfsrPrivate/".into()], ..Default::default() });
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let v1 = staged(&work.0, "v1", b"one\n", &[], SDDL, "0x20");
    let v2 = staged(&work.0, "v2", b"two\n", &[], SDDL, "0x20");
    assert!(install(&smbd, "x.txt", &v1).status.success());
    let o = dfsrctl(
        &smbd.conf,
        &["meet", "install", "--share", "data", "--path", "x.txt", "--lost-to-conflict", v2.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(smbd.share_path("data").join("DfsrPrivate/ConflictAndDeleted").is_dir());
    let ls = smbclient_ok(&smbd, "ls");
    assert!(ls.contains("x.txt") && !ls.contains("DfsrPrivate"), "{ls}");
    let o = smbd.smbclient("data", "ls DfsrPrivate/*");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("NT_STATUS_OBJECT_NAME_NOT_FOUND") || text.contains("NT_STATUS_NO_SUCH_FILE"), "{text}");
}

#[test]
fn a_long_install_does_not_block_ping_and_status() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..(96 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let st = staged(&work.0, "big", &big, &[], SDDL, "0x20");
    drop(big);
    let mut client = Command::new(env!("CARGO_BIN_EXE_dfsrctl"))
        .arg("-s")
        .arg(&smbd.conf)
        .args(["meet", "install", "--share", "data", "--path", "big.bin"])
        .arg(&st)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // While the install runs, dfsrd answers at once.
    let mut answered_during = false;
    loop {
        let t = std::time::Instant::now();
        let o = dfsrctl(&smbd.conf, &["--json", "meet", "status"]);
        let took = t.elapsed();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if v["in_progress"] == 1 {
            assert!(took < std::time::Duration::from_secs(1), "status took {took:?} during an install");
            answered_during = true;
        }
        if client.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(client.wait().unwrap().success());
    assert!(answered_during, "the install finished before status could see it");
    let v: serde_json::Value =
        serde_json::from_slice(&dfsrctl(&smbd.conf, &["--json", "meet", "status"]).stdout).unwrap();
    assert_eq!((v["installs_ok"].as_u64(), v["in_progress"].as_u64()), (Some(1), Some(0)));
}

#[test]
fn rename_and_move_keep_the_same_file() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let v = staged(&work.0, "v", b"moving content\n", &[("s", b"stream\n")], SDDL, "0x20");
    assert!(install(&smbd, "a/old.txt", &v).status.success());
    let mv = |from: &str, to: &str| {
        dfsrctl(&smbd.conf, &["meet", "move", "--share", "data", "--path", from, "--new-path", to])
    };
    let o = mv("a/old.txt", "a/new.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mv("a/new.txt", "b/c/moved.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = smbd.share_path("data");
    assert!(!root.join("a/old.txt").exists() && !root.join("a/new.txt").exists());
    assert_eq!(fs::read(root.join("b/c/moved.txt")).unwrap(), b"moving content\n");
    assert!(smbclient_ok(&smbd, "allinfo b/c/moved.txt").contains("stream: [:s:$DATA], 7 bytes"));
    // Onto an existing name: refused, nothing changes.
    assert!(install(&smbd, "x.txt", &v).status.success());
    let o = mv("x.txt", "b/c/moved.txt");
    assert!(String::from_utf8_lossy(&o.stderr).contains("NT_STATUS_OBJECT_NAME_COLLISION"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(root.join("x.txt").exists());
}

/// The names in DfsrPrivate/ConflictAndDeleted, sorted.
fn conflict_and_deleted(smbd: &Smbd) -> Vec<String> {
    let cad = smbd.share_path("data").join("DfsrPrivate/ConflictAndDeleted");
    let mut names: Vec<String> = fs::read_dir(&cad)
        .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn remove(smbd: &Smbd, path: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["meet", "remove", "--share", "data", "--path", path];
    args.extend(extra);
    dfsrctl(&smbd.conf, &args)
}

#[test]
fn a_removed_file_is_kept_in_conflict_and_deleted_unless_the_share_says_no() {
    let work = TestDir::new("meet");
    let f = staged(&work.0, "f", b"deleted elsewhere\n", &[], SDDL, "0x20");
    {
        // Default: kept, with the tombstone's UID in the manifest.
        let smbd = Smbd::start(SmbdConfig::default());
        let _dfsrd = Dfsrd::start(&smbd.conf);
        assert!(install(&smbd, "gone.txt", &f).status.success());
        let o = remove(&smbd, "gone.txt", &["--uid", "6d2b9f4e-5a1c-4e0b-9b7e-3f1d8c2a7e51:77"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!smbd.share_path("data").join("gone.txt").exists());
        let names = conflict_and_deleted(&smbd);
        assert_eq!(names.len(), 2, "{names:?}");
        let cad = smbd.share_path("data").join("DfsrPrivate/ConflictAndDeleted");
        assert_eq!(fs::read(cad.join(&names[0])).unwrap(), b"deleted elsewhere\n");
        let m: serde_json::Value = serde_json::from_slice(&fs::read(cad.join(&names[1])).unwrap()).unwrap();
        assert_eq!(m["original_path"], "gone.txt");
        assert_eq!(m["uid"], "{6d2b9f4e-5a1c-4e0b-9b7e-3f1d8c2a7e51}-v77");
        assert_eq!(m["reason"], "deleted by replication");
    }
    // dfsr:keep deleted = no: deleted outright, unless the request says
    // the file lost.
    let smbd = Smbd::start(SmbdConfig { data_extra: vec!["dfsr:keep deleted = no".into()], ..Default::default() });
    let _dfsrd = Dfsrd::start(&smbd.conf);
    assert!(install(&smbd, "a.txt", &f).status.success());
    assert!(install(&smbd, "b.txt", &f).status.success());
    assert!(remove(&smbd, "a.txt", &[]).status.success());
    assert!(!smbd.share_path("data").join("a.txt").exists());
    assert_eq!(conflict_and_deleted(&smbd), Vec::<String>::new());
    assert!(remove(&smbd, "b.txt", &["--lost-to-conflict"]).status.success());
    let names = conflict_and_deleted(&smbd);
    assert!(names.len() == 2 && names[0].starts_with("b.txt-"), "{names:?}");
}

#[test]
fn a_reparse_point_is_refused_by_default_and_explained_when_allowed() {
    let work = TestDir::new("meet");
    // IO_REPARSE_TAG_SYMLINK with an empty buffer: the meet must refuse
    // it before writing anything either way.
    let rp = work.0.join("reparse.bin");
    fs::write(&rp, [0x0c, 0x00, 0x00, 0xa0, 0, 0, 0, 0]).unwrap();
    let s = support::staged_file(&work.0, "link", b"", &[], &["--reparse", rp.to_str().unwrap()]);
    for (extra, want) in [
        (vec![], "refused (dfsr:install reparse = no)"),
        (vec!["dfsr:install reparse = yes".to_string()], "(tag 0xa000000c) allowed by dfsr:install reparse = yes"),
    ] {
        let smbd = Smbd::start(SmbdConfig { data_extra: extra, ..Default::default() });
        let _dfsrd = Dfsrd::start(&smbd.conf);
        let o = install(&smbd, "link", &s);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains("NT_STATUS_NOT_SUPPORTED") && e.contains(want), "{e}");
        assert!(!smbd.share_path("data").join("link").exists());
        installing_is_empty(&smbd);
    }
}

#[test]
fn the_meets_connections_are_marked_so_its_writes_are_not_captured() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let f = staged(&work.0, "f", b"replicated\n", &[], SDDL, "0x20");
    assert!(install(&smbd, "r.txt", &f).status.success());
    smbclient_ok(&smbd, "ls");
    let log = smbd.log_text();
    let connects: Vec<&str> = log.lines().filter(|l| l.contains("dfsr: connect share=\"data\"")).collect();
    assert!(connects.iter().any(|l| l.contains("origin=\"meet\"")), "{connects:?}");
    assert!(connects.iter().any(|l| l.contains("origin=\"client\"")), "{connects:?}");
}

#[test]
fn a_sparse_file_installs_with_its_holes() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    // 16 MiB with data at 1 MiB and 9 MiB and a trailing hole.
    let src = work.0.join("sparse.src");
    {
        use std::io::{Seek, SeekFrom};
        let mut f = fs::File::create(&src).unwrap();
        for (at, byte) in [(1u64 << 20, 0x11u8), (9 << 20, 0x99)] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&vec![byte; 64 * 1024]).unwrap();
        }
        f.set_len(16 << 20).unwrap();
    }
    let out = work.0.join("sparse.staged");
    let o = Command::new(env!("CARGO_BIN_EXE_dfsrctl"))
        .args(["staged", "create", "--sparse", "--attributes", "0x220", "--creation-time", "2024-01-02T03:04:05Z"])
        .args(["--last-write-time", "2024-02-03T04:05:06Z", "--data"])
        .arg(&src)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Staged as sparse blocks: far smaller than the file.
    assert!(fs::metadata(&out).unwrap().len() < 1 << 20);

    let o = install(&smbd, "sparse.bin", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let installed = smbd.share_path("data").join("sparse.bin");
    let md = fs::metadata(&installed).unwrap();
    assert_eq!(md.len(), 16 << 20, "the trailing hole sets the size");
    use std::os::unix::fs::MetadataExt;
    assert!(md.blocks() * 512 < 4 << 20, "holes were filled: {} bytes allocated", md.blocks() * 512);
    // Over SMB: the same bytes, zeros in the holes.
    let back = work.0.join("back.bin");
    smbclient_ok(&smbd, &format!("get sparse.bin {}", back.display()));
    assert!(fs::read(&back).unwrap() == fs::read(&src).unwrap(), "content differs");
    let info = smbclient_ok(&smbd, "allinfo sparse.bin");
    assert!(info.contains("attributes: sA (220)"), "sparse attribute: {info}");
    assert!(info.contains("create_time:    Tue Jan  2 03:04:05 2024 UTC"), "{info}");
    assert!(info.contains("write_time:     Sat Feb  3 04:05:06 2024 UTC"), "{info}");
}

#[test]
fn a_symlink_on_the_way_does_not_lead_out_of_the_share() {
    let smbd = Smbd::start(SmbdConfig::default());
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let outside = work.0.join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, smbd.share_path("data").join("escape")).unwrap();
    let f = staged(&work.0, "f", b"must not land outside\n", &[], SDDL, "0x20");
    for path in ["escape/file.txt", "escape/new/file.txt"] {
        let o = install(&smbd, path, &f);
        assert!(!o.status.success(), "{path} was installed through a symlink out of the share");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("NT_STATUS_"), "{e}");
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "something was written outside the share");
    installing_is_empty(&smbd);
}

/// A `vfs objects` module that cannot be loaded is named, with its share
/// and the path Samba looked at, by dfsrd's start-up check (in Samba's
/// log) and by the failing install (in dfsrctl's error), not as
/// OBJECT_NAME_NOT_FOUND alone (issue 12).
#[test]
fn unloadable_vfs_module_is_named_with_share_and_path() {
    let cfg = SmbdConfig {
        extra_shares: vec![
            ("missing".into(), vec!["read only = no".into(), "vfs objects = dfsr nosuchmodule acl_xattr".into()]),
            ("broken".into(), vec!["read only = no".into(), "vfs objects = dfsr brokenmodule".into()]),
        ],
        ..SmbdConfig::default()
    };
    let smbd = Smbd::start(cfg);
    // The test's private copy of Samba's VFS directory (bind-mounted for
    // smbd and dfsrd) gets a module file that is not a shared object.
    fs::write(smbd.dir.0.join("vfs/brokenmodule.so"), b"not an ELF file\n").unwrap();
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    let s1 = staged(&work.0, "v1", b"content\n", &[], SDDL, "0x20");
    let dir = support::SAMBA_VFS_DIR;

    let o = dfsrctl(&smbd.conf, &["meet", "install", "--share", "missing", "--path", "f.txt", s1.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "install into [missing] succeeded");
    assert!(err.contains("[missing]"), "{err}");
    assert!(err.contains(&format!("module 'nosuchmodule' is not built into Samba and {dir}/nosuchmodule.so does not exist")), "{err}");

    let o = dfsrctl(&smbd.conf, &["meet", "install", "--share", "broken", "--path", "f.txt", s1.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "install into [broken] succeeded");
    assert!(err.contains("[broken]"), "{err}");
    assert!(err.contains(&format!("module 'brokenmodule': {dir}/brokenmodule.so does not load: ")), "{err}");
    assert!(err.contains("invalid ELF header") || err.contains("file too short"), "dlerror's reason: {err}");

    // dfsrd said so at start, once per bad module, at level 0; the good
    // share [data] is not mentioned.
    let log = smbd.log_text();
    let startup: Vec<&str> = log.lines().filter(|l| l.contains("the share cannot be opened, by smbd or by dfsrd")).collect();
    assert_eq!(startup.len(), 2, "{log}");
    assert!(startup.iter().any(|l| l.contains("[missing]") && l.contains("'nosuchmodule'")), "{startup:?}");
    assert!(startup.iter().any(|l| l.contains("[broken]") && l.contains("'brokenmodule'")), "{startup:?}");
    // The good share still installs.
    assert!(install(&smbd, "ok.txt", &s1).status.success());
}

/// The VFS modules built into Samba (libsmbd-base: posixacl) load in dfsrd
/// as in smbd: vfs_init_custom registers them itself before it looks on
/// disk, in either process (issue 12). The same share works in both.
#[test]
fn builtin_vfs_module_works_in_smbd_and_dfsrd() {
    let cfg = SmbdConfig {
        extra_shares: vec![("builtin".into(), vec!["read only = no".into(), "vfs objects = dfsr posixacl".into()])],
        ..SmbdConfig::default()
    };
    let smbd = Smbd::start(cfg);
    let _dfsrd = Dfsrd::start(&smbd.conf);
    let work = TestDir::new("meet");
    // posixacl maps the SD to POSIX: owner root (Unix User\root), a DACL it can express.
    let s1 = staged(&work.0, "v1", b"through posixacl\n", &[], "O:S-1-22-1-0G:S-1-22-2-0D:(A;;FA;;;WD)", "0x20");
    let o = dfsrctl(&smbd.conf, &["meet", "install", "--share", "builtin", "--path", "b.txt", s1.to_str().unwrap()]);
    assert!(o.status.success(), "install into [builtin]: {}", String::from_utf8_lossy(&o.stderr));
    let back = work.0.join("back");
    let o = smbd.smbclient("builtin", &format!("get b.txt {}", back.display()));
    assert!(o.status.success(), "smbclient: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(fs::read(&back).unwrap(), b"through posixacl\n");
    assert!(!smbd.log_text().contains("the share cannot be opened"), "{}", smbd.log_text());
}
