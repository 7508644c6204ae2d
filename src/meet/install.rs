//! Installing one staged file through a share's VFS stack (issue 4):
//! assembled under `DfsrPrivate/Installing`, then renamed into place, so a
//! client never sees a half-written file; an existing file held open by a
//! client is left alone and the caller is told to retry.

use super::path::RelPath;
use super::MeetError;
use crate::ffi::meet_vfs::{OpenFile, Share};
use crate::samba::ntstatus::NtStatus;
use crate::staging::frsx::FrsxReader;
use crate::staging::marshal::{Event, MarshalReader, Metadata, StreamHeader, StreamKind, STREAM_SPARSE_ATTRIBUTE};
use std::fs::File;
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};

// Access masks, share modes, dispositions, options, attributes (MS-SMB2,
// MS-FSCC) as SMB_VFS_CREATE_FILE takes them.
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const DELETE: u32 = 0x0001_0000;
const WRITE_DAC: u32 = 0x0004_0000;
const WRITE_OWNER: u32 = 0x0008_0000;
const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
const FILE_READ_ATTRIBUTES: u32 = 0x80;
const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
const SHARE_ALL: u32 = 0x7;
const SHARE_NONE: u32 = 0;
const FILE_OPEN: u32 = 1;
const FILE_CREATE: u32 = 2;
const FILE_OPEN_IF: u32 = 3;
const FILE_DIRECTORY_FILE: u32 = 0x1;
const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
const ATTR_READONLY: u32 = 0x1;
const ATTR_HIDDEN: u32 = 0x2;
const ATTR_SYSTEM: u32 = 0x4;
const ATTR_DIRECTORY: u32 = 0x10;
const ATTR_ARCHIVE: u32 = 0x20;
const ATTR_SPARSE: u32 = 0x200;
// SECINFO_* and the SD control bit that says a SACL is present.
const SECINFO_OWNER_GROUP_DACL: u32 = 0x1 | 0x2 | 0x4;
const SECINFO_SACL: u32 = 0x8;
const SE_SACL_PRESENT: u16 = 0x0010;

/// The folder's private area; later issues hide it from clients.
pub const PRIVATE_DIR: &str = super::path::PRIVATE_NAME;
pub const INSTALLING_DIR: &str = "DfsrPrivate/Installing";
/// Where a replaced version goes when its update lost (with a manifest).
pub const CONFLICT_DIR: &str = "DfsrPrivate/ConflictAndDeleted";

fn err(status: NtStatus, reason: impl Into<String>) -> MeetError {
    MeetError { status, reason: reason.into() }
}

