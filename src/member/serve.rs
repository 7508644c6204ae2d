//! The FrsTransport methods as dfsrd answers them (MS-FRS2 §3.2.4.1): the
//! per-connection dispatcher between NDR stub data and the engine's
//! [`Responder`], the store ([`ServedGroup`]) and the staging area.
//!
//! Sans-IO except for reading staged files: stub bytes in, an [`Outcome`]
//! out; AsyncPoll completions that happen later are collected with
//! [`FrsService::poll_completion`]. Time is the caller's monotonic clock in
//! milliseconds.
//!
//! Replication configuration (which partners hold which connection) does
//! not exist yet: EstablishConnection accepts any replica set and
//! connection GUID from a client that authenticated at packet privacy
//! and that the [`AllowList`] (`dfsr:rpc allow`) admits.
//!
//! # What is answered
//! - CheckConnectivity (0), EstablishConnection (1, version negotiation
//!   0x50002-0x50004+, 0x235A on mismatch), EstablishSession (2),
//!   RequestUpdates (3), RequestVersionVector (4) + AsyncPoll (5),
//!   RequestRecords (6), UpdateCancel (7), RawGetFileData (8), RdcClose
//!   (12), InitializeFileTransferAsync (13), from the engine's database.
//! - The RDC methods (9-11), the pipe methods (15, 16) and the keep-alive
//!   (17) fault `nca_s_op_rng_error`: we never offer RDC
//!   (`upstreamFlags` 0, no signature levels in `rdcFileInfo`), so a
//!   conforming client uses RawGetFileData.
//! - Stub data that does not decode faults `RPC_X_BAD_STUB_DATA`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;

use crate::engine::ids::{Gvsn, Uid};
use crate::engine::session::{
    CallError, CancelReason, Request as ERequest, Responder, ResponderConfig, Response as EResponse,
    UpdateDatabase, UpdatesResponse,
};
use crate::staging::xpress;
use crate::store::{Database, ServedGroup, StagingArea};

use crate::wire::dcerpc::pdu::status;
use crate::wire::frstrans::convert::{
    change_from_wire, update_from_wire, update_request_from_wire, update_status_to_wire,
    update_to_wire, vector_from_wire, vector_to_wire, version_request_from_wire,
};
use crate::wire::frstrans::{
    frs_error, version_compatible, OUR_PROTOCOL_VERSION, AsyncPollResponse, AsyncResponseContext, AsyncVersionVectorResponse, ContextHandle,
    EstablishConnectionResponse, InitializeFileTransferAsyncRequest, InitializeFileTransferAsyncResponse,
    RawGetFileDataResponse, RdcCloseResponse, RdcFileCompressionType, RdcFileInfo, RecordsStatus, Request,
    RequestRecordsRequest, RequestRecordsResponse, RequestUpdatesRequest, RequestUpdatesResponse, Response,
    StagingPolicy, StatusResponse, UpdateStatus, CONFIG_RDC_VERSION,
    CONFIG_RDC_VERSION_COMPATIBLE,
};
use crate::wire::Guid;

/// Downloads one connection may have open at once (Windows serves 16).
pub const MAX_TRANSFERS: usize = 16;

/// Records one RequestRecords answer carries at most (§3.2.4.1.7 lets the
/// server lower `maxRecords`): 1024 × 48 bytes compress in one pass.
pub const MAX_RECORDS: u32 = 1024;

/// Size of `FRS_ID_GVSN` as RequestRecords packs it (§2.2.1.4.3).
const ID_GVSN_SIZE: usize = 48;

/// What dfsrd's FrsTransport server (`net::rpc_server::serve`) answers from.
#[derive(Debug, Default)]
pub struct ServedState {
    /// The engine's database; `None` serves no replicated folder.
    pub db: Option<Database>,
    /// The staged files; `None` fails every download.
    pub staging: Option<StagingArea>,
    /// Who may replicate (`dfsr:rpc allow`).
    pub allow: AllowList,
    /// The replication configuration: which connections we serve.
    pub config: Option<crate::store::config_store::ConfigStore>,
    /// Which member this server is.
    pub member: String,
}

