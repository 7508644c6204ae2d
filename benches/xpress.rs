//! LZ77+Huffman throughput: our decoder and encoder beside the
//! `xpress-huffman` crate's decoder, over the Windows-made MS-XCA vectors
//! and a 256 MB mixed input generated in-process. Not a test: it prints.
//!
//! Run: `cargo bench --bench xpress` (set XPRESS_BENCH_MB to change the
//! size of the generated input).

use samba_dfsr::staging::xpress::{Decoder, Effort, Encoder};
use std::time::{Duration, Instant};

include!("../src/staging/xpress/vectors_dir.rs");

fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

/// Repeats `f` until at least `min` has passed; returns time per run.
fn time<F: FnMut()>(min: Duration, mut f: F) -> Duration {
    let start = Instant::now();
    let mut runs = 0u32;
    while runs == 0 || start.elapsed() < min {
        f();
        runs += 1;
    }
    start.elapsed() / runs
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Text, random bytes, runs and near-copies of earlier data, in segments;
/// runs stay short enough for decoders that only know 16-bit lengths.
fn mixed(size: usize) -> Vec<u8> {
    generate(size, None)
}

const KINDS: [&str; 4] = ["text", "random", "runs", "near-copies"];

/// Segments of one kind only, or (None) of all kinds in turn at random.
fn generate(size: usize, only: Option<usize>) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "replication", "of", "staged", "file", "partner", "member", "version", "vector",
        "update", "and", "to", "a", "in", "Samba", "DFS", "namespace", "server", "client", "is",
    ];
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut v = Vec::with_capacity(size + 70_000);
    while v.len() < size {
        let seg = 4096 + r.below(60_000);
        let kind = r.below(4);
        // Near-copies need something to copy: start with text.
        let kind = if v.is_empty() { 0 } else { only.unwrap_or(kind) };
        match kind {
            0 => {
                let end = v.len() + seg;
                while v.len() < end {
                    v.extend_from_slice(WORDS[r.below(WORDS.len())].as_bytes());
                    v.push(if r.below(12) == 0 { b'\n' } else { b' ' });
                }
            }
            1 => {
                for _ in 0..seg / 8 {
                    v.extend_from_slice(&r.next().to_le_bytes());
                }
            }
            2 => {
                let b = r.below(256) as u8;
                v.resize(v.len() + seg.min(4096), b);
            }
            _ => {
                let seg = seg.min(v.len() / 2);
                if seg > 0 {
                    let lo = v.len().saturating_sub(60_000).min(v.len() - seg);
                    let from = lo + r.below(v.len() - seg - lo + 1);
                    for i in 0..seg {
                        let b = v[from + i];
                        v.push(if r.below(64) == 0 { b ^ 0x55 } else { b });
                    }
                }
            }
        }
    }
    v.truncate(size);
    v
}

fn main() {
    let min = Duration::from_millis(300);
    let dir = testdata();
    let mut corpus = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("compressed-huffman")) {
        for e in rd.flatten() {
            let p = e.path();
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let plain = dir.join("decompressed").join(format!("{stem}.decomp"));
            if let (Ok(c), Ok(d)) = (std::fs::read(&p), std::fs::read(&plain)) {
                corpus.push((stem, c, d));
            }
        }
    }
    corpus.sort_by(|a, b| a.0.cmp(&b.0));
    let total: usize = corpus.iter().map(|x| x.2.len()).sum();
    println!("MS-XCA vectors: {} files, {} bytes decompressed", corpus.len(), total);

    let mut dec = Decoder::new();
    let mut out = Vec::new();
    let t_ours = time(min, || {
        for (_, c, d) in &corpus {
            dec.decompress_exact(c, d.len(), &mut out).expect("our decoder");
        }
    });
    let mut theirs_ok = 0;
    for (_, c, d) in &corpus {
        if xpress_huffman::decompress(c, d.len()).ok().as_deref() == Some(&d[..]) {
            theirs_ok += 1;
        }
    }
    let t_theirs = time(min, || {
        for (_, c, d) in &corpus {
            let _ = std::hint::black_box(xpress_huffman::decompress(c, d.len()));
        }
    });
    println!(
        "  decode: ours {:8.1} MB/s | xpress-huffman {:8.1} MB/s ({theirs_ok}/{} exact) | ratio {:.2}x",
        mbps(total, t_ours),
        mbps(total, t_theirs),
        corpus.len(),
        t_theirs.as_secs_f64() / t_ours.as_secs_f64()
    );
    // XPRESS_BENCH_EFFORT=chain,nice,far3,lazy,insert,good,skip tries other matcher settings.
    let mut effort = Effort::default();
    if let Ok(s) = std::env::var("XPRESS_BENCH_EFFORT") {
        let v: Vec<usize> = s.split(',').filter_map(|x| x.parse().ok()).collect();
        if let [c, n, f, l, i, g, k] = v[..] {
            effort = Effort {
                max_chain: c as u32,
                nice_len: n,
                far_3: f,
                max_lazy: l,
                max_insert: i,
                good_len: g,
                skip_after: k as u32,
            };
        }
    }
    println!("  encoder effort: {effort:?}");
    let mut enc = Encoder::with_effort(effort);
    let mut comp = Vec::new();
    let t_enc = time(min, || {
        for (_, _, d) in &corpus {
            comp.clear();
            enc.compress_into(d, &mut comp);
        }
    });
    let (mut ours_sz, mut win_sz) = (0usize, 0usize);
    for (_, c, d) in &corpus {
        comp.clear();
        enc.compress_into(d, &mut comp);
        ours_sz += comp.len();
        win_sz += c.len();
    }
    println!(
        "  encode: ours {:8.1} MB/s | size ours {ours_sz} vs Windows {win_sz} ({:.3})",
        mbps(total, t_enc),
        ours_sz as f64 / win_sz as f64
    );

    for (k, name) in KINDS.iter().enumerate() {
        let data = generate(16 << 20, Some(k));
        let mut comp = Vec::with_capacity(data.len());
        let t0 = Instant::now();
        enc.compress_into(&data, &mut comp);
        let t = t0.elapsed();
        println!("  encode {name:12}: {:8.1} MB/s, ratio {:.3}", mbps(data.len(), t), comp.len() as f64 / data.len() as f64);
    }
    let mb: usize = std::env::var("XPRESS_BENCH_MB").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let data = mixed(mb << 20);
    println!("mixed input: {} MiB generated", mb);
    let mut comp = Vec::with_capacity(data.len());
    let t0 = Instant::now();
    enc.compress_into(&data, &mut comp);
    let t_enc = t0.elapsed();
    println!(
        "  encode: ours {:8.1} MB/s, {} -> {} bytes ({:.3})",
        mbps(data.len(), t_enc),
        data.len(),
        comp.len(),
        comp.len() as f64 / data.len() as f64
    );
    let t0 = Instant::now();
    dec.decompress_exact(&comp, data.len(), &mut out).expect("our decoder");
    let t_ours = t0.elapsed();
    assert!(out == data, "round trip differs");
    drop(out);
    let t0 = Instant::now();
    let theirs = xpress_huffman::decompress(&comp, data.len());
    let t_theirs = t0.elapsed();
    let same = theirs.as_deref().ok() == Some(&data[..]);
    println!(
        "  decode: ours {:8.1} MB/s | xpress-huffman {:8.1} MB/s (output {}) | ratio {:.2}x",
        mbps(data.len(), t_ours),
        mbps(data.len(), t_theirs),
        if same { "identical" } else { "DIFFERENT" },
        t_theirs.as_secs_f64() / t_ours.as_secs_f64()
    );
}