thread_local! {
    /// The share kept open between calls while a [`KeepSharesOpen`] lives.
    static OPEN_SHARE: std::cell::RefCell<Option<(String, std::rc::Rc<Share>)>> = const { std::cell::RefCell::new(None) };
    static KEEP_OPEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While it lives, the meet keeps the last share it opened open between
/// installs in this thread (the member places a whole round into one
/// share), instead of building its connection and VFS stack per call.
/// Dropped at the end of the round, so an smb.conf change is seen by the
/// next one.
pub struct KeepSharesOpen(());

impl KeepSharesOpen {
    pub fn new() -> KeepSharesOpen {
        KEEP_OPEN.with(|k| k.set(true));
        KeepSharesOpen(())
    }
}

impl Default for KeepSharesOpen {
    fn default() -> Self {
        KeepSharesOpen::new()
    }
}

impl Drop for KeepSharesOpen {
    fn drop(&mut self) {
        KEEP_OPEN.with(|k| k.set(false));
        OPEN_SHARE.with(|c| c.borrow_mut().take());
    }
}

/// The share for one call: the kept one when it is this share.
fn open_share(share_name: &str) -> Result<std::rc::Rc<Share>, MeetError> {
    if !KEEP_OPEN.with(|k| k.get()) {
        return open_share_now(share_name).map(std::rc::Rc::new);
    }
    if let Some(s) = OPEN_SHARE.with(|c| c.borrow().as_ref().filter(|(n, _)| n == share_name).map(|(_, s)| s.clone())) {
        return Ok(s);
    }
    // Another share: the old one is closed first (each changes the
    // current directory and puts it back when closed).
    OPEN_SHARE.with(|c| c.borrow_mut().take());
    let s = std::rc::Rc::new(open_share_now(share_name)?);
    OPEN_SHARE.with(|c| *c.borrow_mut() = Some((share_name.to_string(), s.clone())));
    Ok(s)
}

/// Opens `share_name` through its VFS stack; a failure says which module
/// or path is at fault where that can be found ([`super::vfs_stack`]).
fn open_share_now(share_name: &str) -> Result<Share, MeetError> {
    Share::open(share_name).map_err(|s| {
        let why = if s == NtStatus::BAD_NETWORK_NAME {
            format!("smb.conf has no such share ({s})")
        } else {
            match super::vfs_stack::diagnose(share_name) {
                Some(why) => format!("{why} ({s})"),
                None => format!("{s}"),
            }
        };
        err(s, format!("[{share_name}]: cannot open the share through its VFS stack: {why}"))
    })
}

/// Creates each directory of `dirs` that does not exist yet.
fn ensure_dirs(share: &Share, name: &str, dirs: &[String]) -> Result<(), MeetError> {
    let mut path = String::new();
    for d in dirs {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(d);
        share
            .open_file(&path, FILE_READ_ATTRIBUTES, SHARE_ALL, FILE_OPEN_IF, FILE_DIRECTORY_FILE, 0)
            .map_err(|s| err(s, format!("[{name}] creating directory {path}: {s}")))?;
    }
    Ok(())
}

/// A unique name in the Installing area (pid, counter, time).
fn temp_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{INSTALLING_DIR}/{}-{}-{t}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn nt(t: i64) -> u64 {
    t.max(0) as u64
}

/// What the staged file says before its stream data.
#[derive(Default)]
struct Header {
    metadata: Option<Metadata>,
    sd: Option<Vec<u8>>,
    /// The first stream's header, already read.
    first_stream: Option<StreamHeader>,
}

/// Reads the records before the first stream (MS-FRS2 §3.2.4.1.14.1:
/// metadata, compression, reparse, security, then the file data).
fn read_header<R: std::io::Read>(
    reader: &mut MarshalReader<R>,
    allow_reparse: bool,
    staged: &str,
    bad: &dyn Fn(&dyn std::fmt::Display) -> MeetError,
) -> Result<Header, MeetError> {
    let mut header = Header::default();
    while let Some(ev) = reader.next().map_err(|e| bad(&e))? {
        match ev {
            Event::Metadata(m) => header.metadata = Some(m),
            Event::Compression(_) => {}
            Event::Security { bytes, .. } => header.sd = Some(bytes),
            Event::Reparse(_) if !allow_reparse => {
                return Err(err(
                    NtStatus::NOT_SUPPORTED,
                    format!("{staged}: the staged file carries a reparse point, refused (dfsr:install reparse = no)"),
                ));
            }
            Event::Reparse(data) => {
                // Windows replicates symbolic links only; Samba 4.17 has no
                // VFS call that stores a reparse point (FSCTL_SET_REPARSE_POINT
                // is refused), so even an allowed one cannot land yet.
                let tag = data.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                return Err(err(
                    NtStatus::NOT_SUPPORTED,
                    format!(
                        "{staged}: reparse point (tag 0x{tag:08x}) allowed by dfsr:install reparse = yes, but Samba's VFS cannot store reparse points"
                    ),
                ));
            }
            Event::StreamStart(h) => {
                header.first_stream = Some(h);
                break;
            }
            Event::Data(_) | Event::StreamEnd => return Err(bad(&"stream data before any stream header")),
        }
    }
    if header.metadata.is_none() {
        return Err(bad(&"no metadata record"));
    }
    Ok(header)
}

fn security_info(sd: &[u8]) -> u32 {
    let sacl = sd.get(2..4).map(|c| u16::from_le_bytes([c[0], c[1]]) & SE_SACL_PRESENT != 0).unwrap_or(false);
    SECINFO_OWNER_GROUP_DACL | if sacl { SECINFO_SACL } else { 0 }
}

/// SD, then attributes, then the four times (last: everything else
/// changes them).
fn apply_metadata(f: &OpenFile<'_>, header: &Header, meta: &Metadata, what: &str, is_dir: bool) -> Result<(), MeetError> {
    if let Some(sd) = &header.sd {
        f.set_security(sd, security_info(sd)).map_err(|s| err(s, format!("{what}: setting the security descriptor: {s}")))?;
    }
    let attrs = if is_dir { meta.attributes | ATTR_DIRECTORY } else { meta.attributes & !ATTR_DIRECTORY };
    f.set_attributes(attrs, nt(meta.creation_time)).map_err(|s| err(s, format!("{what}: setting attributes: {s}")))?;
    f.set_times(nt(meta.creation_time), nt(meta.last_access_time), nt(meta.last_write_time), nt(meta.change_time))
        .map_err(|s| err(s, format!("{what}: setting times: {s}")))?;
    // After the times: smbd drops the sparse bit when it stores a create
    // time (file_set_dosmode masks it), and setting it changes no time.
    if attrs & ATTR_SPARSE != 0 && !is_dir {
        f.set_sparse(true).map_err(|s| err(s, format!("{what}: marking the file sparse: {s}")))?;
    }
    Ok(())
}

/// Installs `staged` at `rel` in `share_name`.
pub fn install(share_name: &str, rel: &RelPath, staged: &str, uid: &str, flags: u32) -> Result<(), MeetError> {
    let bad = |e: &dyn std::fmt::Display| err(NtStatus::FILE_CORRUPT_ERROR, format!("{staged}: {e}"));
    let file = File::open(staged).map_err(|e| err(NtStatus::OBJECT_NAME_NOT_FOUND, format!("{staged}: {e}")))?;
    let mut reader = MarshalReader::new(FrsxReader::new(BufReader::with_capacity(1 << 16, file)));
    let share = open_share(share_name)?;
    // The header is checked before anything is written.
    let allow_reparse = share_bool(&share, share_name, crate::config::meet_options::INSTALL_REPARSE);
    let header = read_header(&mut reader, allow_reparse, staged, &bad)?;
    let meta = header.metadata.expect("read_header checked it");
    ensure_dirs(&share, share_name, &[PRIVATE_DIR.into(), "Installing".into()])?;
    if let Some(parent) = rel.parent() {
        ensure_dirs(&share, share_name, parent.components())?;
    }
    let what = format!("[{share_name}] {rel}");

    if meta.attributes & ATTR_DIRECTORY != 0 {
        // A directory is created (or kept) in place: there is no content
        // to be half-written.
        let d = share
            .open_file(
                &rel.to_string(),
                FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | WRITE_DAC | WRITE_OWNER | ACCESS_SYSTEM_SECURITY,
                SHARE_ALL,
                FILE_OPEN_IF,
                FILE_DIRECTORY_FILE,
                0,
            )
            .map_err(|s| err(s, format!("{what}: creating the directory: {s}")))?;
        apply_metadata(&d, &header, &meta, &what, true)?;
        return d.close().map_err(|s| err(s, format!("{what}: close: {s}")));
    }

    let tmp = temp_name();
    // The SD comes with the create: smbd stores it in place of the one it
    // would inherit (acl_xattr turns `inherit acls` on), one ACL written.
    let main = share
        .create_file(
            &tmp,
            GENERIC_READ | GENERIC_WRITE | DELETE | WRITE_DAC | WRITE_OWNER | ACCESS_SYSTEM_SECURITY,
            SHARE_ALL,
            FILE_CREATE,
            FILE_NON_DIRECTORY_FILE,
            ATTR_ARCHIVE,
            header.sd.as_deref().unwrap_or(&[]),
        )
        .map_err(|s| err(s, format!("[{share_name}] creating {tmp}: {s}")))?;

    let result = (|| {
        if write_streams(&share, share_name, &main, &tmp, &mut reader, header.first_stream.clone(), &bad)? {
            main.set_eof(meta.primary_data_size)
                .map_err(|s| err(s, format!("{what}: setting the size of a sparse file: {s}")))?;
        }
        let lost = (flags & super::FLAG_LOST_TO_CONFLICT != 0).then_some(uid);
        make_room(&share, share_name, rel, lost)?;
        main.rename(&rel.to_string(), true)
            .map_err(|s| err(s, format!("[{share_name}] renaming {tmp} to {rel}: {s}")))?;
        // Attributes and times last: writes and the rename change them.
        let no_sd = Header { sd: None, ..Default::default() };
        apply_metadata(&main, &no_sd, &meta, &what, false)
    })();
    match result {
        Ok(()) => main.close().map_err(|s| err(s, format!("{what}: close: {s}"))),
        Err(e) => {
            // Nothing half-written stays behind: the temporary goes.
            let _ = main.delete_on_close();
            let _ = main.close();
            Err(e)
        }
    }
}

/// Begins a stream: returns where its data goes; opens an alternate stream.
fn start_stream<'s>(
    share: &'s Share,
    share_name: &str,
    tmp: &str,
    h: &StreamHeader,
    ads: &mut Option<OpenFile<'s>>,
    current: &mut String,
    bad: &dyn Fn(&dyn std::fmt::Display) -> MeetError,
) -> Result<u64, MeetError> {
    *ads = None;
    *current = tmp.to_string();
    match h.kind() {
        StreamKind::Data => Ok(0),
        // A sparse block's data lands at its offset; the gaps stay holes.
        StreamKind::Sparse => Ok(h.sparse_offset.unwrap_or(0)),
        StreamKind::AlternateData => {
            let name = h.name().to_string();
            super::path::check_name(0, &name).map_err(|e| bad(&format!("stream name {name:?}: {e}")))?;
            let path = format!("{tmp}:{name}");
            *ads = Some(
                share
                    .open_file(&path, GENERIC_WRITE, SHARE_ALL, FILE_CREATE, FILE_NON_DIRECTORY_FILE, 0)
                    .map_err(|s| err(s, format!("[{share_name}] creating stream {path}: {s}")))?,
            );
            *current = path;
            Ok(0)
        }
        StreamKind::Reparse | StreamKind::Other(_) => {
            Err(bad(&format!("unsupported stream kind {} at offset {}", h.kind().as_str(), h.offset)))
        }
    }
}