/// Opens what dfsrd serves under `<state_dir>/dfsr`: the database
/// (created when missing) and the staging area. A database that cannot be
/// opened is logged and nothing is served from it.
pub fn served_state(state_dir: &std::path::Path, allow: &str, member: &str) -> ServedState {
    let dir = state_dir.join(crate::store::DIR_NAME);
    let staging = StagingArea::new(dir.join(crate::store::staging_area::DIR_NAME));
    let db_path = dir.join(crate::store::FILE_NAME);
    let db = match std::fs::create_dir_all(&dir).map_err(|e| e.to_string()).and_then(|_| {
        Database::open(&db_path).map_err(|e| e.to_string())
    }) {
        Ok(db) => {
            tracing::info!(path = %db_path.display(), staging = %staging.dir().display(), "rpc: serving the database");
            Some(db)
        }
        Err(e) => {
            tracing::error!(path = %db_path.display(), error = %e, "rpc: cannot open the database; no folder is served");
            None
        }
    };
    let allow = AllowList::parse(allow);
    if allow.is_open() {
        tracing::warn!("rpc: dfsr:rpc allow is not set: any account that authenticates may replicate");
    }
    let config_path = dir.join(crate::store::config_store::FILE_NAME);
    let config = match crate::store::config_store::ConfigStore::open(&config_path) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(path = %config_path.display(), "rpc: cannot open the replication configuration; no connection is served: {e}");
            None
        }
    };
    ServedState { db, staging: Some(staging), allow, config, member: member.to_string() }
}

impl ServedState {
    /// Whether EstablishConnection for `connection` of `replica_set` is
    /// answered: see [`crate::config::replication::ReplicationConfig::check_served_connection`].
    pub fn serves_connection(&self, replica_set: &Guid, connection: &Guid) -> Result<(), String> {
        let Some(store) = &self.config else { return Err("the replication configuration cannot be opened".into()) };
        let config = store.load().map_err(|e| e.to_string())?;
        config.check_served_connection(replica_set, connection, &self.member)
    }

    /// The folders this member holds read-only: it is nobody's upstream
    /// for them (EstablishSession answers CONTENTSET_READ_ONLY).
    pub fn read_only_folders(&self) -> HashSet<Guid> {
        let Some(config) = self.config.as_ref().and_then(|s| s.load().ok()) else { return HashSet::new() };
        config.local_memberships(&self.member).filter(|(_, m)| m.read_only).map(|(_, m)| m.folder).collect()
    }
}

/// How a call is answered: the RPC server's vocabulary (a pending
/// AsyncPoll's answer comes from [`FrsService::poll_completion`]).
pub use crate::net::rpc_service::Outcome;

/// Which authenticated accounts may replicate with us
/// (`dfsr:rpc allow`): entries `DOMAIN\user` or `user` (any domain),
/// case-insensitive, separated by commas or spaces. Empty allows every
/// account that authenticated at packet privacy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<(Option<String>, String)>,
}

impl AllowList {
    /// Parses the option's value.
    pub fn parse(value: &str) -> Self {
        let entries = value
            .split([',', ' ', '\t'])
            .filter(|e| !e.is_empty())
            .map(|e| match e.split_once('\\') {
                Some((d, u)) => (Some(d.to_lowercase()), u.to_lowercase()),
                None => (None, e.to_lowercase()),
            })
            .collect();
        AllowList { entries }
    }

    /// Whether the list is empty (everyone authenticated is allowed).
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `user` (`DOMAIN\user` as gensec reports it) may replicate.
    pub fn allows(&self, user: Option<&str>) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let Some(user) = user else { return false };
        let (domain, name) = match user.split_once('\\') {
            Some((d, u)) => (Some(d.to_lowercase()), u.to_lowercase()),
            None => (None, user.to_lowercase()),
        };
        self.entries.iter().any(|(d, u)| *u == name && (d.is_none() || *d == domain))
    }
}

/// One download in progress (a server context).
#[derive(Debug)]
struct Transfer {
    file: File,
    left: u64,
}

/// The per-connection dispatcher.
#[derive(Debug)]
pub struct FrsService {
    /// The partner's protocol version once EstablishConnection succeeded.
    negotiated: Option<u32>,
    /// `(connectionId, replica set)` of the established connection.
    connection: Option<(Guid, Guid)>,
    responder: Responder,
    transfers: HashMap<[u8; 16], Transfer>,
    staging: Option<StagingArea>,
    next_context: u64,
    context_salt: [u8; 8],
    /// Whether the authenticated peer may replicate ([`AllowList`]).
    peer_allowed: bool,
    /// Folders we hold read-only (read at EstablishConnection).
    read_only: HashSet<Guid>,
}

