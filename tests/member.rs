//! DFS-R members, each its own host: a network namespace with its own
//! address, its own smbd (port 445) and dfsrd (port 5722), configured with
//! `dfsrctl replication` on FS1 and `import` on the others
//! (`support::members`).
//!
//! - A tree written through smbclient on FS1 arrives on FS2 exact — data,
//!   streams, the NT ACL, DOS attributes, create and write times, compared
//!   on disk and as smbd shows them — and edits, renames, moves and
//!   deletes made on FS2 arrive on FS1.
//! - A chain FS1 → FS2 → FS3 converges (FS3 talks only to FS2).
//! - A file a client holds open on FS2 is installed once it is closed.
//! - A wrong password and an unknown connection show their reason in
//!   `status`, and the sessions back off.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::members::{configure, count_entries, disk_tree, originator, shown, wait_for, Lab, Member};
use support::{TestDir, PASSWORD, USER};

/// Files of the first test's tree (besides a 50 MB one and three with
/// streams, attributes and times).
const FILES: usize = 1000;

#[test]
fn two_members_replicate_a_tree_both_ways_exactly() {
    let lab = Lab::new(91, 2);
    let dir = TestDir::new("member");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1), (1, 0)], &[], &dir.0);

    // The two standalone servers have their own local SIDs, so the
    // replicated owner is unknown on FS2: what lets FS2's user edit is an
    // ACE both know, as a group of the domain would be. The share root is
    // not replicated; the files inherit from it on FS1.
    a.smbcacls("\\", &["-a", "ACL:S-1-1-0:ALLOWED/OI|CI/FULL"]);

    // A tree written through smbclient on FS1.
    let src = dir.0.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut cmds = vec!["mkdir top".to_string(), "mkdir top\\mid".into(), "mkdir top\\mid\\deep".into()];
    for i in 0..FILES {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, format!("file {i} ").repeat(i % 97 * 37 + 1)).unwrap();
        let at = ["top", "top\\mid", "top\\mid\\deep"][i % 3];
        cmds.push(format!("put {} {at}\\f{i}.txt", f.display()));
    }
    let big = src.join("big");
    let chunk: Vec<u8> = (0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&big, chunk.repeat(50)).unwrap();
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
    // The long pull shows its progress in status while it runs.
    let mut progress_seen = None;
    wait_for(
        "the tree on FS2",
        300,
        || {
            let s = b.report()["sessions"][0].clone();
            if s["state"].as_str().is_some_and(|t| t.starts_with("syncing")) {
                progress_seen.get_or_insert(s);
            }
            count_entries(&b.share()) == 3 + FILES + 4 && b.report()["folders"][0]["pending"].as_u64() == Some(0)
        },
        || {
            format!(
                "FS1 has {} entries, FS2 {}; FS2 status: {}",
                count_entries(&a.share()),
                count_entries(&b.share()),
                b.status()
            )
        },
    );
    let s = progress_seen.expect("no progress in FS2's status during the initial sync");
    assert!(s["state"].as_str().unwrap().contains("updates installed so far"), "{s}");
    wait_for("the same on disk", 30, || disk_tree(&a.share()) == disk_tree(&b.share()), String::new);
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
        || format!("FS1 status: {}", a.status()),
    );
    wait_for("both the same", 30, || disk_tree(&a.share()) == disk_tree(&b.share()), String::new);

}

/// The share root grants Everyone full control, inherited: the members'
/// local SIDs differ, so this is the ACE both know (see the first test).
fn open_root(m: &Member) {
    m.smbcacls("\\", &["-a", "ACL:S-1-1-0:ALLOWED/OI|CI/FULL"]);
}

#[test]
fn a_chain_of_three_converges_through_the_middle_member() {
    let lab = Lab::new(92, 3);
    let dir = TestDir::new("chain");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    let c = Member::start(&lab, 2, "FS3", &dir.0, &[]);
    // FS3 is connected to FS2 only.
    configure(&[&a, &b, &c], &[(0, 1), (1, 0), (1, 2), (2, 1)], &[], &dir.0);
    open_root(&a);
    let src = dir.0.join("f");
    std::fs::write(&src, b"from FS1 to FS3 through FS2").unwrap();
    a.smbclient(&format!("mkdir d; put {} d\\hop.txt", src.display()));
    wait_for(
        "FS1's file on FS3",
        60,
        || disk_tree(&c.share()).get("d/hop.txt").and_then(|e| e.0.clone()).as_deref() == Some(&b"from FS1 to FS3 through FS2"[..]),
        || format!("FS2: {}\nFS3: {}", b.status(), c.status()),
    );
    std::fs::write(&src, b"and back from FS3").unwrap();
    c.smbclient(&format!("put {} d\\back.txt", src.display()));
    wait_for(
        "FS3's file on FS1",
        60,
        || disk_tree(&a.share()).contains_key("d/back.txt"),
        || format!("FS1: {}\nFS2: {}", a.status(), b.status()),
    );
    wait_for("all three the same", 30, || {
        let t = disk_tree(&a.share());
        t == disk_tree(&b.share()) && t == disk_tree(&c.share())
    }, String::new);
}