/// Writes every stream of the staged file into the temporary file; the
/// first stream's header was read already. Returns whether the main data
/// came as sparse blocks (the caller then sets the end of file, so a
/// trailing hole stays a hole).
fn write_streams<R: std::io::Read>(
    share: &Share,
    share_name: &str,
    main: &OpenFile<'_>,
    tmp: &str,
    reader: &mut MarshalReader<R>,
    first: Option<StreamHeader>,
    bad: &dyn Fn(&dyn std::fmt::Display) -> MeetError,
) -> Result<bool, MeetError> {
    // The open alternate stream, if the current stream is one, and the
    // name of what is being written (for errors).
    let mut ads: Option<OpenFile<'_>> = None;
    let mut current = tmp.to_string();
    let mut offset = 0u64;
    let mut sparse = false;
    let is_sparse = |h: &StreamHeader| h.kind() == StreamKind::Sparse || h.attributes & STREAM_SPARSE_ATTRIBUTE != 0;
    if let Some(h) = &first {
        sparse |= is_sparse(h);
        offset = start_stream(share, share_name, tmp, h, &mut ads, &mut current, bad)?;
    }
    while let Some(ev) = reader.next().map_err(|e| bad(&e))? {
        match ev {
            Event::StreamStart(h) => {
                sparse |= is_sparse(&h);
                offset = start_stream(share, share_name, tmp, &h, &mut ads, &mut current, bad)?
            }
            Event::Data(chunk) => {
                let target = ads.as_ref().unwrap_or(main);
                target.write(offset, chunk).map_err(|s| {
                    let hint = if s == NtStatus::DISK_FULL && ads.is_some() {
                        " (streams_xattr keeps a stream in one xattr; the file system limits its size)"
                    } else {
                        ""
                    };
                    err(s, format!("[{share_name}] writing {current} at {offset}: {s}{hint}"))
                })?;
                offset += chunk.len() as u64;
            }
            Event::StreamEnd => {
                if let Some(f) = ads.take() {
                    f.close().map_err(|s| err(s, format!("[{share_name}] closing {current}: {s}")))?;
                }
            }
            Event::Metadata(_) | Event::Compression(_) | Event::Security { .. } | Event::Reparse(_) => {
                return Err(bad(&"a header record after the stream data"));
            }
        }
    }
    Ok(sparse)
}