impl FrsService {
    /// A dispatcher for a new connection; staged files are served from
    /// `staging` (none: every download fails).
    pub fn new(staging: Option<StagingArea>) -> Self {
        // Context handles need only be unguessable across connections;
        // without random bytes the counter alone still keeps them unique.
        let context_salt = crate::random::bytes::<8>().unwrap_or_default();
        FrsService {
            negotiated: None,
            connection: None,
            responder: Responder::new(ResponderConfig::default()),
            transfers: HashMap::new(),
            staging,
            next_context: 1,
            context_salt,
            peer_allowed: true,
            read_only: HashSet::new(),
        }
    }

    /// Sets whether the authenticated peer may replicate with us; when
    /// not, EstablishConnection fails with `FRS_ERROR_CONNECTION_INVALID`
    /// (§3.2.4.1.2: a partner we have no connection with), so no other
    /// method is served.
    pub fn set_peer_allowed(&mut self, allowed: bool) {
        self.peer_allowed = allowed;
    }

    /// The downstream partner's protocol version, after a successful
    /// EstablishConnection.
    pub fn negotiated_version(&self) -> Option<u32> {
        self.negotiated
    }

    /// Server contexts open (downloads in progress).
    pub fn open_transfers(&self) -> usize {
        self.transfers.len()
    }

    /// Answers one call. `stub` is the request stub data as the DCE/RPC
    /// layer delivers it (up to 3 trailing zero bytes that aligned a
    /// verification trailer are tolerated, as Samba tolerates them).
    pub fn call(&mut self, db: Option<&Database>, opnum: u16, stub: &[u8], now: u64) -> Outcome {
        let Some(request) = decode_lenient(opnum, stub) else {
            return match opnum {
                0..=8 | 12 | 13 => Outcome::Fault(status::BAD_STUB_DATA),
                _ => Outcome::Fault(status::NCA_S_OP_RNG_ERROR),
            };
        };
        let response = match request {
            Request::CheckConnectivity(_) => {
                Response::CheckConnectivity(StatusResponse { status: frs_error::SUCCESS })
            }
            Request::EstablishConnection(_) if !self.peer_allowed => {
                Response::EstablishConnection(EstablishConnectionResponse {
                    upstream_protocol_version: OUR_PROTOCOL_VERSION,
                    upstream_flags: 0,
                    status: frs_error::CONNECTION_INVALID,
                })
            }
            Request::EstablishConnection(r) => {
                let ok = version_compatible(r.downstream_protocol_version);
                if ok {
                    self.negotiated = Some(r.downstream_protocol_version);
                    self.connection = Some((r.connection_id, r.replica_set_id));
                    self.respond(db, ERequest::EstablishConnection, now);
                }
                Response::EstablishConnection(EstablishConnectionResponse {
                    upstream_protocol_version: OUR_PROTOCOL_VERSION,
                    upstream_flags: 0,
                    status: if ok { frs_error::SUCCESS } else { frs_error::INCOMPATIBLE_VERSION },
                })
            }
            Request::EstablishSession(r) => {
                let status = match self.check_connection(&r.connection_id) {
                    Err(st) => st,
                    Ok(()) if db.is_none() => frs_error::CSMAN_OFFLINE,
                    // A read-only member originates nothing: it is no upstream (§3.2.4.1.3).
                    Ok(()) if self.read_only.contains(&r.content_set_id) => frs_error::CONTENTSET_READ_ONLY,
                    Ok(()) => {
                        let folder = r.content_set_id;
                        status_of(self.respond(db, ERequest::EstablishSession { folder }, now))
                    }
                };
                Response::EstablishSession(StatusResponse { status })
            }
            Request::RequestUpdates(r) => Response::RequestUpdates(self.request_updates(db, &r, now)),
            Request::RequestVersionVector(r) => {
                let status = match self.check_connection(&r.connection_id) {
                    Err(st) => st,
                    Ok(()) => {
                        let req = ERequest::RequestVersionVector {
                            folder: r.content_set_id,
                            sequence: r.sequence_number,
                            request_type: version_request_from_wire(r.request_type),
                            change_type: change_from_wire(r.change_type),
                            vv_generation: r.vv_generation,
                        };
                        status_of(self.respond(db, req, now))
                    }
                };
                Response::RequestVersionVector(StatusResponse { status })
            }
            Request::AsyncPoll(r) => {
                if let Err(st) = self.check_connection(&r.connection_id) {
                    return Outcome::Reply(Response::AsyncPoll(AsyncPollResponse { status: st, ..Default::default() }).to_bytes());
                }
                match self.respond(db, ERequest::AsyncPoll, now) {
                    None => return Outcome::Pending,
                    Some(r) => Response::AsyncPoll(async_poll_reply(r)),
                }
            }
            Request::RequestRecords(r) => Response::RequestRecords(self.request_records(db, &r)),
            Request::UpdateCancel(r) => {
                let status = match self.check_connection(&r.connection_id) {
                    Err(st) => st,
                    Ok(()) => {
                        let d = &r.cancel_data;
                        let u = update_from_wire(&d.blocking_update);
                        let req = ERequest::UpdateCancel {
                            folder: d.content_set_id,
                            gvsn: Gvsn::new(d.gvsn_database_id, d.gvsn_version),
                            reason: CancelReason::Invalid,
                        };
                        tracing::info!(uid = %u.uid, gvsn = %u.gvsn, name = %u.name, "rpc: partner cancelled an update");
                        status_of(self.respond(db, req, now))
                    }
                };
                Response::UpdateCancel(StatusResponse { status })
            }
            Request::InitializeFileTransferAsync(r) => {
                Response::InitializeFileTransferAsync(Box::new(self.initialize_transfer(db, &r)))
            }
            Request::RawGetFileData(r) => {
                let (data, is_end_of_file, status) = self.read_transfer(&r.server_context, r.buffer_size);
                Response::RawGetFileData(RawGetFileDataResponse {
                    server_context: r.server_context,
                    buffer_size: r.buffer_size,
                    data,
                    is_end_of_file,
                    status,
                })
            }
            Request::RdcClose(r) => {
                let known = self.transfers.remove(&context_key(&r.server_context)).is_some();
                Response::RdcClose(RdcCloseResponse {
                    server_context: if known { ContextHandle::default() } else { r.server_context },
                    status: if known { frs_error::SUCCESS } else { frs_error::INVALID_PARAMETER },
                })
            }
            _ => return Outcome::Fault(status::NCA_S_OP_RNG_ERROR),
        };
        Outcome::Reply(response.to_bytes())
    }