#[test]
fn a_file_open_on_the_downstream_member_is_installed_when_it_is_closed() {
    let lab = Lab::new(93, 2);
    let dir = TestDir::new("openfile");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1), (1, 0)], &[], &dir.0);
    open_root(&a);
    let src = dir.0.join("v1");
    std::fs::write(&src, b"version 1").unwrap();
    a.smbclient(&format!("put {} held.txt", src.display()));
    let on_b = || disk_tree(&b.share()).get("held.txt").and_then(|e| e.0.clone());
    wait_for("v1 on FS2", 60, || on_b().as_deref() == Some(&b"version 1"[..]), || b.status());

    // A client on FS2 opens it (share read|write, no delete): the meet's
    // rename over it meets a sharing violation.
    let mut client = Command::new("ip")
        .args(["netns", "exec", &b.ns, "smbclient", &format!("//{}/data", b.addr), "-U", &format!("{USER}%{PASSWORD}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    writeln!(stdin, "open held.txt").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&src, b"version 2, written while FS2's client has it open").unwrap();
    a.smbclient(&format!("put {} held.txt", src.display()));
    wait_for(
        "the install put off",
        60,
        || b.report()["folders"][0]["retries"].as_u64().unwrap_or(0) > 0,
        || b.status(),
    );
    assert_eq!(on_b().as_deref(), Some(&b"version 1"[..]), "installed over an open file");
    // The client closes it: installed with no manual step.
    drop(stdin);
    let _ = client.wait();
    wait_for(
        "v2 on FS2 after the close",
        60,
        || on_b().as_deref() == Some(&b"version 2, written while FS2's client has it open"[..]),
        || b.status(),
    );
    assert_eq!(b.report()["folders"][0]["pending"].as_u64(), Some(0));
}

#[test]
fn a_wrong_password_and_an_unknown_connection_show_their_reason_and_back_off() {
    let lab = Lab::new(94, 2);
    let dir = TestDir::new("badauth");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    // dfsrd listens where smbd does (bind interfaces only): on the
    // member's address, not on all of them.
    let listening = String::from_utf8_lossy(&a.in_ns("ss", &["-Hltn", "sport = :5722"]).stdout).into_owned();
    assert!(listening.contains(&format!("{}:5722", a.addr)) && !listening.contains("0.0.0.0:5722"), "{listening}");
    // FS2's account file gets a wrong password.
    let creds = dir.0.join("FS2.creds");
    std::fs::write(&creds, format!("username = {USER}\npassword = wrong\ndomain = DFSRTEST\n")).unwrap();
    let session = |m: &Member| m.report()["sessions"][0].clone();
    wait_for(
        "the logon failure in FS2's status",
        60,
        || session(&b)["failures"].as_u64().unwrap_or(0) >= 3,
        || b.status(),
    );
    let s = session(&b);
    let reason = s["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.contains("wrong password") && reason.contains("DFSRTEST\\dfsrtest") && reason.contains(&a.addr), "{s}");
    assert!(s["retry_in"].as_u64().unwrap_or(0) >= 2 || s["failures"].as_u64().unwrap_or(0) >= 3, "no back-off: {s}");
    let shown = b.status();
    assert!(shown.contains("failed") && shown.contains(&reason[..reason.len().min(20)]), "{shown}");
    let pid = b.report()["pid"].as_u64();

    // The right password, but FS1 has no connection FS1 -> FS2 any more:
    // FS1 refuses, FS2 says why.
    std::fs::write(&creds, format!("username = {USER}\npassword = {PASSWORD}\ndomain = DFSRTEST\n")).unwrap();
    a.ctl(&["replication", "connection", "set", "Sales", "--from", "FS1", "--to", "FS2", "--enabled", "no"]);
    wait_for(
        "the refused connection in FS2's status",
        90,
        || session(&b)["reason"].as_str().is_some_and(|r| r.contains("CONNECTION_INVALID") || r.contains("connection")),
        || b.status(),
    );
    assert!(a.smbd.log_text().contains("EstablishConnection") || a.smbd.log_text().contains("not configured"), "FS1 did not log the refusal");
    // Nothing crashed: the same member process reports.
    assert_eq!(b.report()["pid"].as_u64(), pid);
}

/// Every file under the member's ConflictAndDeleted, with its data.
fn conflict_and_deleted(m: &Member) -> Vec<Vec<u8>> {
    let dir = m.share().join("DfsrPrivate/ConflictAndDeleted");
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if let Ok(b) = std::fs::read(e.path()) {
                out.push(b);
            }
        }
    }
    out
}

#[test]
fn a_read_only_member_undoes_local_changes_and_keeps_them_aside() {
    let lab = Lab::new(96, 2);
    let dir = TestDir::new("readonly");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1), (1, 0)], &[1], &dir.0);
    open_root(&a);
    let src = dir.0.join("f");
    std::fs::write(&src, b"the primary's").unwrap();
    a.smbclient(&format!("mkdir d; put {} a.txt; put {} d\\b.txt", src.display(), src.display()));
    let on = |m: &Member, p: &str| disk_tree(&m.share()).get(p).and_then(|e| e.0.clone());
    wait_for("the tree on FS2", 60, || on(&b, "d/b.txt").is_some() && on(&b, "a.txt").is_some(), || b.status());

    // Local changes on the read-only member: an edit, a delete, a create.
    std::fs::write(&src, b"a local edit").unwrap();
    b.smbclient(&format!("put {} a.txt; del d\\b.txt; put {} new.txt", src.display(), src.display()));
    wait_for(
        "FS2 back to the primary's content",
        60,
        || {
            on(&b, "a.txt").as_deref() == Some(&b"the primary's"[..])
                && on(&b, "d/b.txt").as_deref() == Some(&b"the primary's"[..])
                && on(&b, "new.txt").is_none()
        },
        || format!("{}\n{:?}", b.status(), disk_tree(&b.share()).keys().collect::<Vec<_>>()),
    );
    // Nothing lost: the edit and the new file are kept aside.
    let kept = conflict_and_deleted(&b);
    assert!(kept.iter().filter(|d| d.as_slice() == b"a local edit").count() >= 2, "{kept:?}");
    assert!(b.report()["folders"][0]["reverted"].as_u64().unwrap_or(0) >= 3, "{}", b.report());
    assert_eq!(b.report()["folders"][0]["local_changes"].as_u64(), Some(0));
    // And nothing travelled to the primary; its session with FS2 is idle.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(on(&a, "a.txt").as_deref(), Some(&b"the primary's"[..]));
    assert!(on(&a, "new.txt").is_none());
    let s = a.report()["sessions"][0].clone();
    assert!(s["state"].as_str().unwrap_or("").starts_with("idle"), "{s}");
}

