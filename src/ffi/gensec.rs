//! Samba's gensec as the security provider of the MS-FRS2 wire: a safe
//! [`Gensec`] context implementing [`SecurityContext`] over the thin C
//! wrappers in `src/c/gensec_shim.c`.
//!
//! - [`Gensec::server`]: a DCE/RPC server context made as source3's RPC
//!   servers make theirs (`auth_generic_prepare(.., "DCE/RPC", ..)`, then
//!   `gensec_start_mech_by_authtype`); NTLM is checked against passdb, so
//!   it is only meaningful in a process that initialised Samba like dfsrd.
//! - [`Gensec::client`]: a client context with explicit credentials
//!   (Kerberos off), settings from an smb.conf.
//!
//! gensec is not thread-safe and uses talloc: a context must stay on the
//! thread that made it (the type is neither `Send` nor `Sync`).

use std::ffi::{c_char, CStr, CString};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::ptr::NonNull;

use crate::samba::ntstatus::NtStatus;
use crate::wire::dcerpc::auth::{SecurityContext, SecurityError, Update};
use crate::wire::dcerpc::{AuthLevel, AuthType};
use crate::net::rpc_server::SecurityMaker;

use super::shims::{
    dfsr_gensec as DfsrGensec, dfsr_gensec_check, dfsr_gensec_client_start, dfsr_gensec_destroy,
    dfsr_gensec_free_blob, dfsr_gensec_have_sign_pkt_header, dfsr_gensec_seal, dfsr_gensec_server_start,
    dfsr_gensec_session_key, dfsr_gensec_session_user, dfsr_gensec_sig_size, dfsr_gensec_sign,
    dfsr_gensec_unseal, dfsr_gensec_update, dfsr_gensec_want_sign_pkt_header,
};


/// `NT_STATUS_MORE_PROCESSING_REQUIRED`: another leg follows.
const MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;
/// `NT_STATUS_ACCESS_DENIED`: what gensec returns for a bad signature.
const ACCESS_DENIED: u32 = 0xc000_0022;
/// Room for any gensec signature or session key (NTLMSSP: 16 bytes,
/// Kerberos: up to about 76).
const SIG_CAP: usize = 256;

/// Which side a context is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts binds (dfsrd's listener).
    Server,
    /// Binds to a server.
    Client,
}

/// Why a context could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A string argument contains a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    /// gensec refused (e.g. `NT_STATUS_INVALID_PARAMETER` for an auth type
    /// it has no backend for).
    #[error("gensec start: {0}")]
    Status(NtStatus),
}

/// One gensec security context.
pub struct Gensec {
    ptr: NonNull<DfsrGensec>,
    role: Role,
    auth_type: AuthType,
    established: bool,
    user: Option<String>,
}

/// Samba's gensec, talloc stack frames and loadparm globals are not
/// thread-safe: every call into them holds this process-wide lock (one
/// uncontended lock per PDU in dfsrd's single protocol thread; it matters
/// for programs with several clients on several threads).
static SAMBA: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn samba_lock() -> std::sync::MutexGuard<'static, ()> {
    // A panic elsewhere while holding it leaves nothing half-done on
    // Samba's side that the next caller could trip over.
    SAMBA.lock().unwrap_or_else(|e| e.into_inner())
}

fn cstring(what: &'static str, s: &str) -> Result<CString, StartError> {
    CString::new(s).map_err(|_| StartError::Nul(what))
}

fn status(st: u32) -> Result<(), SecurityError> {
    match st {
        0 => Ok(()),
        ACCESS_DENIED => Err(SecurityError::BadSignature),
        st => Err(SecurityError::Status(st)),
    }
}

fn check_range(pdu_len: usize, payload: &Range<usize>) -> Result<(), SecurityError> {
    if payload.start > payload.end || payload.end > pdu_len {
        return Err(SecurityError::Status(NtStatus::INVALID_PARAMETER.0));
    }
    Ok(())
}

impl Gensec {
    /// A server context for a bind from `remote` to `local` with
    /// `auth_type` at `auth_level`.
    pub fn server(
        remote: SocketAddr,
        local: SocketAddr,
        auth_type: AuthType,
        auth_level: AuthLevel,
    ) -> Result<Gensec, StartError> {
        let _samba = samba_lock();
        let rip = cstring("remote address", &remote.ip().to_string())?;
        let lip = cstring("local address", &local.ip().to_string())?;
        let mut out: *mut DfsrGensec = std::ptr::null_mut();
        // SAFETY: the strings are valid NUL-terminated and outlive the
        // call; `out` is a valid place for the result pointer.
        let st = unsafe {
            dfsr_gensec_server_start(
                rip.as_ptr(),
                remote.port(),
                lip.as_ptr(),
                local.port(),
                auth_type.0,
                auth_level.0,
                &mut out,
            )
        };
        Self::wrap(st, out, Role::Server, auth_type)
    }

