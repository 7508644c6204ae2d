//! Engine-level requests and responses of the FrsTransport interface
//! (MS-FRS2 §3.2.4.1): what the session machines send and receive, without
//! NDR. The wire layer maps these to and from `wire::frstrans` messages; the
//! engine never depends on it.

use crate::engine::ids::{Guid, Gvsn};
use crate::engine::update::Update;
use crate::engine::version_vector::VersionVector;

/// `VERSION_REQUEST_TYPE` (§2.2.1.2.1): the kind of sync a
/// RequestVersionVector asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionRequestType {
    /// `REQUEST_NORMAL_SYNC` (0).
    Normal,
    /// `REQUEST_SLOW_SYNC` (1), §3.3.1.3.
    Slow,
    /// `REQUEST_SUBORDINATE_SYNC` (2), §3.3.4.18.
    Subordinate,
}

/// `VERSION_CHANGE_TYPE` (§2.2.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    /// `CHANGE_NOTIFY` (0): complete the AsyncPoll only once the server's
    /// vector generation passes the one supplied (§3.2.4.1.5).
    Notify,
    /// `CHANGE_ALL` (2): send the whole vector now.
    All,
}

/// `UPDATE_REQUEST_TYPE` (§2.2.1.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateRequestType {
    /// `UPDATE_REQUEST_ALL` (0): tombstones first, then live updates.
    All,
    /// `UPDATE_REQUEST_TOMBSTONES` (1).
    Tombstones,
    /// `UPDATE_REQUEST_LIVE` (2).
    Live,
}

impl UpdateRequestType {
    /// True when an update of this presence is of the requested type.
    pub fn matches(self, update: &Update) -> bool {
        match self {
            UpdateRequestType::All => true,
            UpdateRequestType::Tombstones => !update.present,
            UpdateRequestType::Live => update.present,
        }
    }
}

/// `UPDATE_STATUS` (§2.2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateStatus {
    /// `UPDATE_STATUS_DONE` (2): nothing more in the supplied vector.
    Done,
    /// `UPDATE_STATUS_MORE` (3): ask again with the cursor applied.
    More,
}

/// `FRS_REQUESTED_STAGING_POLICY` (§2.2.1.2.7, §3.3.4.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StagingPolicy {
    /// `SERVER_DEFAULT` (0).
    #[default]
    ServerDefault,
    /// `STAGING_REQUIRED` (1): after `ERROR_SHARING_VIOLATION`.
    StagingRequired,
    /// `RESTAGING_REQUIRED` (2): after `FRS_ERROR_XPRESS_INVALID_DATA`.
    RestagingRequired,
}

/// `cancelType` of FRS_UPDATE_CANCEL_DATA (§2.2.1.4.5): only UNSPECIFIED
/// (1) is defined; the engine keeps its own reason for the caller's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The download failed for good (server no longer has it, or the
    /// retry limit was reached).
    DownloadFailed,
    /// The installer reported a definitive failure.
    InstallFailed,
    /// The update record itself is invalid (`Update::validate`).
    Invalid,
}

/// Which call failed, in [`Response::Failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// EstablishConnection (opnum 1).
    EstablishConnection,
    /// EstablishSession (opnum 2).
    EstablishSession,
    /// RequestVersionVector (opnum 4).
    RequestVersionVector,
    /// AsyncPoll (opnum 5), failed on invocation (§3.3.4.5: retry later).
    AsyncPoll,
    /// RequestUpdates (opnum 3).
    RequestUpdates,
    /// UpdateCancel (opnum 7).
    UpdateCancel,
}