    /// Our database may have changed, or time passed: completes
    /// CHANGE_NOTIFY requests whose folder changed or timed out.
    pub fn on_tick(&mut self, db: Option<&Database>, now: u64) {
        let (Some(db), Some((_, group))) = (db, self.connection) else { return };
        let view = ServedGroup::new(db, group);
        let timed = self.responder.on_timer(&view, now);
        let changed = self.responder.on_database_changed(&view);
        if let Err(e) = timed.and(changed) {
            tracing::error!(error = %e, "rpc: reading the database for change notifications");
        }
    }

    /// The next AsyncPoll answer (stub data), for the oldest pending
    /// AsyncPoll call.
    pub fn poll_completion(&mut self) -> Option<Vec<u8>> {
        match self.responder.poll_response()? {
            EResponse::AsyncPoll(r) => Some(Response::AsyncPoll(async_poll_reply(EResponse::AsyncPoll(r))).to_bytes()),
            other => {
                tracing::warn!(?other, "rpc: unexpected asynchronous completion dropped");
                None
            }
        }
    }

    fn check_connection(&self, connection_id: &Guid) -> Result<(), u32> {
        match self.connection {
            Some((id, _)) if id == *connection_id && self.responder.is_connected() => Ok(()),
            _ => Err(frs_error::CONNECTION_INVALID),
        }
    }

