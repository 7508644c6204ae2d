//! The meet's VFS primitives (src/c/meet_vfs.c; they need dfsrd's init):
//! a share opened as a connection_struct, and open files on it, with RAII
//! so a failed install never leaks an fsp or a share-mode entry.

use crate::samba::ntstatus::NtStatus;
use std::ffi::{c_char, CString};

use super::shims::{
    dfsr_vfs_break_caching, dfsr_vfs_builtin_modules, dfsr_vfs_close, dfsr_vfs_close_share,
    dfsr_vfs_delete_on_close, dfsr_vfs_get_attributes, dfsr_vfs_get_info, dfsr_vfs_get_sd, dfsr_vfs_read, dfsr_vfs_streams, dfsr_vfs_modules_dir, dfsr_vfs_open, dfsr_vfs_open_share,
    dfsr_vfs_rename, dfsr_vfs_set_attributes, dfsr_vfs_set_eof, dfsr_vfs_set_sd, dfsr_vfs_set_sparse,
    dfsr_vfs_set_times, dfsr_vfs_share_objects, dfsr_vfs_share_option, dfsr_vfs_share_path, dfsr_vfs_write,
    files_struct as FilesStruct, DfsrFileInfo, DfsrShare,
};

/// What smbd reports of an open file ([`OpenFile::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    pub size: u64,
    pub inode: u64,
    /// NTTIME: creation, last access, last write, change.
    pub times: [u64; 4],
    pub attributes: u32,
    pub is_dir: bool,
}


/// Copies a NUL-terminated string out, None for NULL.
///
/// # Safety
/// `p` is NULL or a valid C string for the call.
unsafe fn copy_c(p: *const c_char) -> Option<String> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A share's `vfs objects` as smb.conf lists them (with any `:param`);
/// None for a share smb.conf does not have.
pub fn share_vfs_objects(share: &str) -> Option<Vec<String>> {
    let c = CString::new(share).ok()?;
    // SAFETY: c is valid; the result is NULL or a NULL-terminated array of
    // C strings owned by loadparm, copied out before anything can reload it.
    unsafe {
        let list = dfsr_vfs_share_objects(c.as_ptr());
        if list.is_null() {
            return None;
        }
        let mut out = Vec::new();
        let mut i = 0;
        while !(*list.add(i)).is_null() {
            out.extend(copy_c(*list.add(i)));
            i += 1;
        }
        Some(out)
    }
}

/// A share's path with smbd's substitutions; None for an unknown share.
pub fn share_path(share: &str) -> Option<String> {
    let c = CString::new(share).ok()?;
    // SAFETY: c is valid; the result is NULL or a malloc'ed C string that
    // is ours to free, copied before it is freed.
    unsafe {
        let p = dfsr_vfs_share_path(c.as_ptr());
        let out = copy_c(p);
        libc::free(p.cast());
        out
    }
}

/// The directory `smb_load_module` loads modules from (`<dir>/vfs/NAME.so`).
pub fn modules_dir() -> String {
    // SAFETY: get_dyn_MODULESDIR returns a static C string.
    unsafe { copy_c(dfsr_vfs_modules_dir()) }.unwrap_or_default()
}

/// The text of the prepared tree's `static_init_vfs` macro, which names the
/// VFS modules built into libsmbd-base (`vfs_NAME_init`).
pub fn builtin_modules_text() -> String {
    // SAFETY: a string literal in the shim.
    unsafe { copy_c(dfsr_vfs_builtin_modules()) }.unwrap_or_default()
}

/// Why a shared object cannot serve as a Samba module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleLoadError {
    /// dlopen(RTLD_NOW) failed, with dlerror's text.
    Open(String),
    /// It has no `samba_init_module`.
    NoInitFunction,
}

/// Loads `path` as Samba's `load_module` does (dlopen RTLD_NOW, then
/// `samba_init_module`), without calling its init, and unloads it again.
pub fn probe_module(path: &str) -> Result<(), ModuleLoadError> {
    let c = CString::new(path).map_err(|_| ModuleLoadError::Open("path contains NUL".into()))?;
    // SAFETY: c is valid for the calls; dlerror's result is a C string
    // valid until the next dl* call and copied at once; the handle is
    // closed exactly once.
    unsafe {
        libc::dlerror();
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW);
        if h.is_null() {
            return Err(ModuleLoadError::Open(copy_c(libc::dlerror()).unwrap_or_default()));
        }
        let init = libc::dlsym(h, c"samba_init_module".as_ptr());
        libc::dlclose(h);
        if init.is_null() {
            return Err(ModuleLoadError::NoInitFunction);
        }
    }
    Ok(())
}

