//! The scan's reader: a file of a replicated folder read through the
//! share's own VFS stack, as SYSTEM, the way smbd shows it to a client —
//! the NT security descriptor as acl_xattr (or whichever module) gives
//! it, the DOS attributes and creation time from user.DOSATTRIB, the
//! alternate streams from streams_xattr — and written as a staged file
//! ([`crate::staging::writer`]). The share is opened once per scan.
//!
//! Opened with share access read only: a client writing the file makes
//! the open fail with SHARING_VIOLATION, and the scan stages it later,
//! so a half-written file is never staged.

use std::io::{BufWriter, Read};
use std::path::Path;

use crate::ffi::meet_vfs::{OpenFile, Share};
use crate::samba::ntstatus::NtStatus;
use crate::staging::writer::{self, AlternateStream, FileHeader, MainData};

use super::scan::{LocalReader, ReadError, StagedLocal};

const GENERIC_READ: u32 = 0x8000_0000;
const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
const SHARE_READ: u32 = 0x1;
const FILE_OPEN: u32 = 1;
/// OWNER, GROUP, DACL and SACL.
const SECINFO_ALL: u32 = 0xf;
const ATTR_DIRECTORY: u32 = 0x10;

/// One share, open for the length of a scan.
pub struct VfsReader {
    name: String,
    share: Share,
}

impl VfsReader {
    pub fn open(share: &str) -> Result<VfsReader, ReadError> {
        let s = Share::open(share)
            .map_err(|st| ReadError { status: Some(st), reason: format!("[{share}]: opening the share: {st}") })?;
        Ok(VfsReader { name: share.to_string(), share: s })
    }
}

/// `Read` over an open file's pread.
struct VfsRead<'f, 's> {
    file: &'f OpenFile<'s>,
    at: u64,
}

impl Read for VfsRead<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(self.at, buf).map_err(|s| std::io::Error::other(s.to_string()))?;
        self.at += n as u64;
        Ok(n)
    }
}

impl LocalReader for VfsReader {
    fn stage(&mut self, relpath: &str, out: &Path) -> Result<StagedLocal, ReadError> {
        let what = format!("[{}] {relpath}", self.name);
        let fail = |st: NtStatus, doing: &str| ReadError { status: Some(st), reason: format!("{what}: {doing}: {st}") };
        let f = self
            .share
            .open_file(relpath, GENERIC_READ | ACCESS_SYSTEM_SECURITY, SHARE_READ, FILE_OPEN, 0, 0)
            .map_err(|s| fail(s, "open"))?;
        let info = f.info().map_err(|s| fail(s, "reading its information"))?;
        let sd = f.security(SECINFO_ALL).map_err(|s| fail(s, "reading its security descriptor"))?;
        let stream_list = f.streams().map_err(|s| fail(s, "listing its streams"))?;
        let mut stream_files = Vec::new();
        for (name, _) in &stream_list {
            let path = format!("{relpath}:{name}");
            let sf = self
                .share
                .open_file(&path, GENERIC_READ, SHARE_READ, FILE_OPEN, 0, 0)
                .map_err(|s| fail(s, &format!("opening stream {name}")))?;
            let size = sf.info().map_err(|s| fail(s, &format!("reading stream {name}")))?.size;
            stream_files.push((name.as_str(), sf, size));
        }
        let is_dir = info.is_dir || info.attributes & ATTR_DIRECTORY != 0;
        // Access and change times go as the last write time (see scan).
        let [create, _, write, _] = info.times;
        let header = FileHeader {
            security: (!sd.is_empty()).then_some(sd),
            attributes: info.attributes,
            times: [create as i64, write as i64, write as i64, write as i64],
            reparse: None,
        };
        let size = if is_dir { 0 } else { info.size };
        let output = std::fs::File::create(out)
            .map_err(|e| ReadError { status: None, reason: format!("{}: {e}", out.display()) })?;
        let mut readers: Vec<VfsRead<'_, '_>> = stream_files.iter().map(|(_, sf, _)| VfsRead { file: sf, at: 0 }).collect();
        let mut streams: Vec<AlternateStream<'_>> = stream_files
            .iter()
            .zip(readers.iter_mut())
            .map(|((name, _, size), r)| AlternateStream { name, reader: r, size: *size })
            .collect();
        let mut main = VfsRead { file: &f, at: 0 };
        let mut empty = std::io::empty();
        let data: &mut dyn Read = if is_dir { &mut empty } else { &mut main };
        let (_, hash) = writer::write_staged(BufWriter::with_capacity(1 << 16, output), &header, size, MainData::Plain(data), &mut streams)
            .map_err(|e| ReadError { status: None, reason: format!("{what}: staging ({:?}): {}", e.part, e.source) })?;
        Ok(StagedLocal { hash, attributes: info.attributes, create_time: create, is_dir, size })
    }
}