/// MS-FRS2 and Win32 return values of FrsTransport calls (§2.2.3, the
/// method error tables): the one table of the crate.
pub mod frs_error {
    /// `ERROR_SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `ERROR_HANDLE_EOF`: RawGetFileData on a transfer already complete
    /// (§3.2.4.1.9 "implementation-defined failure value").
    pub const HANDLE_EOF: u32 = 38;
    /// `ERROR_FILE_NOT_FOUND`: our "implementation-defined" failure for a
    /// file transfer of a UID we hold no live version of, or whose staged
    /// content is missing (§3.2.4.1.14).
    pub const FILE_NOT_FOUND: u32 = 2;
    /// `ERROR_INVALID_PARAMETER`: an unknown server context
    /// (§3.2.4.1.9), a malformed request.
    pub const INVALID_PARAMETER: u32 = 87;
    /// `ERROR_BUSY`: too many downloads in flight on this connection
    /// (§3.2.4.1.14 "implementation-defined failure value"), or a second
    /// call on a server context already being read.
    pub const BUSY: u32 = 170;
    /// `ERROR_INTERNAL_ERROR`: the database could not be read.
    pub const INTERNAL_ERROR: u32 = 1359;
    /// `ERROR_SHARING_VIOLATION`: the partner could not read the file now
    /// (a download is retried with STAGING_REQUIRED, §3.3.4.7.1).
    pub const SHARING_VIOLATION: u32 = 32;
    /// `ERROR_OPERATION_ABORTED`: completes an AsyncPoll replaced by a
    /// newer one (§3.2.4.1.6).
    pub const OPERATION_ABORTED: u32 = 995;
    /// `FRS_ERROR_RDC_GENERIC`.
    pub const RDC_GENERIC: u32 = 0x234b;
    /// `FRS_ERROR_XPRESS_INVALID_DATA`: compressed staged data did not
    /// decode (a download is retried with RESTAGING_REQUIRED).
    pub const XPRESS_INVALID_DATA: u32 = 0x2358;
    /// `FRS_ERROR_CONNECTION_INVALID`.
    pub const CONNECTION_INVALID: u32 = 0x2342;
    /// `FRS_ERROR_CONTENTSET_NOT_FOUND`.
    pub const CONTENTSET_NOT_FOUND: u32 = 0x2344;
    /// `FRS_ERROR_CONTENTSET_READ_ONLY`.
    pub const CONTENTSET_READ_ONLY: u32 = 0x2375;
    /// `FRS_ERROR_INCOMPATIBLE_VERSION`.
    pub const INCOMPATIBLE_VERSION: u32 = 0x235a;
    /// `FRS_ERROR_CSMAN_OFFLINE`: we cannot serve replicated folders now
    /// (the database could not be opened).
    pub const CSMAN_OFFLINE: u32 = 0x24fe;

    /// The symbolic name of a value of this table, for messages.
    pub fn name(v: u32) -> Option<&'static str> {
        Some(match v {
            SUCCESS => "ERROR_SUCCESS",
            HANDLE_EOF => "ERROR_HANDLE_EOF",
            FILE_NOT_FOUND => "ERROR_FILE_NOT_FOUND",
            INVALID_PARAMETER => "ERROR_INVALID_PARAMETER",
            BUSY => "ERROR_BUSY",
            INTERNAL_ERROR => "ERROR_INTERNAL_ERROR",
            SHARING_VIOLATION => "ERROR_SHARING_VIOLATION",
            OPERATION_ABORTED => "ERROR_OPERATION_ABORTED",
            RDC_GENERIC => "FRS_ERROR_RDC_GENERIC",
            XPRESS_INVALID_DATA => "FRS_ERROR_XPRESS_INVALID_DATA",
            CONNECTION_INVALID => "FRS_ERROR_CONNECTION_INVALID",
            CONTENTSET_NOT_FOUND => "FRS_ERROR_CONTENTSET_NOT_FOUND",
            CONTENTSET_READ_ONLY => "FRS_ERROR_CONTENTSET_READ_ONLY",
            INCOMPATIBLE_VERSION => "FRS_ERROR_INCOMPATIBLE_VERSION",
            CSMAN_OFFLINE => "FRS_ERROR_CSMAN_OFFLINE",
            _ => return None,
        })
    }
}

