//! What a simulated member persists, and two places to persist it.
//!
//! A member's durable state is a log of [`Record`]s committed in batches:
//! a batch is one transaction (a local change with the originator counters
//! it used, one installed update with what it caused, a vector merge). A
//! crash loses whatever was not committed; a restart replays the committed
//! batches in order. The trait is deliberately small so that the TDB engine
//! database can implement it later.
//!
//! - [`MemoryStore`]: keeps committed batches in memory (survives a
//!   simulated crash because the simulator keeps the store, not the member).
//! - [`FileStore`]: one file per member, append-only frames
//!   `{u32 length; u64 checksum; payload}`, reopened on restart; a torn or
//!   corrupt tail is ignored and cut off. No fsync: a simulated crash is a
//!   process crash, not a power loss.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::rules::{ConflictRecord, LossReason};
use crate::engine::update::Update;
use crate::engine::version_vector::{VersionVector, VersionVectorError};

/// One durable change of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `MemoryDatabase::apply` of this update (replay decides again, with
    /// the same result, §3.3.4.6.2 "one update per UID that is maximal").
    Apply(Update),
    /// A known-vector merge at the end of a sync (§3.3.4.6).
    Merge(VersionVector),
    /// The originator's counters after the transaction (must be durable
    /// with the updates that used them, or a GVSN could be reused).
    Counters {
        /// Next version to hand out.
        next_version: u64,
        /// Last clock handed out.
        last_clock: u64,
    },
    /// A ConflictAndDeleted record.
    Conflict(ConflictRecord),
    /// An update kept aside (orphan or cycle) until it can be installed.
    Hold(Update),
    /// The held update of this UID was installed or superseded.
    Unhold(Uid),
}

/// Why a store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The store file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A committed frame that passed its checksum does not decode.
    #[error("corrupt record at offset {offset}: {what}")]
    Corrupt {
        /// Byte offset of the frame.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// A stored version vector is not valid.
    #[error(transparent)]
    Vector(#[from] VersionVectorError),
}

/// Durable state of one simulated member.
pub trait MemberStore {
    /// Makes `batch` durable, atomically (all of it or, after a crash,
    /// none of it).
    fn commit(&mut self, batch: &[Record]) -> Result<(), StoreError>;
    /// Every committed record, in commit order (used on restart).
    fn load(&mut self) -> Result<Vec<Record>, StoreError>;
    /// The process died: drop volatile handles; `torn` leaves a partially
    /// written frame behind, as a crash during a write would.
    fn crash(&mut self, torn: bool) -> Result<(), StoreError>;
}

/// Committed batches kept in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    committed: Vec<Record>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MemberStore for MemoryStore {
    fn commit(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        self.committed.extend_from_slice(batch);
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<Record>, StoreError> {
        Ok(self.committed.clone())
    }

    fn crash(&mut self, _torn: bool) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An append-only log file of length-prefixed, checksummed frames.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: Option<File>,
}

/// Frame header: u32 payload length, u64 checksum.
const HEADER: usize = 12;

/// FNV-1a 64 over the payload: catches torn and garbled tails.
fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl FileStore {
    /// Creates (truncating) the log at `path`.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        let file = File::create(path).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(FileStore {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn handle(&mut self) -> Result<&mut File, StoreError> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(|e| self.io(e))?;
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(StoreError::Corrupt {
                offset: 0,
                what: "no file handle",
            }),
        }
    }
}

impl MemberStore for FileStore {
    fn commit(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut payload = Vec::new();
        put_u32(&mut payload, batch.len() as u32);
        for r in batch {
            encode_record(r, &mut payload);
        }
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        put_u32(&mut frame, payload.len() as u32);
        put_u64(&mut frame, checksum(&payload));
        frame.extend_from_slice(&payload);
        let f = self.handle()?;
        let r = f.write_all(&frame);
        r.map_err(|e| self.io(e))
    }

    fn load(&mut self) -> Result<Vec<Record>, StoreError> {
        self.file = None;
        let mut data = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        let mut off = 0usize;
        while data.len() - off >= HEADER {
            let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            let mut sum = [0u8; 8];
            sum.copy_from_slice(&data[off + 4..off + HEADER]);
            let start = off + HEADER;
            let Some(end) = start.checked_add(len).filter(|e| *e <= data.len()) else {
                break; // torn tail
            };
            let payload = &data[start..end];
            if checksum(payload) != u64::from_le_bytes(sum) {
                break; // garbled tail
            }
            let mut r = Reader {
                data: payload,
                pos: 0,
                base: off as u64,
            };
            let n = r.u32()?;
            for _ in 0..n {
                out.push(decode_record(&mut r)?);
            }
            off = end;
        }
        if off < data.len() {
            // Cut the torn tail so new frames follow the last good one.
            let f = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(|e| self.io(e))?;
            f.set_len(off as u64).map_err(|e| self.io(e))?;
        }
        Ok(out)
    }

