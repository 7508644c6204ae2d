//! `cargo bench --bench member_sync`: the initial sync of a tree from FS1
//! to FS2 by the DFS-R member, beside `rsync -aAX` of the same tree
//! between the same two hosts (an rsync daemon on FS1), in one run. Each
//! member is a network namespace with its own smbd and dfsrd (the test
//! harness of tests/member.rs).
//!
//! Workload: N files (BENCH_FILES, default 10000) of 4 KiB in 100
//! directories, each with one alternate stream and an ACL set with
//! smbcacls (one file is made through smbclient/smbcacls, the others are
//! copies of it with `cp -a`, their data rewritten). FS1 scans the tree
//! first (timed apart); the sync is timed from FS2's dfsrd start to every
//! file placed. Not a test: it prints the times and the ratio.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::members::{configure, count_entries, Lab, Member};
use support::TestDir;

fn main() {
    let n: usize = std::env::var("BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dirs = 100usize;
    let lab = Lab::new(90, 2);
    let work = TestDir::new("bench-member");
    // Samba's log at level 1 (the harness's 3 logs a line per file).
    let quiet = "log level = 1".to_string();
    let a = Member::start(&lab, 0, "FS1", &work.0, &["dfsr:scan interval = 3600".into(), quiet.clone()]);
    let mut b = Member::start(&lab, 1, "FS2", &work.0, &[quiet]);
    b.dfsrd = None;

    // The template: data, a stream and an ACL, through smbd.
    a.smbcacls("\\", &["-a", "ACL:S-1-1-0:ALLOWED/OI|CI/FULL"]);
    let t = work.0.join("template");
    std::fs::write(&t, vec![b'x'; 4096]).unwrap();
    let s = work.0.join("stream");
    std::fs::write(&s, b"one alternate stream of the benchmark's files\n").unwrap();
    a.smbclient(&format!("put {} template.txt; put {} template.txt:notes", t.display(), s.display()));
    a.smbcacls("template.txt", &["-a", "ACL:S-1-5-21-1-2-3-1001:ALLOWED/0x0/READ"]);
    let share = a.share();
    let template = share.join("template.txt");
    let made = Instant::now();
    for d in 0..dirs {
        let dir = share.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
    }
    for i in 0..n {
        let f = share.join(format!("d{:03}/f{i:05}.txt", i % dirs));
        let st = Command::new("cp").arg("-a").arg(&template).arg(&f).status().unwrap();
        assert!(st.success());
        let data: Vec<u8> = (0..4096u32).map(|j| ((i as u32).wrapping_mul(2_654_435_761) ^ j) as u8).collect();
        std::fs::write(&f, data).unwrap();
    }
    std::fs::remove_file(&template).unwrap();
    eprintln!("made {n} files in {:.1} s", made.elapsed().as_secs_f64());
    let total = n + dirs;

    // FS1 scans its tree at start (timed apart), then FS2 syncs.
    configure(&[&a, &b], &[(0, 1)], &[], &work.0);
    let scan = Instant::now();
    let changes = |m: &Member| m.report()["folders"][0]["local_changes"].as_u64().unwrap_or(0) as usize;
    while changes(&a) < total {
        assert!(scan.elapsed() < Duration::from_secs(1800), "FS1's scan: {}", a.status());
        std::thread::sleep(Duration::from_millis(200));
    }
    let scan_s = scan.elapsed().as_secs_f64();
    let sync = Instant::now();
    b.start_dfsrd();
    while !(count_entries(&b.share()) == total && b.report()["folders"][0]["pending"].as_u64() == Some(0)) {
        assert!(sync.elapsed() < Duration::from_secs(3600), "FS2's sync: {}", b.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    let dfsr_s = sync.elapsed().as_secs_f64();

    // rsync -aAX of the same tree, FS1's rsync daemon to a fresh
    // directory on FS2.
    let conf = work.0.join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "uid = root\ngid = root\nuse chroot = no\npid file = {}/rsyncd.pid\n[share]\n\tpath = {}\n\tread only = yes\n\texclude = DfsrPrivate\n",
            work.0.display(),
            share.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new("ip")
        .args(["netns", "exec", &a.ns, "rsync", "--daemon", "--no-detach", "--port=8873", "--config"])
        .arg(&conf)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let dst = work.0.join("rsync-dst");
    std::fs::create_dir_all(&dst).unwrap();
    let r = Instant::now();
    let out = b.in_ns("rsync", &["-aAX", "--port=8873", &format!("rsync://{}/share/", a.addr), dst.to_str().unwrap()]);
    let rsync_s = r.elapsed().as_secs_f64();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(out.status.success(), "rsync: {}", String::from_utf8_lossy(&out.stderr));
    let rsync_n = count_entries(&dst);

    // smbclient putting the same files (data only: it copies no stream
    // or ACL) from FS1 into FS2's [plain] share, one session.
    let put = Instant::now();
    let out = a.in_ns(
        "smbclient",
        &[
            &format!("//{}/plain", b.addr),
            "-U",
            &format!("{}%{}", support::USER, support::PASSWORD),
            "-c",
            &format!("prompt off; recurse on; lcd {}; mput d*", share.display()),
        ],
    );
    let put_s = put.elapsed().as_secs_f64();
    assert!(out.status.success(), "smbclient mput: {}", String::from_utf8_lossy(&out.stderr));
    let put_n = count_entries(&b.smbd.share_path("plain"));

    // The ACL as FS2's smbd shows it, for one file, by each route.
    let f = format!("d000\\f{:05}.txt", 0);
    let on_fs2 = b.smbcacls(&f, &[]);
    let on_fs1 = a.smbcacls(&f, &[]);

    println!("member initial sync, {n} files of 4 KiB with a stream and an ACL, FS1 -> FS2 (network namespaces):");
    println!("  FS1's scan (staging every file through the VFS): {scan_s:.2} s ({:.0} files/s)", n as f64 / scan_s);
    println!("  DFS-R member sync:  {dfsr_s:.2} s ({:.0} files/s), {total} entries placed", n as f64 / dfsr_s);
    println!("  rsync -aAX daemon:  {rsync_s:.2} s ({:.0} files/s), {rsync_n} entries", n as f64 / rsync_s);
    println!("  speed ratio (rsync time / member time): {:.2}x", rsync_s / dfsr_s);
    println!("  smbclient mput FS1 -> FS2 [plain]: {put_s:.2} s ({:.0} files/s, data only), {put_n} entries", n as f64 / put_s);
    println!("  member files/s / smbclient put files/s: {:.2}x", put_s / dfsr_s);
    println!("  FS2's ACL equals FS1's as smbd shows it: {}", on_fs1 == on_fs2);
}