/// How a call failed (§3.3.4.x error tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallError {
    /// `FRS_ERROR_CONTENTSET_NOT_FOUND` (0x2344): restart the folder
    /// session, keep the connection.
    ContentSetNotFound,
    /// `FRS_ERROR_CONTENTSET_READ_ONLY` (0x2375): never ask again.
    ContentSetReadOnly,
    /// `FRS_ERROR_CONNECTION_INVALID` (0x2342): disconnect.
    ConnectionInvalid,
    /// The transport failed (RPC error, timeout, broken socket).
    Transport,
    /// Any other non-zero status.
    Other(u32),
}

impl CallError {
    /// `FRS_ERROR_CONNECTION_INVALID` ([`frs_error`]).
    pub const CONNECTION_INVALID: u32 = frs_error::CONNECTION_INVALID;
    /// `FRS_ERROR_CONTENTSET_NOT_FOUND` ([`frs_error`]).
    pub const CONTENTSET_NOT_FOUND: u32 = frs_error::CONTENTSET_NOT_FOUND;
    /// `FRS_ERROR_CONTENTSET_READ_ONLY` ([`frs_error`]).
    pub const CONTENTSET_READ_ONLY: u32 = frs_error::CONTENTSET_READ_ONLY;

    /// Classifies a non-zero status code; RPC errors 0x6A4..=0x788 are
    /// transport errors (§3.3.4.3).
    pub fn from_status(status: u32) -> Self {
        match status {
            Self::CONNECTION_INVALID => CallError::ConnectionInvalid,
            Self::CONTENTSET_NOT_FOUND => CallError::ContentSetNotFound,
            Self::CONTENTSET_READ_ONLY => CallError::ContentSetReadOnly,
            0x6A4..=0x788 => CallError::Transport,
            other => CallError::Other(other),
        }
    }
}

/// Why a download (InitializeFileTransferAsync and what follows) failed
/// (§3.3.4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownloadError {
    /// `ERROR_SHARING_VIOLATION` on the server: retry with
    /// STAGING_REQUIRED (§3.3.4.7.1).
    SharingViolation,
    /// `FRS_ERROR_XPRESS_INVALID_DATA`: retry with RESTAGING_REQUIRED.
    InvalidCompressedData,
    /// `FRS_ERROR_RDC_GENERIC`: retry without RDC.
    RdcGeneric,
    /// The server no longer holds this version (superseded or deleted):
    /// nothing to retry; the update is cancelled.
    Gone,
    /// `FRS_ERROR_CONNECTION_INVALID`: disconnect.
    ConnectionInvalid,
    /// `FRS_ERROR_CONTENTSET_NOT_FOUND`: restart the folder session.
    ContentSetNotFound,
    /// Anything else: retry (§3.3.4.8 "MUST retry the download").
    Other(u32),
}