#[test]
fn edits_made_while_the_connection_is_down_converge_and_the_loser_is_kept() {
    let lab = Lab::new(97, 2);
    let dir = TestDir::new("conflict");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1), (1, 0)], &[], &dir.0);
    open_root(&a);
    let put = |m: &Member, name: &str, data: &[u8]| {
        let src = dir.0.join(format!("src-{}-{name}", m.name));
        std::fs::write(&src, data).unwrap();
        m.smbclient(&format!("put {} {name}", src.display()));
    };
    let on = |m: &Member, p: &str| disk_tree(&m.share()).get(p).and_then(|e| e.0.clone());
    put(&a, "c.txt", b"base");
    wait_for("the base on FS2", 60, || on(&b, "c.txt").as_deref() == Some(&b"base"[..]), || b.status());

    // The connection goes down (each member disables its inbound side).
    a.ctl(&["replication", "connection", "set", "Sales", "--from", "FS2", "--to", "FS1", "--enabled", "no"]);
    b.ctl(&["replication", "connection", "set", "Sales", "--from", "FS1", "--to", "FS2", "--enabled", "no"]);
    let changes = |m: &Member| m.report()["folders"][0]["local_changes"].as_u64().unwrap_or(0);
    let (ca, cb) = (changes(&a), changes(&b));
    put(&a, "c.txt", b"FS1's edit, earlier");
    put(&a, "same.txt", b"FS1's new file, earlier");
    wait_for("FS1's scan", 30, || changes(&a) >= ca + 2, || a.status());
    std::thread::sleep(Duration::from_millis(1500));
    put(&b, "c.txt", b"FS2's edit, later");
    put(&b, "same.txt", b"FS2's new file, later");
    wait_for("FS2's scan", 30, || changes(&b) >= cb + 2, || b.status());
    assert_eq!(on(&a, "c.txt").as_deref(), Some(&b"FS1's edit, earlier"[..]), "replicated while down");

    // Up again: the later write wins on both; the loser is kept aside.
    a.ctl(&["replication", "connection", "set", "Sales", "--from", "FS2", "--to", "FS1", "--enabled", "yes"]);
    b.ctl(&["replication", "connection", "set", "Sales", "--from", "FS1", "--to", "FS2", "--enabled", "yes"]);
    wait_for(
        "the later edit on both",
        60,
        || on(&a, "c.txt").as_deref() == Some(&b"FS2's edit, later"[..]) && on(&b, "c.txt").as_deref() == Some(&b"FS2's edit, later"[..]),
        || format!("FS1: {}\nFS2: {}", a.status(), b.status()),
    );
    wait_for("FS1's edit in ConflictAndDeleted", 30, || {
        conflict_and_deleted(&a).iter().chain(conflict_and_deleted(&b).iter()).any(|d| d.as_slice() == b"FS1's edit, earlier")
    }, || format!("{:?} {:?}", conflict_and_deleted(&a), conflict_and_deleted(&b)));
    // The same new name on both: one name, the same file on both, the
    // other kept.
    wait_for("same.txt converged", 60, || {
        let (x, y) = (on(&a, "same.txt"), on(&b, "same.txt"));
        x.is_some() && x == y
    }, || format!("FS1: {:?}\nFS2: {:?}", on(&a, "same.txt"), on(&b, "same.txt")));
    let winner = on(&a, "same.txt").unwrap();
    let loser: &[u8] = if winner == b"FS2's new file, later" { b"FS1's new file, earlier" } else { b"FS2's new file, later" };
    wait_for("the name conflict's loser kept", 30, || {
        conflict_and_deleted(&a).iter().chain(conflict_and_deleted(&b).iter()).any(|d| d.as_slice() == loser)
    }, || format!("{:?} {:?}", conflict_and_deleted(&a), conflict_and_deleted(&b)));
    wait_for("both the same", 30, || disk_tree(&a.share()) == disk_tree(&b.share()), || {
        format!("{:?}\n{:?}", disk_tree(&a.share()).keys().collect::<Vec<_>>(), disk_tree(&b.share()).keys().collect::<Vec<_>>())
    });
}