    fn crash(&mut self, torn: bool) -> Result<(), StoreError> {
        if torn {
            // Half a frame: a header promising more than follows.
            let mut frame = Vec::new();
            put_u32(&mut frame, 1000);
            put_u64(&mut frame, 0xdead_beef);
            frame.extend_from_slice(&[0xAA; 7]);
            let f = self.handle()?;
            let r = f.write_all(&frame);
            r.map_err(|e| self.io(e))?;
        }
        self.file = None;
        Ok(())
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_guid(out: &mut Vec<u8>, g: &Guid) {
    out.extend_from_slice(&g.to_bytes());
}

fn put_uid(out: &mut Vec<u8>, u: &Uid) {
    put_guid(out, &u.db);
    put_u64(out, u.version);
}

fn put_gvsn(out: &mut Vec<u8>, g: &Gvsn) {
    put_guid(out, &g.db);
    put_u64(out, g.version);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn encode_update(u: &Update, out: &mut Vec<u8>) {
    out.push(u8::from(u.present) | (u8::from(u.name_conflict) << 1));
    put_u32(out, u.attributes);
    put_u64(out, u.fence);
    put_u64(out, u.clock);
    put_u64(out, u.create_time);
    put_guid(out, &u.content_set_id);
    out.extend_from_slice(&u.hash);
    out.extend_from_slice(&u.rdc_similarity);
    put_uid(out, &u.uid);
    put_gvsn(out, &u.gvsn);
    put_uid(out, &u.parent);
    put_str(out, &u.name);
    put_u32(out, u.flags);
}

fn reason_code(r: LossReason) -> u8 {
    match r {
        LossReason::LostConflict => 0,
        LossReason::NameConflict => 1,
        LossReason::Deleted => 2,
        LossReason::ParentDeleted => 3,
    }
}

/// Appends the encoding of one record.
pub fn encode_record(r: &Record, out: &mut Vec<u8>) {
    match r {
        Record::Apply(u) => {
            out.push(1);
            encode_update(u, out);
        }
        Record::Merge(vv) => {
            out.push(2);
            let w = vv.to_wire();
            put_u32(out, w.len() as u32);
            for (g, lo, hi) in w {
                put_guid(out, &g);
                put_u64(out, lo);
                put_u64(out, hi);
            }
        }
        Record::Counters {
            next_version,
            last_clock,
        } => {
            out.push(3);
            put_u64(out, *next_version);
            put_u64(out, *last_clock);
        }
        Record::Conflict(c) => {
            out.push(4);
            put_uid(out, &c.uid);
            put_gvsn(out, &c.gvsn);
            put_str(out, &c.name);
            put_uid(out, &c.parent);
            out.push(reason_code(c.reason));
            put_u64(out, c.at);
        }
        Record::Hold(u) => {
            out.push(5);
            encode_update(u, out);
        }
        Record::Unhold(uid) => {
            out.push(6);
            put_uid(out, uid);
        }
    }
}

/// A cursor over a payload that returns errors, never panics, on short
/// input.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return Err(StoreError::Corrupt {
                offset: self.base,
                what: "short record",
            });
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn guid(&mut self) -> Result<Guid, StoreError> {
        Ok(Guid::from_bytes(self.array()?))
    }

    fn uid(&mut self) -> Result<Uid, StoreError> {
        Ok(Uid::new(self.guid()?, self.u64()?))
    }

    fn gvsn(&mut self) -> Result<Gvsn, StoreError> {
        Ok(Gvsn::new(self.guid()?, self.u64()?))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let n = self.u32()? as usize;
        let base = self.base;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt {
            offset: base,
            what: "name is not UTF-8",
        })
    }

    fn update(&mut self) -> Result<Update, StoreError> {
        let bits = self.u8()?;
        Ok(Update {
            present: bits & 1 != 0,
            name_conflict: bits & 2 != 0,
            attributes: self.u32()?,
            fence: self.u64()?,
            clock: self.u64()?,
            create_time: self.u64()?,
            content_set_id: self.guid()?,
            hash: self.array()?,
            rdc_similarity: self.array()?,
            uid: self.uid()?,
            gvsn: self.gvsn()?,
            parent: self.uid()?,
            name: self.string()?,
            flags: self.u32()?,
        })
    }
}

fn decode_record(r: &mut Reader<'_>) -> Result<Record, StoreError> {
    let base = r.base;
    Ok(match r.u8()? {
        1 => Record::Apply(r.update()?),
        2 => {
            let n = r.u32()?;
            let mut triples = Vec::new();
            for _ in 0..n {
                triples.push((r.guid()?, r.u64()?, r.u64()?));
            }
            Record::Merge(VersionVector::from_wire(triples)?)
        }
        3 => Record::Counters {
            next_version: r.u64()?,
            last_clock: r.u64()?,
        },
        4 => {
            let uid = r.uid()?;
            let gvsn = r.gvsn()?;
            let name = r.string()?;
            let parent = r.uid()?;
            let reason = match r.u8()? {
                0 => LossReason::LostConflict,
                1 => LossReason::NameConflict,
                2 => LossReason::Deleted,
                3 => LossReason::ParentDeleted,
                _ => {
                    return Err(StoreError::Corrupt {
                        offset: base,
                        what: "unknown loss reason",
                    })
                }
            };
            Record::Conflict(ConflictRecord {
                uid,
                gvsn,
                name,
                parent,
                reason,
                at: r.u64()?,
            })
        }
        5 => Record::Hold(r.update()?),
        6 => Record::Unhold(r.uid()?),
        _ => {
            return Err(StoreError::Corrupt {
                offset: base,
                what: "unknown record tag",
            })
        }
    })
}