    /// A client context logging in as `domain\user` with `password`,
    /// with the gensec settings of `configfile` (or of the loaded
    /// smb.conf, in a Samba process, when `None`).
    pub fn client(
        configfile: Option<&Path>,
        user: &str,
        domain: &str,
        password: &str,
        target_hostname: &str,
        auth_type: AuthType,
        auth_level: AuthLevel,
    ) -> Result<Gensec, StartError> {
        let _samba = samba_lock();
        let conf = configfile.map(|p| cstring("configuration path", &p.to_string_lossy())).transpose()?;
        let user_c = cstring("user name", user)?;
        let domain_c = cstring("domain", domain)?;
        let password_c = cstring("password", password)?;
        let host_c = cstring("target host name", target_hostname)?;
        let mut out: *mut DfsrGensec = std::ptr::null_mut();
        // SAFETY: every string is NULL (conf only) or valid NUL-terminated
        // and outlives the call; `out` is a valid place for the result.
        let st = unsafe {
            dfsr_gensec_client_start(
                conf.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                user_c.as_ptr(),
                domain_c.as_ptr(),
                password_c.as_ptr(),
                host_c.as_ptr(),
                auth_type.0,
                auth_level.0,
                &mut out,
            )
        };
        Self::wrap(st, out, Role::Client, auth_type)
    }

    fn wrap(st: u32, out: *mut DfsrGensec, role: Role, auth_type: AuthType) -> Result<Gensec, StartError> {
        if st != 0 {
            return Err(StartError::Status(NtStatus(st)));
        }
        let ptr = NonNull::new(out).ok_or(StartError::Status(NtStatus(0xc000_0017)))?;
        Ok(Gensec { ptr, role, auth_type, established: false, user: None })
    }

