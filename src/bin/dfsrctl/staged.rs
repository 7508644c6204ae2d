//! `dfsrctl staged inspect|extract|create`: staged files (MS-FRS2
//! §3.2.4.1.14) — FRSX/XBLO framing around the marshaled MS-BKUP format.
//!
//! Wiring in main.rs (`--json` is main's global flag, passed in):
//! ```ignore
//! mod staged;
//! // in enum Command:
//! /// Staged files (FRSX/XBLO, marshaled MS-BKUP)
//! Staged {
//!     #[command(subcommand)]
//!     cmd: staged::StagedCommand,
//! },
//! // in main():
//! Command::Staged { cmd } => staged::run(cmd, cli.json).map_err(CliError::Other),
//! // with CliError gaining: #[error("{0}")] Other(Box<dyn std::error::Error>),
//! ```
//! Everything streams: memory stays O(block) whatever the file size.
//! Errors name the file, the byte offset and what was wrong.

use clap::Subcommand;
use samba_dfsr::staging::filetime::{from_iso8601, from_system_time, to_iso8601};
use samba_dfsr::staging::frsx::FrsxReader;
use samba_dfsr::staging::writer::FileHeader;
use samba_dfsr::store::staged_file::{self, CreateSpec};
use samba_dfsr::staging::marshal::{Event, MarshalError, MarshalReader, Metadata, StreamKind};
use samba_dfsr::staging::security_descriptor::SecurityDescriptor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug, Clone)]
pub enum StagedCommand {
    /// Show metadata, security descriptor (SDDL), streams and the DFS-R hash.
    Inspect { file: PathBuf },
    /// Unpack into DIR: data, streams/<name>, security.sddl, metadata.json.
    Extract { file: PathBuf, dir: PathBuf },
    /// Build a staged file from a main data file, alternate streams and an SD.
    Create {
        /// Main data stream.
        #[arg(long)]
        data: PathBuf,
        /// Alternate data stream NAME taken from FILE (repeatable).
        #[arg(long = "stream", value_name = "NAME=FILE")]
        streams: Vec<String>,
        /// Security descriptor in SDDL, e.g. "O:BAG:SYD:(A;;FA;;;SY)".
        #[arg(long)]
        sddl: Option<String>,
        /// FILE_ATTRIBUTE_* bits (decimal or 0x hex); default 0x20 (archive).
        #[arg(long)]
        attributes: Option<String>,
        /// ISO 8601 time (or FILETIME ticks); default from the data file.
        #[arg(long)]
        creation_time: Option<String>,
        #[arg(long)]
        last_access_time: Option<String>,
        #[arg(long)]
        last_write_time: Option<String>,
        #[arg(long)]
        change_time: Option<String>,
        /// Stage the data as sparse blocks: the data file's holes stay holes.
        #[arg(long)]
        sparse: bool,
        /// A reparse data buffer (as FSCTL_GET_REPARSE_POINT returns it)
        /// taken from FILE.
        #[arg(long, value_name = "FILE")]
        reparse: Option<PathBuf>,
        out: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StagedError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: MarshalError },
    #[error("{path}: stream at marshaled offset {offset}: unsafe stream name {name:?} (contains '/', '\\', NUL, a control character, or is '.', '..' or empty)")]
    UnsafeStreamName { path: PathBuf, offset: u64, name: String },
    #[error("{path}: sparse block at marshaled offset {offset} has no preceding data stream")]
    OrphanSparse { path: PathBuf, offset: u64 },
    #[error("invalid argument {arg}: {reason}")]
    Argument { arg: String, reason: String },
}