/// A request the client sends (or the responder receives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// EstablishConnection (opnum 1, §3.2.4.1.2); version negotiation is the
    /// wire layer's business.
    EstablishConnection,
    /// EstablishSession (opnum 2, §3.2.4.1.3) for one replicated folder.
    EstablishSession {
        /// The replicated folder (content set).
        folder: Guid,
    },
    /// RequestVersionVector (opnum 4, §3.2.4.1.5).
    RequestVersionVector {
        /// The replicated folder.
        folder: Guid,
        /// Pairs the request with its AsyncPoll completion.
        sequence: u32,
        /// NORMAL / SLOW / SUBORDINATE.
        request_type: VersionRequestType,
        /// NOTIFY / ALL.
        change_type: ChangeType,
        /// The generation last received (NORMAL), else 0.
        vv_generation: u64,
    },
    /// AsyncPoll (opnum 5, §3.2.4.1.6): one outstanding per connection.
    AsyncPoll,
    /// RequestUpdates (opnum 3, §3.2.4.1.4).
    RequestUpdates {
        /// The replicated folder.
        folder: Guid,
        /// `creditsAvailable`, 1..=256.
        credits: u32,
        /// ALL / TOMBSTONES / LIVE (§3.3.4.6.1).
        request_type: UpdateRequestType,
        /// `hashRequested`.
        hash_requested: bool,
        /// `versionVectorDiff`, already pruned by the cursor.
        vv_diff: VersionVector,
    },
    /// Download a file: InitializeFileTransferAsync (opnum 13, §3.2.4.1.14)
    /// and the RawGetFileData / RDC calls and RdcClose that follow, which
    /// the transfer layer runs; it answers with [`Response::FileDownloaded`]
    /// or [`Response::DownloadFailed`].
    DownloadFile {
        /// The replicated folder.
        folder: Guid,
        /// The update whose content is wanted.
        update: Update,
        /// `stagingPolicy`.
        staging_policy: StagingPolicy,
        /// `rdcDesired`.
        rdc_desired: bool,
    },
    /// UpdateCancel (opnum 7, §3.2.4.1.8).
    UpdateCancel {
        /// The replicated folder (`contentSetId`).
        folder: Guid,
        /// The GVSN that could not be processed.
        gvsn: Gvsn,
        /// Why (sent as UNSPECIFIED).
        reason: CancelReason,
    },
}

/// The payload of an AsyncPoll completion (FRS_ASYNC_RESPONSE_CONTEXT,
/// §2.2.1.4.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncPollResponse {
    /// The sequence number of the RequestVersionVector it answers.
    pub sequence: u32,
    /// 0 on success; any other value is a failed completion (§3.3.4.5:
    /// disconnect).
    pub status: u32,
    /// The server's vector generation.
    pub vv_generation: u64,
    /// The vector for CHANGE_ALL; `None` for a CHANGE_NOTIFY notification
    /// (§3.2.4.1.5 "MUST NOT provide any version vector").
    pub vector: Option<VersionVector>,
}

/// One RequestUpdates reply (§3.2.4.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatesResponse {
    /// The replicated folder.
    pub folder: Guid,
    /// At most `creditsAvailable` updates; tombstones first for ALL.
    pub updates: Vec<Update>,
    /// DONE / MORE.
    pub status: UpdateStatus,
    /// `(gvsnDbGuid, gvsnVersion)`: the last GVSN of the diff considered.
    pub cursor: Gvsn,
}

/// A response (or completion) the client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// EstablishConnection succeeded.
    ConnectionEstablished,
    /// EstablishSession succeeded for `folder`.
    SessionEstablished {
        /// The replicated folder.
        folder: Guid,
    },
    /// RequestVersionVector returned 0 (§3.3.4.4: now wait for AsyncPoll).
    VersionVectorRequested {
        /// The replicated folder.
        folder: Guid,
        /// The request's sequence number.
        sequence: u32,
    },
    /// An AsyncPoll completed (§3.3.4.5).
    AsyncPoll(AsyncPollResponse),
    /// RequestUpdates returned 0 (§3.3.4.6).
    Updates(UpdatesResponse),
    /// A [`Request::DownloadFile`] finished: the content is staged.
    FileDownloaded {
        /// The replicated folder.
        folder: Guid,
        /// The update downloaded.
        gvsn: Gvsn,
    },
    /// A [`Request::DownloadFile`] failed.
    DownloadFailed {
        /// The replicated folder.
        folder: Guid,
        /// The update.
        gvsn: Gvsn,
        /// Why.
        error: DownloadError,
    },
    /// UpdateCancel returned 0 (§3.3.4.17).
    UpdateCancelled {
        /// The replicated folder.
        folder: Guid,
        /// The cancelled GVSN.
        gvsn: Gvsn,
    },
    /// A call failed (non-zero status or transport error).
    Failed {
        /// Which call.
        call: Call,
        /// Its folder, when it has one.
        folder: Option<Guid>,
        /// How.
        error: CallError,
    },
}