    /// `DOMAIN\user` of the authenticated client (server side, once
    /// established).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Called with [`samba_lock`] held (from `update`).
    fn fetch_user(&mut self) -> Result<String, SecurityError> {
        let mut buf = [0 as c_char; 512];
        // SAFETY: `ptr` is a live context; `buf` is writable for its length
        // and the shim NUL-terminates within it (snprintf).
        let st = unsafe { dfsr_gensec_session_user(self.ptr.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        status(st)?;
        // SAFETY: snprintf NUL-terminated the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
    }
}

impl Drop for Gensec {
    fn drop(&mut self) {
        let _samba = samba_lock();
        // SAFETY: `ptr` came from a successful start and is freed only here.
        unsafe { dfsr_gensec_destroy(self.ptr.as_ptr()) }
    }
}

impl SecurityContext for Gensec {
    fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    fn peer_user(&self) -> Option<String> {
        self.user.clone()
    }

    fn update(&mut self, token_in: &[u8]) -> Result<Update, SecurityError> {
        let _samba = samba_lock();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len = 0usize;
        // SAFETY: `ptr` is live; `token_in` is readable for its length;
        // `out`/`out_len` are valid places for the result.
        let st =
            unsafe { dfsr_gensec_update(self.ptr.as_ptr(), token_in.as_ptr(), token_in.len(), &mut out, &mut out_len) };
        let token = if out.is_null() {
            Vec::new()
        } else {
            // SAFETY: the shim handed over a talloc buffer of `out_len`
            // bytes, ours to read and then free exactly once.
            unsafe {
                let v = std::slice::from_raw_parts(out, out_len).to_vec();
                dfsr_gensec_free_blob(out);
                v
            }
        };
        let done = match st {
            0 => true,
            MORE_PROCESSING_REQUIRED => false,
            st => return Err(SecurityError::Status(st)),
        };
        if done {
            self.established = true;
            if self.role == Role::Server {
                let user = self.fetch_user()?;
                tracing::info!(user = %user, auth_type = self.auth_type.0, "rpc: client authenticated");
                self.user = Some(user);
            }
        }
        Ok(Update { token, done })
    }

    fn sig_size(&self, payload_len: usize) -> usize {
        let _samba = samba_lock();
        // SAFETY: `ptr` is live; gensec_sig_size only reads the context.
        unsafe { dfsr_gensec_sig_size(self.ptr.as_ptr(), payload_len) }
    }

    fn seal(&mut self, pdu: &mut [u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError> {
        let _samba = samba_lock();
        if !self.established {
            return Err(SecurityError::NotEstablished);
        }
        check_range(pdu.len(), &payload)?;
        let mut sig = vec![0u8; SIG_CAP];
        let mut sig_len = 0usize;
        let whole = pdu.as_mut_ptr();
        // SAFETY: `payload` lies within `pdu` (checked), so data..data+len
        // is inside the whole PDU both pointers derive from; gensec
        // encrypts the payload in place and reads the whole PDU, as
        // Samba's own callers do with aliasing buffers. `sig` is writable
        // for SIG_CAP bytes.
        let st = unsafe {
            dfsr_gensec_seal(
                self.ptr.as_ptr(),
                whole.add(payload.start),
                payload.len(),
                whole,
                pdu.len(),
                sig.as_mut_ptr(),
                sig.len(),
                &mut sig_len,
            )
        };
        status(st)?;
        sig.truncate(sig_len);
        Ok(sig)
    }

    fn unseal(&mut self, pdu: &mut [u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError> {
        let _samba = samba_lock();
        if !self.established {
            return Err(SecurityError::NotEstablished);
        }
        check_range(pdu.len(), &payload)?;
        let whole = pdu.as_mut_ptr();
        // SAFETY: as in `seal`; `sig` is readable for its length.
        let st = unsafe {
            dfsr_gensec_unseal(
                self.ptr.as_ptr(),
                whole.add(payload.start),
                payload.len(),
                whole,
                pdu.len(),
                sig.as_ptr(),
                sig.len(),
            )
        };
        status(st)
    }

    fn sign(&mut self, pdu: &[u8], payload: Range<usize>) -> Result<Vec<u8>, SecurityError> {
        let _samba = samba_lock();
        if !self.established {
            return Err(SecurityError::NotEstablished);
        }
        check_range(pdu.len(), &payload)?;
        let mut sig = vec![0u8; SIG_CAP];
        let mut sig_len = 0usize;
        // SAFETY: `payload` lies within `pdu` (checked); both are only
        // read; `sig` is writable for SIG_CAP bytes.
        let st = unsafe {
            dfsr_gensec_sign(
                self.ptr.as_ptr(),
                pdu.as_ptr().add(payload.start),
                payload.len(),
                pdu.as_ptr(),
                pdu.len(),
                sig.as_mut_ptr(),
                sig.len(),
                &mut sig_len,
            )
        };
        status(st)?;
        sig.truncate(sig_len);
        Ok(sig)
    }

    fn check(&mut self, pdu: &[u8], payload: Range<usize>, sig: &[u8]) -> Result<(), SecurityError> {
        let _samba = samba_lock();
        if !self.established {
            return Err(SecurityError::NotEstablished);
        }
        check_range(pdu.len(), &payload)?;
        // SAFETY: `payload` lies within `pdu` (checked); all only read.
        let st = unsafe {
            dfsr_gensec_check(
                self.ptr.as_ptr(),
                pdu.as_ptr().add(payload.start),
                payload.len(),
                pdu.as_ptr(),
                pdu.len(),
                sig.as_ptr(),
                sig.len(),
            )
        };
        status(st)
    }

    fn supports_header_signing(&self) -> bool {
        let _samba = samba_lock();
        // SAFETY: `ptr` is live; a feature query only reads the context.
        unsafe { dfsr_gensec_have_sign_pkt_header(self.ptr.as_ptr()) }
    }

    fn enable_header_signing(&mut self) {
        let _samba = samba_lock();
        // SAFETY: `ptr` is live; sets a feature bit on the context.
        unsafe { dfsr_gensec_want_sign_pkt_header(self.ptr.as_ptr()) }
    }

    fn session_key(&self) -> Result<Vec<u8>, SecurityError> {
        let _samba = samba_lock();
        if !self.established {
            return Err(SecurityError::NotEstablished);
        }
        let mut key = vec![0u8; SIG_CAP];
        let mut len = 0usize;
        // SAFETY: `ptr` is live; `key` is writable for SIG_CAP bytes.
        let st = unsafe { dfsr_gensec_session_key(self.ptr.as_ptr(), key.as_mut_ptr(), key.len(), &mut len) };
        match st {
            0 => {
                key.truncate(len);
                Ok(key)
            }
            st => Err(SecurityError::Status(st)),
        }
    }
}

/// The security contexts of dfsrd's listener: a gensec server context per
/// authenticated bind (any auth type gensec has a backend for: NTLMSSP,
/// SPNEGO, Kerberos with a keytab).
pub fn server_maker() -> Box<SecurityMaker> {
    Box::new(|peer, local, auth_type, level| match Gensec::server(peer, local, auth_type, level) {
        Ok(g) => Some(Box::new(g) as Box<dyn SecurityContext>),
        Err(e) => {
            tracing::warn!(%peer, auth_type = auth_type.0, level = level.0, error = %e, "rpc: gensec refused the bind");
            None
        }
    })
}