    /// Runs `req` through the responder over the store; a store error
    /// turns the answer into an internal-error failure.
    fn respond(&mut self, db: Option<&Database>, req: ERequest, now: u64) -> Option<EResponse> {
        let group = self.connection.map(|(_, g)| g).unwrap_or(Guid::NIL);
        match db {
            Some(db) => {
                let call = crate::engine::session::server::call_of(&req);
                match self.responder.handle(&ServedGroup::new(db, group), req, now) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "rpc: reading the database");
                        Some(EResponse::Failed { call, folder: None, error: CallError::Other(frs_error::INTERNAL_ERROR) })
                    }
                }
            }
            // No database: nothing is replicated here.
            None => match self.responder.handle(&NoDatabase, req, now) {
                Ok(r) => r,
                Err(never) => match never {},
            },
        }
    }

    fn request_updates(&mut self, db: Option<&Database>, r: &RequestUpdatesRequest, now: u64) -> RequestUpdatesResponse {
        let fail = |status| RequestUpdatesResponse {
            credits_available: r.credits_available,
            updates: Vec::new(),
            update_status: UpdateStatus::Done,
            gvsn_db_guid: Guid::default(),
            gvsn_version: 0,
            status,
        };
        if let Err(st) = self.check_connection(&r.connection_id) {
            return fail(st);
        }
        let Ok(vv_diff) = vector_from_wire(&r.version_vector_diff) else {
            return fail(frs_error::INVALID_PARAMETER);
        };
        let req = ERequest::RequestUpdates {
            folder: r.content_set_id,
            credits: r.credits_available,
            request_type: update_request_from_wire(r.update_request_type),
            hash_requested: r.hash_requested,
            vv_diff,
        };
        match self.respond(db, req, now) {
            Some(EResponse::Updates(UpdatesResponse { updates, status, cursor, .. })) => RequestUpdatesResponse {
                credits_available: r.credits_available,
                updates: updates.iter().map(update_to_wire).collect(),
                update_status: update_status_to_wire(status),
                gvsn_db_guid: cursor.db,
                gvsn_version: cursor.version,
                status: frs_error::SUCCESS,
            },
            other => fail(status_of(other)),
        }
    }

    /// RequestRecords (§3.2.4.1.7): the live `(UID, GVSN)` pairs of the
    /// folder after the UID iterator, in UID order, XPRESS-compressed
    /// (§3.1.1.1).
    fn request_records(&mut self, db: Option<&Database>, r: &RequestRecordsRequest) -> RequestRecordsResponse {
        let fail = |status| RequestRecordsResponse {
            max_records: r.max_records,
            num_records: 0,
            compressed_records: None,
            records_status: RecordsStatus::Done,
            status,
        };
        if let Err(st) = self.check_connection(&r.connection_id) {
            return fail(st);
        }
        let folder = r.content_set_id;
        if !self.responder.in_session(&folder) {
            return fail(frs_error::CONTENTSET_NOT_FOUND);
        }
        let Some(db) = db else { return fail(frs_error::CONTENTSET_NOT_FOUND) };
        let mut live = match db.folder_updates(&folder) {
            Ok(v) => v.into_iter().filter(|u| u.present).map(|u| (u.uid, u.gvsn)).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(error = %e, "rpc: RequestRecords: reading the database");
                return fail(frs_error::INTERNAL_ERROR);
            }
        };
        live.sort();
        let after = Uid::new(r.uid_db_guid, r.uid_version);
        let start = if after == Uid::new(Guid::NIL, 0) { 0 } else { live.partition_point(|(u, _)| *u <= after) };
        let max = r.max_records.min(MAX_RECORDS) as usize;
        let page = &live[start.min(live.len())..];
        let n = page.len().min(max);
        let mut raw = Vec::with_capacity(n * ID_GVSN_SIZE);
        for (uid, gvsn) in &page[..n] {
            raw.extend_from_slice(&uid.db.to_bytes());
            raw.extend_from_slice(&uid.version.to_le_bytes());
            raw.extend_from_slice(&gvsn.db.to_bytes());
            raw.extend_from_slice(&gvsn.version.to_le_bytes());
        }
        RequestRecordsResponse {
            max_records: max as u32,
            num_records: n as u32,
            compressed_records: if n == 0 { None } else { Some(xpress::compress(&raw)) },
            records_status: if page.len() > n { RecordsStatus::More } else { RecordsStatus::Done },
            status: frs_error::SUCCESS,
        }
    }

    /// InitializeFileTransferAsync (§3.2.4.1.14): our latest version of the
    /// UID, its staged file's first buffer, and a server context for the
    /// rest (none when it all fitted).
    fn initialize_transfer(
        &mut self,
        db: Option<&Database>,
        r: &InitializeFileTransferAsyncRequest,
    ) -> InitializeFileTransferAsyncResponse {
        // §3.2.4.1.14 stagingPolicy rules: RDC with SERVER_DEFAULT means
        // STAGING_REQUIRED; otherwise the client's value stands.
        let staging_policy = match (r.rdc_desired, r.staging_policy) {
            (true, StagingPolicy::ServerDefault) => StagingPolicy::StagingRequired,
            (_, p) => p,
        };
        let mut out = InitializeFileTransferAsyncResponse {
            frs_update: r.frs_update.clone(),
            staging_policy,
            server_context: ContextHandle::default(),
            rdc_file_info: None,
            buffer_size: r.buffer_size,
            data: Vec::new(),
            is_end_of_file: false,
            status: frs_error::SUCCESS,
        };
        if let Err(st) = self.check_connection(&r.connection_id) {
            out.status = st;
            return out;
        }
        let folder = r.frs_update.content_set_id;
        if !self.responder.in_session(&folder) {
            out.status = frs_error::CONTENTSET_NOT_FOUND;
            return out;
        }
        let uid = Uid::new(r.frs_update.uid_db_guid, r.frs_update.uid_version);
        let held = match db.map(|db| ServedGroup::new(db, Guid::NIL).update(&folder, &uid)) {
            Some(Ok(Some(u))) if u.present => u,
            Some(Err(e)) => {
                tracing::error!(error = %e, %uid, "rpc: file transfer: reading the database");
                out.status = frs_error::INTERNAL_ERROR;
                return out;
            }
            _ => {
                out.status = frs_error::FILE_NOT_FOUND;
                return out;
            }
        };
        out.frs_update = update_to_wire(&held);
        if self.transfers.len() >= MAX_TRANSFERS {
            out.status = frs_error::BUSY;
            return out;
        }
        let Some(path) = self.staging.as_ref().map(|s| s.path_of(&held.gvsn)) else {
            out.status = frs_error::FILE_NOT_FOUND;
            return out;
        };
        let (file, len) = match File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len()))) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, name = %held.name, "rpc: staged file missing");
                out.status = frs_error::FILE_NOT_FOUND;
                return out;
            }
        };
        out.rdc_file_info = Some(RdcFileInfo {
            on_disk_file_size: len,
            file_size_estimate: len,
            rdc_version: CONFIG_RDC_VERSION,
            rdc_minimum_compatible_version: CONFIG_RDC_VERSION_COMPATIBLE,
            compression_algorithm: RdcFileCompressionType::Xpress,
            rdc_filter_parameters: Vec::new(),
        });
        let mut t = Transfer { file, left: len };
        match read_some(&mut t, r.buffer_size) {
            Ok(data) => out.data = data,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "rpc: reading a staged file");
                out.status = frs_error::FILE_NOT_FOUND;
                return out;
            }
        }
        // A context even when the file fitted: the client disposes of it
        // with RdcClose once it sees the end of file (§3.3.1.4).
        out.is_end_of_file = t.left == 0;
        let handle = self.new_context();
        self.transfers.insert(context_key(&handle), t);
        out.server_context = handle;
        tracing::debug!(uid = %uid, gvsn = %held.gvsn, size = len, "rpc: file transfer started");
        out
    }

    fn read_transfer(&mut self, ctx: &ContextHandle, size: u32) -> (Vec<u8>, bool, u32) {
        let key = context_key(ctx);
        let Some(t) = self.transfers.get_mut(&key) else {
            return (Vec::new(), false, frs_error::INVALID_PARAMETER);
        };
        if t.left == 0 {
            // §3.2.4.1.9: the transfer is complete.
            return (Vec::new(), true, frs_error::HANDLE_EOF);
        }
        match read_some(t, size) {
            Ok(data) => (data, t.left == 0, frs_error::SUCCESS),
            Err(e) => {
                tracing::warn!(error = %e, "rpc: reading a staged file");
                self.transfers.remove(&key);
                (Vec::new(), false, frs_error::FILE_NOT_FOUND)
            }
        }
    }

    fn new_context(&mut self) -> ContextHandle {
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&self.next_context.to_le_bytes());
        uuid[8..].copy_from_slice(&self.context_salt);
        self.next_context += 1;
        ContextHandle { attributes: 0, uuid: Guid(uuid) }
    }
}