fn st(v: u32) -> Result<(), NtStatus> {
    if v == 0 {
        Ok(())
    } else {
        Err(NtStatus(v))
    }
}

fn cpath(p: &str) -> Result<CString, NtStatus> {
    CString::new(p).map_err(|_| NtStatus::OBJECT_NAME_INVALID)
}

/// A share opened through its own VFS stack, as SYSTEM. Closing it (drop)
/// disconnects the VFS modules and changes back to the old directory.
pub struct Share(*mut DfsrShare);

impl Share {
    pub fn open(name: &str) -> Result<Share, NtStatus> {
        let c = CString::new(name).map_err(|_| NtStatus::BAD_NETWORK_NAME)?;
        let mut status = 0u32;
        // SAFETY: valid C string; status is a local out-parameter.
        let p = unsafe { dfsr_vfs_open_share(c.as_ptr(), &mut status) };
        if p.is_null() {
            Err(NtStatus(status))
        } else {
            Ok(Share(p))
        }
    }

    /// SMB_VFS_CREATE_FILE on a share-relative path (`a/b`, `a/b:stream`).
    pub fn open_file(
        &self,
        relpath: &str,
        access_mask: u32,
        share_access: u32,
        disposition: u32,
        create_options: u32,
        attributes: u32,
    ) -> Result<OpenFile<'_>, NtStatus> {
        self.create_file(relpath, access_mask, share_access, disposition, create_options, attributes, &[])
    }

    /// [`Share::open_file`] carrying a security descriptor (self-relative;
    /// none when empty), as a client's create does: a file this creates
    /// gets it instead of the inherited one (one ACL written, not two).
    #[allow(clippy::too_many_arguments)]
    pub fn create_file(
        &self,
        relpath: &str,
        access_mask: u32,
        share_access: u32,
        disposition: u32,
        create_options: u32,
        attributes: u32,
        sd: &[u8],
    ) -> Result<OpenFile<'_>, NtStatus> {
        let c = cpath(relpath)?;
        let mut fsp = std::ptr::null_mut();
        // SAFETY: self.0 is a live share; c is valid; sd is valid for
        // sd.len() bytes and only read (unmarshalled into a copy); fsp is a
        // local out-param.
        st(unsafe {
            dfsr_vfs_open(
                self.0,
                c.as_ptr(),
                access_mask,
                share_access,
                disposition,
                create_options,
                attributes,
                sd.as_ptr(),
                sd.len(),
                &mut fsp,
            )
        })?;
        Ok(OpenFile { fsp, _share: std::marker::PhantomData })
    }

    /// The share's `dfsr:NAME` (or [global]'s), None when unset.
    pub fn option(&self, name: &str) -> Option<String> {
        let c = CString::new(name).ok()?;
        // SAFETY: self.0 is a live share; c is valid; the result is NULL or
        // a C string owned by loadparm, copied out at once.
        unsafe {
            let p = dfsr_vfs_share_option(self.0, c.as_ptr());
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// Asks every client caching `relpath` under an oplock or lease to
    /// give it up; returns how many were asked.
    pub fn break_caching(&self, relpath: &str) -> Result<u32, NtStatus> {
        let c = cpath(relpath)?;
        let mut sent = 0u32;
        // SAFETY: self.0 is a live share; c is valid; sent is a local out-param.
        st(unsafe { dfsr_vfs_break_caching(self.0, c.as_ptr(), &mut sent) })?;
        Ok(sent)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        // SAFETY: made by dfsr_vfs_open_share; every OpenFile borrowed self
        // and is gone by now.
        unsafe { dfsr_vfs_close_share(self.0) }
    }
}

/// An open file or stream on a [`Share`]; closed on drop.
pub struct OpenFile<'a> {
    fsp: *mut FilesStruct,
    _share: std::marker::PhantomData<&'a Share>,
}