pub fn run(cmd: &StagedCommand, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        StagedCommand::Inspect { file } => {
            let r = inspect(file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r.to_json()).unwrap_or_default());
            } else {
                print!("{}", r.to_text());
            }
        }
        StagedCommand::Extract { file, dir } => {
            let r = extract(file, dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r.to_json()).unwrap_or_default());
            } else {
                println!("extracted {} stream(s) to {}; frs_hash {}", r.streams.len(), dir.display(), hex(&r.frs_hash));
            }
        }
        StagedCommand::Create {
            data,
            streams,
            sddl,
            attributes,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            sparse,
            reparse,
            out,
        } => {
            let mut spec = spec_from_args(
                data,
                streams,
                sddl.as_deref(),
                attributes.as_deref(),
                [creation_time, last_access_time, last_write_time, change_time],
            )?;
            spec.sparse = *sparse;
            if let Some(r) = reparse {
                spec.header.reparse = Some(std::fs::read(r).map_err(|source| StagedError::Io { path: r.clone(), source })?);
            }
            let hash = create(&spec, out)?;
            if json {
                println!("{}", json!({ "file": out, "frs_hash": hex(&hash) }));
            } else {
                println!("{}: frs_hash {}", out.display(), hex(&hash));
            }
        }
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One MS-BKUP stream (or the reparse chunk) as inspect reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub kind: StreamKind,
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub metadata: Option<Metadata>,
    pub sddl: Option<String>,
    pub streams: Vec<StreamInfo>,
    pub frs_hash: [u8; 20],
}

fn metadata_json(m: &Metadata) -> Value {
    json!({
        "version": m.version,
        "creation_time": to_iso8601(m.creation_time),
        "last_access_time": to_iso8601(m.last_access_time),
        "last_write_time": to_iso8601(m.last_write_time),
        "change_time": to_iso8601(m.change_time),
        "attributes": m.attributes,
        "sd_control": m.sd_control,
        "primary_data_size": m.primary_data_size,
    })
}

impl Inspection {
    pub fn to_json(&self) -> Value {
        json!({
            "metadata": self.metadata.as_ref().map(metadata_json),
            "security": self.sddl.as_ref().map(|s| json!({ "sddl": s })),
            "streams": self.streams.iter().map(|s| json!({
                "kind": s.kind.as_str(), "name": s.name, "size": s.size, "sha256": hex(&s.sha256),
            })).collect::<Vec<_>>(),
            "frs_hash": hex(&self.frs_hash),
        })
    }

    pub fn to_text(&self) -> String {
        let mut t = String::new();
        if let Some(m) = &self.metadata {
            t += &format!(
                "metadata: version {}\n  creation    {}\n  last access {}\n  last write  {}\n  change      {}\n  attributes  0x{:08x}\n  sd control  0x{:04x}\n  data size   {}\n",
                m.version, to_iso8601(m.creation_time), to_iso8601(m.last_access_time), to_iso8601(m.last_write_time),
                to_iso8601(m.change_time), m.attributes, m.sd_control, m.primary_data_size
            );
        }
        t += &format!("security: {}\n", self.sddl.as_deref().unwrap_or("(none)"));
        for s in &self.streams {
            t += &format!("stream {:7} {:24} {:>12} bytes  sha256 {}\n", s.kind.as_str(), format!("{:?}", s.name), s.size, hex(&s.sha256));
        }
        t += &format!("frs_hash: {}\n", hex(&self.frs_hash));
        t
    }
}

/// Walks a staged file, calling `sink` for each stream's start and data.
fn walk(
    path: &Path,
    mut on_event: impl FnMut(&Event<'_>, u64) -> Result<(), StagedError>,
) -> Result<Inspection, StagedError> {
    let f = File::open(path).map_err(|source| StagedError::Io { path: path.into(), source })?;
    let mut m = MarshalReader::new(FrsxReader::new(BufReader::with_capacity(1 << 16, f)));
    let fmt = |source| StagedError::Format { path: path.into(), source };
    let mut r = Inspection { metadata: None, sddl: None, streams: Vec::new(), frs_hash: [0; 20] };
    let mut cur: Option<(StreamInfo, Sha256)> = None;
    loop {
        let at = m.offset();
        let ev = match m.next().map_err(fmt)? {
            Some(e) => e,
            None => break,
        };
        on_event(&ev, at)?;
        match ev {
            Event::Metadata(x) => r.metadata = Some(x),
            Event::Compression(_) => {}
            Event::Reparse(d) => r.streams.push(StreamInfo {
                kind: StreamKind::Reparse,
                name: String::new(),
                size: d.len() as u64,
                sha256: Sha256::digest(&d).into(),
            }),
            Event::Security { sd, .. } => {
                r.sddl = Some(sd.to_sddl().unwrap_or_else(|e| format!("(not renderable: {e})")));
            }
            Event::StreamStart(h) => {
                let name = match h.kind() {
                    StreamKind::AlternateData => h.name().to_string(),
                    _ => h.raw_name.clone(),
                };
                cur = Some((StreamInfo { kind: h.kind(), name, size: h.data_len(), sha256: [0; 32] }, Sha256::new()));
            }
            Event::Data(d) => {
                if let Some((_, h)) = cur.as_mut() {
                    h.update(d);
                }
            }
            Event::StreamEnd => {
                if let Some((mut s, h)) = cur.take() {
                    s.sha256 = h.finalize().into();
                    r.streams.push(s);
                }
            }
        }
    }
    r.frs_hash = m.frs_hash();
    Ok(r)
}

/// `staged inspect`: everything about a staged file, streamed.
pub fn inspect(path: &Path) -> Result<Inspection, StagedError> {
    walk(path, |_, _| Ok(()))
}

/// Rejects names that could escape `DIR/streams/`.
pub fn safe_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == '\\' || c == '\0' || c.is_control())
}