fn context_key(h: &ContextHandle) -> [u8; 16] {
    h.uuid.0
}

/// Reads up to `size` bytes of what is left of a staged file.
fn read_some(t: &mut Transfer, size: u32) -> std::io::Result<Vec<u8>> {
    let n = (size as u64).min(t.left) as usize;
    let mut buf = vec![0u8; n];
    t.file.read_exact(&mut buf)?;
    t.left -= n as u64;
    Ok(buf)
}

/// The wire status of a synchronous engine answer.
fn status_of(r: Option<EResponse>) -> u32 {
    match r {
        Some(EResponse::Failed { error, .. }) => match error {
            CallError::ContentSetNotFound => CallError::CONTENTSET_NOT_FOUND,
            CallError::ContentSetReadOnly => CallError::CONTENTSET_READ_ONLY,
            CallError::ConnectionInvalid => CallError::CONNECTION_INVALID,
            CallError::Transport => frs_error::INTERNAL_ERROR,
            CallError::Other(st) => st,
        },
        _ => frs_error::SUCCESS,
    }
}

/// An engine AsyncPoll answer as AsyncPoll `[out]`: the completion's
/// status goes in the response context, the method itself succeeded.
fn async_poll_reply(r: EResponse) -> AsyncPollResponse {
    match r {
        EResponse::AsyncPoll(a) => AsyncPollResponse {
            response: AsyncResponseContext {
                sequence_number: a.sequence,
                status: a.status,
                result: AsyncVersionVectorResponse {
                    vv_generation: a.vv_generation,
                    version_vector: a.vector.as_ref().map(vector_to_wire),
                    epoque_vector: None,
                },
            },
            status: frs_error::SUCCESS,
        },
        other => AsyncPollResponse { status: status_of(Some(other)), ..Default::default() },
    }
}