impl OpenFile<'_> {
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), NtStatus> {
        // SAFETY: fsp is open; data is a valid slice for the call.
        st(unsafe { dfsr_vfs_write(self.fsp, offset, data.as_ptr(), data.len()) })
    }
    pub fn set_security(&self, sd: &[u8], security_info: u32) -> Result<(), NtStatus> {
        // SAFETY: fsp is open; sd is a valid slice for the call.
        st(unsafe { dfsr_vfs_set_sd(self.fsp, sd.as_ptr(), sd.len(), security_info) })
    }
    pub fn set_attributes(&self, attributes: u32, create_nttime: u64) -> Result<(), NtStatus> {
        // SAFETY: fsp is open.
        st(unsafe { dfsr_vfs_set_attributes(self.fsp, attributes, create_nttime) })
    }
    pub fn attributes(&self) -> u32 {
        // SAFETY: fsp is open.
        unsafe { dfsr_vfs_get_attributes(self.fsp) }
    }
    pub fn set_times(&self, create: u64, access: u64, write: u64, change: u64) -> Result<(), NtStatus> {
        // SAFETY: fsp is open.
        st(unsafe { dfsr_vfs_set_times(self.fsp, create, access, write, change) })
    }
    pub fn rename(&self, relpath: &str, replace: bool) -> Result<(), NtStatus> {
        let c = cpath(relpath)?;
        // SAFETY: fsp is open; c is valid.
        st(unsafe { dfsr_vfs_rename(self.fsp, c.as_ptr(), replace) })
    }
    /// Marks the file sparse (or not), as FSCTL_SET_SPARSE does.
    pub fn set_sparse(&self, sparse: bool) -> Result<(), NtStatus> {
        // SAFETY: self.fsp is open until close/drop.
        st(unsafe { dfsr_vfs_set_sparse(self.fsp, sparse) })
    }

    /// Sets the end of file; growing it leaves a hole.
    pub fn set_eof(&self, size: u64) -> Result<(), NtStatus> {
        // SAFETY: self.fsp is open until close/drop.
        st(unsafe { dfsr_vfs_set_eof(self.fsp, size) })
    }

    /// Reads into `buf` at `offset`; 0 at the end of the file.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, NtStatus> {
        let mut n = 0usize;
        // SAFETY: fsp is open; buf is a valid writable slice of buf.len()
        // bytes for the call; n is a local out-parameter.
        st(unsafe { dfsr_vfs_read(self.fsp, offset, buf.as_mut_ptr(), buf.len(), &mut n) })?;
        Ok(n.min(buf.len()))
    }

    /// Size, inode, times and DOS attributes, freshly read.
    pub fn info(&self) -> Result<FileInfo, NtStatus> {
        let mut i = DfsrFileInfo { size: 0, inode: 0, times: [0; 4], attributes: 0, is_dir: false };
        // SAFETY: fsp is open; i is a local out-parameter of the C layout.
        st(unsafe { dfsr_vfs_get_info(self.fsp, &mut i) })?;
        Ok(FileInfo { size: i.size, inode: i.inode, times: i.times, attributes: i.attributes, is_dir: i.is_dir })
    }

    /// The security descriptor (self-relative) for `security_info`.
    pub fn security(&self, security_info: u32) -> Result<Vec<u8>, NtStatus> {
        let mut p: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: fsp is open; p and len are local out-parameters; on
        // success p is NULL or a malloc'ed buffer of len bytes that is ours,
        // copied and freed once.
        unsafe {
            st(dfsr_vfs_get_sd(self.fsp, security_info, &mut p, &mut len))?;
            if p.is_null() {
                return Ok(Vec::new());
            }
            let v = std::slice::from_raw_parts(p, len).to_vec();
            libc::free(p.cast());
            Ok(v)
        }
    }

    /// The named alternate streams and their sizes.
    pub fn streams(&self) -> Result<Vec<(String, u64)>, NtStatus> {
        unsafe extern "C" fn collect(ctx: *mut std::ffi::c_void, name: *const c_char, size: u64) {
            // SAFETY: ctx is the Vec passed below, alive for the call;
            // name is a valid C string for this callback.
            unsafe {
                let out = &mut *ctx.cast::<Vec<(String, u64)>>();
                out.extend(copy_c(name).map(|n| (n, size)));
            }
        }
        let mut out: Vec<(String, u64)> = Vec::new();
        // SAFETY: fsp is open; the callback only runs during the call and
        // gets &mut out as its context.
        st(unsafe { dfsr_vfs_streams(self.fsp, Some(collect), (&mut out as *mut Vec<(String, u64)>).cast()) })?;
        Ok(out)
    }

    pub fn delete_on_close(&self) -> Result<(), NtStatus> {
        // SAFETY: fsp is open.
        st(unsafe { dfsr_vfs_delete_on_close(self.fsp) })
    }
    /// Closes now and reports the status (drop closes silently).
    pub fn close(mut self) -> Result<(), NtStatus> {
        let fsp = std::mem::replace(&mut self.fsp, std::ptr::null_mut());
        // SAFETY: fsp was open and is closed exactly once.
        st(unsafe { dfsr_vfs_close(fsp) })
    }
}

impl Drop for OpenFile<'_> {
    fn drop(&mut self) {
        if !self.fsp.is_null() {
            // SAFETY: fsp is open and is closed exactly once.
            unsafe { dfsr_vfs_close(self.fsp) };
        }
    }
}