/// `staged extract`: data, streams/<name>, security.sddl, metadata.json.
pub fn extract(path: &Path, dir: &Path) -> Result<Inspection, StagedError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StagedError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let streams_dir = dir.join("streams");
    // The file being written, and whether it is sparse-capable.
    let mut out: Option<(BufWriter<File>, PathBuf)> = None;
    let mut sparse_target: Option<PathBuf> = None;
    let mut data_path: Option<PathBuf> = None;
    let r = walk(path, |ev, at| {
        match ev {
            Event::StreamStart(h) => {
                if let Some((mut w, p)) = out.take() {
                    w.flush().map_err(io(&p))?;
                }
                let target = match h.kind() {
                    StreamKind::Data => Some(dir.join("data")),
                    StreamKind::AlternateData => {
                        let name = h.name();
                        if !safe_stream_name(name) {
                            return Err(StagedError::UnsafeStreamName { path: path.into(), offset: at, name: name.into() });
                        }
                        std::fs::create_dir_all(&streams_dir).map_err(io(&streams_dir))?;
                        Some(streams_dir.join(name))
                    }
                    StreamKind::Sparse => {
                        // A sparse block belongs to the stream before it.
                        let t = sparse_target.clone().ok_or(StagedError::OrphanSparse { path: path.into(), offset: at })?;
                        let mut f = std::fs::OpenOptions::new().write(true).open(&t).map_err(io(&t))?;
                        f.seek(SeekFrom::Start(h.sparse_offset.unwrap_or(0))).map_err(io(&t))?;
                        out = Some((BufWriter::new(f), t));
                        None
                    }
                    _ => None,
                };
                if let Some(t) = target {
                    let f = File::create(&t).map_err(io(&t))?;
                    if h.kind() == StreamKind::Data {
                        data_path = Some(t.clone());
                    }
                    sparse_target = Some(t.clone());
                    out = Some((BufWriter::with_capacity(1 << 16, f), t));
                }
            }
            Event::Data(d) => {
                if let Some((w, p)) = out.as_mut() {
                    w.write_all(d).map_err(io(p))?;
                }
            }
            Event::StreamEnd => {
                if let Some((mut w, p)) = out.take() {
                    w.flush().map_err(io(&p))?;
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    // Sparse files: the main stream ends at primaryDataStreamSize even if
    // its last range was a hole.
    if let (Some(p), Some(m)) = (&data_path, &r.metadata) {
        let f = std::fs::OpenOptions::new().write(true).open(p).map_err(io(p))?;
        let len = f.metadata().map_err(io(p))?.len();
        if m.primary_data_size > len {
            f.set_len(m.primary_data_size).map_err(io(p))?;
        }
    }
    if let Some(s) = &r.sddl {
        let p = dir.join("security.sddl");
        std::fs::write(&p, format!("{s}\n")).map_err(io(&p))?;
    }
    if let Some(m) = &r.metadata {
        let p = dir.join("metadata.json");
        let text = serde_json::to_string_pretty(&metadata_json(m)).unwrap_or_default();
        std::fs::write(&p, text + "\n").map_err(io(&p))?;
    }
    Ok(r)
}

/// The staged file `staged create` makes, from its arguments; times not
/// given come from the data file.
pub fn spec_from_args(
    data: &Path,
    streams: &[String],
    sddl: Option<&str>,
    attributes: Option<&str>,
    times: [&Option<String>; 4],
) -> Result<CreateSpec, StagedError> {
    let arg = |a: &str, r: String| StagedError::Argument { arg: a.into(), reason: r };
    let mut list = Vec::new();
    for s in streams {
        let (n, f) = s.split_once('=').ok_or_else(|| arg("--stream", format!("{s:?} is not NAME=FILE")))?;
        if !safe_stream_name(n) || n.contains(':') {
            return Err(arg("--stream", format!("{n:?} is not a usable stream name")));
        }
        list.push((n.to_string(), PathBuf::from(f)));
    }
    let security = match sddl {
        Some(s) => Some(SecurityDescriptor::from_sddl(s).map_err(|e| arg("--sddl", e.to_string()))?.to_bytes()),
        None => None,
    };
    let attributes = match attributes {
        None => 0x20,
        Some(a) => match a.strip_prefix("0x").or_else(|| a.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16),
            None => a.parse(),
        }
        .map_err(|e| arg("--attributes", format!("{a:?}: {e}")))?,
    };
    let md = std::fs::metadata(data).map_err(|source| StagedError::Io { path: data.into(), source })?;
    let defaults = basic_times(&md);
    let names = ["--creation-time", "--last-access-time", "--last-write-time", "--change-time"];
    let mut t = [0i64; 4];
    for i in 0..4 {
        t[i] = match times[i] {
            Some(s) => from_iso8601(s).map_err(|e| arg(names[i], e.to_string()))?,
            None => defaults[i],
        };
    }
    Ok(CreateSpec {
        data: data.into(),
        streams: list,
        header: FileHeader { security, attributes, times: t, reparse: None },
        sparse: false,
    })
}

/// A local file's creation, last access, last write and change times as
/// FILETIMEs, in the staged header's order; a time the file system does not
/// keep is the last write time (and that, when missing, 0).
pub fn basic_times(md: &std::fs::Metadata) -> [i64; 4] {
    let filetime = |t: std::io::Result<std::time::SystemTime>| t.ok().map(from_system_time);
    let mtime = filetime(md.modified()).unwrap_or(0);
    [filetime(md.created()).unwrap_or(mtime), filetime(md.accessed()).unwrap_or(mtime), mtime, mtime]
}

/// `staged create`: the library's writer ([`samba_dfsr::store::staged_file`]).
pub fn create(spec: &CreateSpec, out: &Path) -> Result<[u8; 20], StagedError> {
    staged_file::create(spec, out).map_err(|e| StagedError::Io { path: e.path, source: e.source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dfsrctl-staged-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn basic_times_are_the_files_filetimes() {
        let d = tmp("times");
        let f = d.join("f");
        std::fs::write(&f, b"x").unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
        let md = std::fs::metadata(&f).unwrap();
        let t = basic_times(&md);
        assert_eq!(t[2], 116_444_736_000_000_000 + 1_700_000_000 * 10_000_000, "last write");
        assert_eq!(t[3], t[2], "change time is the last write time");
        assert!(t[0] > 0 && t[1] > 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn create_inspect_extract_round_trip() {
        let d = tmp("rt");
        // 3 MB main stream: text-like with random stretches.
        let mut x = 7u64;
        let main: Vec<u8> = (0..3_000_000u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i >> 16) % 3 == 0 { (x >> 40) as u8 } else { b"DFS-R staged "[(i % 13) as usize] }
            })
            .collect();
        std::fs::write(d.join("main"), &main).unwrap();
        std::fs::write(d.join("s1"), b"[ZoneTransfer]\r\nZoneId=3\r\n").unwrap();
        std::fs::write(d.join("s2"), vec![0xAB; 100_000]).unwrap();
        let sddl = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;0x1200a9;;;BU)S:(AU;SAFA;FA;;;WD)";
        let times = ["2023-04-05T06:07:08.1234567Z", "2023-04-05T06:07:09Z", "2023-04-05T06:07:10Z", "2023-04-05T06:07:11Z"].map(|s| Some(s.to_string()));
        let spec = spec_from_args(
            &d.join("main"),
            &[format!("Zone.Identifier={}", d.join("s1").display()), format!("big={}", d.join("s2").display())],
            Some(sddl),
            Some("0x21"),
            [&times[0], &times[1], &times[2], &times[3]],
        )
        .unwrap();
        let staged = d.join("file.frsx");
        let hash = create(&spec, &staged).unwrap();
        assert!(std::fs::metadata(&staged).unwrap().len() < 3_000_000);

        let r = inspect(&staged).unwrap();
        assert_eq!(r.frs_hash, hash);
        assert_eq!(r.sddl.as_deref(), Some(sddl));
        let m = r.metadata.unwrap();
        assert_eq!(to_iso8601(m.creation_time), "2023-04-05T06:07:08.1234567Z");
        assert_eq!(to_iso8601(m.change_time), "2023-04-05T06:07:11Z");
        assert_eq!((m.attributes, m.primary_data_size, m.version), (0x21, 3_000_000, 3));
        let kinds: Vec<(&str, &str, u64)> = r.streams.iter().map(|s| (s.kind.as_str(), s.name.as_str(), s.size)).collect();
        assert_eq!(kinds, vec![("data", "", 3_000_000), ("ads", "Zone.Identifier", 26), ("ads", "big", 100_000)]);
        let want: [u8; 32] = Sha256::digest(&main).into();
        assert_eq!(r.streams[0].sha256, want);
        let j = r.to_json();
        assert_eq!(j["metadata"]["last_write_time"], "2023-04-05T06:07:10Z");
        assert_eq!(j["security"]["sddl"], sddl);
        assert_eq!(j["streams"][1]["kind"], "ads");
        assert_eq!(j["frs_hash"].as_str().unwrap().len(), 40);

        let out = d.join("x");
        extract(&staged, &out).unwrap();
        assert!(std::fs::read(out.join("data")).unwrap() == main);
        assert_eq!(std::fs::read(out.join("streams/Zone.Identifier")).unwrap(), std::fs::read(d.join("s1")).unwrap());
        assert_eq!(std::fs::read(out.join("streams/big")).unwrap(), vec![0xAB; 100_000]);
        assert_eq!(std::fs::read_to_string(out.join("security.sddl")).unwrap().trim(), sddl);
        let mj: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).unwrap()).unwrap();
        assert_eq!(mj["creation_time"], "2023-04-05T06:07:08.1234567Z");
        assert_eq!(mj["attributes"], 0x21);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unsafe_names_and_corruption_are_reported() {
        let d = tmp("bad");
        std::fs::write(d.join("main"), b"x").unwrap();
        for n in ["../evil", "a/b", "..", ""] {
            let s = [format!("{n}={}", d.join("main").display())];
            assert!(spec_from_args(&d.join("main"), &s, None, None, [&None, &None, &None, &None]).is_err(), "{n}");
        }
        // A staged file whose stream name is "../evil", built by hand.
        let mut w = samba_dfsr::staging::marshal::MarshalWriter::new(Vec::new());
        w.metadata(&Metadata { version: 3, creation_time: 0, last_access_time: 0, last_write_time: 0, change_time: 0, attributes: 0, sd_control: 0, primary_data_size: 1 }).unwrap();
        w.alternate("../evil", &b"x"[..], 1).unwrap();
        let (m, _) = w.finish().unwrap();
        let p = d.join("evil.frsx");
        std::fs::write(&p, samba_dfsr::staging::frsx::compress(&m)).unwrap();
        let e = extract(&p, &d.join("out")).unwrap_err().to_string();
        assert!(e.contains("evil.frsx") && e.contains("unsafe stream name") && e.contains("offset 84"), "{e}");
        assert!(!d.join("evil").exists());
        // Corrupt framing: names the file and the offset.
        std::fs::write(&p, b"FRSXXBLO\x10\x00\x00\x00\x00\x30\x00\x00").unwrap();
        let e = inspect(&p).unwrap_err().to_string();
        assert!(e.contains("evil.frsx") && e.contains("offset 4"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