/// Before the rename: an existing file must not be open by anyone
/// (SHARING_VIOLATION, retry later), and read-only/hidden/system bits must
/// not block replacing it. When its update lost (`lost_uid`), the old
/// version moves to ConflictAndDeleted with a manifest entry.
fn make_room(share: &Share, share_name: &str, rel: &RelPath, lost_uid: Option<&str>) -> Result<(), MeetError> {
    let probe = share.open_file(
        &rel.to_string(),
        DELETE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES,
        SHARE_NONE,
        FILE_OPEN,
        0,
        0,
    );
    match probe {
        Ok(f) => {
            let attrs = f.attributes();
            if attrs & ATTR_DIRECTORY != 0 {
                return Err(err(
                    NtStatus::OBJECT_NAME_COLLISION,
                    format!("[{share_name}] {rel} is a directory; a file cannot replace it"),
                ));
            }
            if attrs & (ATTR_READONLY | ATTR_HIDDEN | ATTR_SYSTEM) != 0 {
                f.set_attributes(attrs & !(ATTR_READONLY | ATTR_HIDDEN | ATTR_SYSTEM), 0)
                    .map_err(|s| err(s, format!("[{share_name}] {rel}: clearing read-only/hidden/system: {s}")))?;
            }
            if let Some(uid) = lost_uid {
                keep_conflict_loser(share, share_name, rel, &f, uid, "replaced by an update that won a conflict")?;
            }
            f.close().map_err(|s| err(s, format!("[{share_name}] {rel}: {s}")))
        }
        Err(s) if s == NtStatus::OBJECT_NAME_NOT_FOUND || s == NtStatus::NO_SUCH_FILE => Ok(()),
        Err(s) => Err(open_failed(share, share_name, rel, s)),
    }
}