/// dfsrd's children of `pid` named `comm` (dfsrd-rpc, dfsrd-member).
fn child_named(pid: u32, comm: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|p: &u32| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
}

/// InitializeFileTransferAsync calls (opnum 13) FS1's listener answered.
fn downloads_served(m: &Member) -> usize {
    m.smbd.log_text().lines().filter(|l| l.contains("rpc: call peer=") && l.contains("opnum=13 ")).count()
}

#[test]
fn kill_9_of_each_dfsrd_process_during_an_initial_sync_converges() {
    const N: usize = 1000;
    // Files added when FS2 has caught up: enough that their sync outlasts
    // the kill's delay (about 2 s at the member's speed).
    const BATCH: usize = 1000;
    let lab = Lab::new(98, 2);
    let dir = TestDir::new("kill9");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let mut b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    // FS2 is down while FS1 gets its tree: the whole tree is its initial sync.
    b.dfsrd = None;
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    let src = dir.0.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut cmds = Vec::new();
    for d in 0..10 {
        cmds.push(format!("mkdir d{d}"));
    }
    for i in 0..N {
        let f = src.join(format!("f{i}"));
        // About 56 KB each: the sync lasts long enough for ten kills.
        std::fs::write(&f, format!("file {i:04} of the initial sync ").repeat(1500 + i % 600)).unwrap();
        cmds.push(format!("put {} d{}\\f{i}.txt", f.display(), i % 10));
    }
    a.smbclient(&cmds.join("; "));
    let changes = |m: &Member| m.report()["folders"][0]["local_changes"].as_u64().unwrap_or(0);
    wait_for("FS1's scan of the tree", 120, || changes(&a) >= (N + 10) as u64, || a.status());

    // Ten rounds: FS2's dfsrd starts and one of the processes of FS2 or
    // FS1 is killed at a random point.
    let mut seed = u64::from(std::process::id()) | 1;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut a = a;
    let mut expected = N + 10;
    let mut during = 0;
    for round in 0..10 {
        if count_entries(&b.share()) == expected {
            // Caught up already: more for FS1, so this kill, too, lands in
            // a sync (FS2 down meanwhile: its open session would take the
            // new files before the kill).
            b.dfsrd = None;
            let before = changes(&a);
            let mut more = Vec::new();
            for i in 0..BATCH {
                let f = src.join(format!("r{round}-{i}"));
                std::fs::write(&f, format!("round {round} file {i:03} ").repeat(100)).unwrap();
                more.push(format!("put {} d{}\\r{round}-{i}.txt", f.display(), i % 10));
            }
            a.smbclient(&more.join("; "));
            expected += BATCH;
            wait_for("FS1's scan of the new files", 60, || changes(&a) >= before + BATCH as u64, || a.status());
        }
        if b.dfsrd.is_none() {
            b.start_dfsrd();
        }
        std::thread::sleep(Duration::from_millis(100 + rnd(900)));
        if count_entries(&b.share()) < expected {
            during += 1;
        }
        let (who, what) = [("FS2", "dfsrd"), ("FS2", "dfsrd-member"), ("FS2", "dfsrd-rpc"), ("FS1", "dfsrd-rpc"), ("FS1", "dfsrd")][round % 5];
        let m = if who == "FS1" { &mut a } else { &mut b };
        let main = m.dfsrd.as_ref().unwrap().pid();
        if what == "dfsrd" {
            m.dfsrd.as_mut().unwrap().kill9();
            m.dfsrd = None;
            // Its children die with it (PR_SET_PDEATHSIG).
            std::thread::sleep(Duration::from_millis(300));
            if who == "FS1" {
                m.start_dfsrd();
            }
        } else if let Some(p) = child_named(main, what) {
            let _ = Command::new("kill").args(["-KILL", &p.to_string()]).status();
        }
        eprintln!("round {round}: killed {who}'s {what}; FS2 has {} entries", count_entries(&b.share()));
    }
    if b.dfsrd.is_none() {
        b.start_dfsrd();
    }
    // The kill point is random; most must land while FS2 is behind.
    assert!(during >= 7, "only {during} of 10 kills landed during a sync");
    wait_for(
        "FS2 converged after the kills",
        300,
        || count_entries(&b.share()) == expected && b.report()["folders"][0]["pending"].as_u64() == Some(0),
        || format!("FS2 has {} entries: {}", count_entries(&b.share()), b.status()),
    );
    // No partial file: every file whole, as on FS1.
    wait_for("the same on disk", 30, || disk_tree(&a.share()) == disk_tree(&b.share()), String::new);
    let installing = b.share().join("DfsrPrivate/Installing");
    let left: Vec<_> = std::fs::read_dir(&installing).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left in {}: {left:?}", installing.display());
    let check = b.ctl(&["db", "check"]);
    assert!(check.contains("consistent"), "{check}");
    // Interrupted downloads are fetched again, nothing else: at most the
    // files plus what was in flight at each kill.
    let served = downloads_served(&a);
    let files = expected - 10;
    eprintln!("downloads served: {served} for {files} files ({:.3}x); {during} kills during a sync", served as f64 / files as f64);
    assert!(served <= files + 10 * 16, "{served} downloads for {files} files");
    // And once in sync, a restart downloads nothing: what is installed is
    // known to be installed.
    b.dfsrd = None;
    b.start_dfsrd();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(downloads_served(&a), served, "a restart downloaded installed files again");
    assert_eq!(count_entries(&b.share()), expected);
}