/// A store with nothing in it: what dfsrd serves without a database.
struct NoDatabase;

impl UpdateDatabase for NoDatabase {
    type Error = std::convert::Infallible;

    fn version_vector(
        &self,
        _folder: &Guid,
    ) -> Result<Option<crate::engine::version_vector::VersionVector>, Self::Error> {
        Ok(None)
    }
    fn updates_in(
        &self,
        _folder: &Guid,
        _vv: &crate::engine::version_vector::VersionVector,
        _kind: crate::engine::session::UpdateRequestType,
        _after: Option<Gvsn>,
        _limit: usize,
    ) -> Result<Vec<crate::engine::update::Update>, Self::Error> {
        Ok(Vec::new())
    }
}

/// Decodes `stub`, retrying without up to 3 trailing zero bytes.
fn decode_lenient(opnum: u16, stub: &[u8]) -> Option<Request> {
    if let Ok(r) = Request::decode(opnum, stub) {
        return Some(r);
    }
    let zeros = stub.iter().rev().take(3).take_while(|b| **b == 0).count();
    (1..=zeros).find_map(|n| Request::decode(opnum, &stub[..stub.len() - n]).ok())
}

use crate::net::rpc_service;

/// dfsrd's RPC server answers FrsTransport with one [`FrsService`] per
/// connection, all serving from one [`ServedState`].
impl rpc_service::RpcService for FrsService {
    type Shared = ServedState;

    fn open(shared: &ServedState) -> Self {
        FrsService::new(shared.staging.clone())
    }

    fn answer(&mut self, shared: &ServedState, call: &rpc_service::Call<'_>) -> rpc_service::Outcome {
        // Asked at each call, so the service keeps no account of its own;
        // only EstablishConnection looks at the answer.
        let allowed = shared.allow.allows(call.caller.user.as_deref());
        if !allowed && call.opnum == crate::wire::frstrans::opnum::ESTABLISH_CONNECTION {
            let user = call.caller.user.as_deref().unwrap_or("(anonymous)");
            tracing::warn!(peer = %call.caller.peer, user, "rpc: account not in dfsr:rpc allow; it gets no connection");
        }
        let mut allowed = allowed;
        if allowed && call.opnum == crate::wire::frstrans::opnum::ESTABLISH_CONNECTION {
            if let Some(Request::EstablishConnection(r)) = decode_lenient(call.opnum, call.stub) {
                if let Err(why) = shared.serves_connection(&r.replica_set_id, &r.connection_id) {
                    tracing::warn!(peer = %call.caller.peer, "rpc: EstablishConnection refused: {why}");
                    allowed = false;
                }
                self.read_only = shared.read_only_folders();
            }
        }
        self.set_peer_allowed(allowed);
        self.call(shared.db.as_ref(), call.opnum, call.stub, call.now)
    }

    fn tick(&mut self, shared: &ServedState, now: u64) {
        self.on_tick(shared.db.as_ref(), now);
    }

    fn next_completion(&mut self) -> Option<Vec<u8>> {
        self.poll_completion()
    }
}

#[cfg(test)]
mod tests;