/// The error for an open of an existing `rel` that failed with `s`. A
/// sharing violation is retryable: clients caching the file under a lease
/// or oplock are asked to let go first (an internal open never breaks them,
/// and a Windows client keeps idle handles open under a handle lease).
fn open_failed(share: &Share, share_name: &str, rel: &RelPath, s: NtStatus) -> MeetError {
    if s != NtStatus::SHARING_VIOLATION {
        return err(s, format!("[{share_name}] {rel}: {s}"));
    }
    let asked = match share.break_caching(&rel.to_string()) {
        Ok(0) | Err(_) => String::new(),
        Ok(n) => format!(" (asked {n} client(s) caching it to let go)"),
    };
    err(s, format!("[{share_name}] {rel} is open by a client with conflicting share modes{asked}; retry later"))
}

/// Moves the open old version `f` of `rel` to ConflictAndDeleted and
/// writes its manifest entry beside it (`<name>.manifest.json`: original
/// path, UID, time, reason).
fn keep_conflict_loser(
    share: &Share,
    share_name: &str,
    rel: &RelPath,
    f: &OpenFile<'_>,
    uid: &str,
    reason: &str,
) -> Result<(), MeetError> {
    ensure_dirs(share, share_name, &[PRIVATE_DIR.into(), "ConflictAndDeleted".into()])?;
    let now = crate::staging::filetime::from_system_time(std::time::SystemTime::now());
    let kept = format!("{CONFLICT_DIR}/{}-{now}", rel.file_name());
    f.rename(&kept, false).map_err(|s| err(s, format!("[{share_name}] {rel}: moving to {kept}: {s}")))?;
    let manifest = serde_json::json!({
        "original_path": rel.to_string(),
        "uid": uid,
        "time": crate::staging::filetime::to_iso8601(now),
        "reason": reason,
        "kept_as": kept,
    });
    let text = format!("{manifest}\n");
    let m = share
        .open_file(&format!("{kept}.manifest.json"), GENERIC_WRITE, SHARE_ALL, FILE_CREATE, FILE_NON_DIRECTORY_FILE, ATTR_ARCHIVE)
        .map_err(|s| err(s, format!("[{share_name}] {kept}.manifest.json: {s}")))?;
    m.write(0, text.as_bytes()).map_err(|s| err(s, format!("[{share_name}] {kept}.manifest.json: {s}")))?;
    m.close().map_err(|s| err(s, format!("[{share_name}] {kept}.manifest.json: {s}")))?;
    tracing::info!(share = share_name, path = %rel, kept = kept.as_str(), reason, "kept in ConflictAndDeleted");
    Ok(())
}