#[test]
fn a_pre_seeded_member_keeps_identical_files_and_sets_the_others_aside() {
    let lab = Lab::new(99, 2);
    let dir = TestDir::new("preseed");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    open_root(&a);
    let src = dir.0.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut cmds = vec!["mkdir d1".to_string(), "mkdir d1\\d2".into()];
    for i in 0..13 {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, format!("file {i} ").repeat(100 + i)).unwrap();
        cmds.push(format!("put {} {}f{i}.txt", f.display(), ["", "d1\\", "d1\\d2\\"][i % 3]));
    }
    a.smbclient(&cmds.join("; "));
    // FS2 was seeded from a copy of FS1's tree (data, NT ACLs, DOS
    // attributes: every xattr), then three files changed there and two
    // were added.
    let st = Command::new("cp").arg("-a").arg(format!("{}/.", a.share().display())).arg(b.share()).status().unwrap();
    assert!(st.success());
    for rel in ["f0.txt", "d1/f1.txt", "d1/d2/f2.txt"] {
        std::fs::write(b.share().join(rel), format!("FS2's own {rel}")).unwrap();
    }
    std::fs::write(b.share().join("only-on-fs2.txt"), b"FS2's extra").unwrap();
    std::fs::write(b.share().join("d1/also-only-on-fs2.txt"), b"FS2's other extra").unwrap();

    configure(&[&a, &b], &[(0, 1), (1, 0)], &[], &dir.0);
    wait_for(
        "FS2 with the primary's tree",
        90,
        || {
            let (x, y) = (disk_tree(&a.share()), disk_tree(&b.share()));
            x.len() == 2 + 13 && x == y
        },
        || format!("{}\nFS1 {:?}\nFS2 {:?}", b.status(), disk_tree(&a.share()).keys().collect::<Vec<_>>(), disk_tree(&b.share()).keys().collect::<Vec<_>>()),
    );
    // Ten identical files were not downloaded: FS1 served only the two
    // directories and the three that differed.
    let kept = b.report()["folders"][0]["kept"].as_u64();
    assert_eq!(kept, Some(10), "{}", b.report());
    assert_eq!(downloads_served(&a), 2 + 3, "downloads FS1 served");
    // What differed, and what only FS2 had, is in PreExisting.
    let pre = b.share().join("DfsrPrivate/PreExisting");
    for (rel, data) in [
        ("f0.txt", "FS2's own f0.txt"),
        ("d1/f1.txt", "FS2's own d1/f1.txt"),
        ("d1/d2/f2.txt", "FS2's own d1/d2/f2.txt"),
        ("only-on-fs2.txt", "FS2's extra"),
        ("d1/also-only-on-fs2.txt", "FS2's other extra"),
    ] {
        assert_eq!(std::fs::read_to_string(pre.join(rel)).ok().as_deref(), Some(data), "{rel} in PreExisting");
    }
    assert_eq!(support::members::count_entries(&pre), 5 + 2, "only what differed is left in PreExisting");
    // And FS2's own files did not travel to FS1.
    assert!(!a.share().join("only-on-fs2.txt").exists());
}

