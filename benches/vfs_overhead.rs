//! `make bench`: the dfsr module's overhead. The same smbclient workload —
//! 2000 small files (create/write/close) and one 200 MB sequential write —
//! on [data] (dfsr acl_xattr streams_xattr) and [plain] (acl_xattr
//! streams_xattr) of one smbd, interleaved round by round (the order
//! alternates), then median times and the ratio data/plain. Goal ≤ 1.02.
//! Not a test: it prints. BENCH_ROUNDS (default 5), BENCH_BIG_MB (200),
//! BENCH_SMALL_FILES (2000) change the size.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Smbd, SmbdConfig, TestDir};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn timed(smbd: &Smbd, share: &str, commands: &str) -> Duration {
    let start = Instant::now();
    let out = smbd.smbclient(share, commands);
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "smbclient on [{share}] failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn clear(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds = env_num("BENCH_ROUNDS", 5);
    let big_mb = env_num("BENCH_BIG_MB", 200);
    let small = env_num("BENCH_SMALL_FILES", 2000);

    let work = TestDir::new("bench");
    let small_dir = work.0.join("small");
    fs::create_dir(&small_dir).unwrap();
    for i in 0..small {
        fs::write(small_dir.join(format!("f{i:05}.txt")), format!("small file {i}\n").repeat(16)).unwrap();
    }
    let big = work.0.join("big.bin");
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let mut data = Vec::with_capacity(big_mb * chunk.len());
    for _ in 0..big_mb {
        data.extend_from_slice(&chunk);
    }
    fs::write(&big, &data).unwrap();
    drop(data);

    let smbd = Smbd::start(SmbdConfig { log_level: "0".into(), ..Default::default() });
    let small_cmd = format!("prompt off; lcd {}; mput *", small_dir.display());
    let big_cmd = format!("put {} big.bin", big.display());
    let mut times: [[Vec<Duration>; 2]; 2] = Default::default(); // [share][workload]
    let shares = ["data", "plain"];
    println!("vfs_overhead: {rounds} rounds of {small} small files + {big_mb} MB, interleaved");
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for s in order {
            let share = shares[s];
            times[s][0].push(timed(&smbd, share, &small_cmd));
            times[s][1].push(timed(&smbd, share, &big_cmd));
            clear(&smbd.share_path(share));
        }
        eprint!(".");
    }
    eprintln!();
    for (w, name) in ["2000 small files", "sequential write"].iter().enumerate() {
        let d = median(&mut times[0][w]);
        let p = median(&mut times[1][w]);
        println!(
            "{name:>18}: [data] {:8.3} s  [plain] {:8.3} s  ratio data/plain {:.3}",
            d.as_secs_f64(),
            p.as_secs_f64(),
            d.as_secs_f64() / p.as_secs_f64()
        );
    }
    let total = |s: usize| -> f64 { times[s].iter().flatten().map(Duration::as_secs_f64).sum() };
    println!("{:>18}: ratio data/plain {:.3} (goal <= 1.02)", "all rounds", total(0) / total(1));
}