/// A boolean `dfsr:` option of the share (or [global]); a value that is
/// not a boolean is logged and the default used.
pub fn share_bool(share: &Share, share_name: &str, (name, default): (&str, bool)) -> bool {
    match share.option(name) {
        None => default,
        Some(v) => crate::config::parse_bool(&v).unwrap_or_else(|| {
            tracing::warn!(share = share_name, "dfsr:{name} = {v:?} is not a boolean; using {default}");
            default
        }),
    }
}

/// Removes `rel` (a tombstone): refused with SHARING_VIOLATION while open.
/// A file goes to ConflictAndDeleted (manifest with `uid`) when it `lost`
/// or the share keeps deleted files (`dfsr:keep deleted`, default yes).
pub fn remove(share_name: &str, rel: &RelPath, uid: &str, lost: bool) -> Result<(), MeetError> {
    let share = open_share(share_name)?;
    let f = share
        .open_file(&rel.to_string(), DELETE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES, SHARE_NONE, FILE_OPEN, 0, 0)
        .map_err(|s| open_failed(&share, share_name, rel, s))?;
    let attrs = f.attributes();
    if attrs & ATTR_READONLY != 0 {
        f.set_attributes(attrs & !ATTR_READONLY, 0).map_err(|s| err(s, format!("[{share_name}] {rel}: {s}")))?;
    }
    let keep = lost || share_bool(&share, share_name, crate::config::meet_options::KEEP_DELETED);
    if keep && attrs & ATTR_DIRECTORY == 0 {
        let why = if lost { "lost a conflict to a deletion" } else { "deleted by replication" };
        keep_conflict_loser(&share, share_name, rel, &f, uid, why)?;
        return f.close().map_err(|s| err(s, format!("[{share_name}] {rel}: {s}")));
    }
    f.delete_on_close().map_err(|s| err(s, format!("[{share_name}] {rel}: delete: {s}")))?;
    f.close().map_err(|s| err(s, format!("[{share_name}] {rel}: delete: {s}")))
}

/// Removes the leftovers of installs by processes that are gone (a
/// member child killed mid-install and restarted by dfsrd; the names
/// start with the installer's pid), leaving other processes' installs in
/// progress alone.
pub fn clean_installing_of_dead(share_name: &str, root: &std::path::Path) {
    let dir = root.join(INSTALLING_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = e.path();
        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        match r {
            Ok(()) => tracing::warn!(share = share_name, "removed the interrupted install {} of process {pid}", p.display()),
            Err(err) => tracing::error!(share = share_name, "cannot remove {}: {err}", p.display()),
        }
    }
}

/// Removes leftovers of interrupted installs from `<root>/DfsrPrivate/
/// Installing` (nothing there is referenced once dfsrd restarts).
pub fn clean_installing(share_name: &str, root: &std::path::Path) {
    let dir = root.join(INSTALLING_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut removed = 0usize;
    for e in entries.flatten() {
        let p = e.path();
        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        match r {
            Ok(()) => removed += 1,
            Err(err) => tracing::error!(share = share_name, "cannot remove {}: {err}", p.display()),
        }
    }
    if removed > 0 {
        tracing::warn!(share = share_name, removed, "removed interrupted installs from {}", dir.display());
    }
}

/// Moves `from` to `to` (creating `to`'s parents): refused with
/// SHARING_VIOLATION while `from` is open, and with
/// OBJECT_NAME_COLLISION when `to` exists.
pub fn move_path(share_name: &str, from: &RelPath, to: &RelPath) -> Result<(), MeetError> {
    let share = open_share(share_name)?;
    if let Some(parent) = to.parent() {
        ensure_dirs(&share, share_name, parent.components())?;
    }
    let f = share
        .open_file(&from.to_string(), DELETE | FILE_READ_ATTRIBUTES, SHARE_NONE, FILE_OPEN, 0, 0)
        .map_err(|s| open_failed(&share, share_name, from, s))?;
    f.rename(&to.to_string(), false).map_err(|s| err(s, format!("[{share_name}] moving {from} to {to}: {s}")))?;
    f.close().map_err(|s| err(s, format!("[{share_name}] {to}: {s}")))
}