#[test]
fn changes_arrive_by_change_notification_on_one_long_lived_connection() {
    let lab = Lab::new(89, 2);
    let dir = TestDir::new("notify");
    let a = Member::start(&lab, 0, "FS1", &dir.0, &[]);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &[]);
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    open_root(&a);
    let session = || b.report()["sessions"][0].clone();
    wait_for("FS2 in sync with FS1", 60, || session()["state"] == "in sync", || b.status());
    let since = session()["connected_since"].as_u64().expect("FS2's session shows since when it is connected");
    let src = dir.0.join("f");
    for i in 0..5 {
        let want = format!("change {i}");
        std::fs::write(&src, &want).unwrap();
        a.smbclient(&format!("put {} n{i}.txt", src.display()));
        let path = b.share().join(format!("n{i}.txt"));
        wait_for(
            &format!("n{i}.txt on FS2"),
            30,
            || std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()),
            || b.status(),
        );
    }
    // The same connection carried every change, each announced by the
    // answer to the CHANGE_NOTIFY poll FS2 left waiting on FS1.
    let s = session();
    assert_eq!(s["connected_since"].as_u64(), Some(since), "FS2 connected again: {s}");
    assert!(s["notifications"].as_u64().unwrap_or(0) >= 5, "the changes did not come by change notification: {s}");
    assert!(b.status().contains("change notifications"), "{}", b.status());
}

#[test]
fn client_changes_are_captured_by_the_module_with_no_scan_due() {
    let lab = Lab::new(88, 2);
    let dir = TestDir::new("capture");
    // Only the scan at start: whatever arrives later was captured.
    let hour = ["dfsr:scan interval = 3600".to_string()];
    let a = Member::start(&lab, 0, "FS1", &dir.0, &hour);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &hour);
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    wait_for("FS2 in sync with FS1", 60, || b.report()["sessions"][0]["state"] == "in sync", || b.status());
    let src = dir.0.join("f");
    let same = |what: &str, path: &str| {
        wait_for(what, 30, || shown(&a, path) == shown(&b, path), || format!("FS1:\n{}\nFS2:\n{}\n{}", shown(&a, path), shown(&b, path), b.status()));
    };
    let on_b = |rel: &str| std::fs::read(b.share().join(rel)).ok();

    std::fs::write(&src, b"one").unwrap();
    a.smbclient(&format!("put {} f1.txt", src.display()));
    wait_for("a new file", 30, || on_b("f1.txt").as_deref() == Some(&b"one"[..]), || b.status());
    std::fs::write(&src, b"one, written again").unwrap();
    a.smbclient(&format!("put {} f1.txt", src.display()));
    wait_for("a write", 30, || on_b("f1.txt").as_deref() == Some(&b"one, written again"[..]), || b.status());
    a.smbclient("mkdir d");
    wait_for("a new directory", 30, || b.share().join("d").is_dir(), || b.status());
    a.smbclient("rename f1.txt d\\f2.txt");
    wait_for("a rename and move", 30, || on_b("d/f2.txt").is_some() && on_b("f1.txt").is_none(), || b.status());
    a.smbcacls("d\\f2.txt", &["-a", "ACL:S-1-5-21-1-2-3-1001:ALLOWED/0x0/READ"]);
    same("an ACL", "d\\f2.txt");
    assert!(shown(&b, "d\\f2.txt").contains("S-1-5-21-1-2-3-1001"));
    a.smbclient("setmode d\\f2.txt +h");
    same("attributes", "d\\f2.txt");
    a.smbclient("utimes d\\f2.txt 2001:02:03-04:05:06 2002:02:03-04:05:06 2003:02:03-04:05:06 2004:02:03-04:05:06");
    same("times", "d\\f2.txt");
    std::fs::write(&src, b"a stream").unwrap();
    a.smbclient(&format!("put {} d\\f2.txt:notes", src.display()));
    same("an alternate stream", "d\\f2.txt");
    assert!(shown(&b, "d\\f2.txt").contains("notes"), "{}", shown(&b, "d\\f2.txt"));
    // An editor's save: the new content to a temporary, the original to a
    // backup, the temporary over the original, the backup deleted. One
    // change of the original on B, with its UID; nothing else made there.
    let uid = a.uid_of("f2.txt").expect("f2.txt has a UID on FS1");
    wait_for("f2.txt's UID on FS2", 30, || b.uid_of("f2.txt").as_ref() == Some(&uid), || b.status());
    let records_on_b = b.updates().len();
    std::fs::write(&src, b"saved by an editor").unwrap();
    a.smbclient(&format!("put {} d\\~wrl0001.tmp; rename d\\f2.txt d\\f2.bak; rename d\\~wrl0001.tmp d\\f2.txt; del d\\f2.bak", src.display()));
    wait_for("an editor's save", 30, || on_b("d/f2.txt").as_deref() == Some(&b"saved by an editor"[..]), || b.status());
    assert_eq!(b.uid_of("f2.txt"), Some(uid.clone()), "the save made a new file on FS2");
    let names: Vec<String> = b.updates().iter().map(|u| u["name"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(names.len(), records_on_b, "the save's temporary or backup replicated: {names:?}");
    assert!(!b.share().join("d/f2.bak").exists() && !b.share().join("d/~wrl0001.tmp").exists());
    a.smbclient("del d\\f2.txt");
    wait_for("a delete", 30, || on_b("d/f2.txt").is_none(), || b.status());
    a.smbclient("rmdir d");
    wait_for("a removed directory", 30, || !b.share().join("d").exists(), || b.status());

    let f = a.report()["folders"][0].clone();
    assert!(f["captured"].as_u64().unwrap_or(0) >= 10, "FS1 took up no recorded changes: {f}");
    assert!(a.status().contains("client changes recorded by smbd"), "{}", a.status());
}

/// p-th percentile (0-100) of `v`, sorted in place.
fn percentile(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

#[test]
fn small_writes_arrive_in_seconds_each_and_make_no_echo() {
    let lab = Lab::new(87, 2);
    let dir = TestDir::new("latency");
    let hour = ["dfsr:scan interval = 3600".to_string()];
    let a = Member::start(&lab, 0, "FS1", &dir.0, &hour);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &hour);
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    wait_for("FS2 in sync with FS1", 60, || b.report()["sessions"][0]["state"] == "in sync", || b.status());
    let src = dir.0.join("f");
    let writes: usize = std::env::var("DFSR_LATENCY_WRITES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut took = Vec::with_capacity(writes);
    for i in 0..writes {
        let mut want = vec![b'a' + (i % 26) as u8; 4096];
        want[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(&src, &want).unwrap();
        a.smbclient(&format!("put {} w{i}.bin", src.display()));
        let written = std::time::Instant::now();
        let path = b.share().join(format!("w{i}.bin"));
        while std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
            assert!(written.elapsed() < Duration::from_secs(5), "w{i}.bin not on FS2 within 5 s\n{}", b.status());
            std::thread::sleep(Duration::from_millis(5));
        }
        took.push(written.elapsed());
    }
    let (p50, p99) = (percentile(&mut took, 50), percentile(&mut took, 99));
    eprintln!("propagation A → B of {writes} 4 KiB writes: p50 {p50:?}, p99 {p99:?}");
    // No echo: what FS2 installed made no version of its own there, and
    // its module recorded nothing of the meet's installs.
    let a_db: std::collections::BTreeSet<String> = a.updates().iter().map(|u| originator(&u["gvsn"])).collect();
    let ours: Vec<serde_json::Value> = b.updates().into_iter().filter(|u| !a_db.contains(&originator(&u["gvsn"]))).collect();
    assert!(ours.is_empty(), "FS2 made versions of what it received: {ours:?}");
    let f = b.report()["folders"][0].clone();
    assert_eq!(f["captured"].as_u64(), Some(0), "FS2's module recorded the meet's installs: {f}");
    assert_eq!(f["journal_depth"].as_u64(), Some(0), "{f}");
}

#[test]
fn changes_made_while_dfsrd_is_down_are_replayed_from_the_journal() {
    let lab = Lab::new(86, 2);
    let dir = TestDir::new("replay");
    let hour = ["dfsr:scan interval = 3600".to_string()];
    let mut a = Member::start(&lab, 0, "FS1", &dir.0, &hour);
    let b = Member::start(&lab, 1, "FS2", &dir.0, &hour);
    configure(&[&a, &b], &[(0, 1)], &[], &dir.0);
    let src = dir.0.join("f");
    std::fs::write(&src, b"before").unwrap();
    let mut cmds: Vec<String> = (0..10).map(|i| format!("put {} old{i}.txt", src.display())).collect();
    a.smbclient(&cmds.join("; "));
    wait_for("the first files on FS2", 60, || b.share().join("old9.txt").exists(), || b.status());

    a.dfsrd.as_mut().expect("FS1's dfsrd").stop();
    // Started again without the scan at start: only the journal can
    // carry what was done meanwhile.
    let conf = std::fs::read_to_string(&a.smbd.conf).unwrap().replacen("[global]\n", "[global]\n\tdfsr:scan at start = no\n", 1);
    std::fs::write(&a.smbd.conf, conf).unwrap();
    // 100 changes: 80 new files, 10 renamed, 5 deleted, 5 written again.
    std::fs::write(&src, b"while dfsrd was down").unwrap();
    cmds = (0..80).map(|i| format!("put {} new{i}.txt", src.display())).collect();
    cmds.extend((0..5).map(|i| format!("rename old{i}.txt renamed{i}.txt")));
    cmds.extend((5..10).map(|i| format!("rename new{i}.txt renamed{i}.txt")));
    cmds.extend((5..10).map(|i| format!("del old{i}.txt")));
    cmds.extend((0..5).map(|i| format!("put {} renamed{i}.txt", src.display())));
    assert_eq!(cmds.len(), 100);
    a.smbclient(&cmds.join("; "));
    let log_before = a.smbd.log_text().len();
    a.start_dfsrd();

    let want: std::collections::BTreeMap<String, String> = (0..10)
        .map(|i| (format!("renamed{i}.txt"), "while dfsrd was down".to_string()))
        .chain((0..80).filter(|i| !(5..10).contains(i)).map(|i| (format!("new{i}.txt"), "while dfsrd was down".to_string())))
        .collect();
    let on_b = || -> std::collections::BTreeMap<String, String> {
        std::fs::read_dir(b.share())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap_or_default()))
            .filter(|(name, _)| name != "DfsrPrivate")
            .collect()
    };
    wait_for("the 100 changes on FS2", 60, || on_b() == want, || format!("{:?}\n{}", on_b(), b.status()));
    let log = a.smbd.log_text()[log_before..].to_string();
    assert!(log.contains("journal replayed"), "FS1's log does not show the journal replayed:\n{log}");
    assert!(!log.contains("member: scanned [data]"), "FS1 scanned the whole folder:\n{log}");
}
