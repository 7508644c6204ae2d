//! Pulling a replicated folder from a partner over the wire: the engine's
//! [`PartnerSync`] (client side, §3.3) drives an [`RpcClient`]; its
//! requests become FrsTransport calls, the answers engine responses.
//! Downloads (InitializeFileTransferAsync, RawGetFileData pieces, RdcClose,
//! §3.3.4.7-8) write the staged file to the staging area, check it against
//! the update's hash, and report it to the engine. Installs, holds and
//! cycle breaks go through the engine's installer; its plan is carried
//! out in the database in one transaction (conflict records, installs,
//! updates held aside, our originator's counters), the content of a
//! version we originate linked in the staging area (installing into a
//! share is the meet's, driven by dfsrd).
//!
//! [`pull_once`] runs until the folder is in sync: a full sync was done
//! and the partner has nothing newer (the folder waits on a CHANGE_NOTIFY
//! poll), which is what `dfsrctl sync` needs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use crate::engine::ids::{Gvsn, Uid};
use crate::engine::install::{Installer, Origin, Step};
use crate::engine::local_change::{ChangeError, LocalChangeError, Originator};
use crate::engine::version_vector::VersionVector;
use crate::engine::session::{
    Action, AsyncPollResponse as EPoll, Call, CallError, ChangeType, DownloadError, FolderState, PartnerSync,
    Request as ERequest, Response as EResponse, SessionError, SyncConfig, SyncError, UpdateOutcome, UpdatesResponse,
};
use crate::engine::update::Update as EUpdate;
use crate::staging::frsx::FrsxReader;
use crate::staging::marshal::MarshalReader;
use crate::store::{merge_known, Database, StagingArea, StoreError, StoredReplica};

use crate::wire::frstrans::{frs_error, version_compatible, OUR_PROTOCOL_VERSION};
use crate::wire::frstrans::convert::{
    change_to_wire, staging_to_wire, update_from_wire, update_request_to_wire,
    update_to_wire, vector_from_wire, vector_to_wire, version_request_to_wire,
};
use crate::wire::frstrans::{
    AsyncPollRequest, ContextHandle, EstablishConnectionRequest, EstablishSessionRequest, FileDataRequest,
    InitializeFileTransferAsyncRequest, Request, RequestUpdatesRequest, RequestVersionVectorRequest, Response,
    UpdateCancelData, UpdateCancelRequest, CONFIG_TRANSPORT_MAX_BUFFER_SIZE,
};
use crate::net::rpc_client::{Completion, RpcClient, RpcClientError};
use crate::wire::Guid;


/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// The replication group (`replicaSetId`).
    pub replica_set: Guid,
    /// Our connection's GUID (`connectionId`).
    pub connection_id: Guid,
    /// The replicated folder (`contentSetId`).
    pub folder: Guid,
    /// Session limits (credits per RequestUpdates, downloads in flight…).
    pub sync: SyncConfig,
    /// `bufferSize` of file transfers, at most 256 KiB.
    pub buffer_size: u32,
    /// Give up when not in sync after this long.
    pub timeout: Duration,
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// RequestUpdates calls answered.
    pub update_pages: u64,
    /// Updates received in those pages.
    pub updates_received: u64,
    /// Updates stored as what we hold.
    pub installed: u64,
    /// Updates not stored: what we held supersedes them.
    pub superseded: u64,
    /// Updates kept aside (orphans, cycles).
    pub held: u64,
    /// UpdateCancel calls sent.
    pub cancelled: u64,
    /// Files downloaded and checked.
    pub files_downloaded: u64,
    /// Files not downloaded: a local file of the same content stood in.
    pub files_kept: u64,
    /// Staged bytes downloaded.
    pub bytes_downloaded: u64,
    /// RawGetFileData calls (pieces after the first buffer).
    pub raw_get_file_data_calls: u64,
    /// The largest piece received.
    pub largest_piece: u64,
    /// AsyncPoll calls completed.
    pub async_polls: u64,
    /// Of those, CHANGE_NOTIFY answers (no vector: the partner changed, or
    /// its wait ran out).
    pub notifications: u64,
    /// Vectors merged into ours.
    pub merges: u64,
    /// UIDs whose stored version changed, in the order they were stored:
    /// what the member places in the share next.
    pub touched: Vec<crate::engine::ids::Uid>,
    /// UIDs whose previous version lost a conflict (the meet keeps the
    /// replaced file in ConflictAndDeleted).
    pub lost: Vec<crate::engine::ids::Uid>,
}

impl PullReport {
    /// The report as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "update_pages": self.update_pages,
            "updates_received": self.updates_received,
            "installed": self.installed,
            "superseded": self.superseded,
            "held": self.held,
            "cancelled": self.cancelled,
            "files_downloaded": self.files_downloaded,
            "files_kept": self.files_kept,
            "bytes_downloaded": self.bytes_downloaded,
            "raw_get_file_data_calls": self.raw_get_file_data_calls,
            "largest_piece": self.largest_piece,
            "async_polls": self.async_polls,
            "notifications": self.notifications,
            "merges": self.merges,
        })
    }
}

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The connection failed.
    #[error(transparent)]
    Rpc(#[from] RpcClientError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session machine refused its configuration or an event.
    #[error("session: {0}")]
    Session(#[from] SessionError),
    /// The staging area.
    #[error("staging {path}: {source}")]
    Staging {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The partner refused us (connection, session, version).
    #[error("the partner refused {call:?}: {} ({status:#x})", crate::engine::session::messages::frs_error::name(*status).unwrap_or("status"))]
    Refused {
        /// Which call.
        call: Call,
        /// Its status.
        status: u32,
    },
    /// Not in sync in time.
    #[error("not in sync after {0:?}")]
    Timeout(Duration),
    /// The installer refused to originate an update (versions exhausted,
    /// a broken tree in the database).
    #[error("installing: {0}")]
    Install(#[from] LocalChangeError),
    /// No random bytes for our new database GUID.
    #[error("reading random bytes for the database GUID: {0}")]
    Random(std::io::Error),
}

impl From<ChangeError<StoreError>> for PullError {
    fn from(e: ChangeError<StoreError>) -> Self {
        match e {
            ChangeError::Read(e) => PullError::Store(e),
            ChangeError::Refused(e) => PullError::Install(e),
        }
    }
}

impl From<SyncError<StoreError>> for PullError {
    fn from(e: SyncError<StoreError>) -> Self {
        match e {
            SyncError::Session(e) => PullError::Session(e),
            SyncError::Read(e) => PullError::Store(e),
        }
    }
}

/// A call in flight.
enum Pending {
    /// An engine request mapped to one call.
    Engine(ERequest),
    /// InitializeFileTransferAsync of a download.
    Init(Box<Download>),
    /// RawGetFileData of a download.
    Read(Box<Download>),
    /// RdcClose (answer ignored).
    Close,
}

/// A download in progress.
struct Download {
    folder: Guid,
    update: EUpdate,
    file: File,
    /// The `.part` file written.
    path: std::path::PathBuf,
    /// Where the staged file goes once checked.
    final_path: std::path::PathBuf,
    bytes: u64,
    /// Set once the first answer names a server context.
    context: ContextHandle,
}

/// Pulls `cfg.folder` from the partner `client` is bound to, into `db` and
/// `staging`, until in sync. `progress` sees the report after every batch
/// of answers.
/// Content this member already holds that may stand for a download: a
/// non-primary member's pre-existing files ([`super::pre_existing`]).
pub trait KeepLocal {
    /// Writes the staged file of `update` to `out` from a local file of
    /// the same content and security; false: download it.
    /// `received`: the updates of this session so far (a parent may not
    /// be stored yet when its children are offered).
    fn offer(&mut self, db: &Database, received: &HashMap<Uid, EUpdate>, update: &EUpdate, out: &std::path::Path) -> bool;
}

pub fn pull_once(
    client: &mut RpcClient,
    db: &mut Database,
    staging: &StagingArea,
    cfg: &PullConfig,
    progress: &mut dyn FnMut(&PullReport),
) -> Result<PullReport, PullError> {
    pull_keeping(client, db, staging, cfg, None, progress)
}

/// [`pull_once`], asking `keep` before each download.
pub fn pull_keeping(
    client: &mut RpcClient,
    db: &mut Database,
    staging: &StagingArea,
    cfg: &PullConfig,
    mut keep: Option<&mut dyn KeepLocal>,
    progress: &mut dyn FnMut(&PullReport),
) -> Result<PullReport, PullError> {
    let mut pull = FolderPull::new(db, staging, cfg)?;
    let start = Instant::now();
    loop {
        pull.pump(client, db, staging, keep.as_deref_mut())?;
        if pull.in_sync() {
            progress(&pull.report);
            return Ok(pull.report);
        }
        if start.elapsed() > cfg.timeout {
            return Err(PullError::Timeout(cfg.timeout));
        }
        for (id, completion) in client.wait(pull.wait_hint())? {
            pull.deliver(client, db, id, completion, keep.is_some())?;
        }
        pull.tick(db)?;
        progress(&pull.report);
    }
}

/// One folder's pull from a partner: the engine's session machine, the
/// calls it has in flight on a connection that may carry other folders'
/// too, and what it did. [`pull_keeping`] runs one until in sync; dfsrd's
/// member keeps one per folder on a connection it keeps open, so that the
/// answer to its CHANGE_NOTIFY AsyncPoll (§3.3.4.5) starts the next sync.
pub struct FolderPull {
    cfg: PullConfig,
    start: Instant,
    sync: PartnerSync,
    originator: Originator,
    ids: Ids,
    buffer_size: u32,
    inflight: HashMap<u32, Pending>,
    report: PullReport,
    saw_full_vector: bool,
    received: HashMap<Uid, EUpdate>,
    installs: Vec<(Guid, EUpdate)>,
    /// The partner's latest vector: what its versions were made from
    /// (the installer's lineage, see engine::install::Lineage).
    partner_vector: VersionVector,
}

impl std::fmt::Debug for FolderPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderPull").field("folder", &self.cfg.folder).field("in_flight", &self.inflight.len()).finish()
    }
}

impl FolderPull {
    /// A pull of `cfg.folder`, its session not yet established.
    pub fn new(db: &Database, staging: &StagingArea, cfg: &PullConfig) -> Result<FolderPull, PullError> {
        std::fs::create_dir_all(staging.dir())
            .map_err(|source| PullError::Staging { path: staging.dir().into(), source })?;
        // Read once: every plan of this pull continues it (reading all
        // folders' counters per update would traverse the database each time).
        let originator = resume_originator(db, cfg.folder)?;
        Ok(FolderPull {
            cfg: cfg.clone(),
            start: Instant::now(),
            sync: PartnerSync::new(cfg.sync, [cfg.folder], 0)?,
            originator,
            ids: Ids { connection: cfg.connection_id, replica_set: cfg.replica_set },
            buffer_size: cfg.buffer_size.clamp(1, CONFIG_TRANSPORT_MAX_BUFFER_SIZE),
            inflight: HashMap::new(),
            report: PullReport::default(),
            saw_full_vector: false,
            received: HashMap::new(),
            installs: Vec::new(),
            partner_vector: VersionVector::new(),
        })
    }

    /// The folder.
    pub fn folder(&self) -> Guid {
        self.cfg.folder
    }

    /// What it did so far.
    pub fn report(&self) -> &PullReport {
        &self.report
    }

    /// The UIDs stored and the UIDs whose version lost a conflict since
    /// the last call: what the member places next (the counters go on).
    pub fn take_touched(&mut self) -> (Vec<Uid>, Vec<Uid>) {
        (std::mem::take(&mut self.report.touched), std::mem::take(&mut self.report.lost))
    }

    /// Files kept without download since the last call.
    pub fn take_kept(&mut self) -> u64 {
        std::mem::take(&mut self.report.files_kept)
    }

    /// True when call `id` is one of this pull's.
    pub fn owns(&self, id: u32) -> bool {
        self.inflight.contains_key(&id)
    }

    /// In sync: a full sync was done, the partner has nothing newer, and
    /// only the CHANGE_NOTIFY poll (and closes) are in flight.
    pub fn in_sync(&self) -> bool {
        self.saw_full_vector
            && self.inflight.values().all(|p| matches!(p, Pending::Engine(ERequest::AsyncPoll) | Pending::Close))
            && self.sync.state(&self.cfg.folder) == Some(FolderState::WaitingAsyncPoll(ChangeType::Notify))
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// How long the connection may wait for answers before the session
    /// machine's next timer (at most 1 s).
    pub fn wait_hint(&self) -> Duration {
        let now = self.now();
        self.sync
            .poll_timeout()
            .map(|t| Duration::from_millis(t.saturating_sub(now)))
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(1), Duration::from_secs(1))
    }

    /// Starts the calls the session machine asks for and commits the
    /// downloaded updates at hand, until it asks for nothing more.
    pub fn pump<'k>(
        &mut self,
        client: &mut RpcClient,
        db: &mut Database,
        staging: &StagingArea,
        mut keep: Option<&mut (dyn KeepLocal + 'k)>,
    ) -> Result<(), PullError> {
        let group = self.cfg.replica_set;
        loop {
            while let Some(action) = self.sync.poll_action() {
                let now = self.now();
                match action {
                    Action::Send(ERequest::DownloadFile { folder, update, staging_policy, rdc_desired }) => {
                        let final_path = staging.path_of(&update.gvsn);
                        if let Some(k) = keep.as_deref_mut() {
                            if k.offer(db, &self.received, &update, &final_path) {
                                self.report.files_kept += 1;
                                let r = EResponse::FileDownloaded { folder, gvsn: update.gvsn };
                                match self.sync.on_response(r, now, &StoredReplica::new(db, group)) {
                                    Err(SyncError::Session(e)) => tracing::warn!(error = %e, "sync: kept file ignored"),
                                    r => r?,
                                }
                                continue;
                            }
                        }
                        let path = staging.partial_path_of(&update.gvsn);
                        let file =
                            File::create(&path).map_err(|source| PullError::Staging { path: path.clone(), source })?;
                        let req = Request::InitializeFileTransferAsync(Box::new(InitializeFileTransferAsyncRequest {
                            connection_id: self.ids.connection,
                            frs_update: update_to_wire(&update),
                            rdc_desired,
                            staging_policy: staging_to_wire(staging_policy),
                            buffer_size: self.buffer_size,
                        }));
                        let id = client.start(req.opnum(), &req.to_bytes())?;
                        let d = Download {
                            folder,
                            update,
                            file,
                            path,
                            final_path,
                            bytes: 0,
                            context: ContextHandle::default(),
                        };
                        self.inflight.insert(id, Pending::Init(Box::new(d)));
                    }
                    Action::Send(req) => {
                        let Some(wire) = self.ids.request(&req) else { continue };
                        let id = client.start(wire.opnum(), &wire.to_bytes())?;
                        if matches!(req, ERequest::UpdateCancel { .. }) {
                            self.report.cancelled += 1;
                        }
                        self.inflight.insert(id, Pending::Engine(req));
                    }
                    Action::Install(folder, updates) => {
                        // Committed together once the actions at hand are read.
                        self.installs.extend(updates.into_iter().map(|u| (folder, u)));
                    }
                    Action::Hold(folder, held) => {
                        self.install_batch(db, staging)?;
                        self.report.held += held.len() as u64;
                        tracing::info!(%folder, count = held.len(), "sync: updates held aside (orphans, cycles) or dangling");
                        plan_and_commit(db, staging, group, &mut self.originator, &self.partner_vector, &mut self.report, |i| {
                            for h in held {
                                i.held(h.update, h.reason)?;
                                i.retry_unblocked()?;
                            }
                            Ok(())
                        })?;
                    }
                    Action::CycleBreaks(folder, breaks) => {
                        self.install_batch(db, staging)?;
                        tracing::info!(%folder, count = breaks.len(), "sync: move cycles broken by keeping the old parent");
                        plan_and_commit(db, staging, group, &mut self.originator, &self.partner_vector, &mut self.report, |i| {
                            for b in breaks {
                                i.cycle_break(b)?;
                                i.retry_unblocked()?;
                            }
                            Ok(())
                        })?;
                    }
                    Action::MergeKnownVector(folder, vv) => {
                        self.install_batch(db, staging)?;
                        merge_known(db, &group, &folder, &vv)?;
                        self.report.merges += 1;
                    }
                    Action::Disconnect => {
                        return Err(PullError::Refused {
                            call: Call::EstablishConnection,
                            status: frs_error::CONNECTION_INVALID,
                        })
                    }
                    Action::Schedule(_) => {}
                }
            }
            if self.installs.is_empty() {
                return Ok(());
            }
            // What the engine does next may depend on them.
            self.install_batch(db, staging)?;
        }
    }

    /// Handles the answer to call `id` (one of this pull's, see
    /// [`FolderPull::owns`]); `keeping` when a [`KeepLocal`] is offered
    /// the downloads (it needs the updates received).
    pub fn deliver(
        &mut self,
        client: &mut RpcClient,
        db: &Database,
        id: u32,
        completion: Completion,
        keeping: bool,
    ) -> Result<(), PullError> {
        let Some(p) = self.inflight.remove(&id) else { return Ok(()) };
        let group = self.cfg.replica_set;
        let now = self.now();
        let (first, d) = match p {
            Pending::Close => return Ok(()),
            Pending::Engine(req) => {
                let r = self.ids.response(&req, completion)?;
                match &r {
                    EResponse::Updates(u) => {
                        self.report.update_pages += 1;
                        self.report.updates_received += u.updates.len() as u64;
                        if keeping {
                            self.received.extend(u.updates.iter().map(|x| (x.uid, x.clone())));
                        }
                    }
                    EResponse::AsyncPoll(p) => {
                        self.report.async_polls += 1;
                        if p.vector.is_none() && p.status == 0 {
                            self.report.notifications += 1;
                        }
                        self.saw_full_vector |= p.vector.is_some();
                        if let Some(v) = &p.vector {
                            self.partner_vector = v.clone();
                        }
                    }
                    _ => {}
                }
                match self.sync.on_response(r, now, &StoredReplica::new(db, group)) {
                    Err(SyncError::Session(e)) => tracing::warn!(error = %e, "sync: response ignored"),
                    r => r?,
                }
                return Ok(());
            }
            Pending::Init(d) => (true, d),
            Pending::Read(d) => (false, d),
        };
        let step = download_step(client, *d, first, completion, self.buffer_size, &mut self.inflight, &mut self.report)?;
        if let Some(r) = step {
            match self.sync.on_response(r, now, &StoredReplica::new(db, group)) {
                Err(SyncError::Session(e)) => tracing::warn!(error = %e, "sync: download result ignored"),
                r => r?,
            }
        }
        Ok(())
    }

    /// The session machine's timers (retries, back-off).
    pub fn tick(&mut self, db: &Database) -> Result<(), PullError> {
        let now = self.now();
        self.sync.on_timer(now, &StoredReplica::new(db, self.cfg.replica_set))?;
        Ok(())
    }

    fn install_batch(&mut self, db: &mut Database, staging: &StagingArea) -> Result<(), PullError> {
        let now = self.now();
        install_batch(
            db,
            staging,
            self.cfg.replica_set,
            &mut self.originator,
            &self.partner_vector,
            &mut self.report,
            &mut self.sync,
            &mut self.installs,
            now,
        )
    }
}

/// The downloaded updates at hand, their staged files flushed together,
/// received by the installer in one plan and committed in one transaction
/// (one fsync, not one per file), then reported to the session machine
/// one by one.
#[allow(clippy::too_many_arguments)]
fn install_batch(
    db: &mut Database,
    staging: &StagingArea,
    group: Guid,
    originator: &mut Originator,
    lineage: &VersionVector,
    report: &mut PullReport,
    sync: &mut PartnerSync,
    installs: &mut Vec<(Guid, EUpdate)>,
    now: u64,
) -> Result<(), PullError> {
    if installs.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(installs);
    // The staged files the transaction makes ours, durable first.
    if batch.iter().any(|(_, u)| u.present) {
        staging.sync().map_err(|source| PullError::Staging { path: staging.dir().into(), source })?;
    }
    let keys: Vec<(Guid, Gvsn)> = batch.iter().map(|(f, u)| (*f, u.gvsn)).collect();
    let outcomes = plan_and_commit(db, staging, group, originator, lineage, report, |i| {
        let mut out = Vec::with_capacity(batch.len());
        for (_, u) in batch {
            out.push(i.receive(u)?);
            i.retry_unblocked()?;
        }
        Ok(out)
    })?;
    for ((folder, gvsn), outcome) in keys.into_iter().zip(outcomes) {
        match outcome {
            UpdateOutcome::Installed => report.installed += 1,
            UpdateOutcome::Held => report.held += 1,
            _ => report.superseded += 1,
        }
        let replica = StoredReplica::new(db, group);
        sync.on_update_processed(folder, gvsn, outcome, now, &replica)?;
    }
    Ok(())
}

/// Plans with the engine's installer over the store (`f` feeds it), then
/// carries the plan out in one transaction: ConflictAndDeleted records,
/// installs (their GVSNs known), holds and releases, our originator's
/// counters. An originated live version gets the content of the version it
/// was made from, linked under its own name in the staging area before the
/// transaction and removed again if it fails. Installing into a share is
/// the meet's, driven by dfsrd; this is what `dfsrctl sync` keeps.
fn plan_and_commit<T>(
    db: &mut Database,
    staging: &StagingArea,
    group: Guid,
    originator: &mut Originator,
    lineage: &VersionVector,
    report: &mut PullReport,
    f: impl FnOnce(&mut Installer<'_, StoredReplica<'_>>) -> Result<T, ChangeError<StoreError>>,
) -> Result<T, PullError> {
    let now = crate::meet::nttime(std::time::SystemTime::now());
    let (out, plan) = {
        let replica = StoredReplica::new(db, group);
        let mut installer = Installer::new(&replica, originator.clone(), lineage, now);
        let out = f(&mut installer)?;
        (out, installer.into_plan())
    };
    let mut placed = Vec::new();
    for step in &plan.steps {
        let Step::Install { update, origin: Origin::Originated { from, .. } } = step else { continue };
        let (src, dst) = (staging.path_of(from), staging.path_of(&update.gvsn));
        if update.present && src.exists() && !dst.exists() {
            if let Err(source) = std::fs::hard_link(&src, &dst) {
                placed.iter().for_each(|p| drop(std::fs::remove_file(p)));
                return Err(PullError::Staging { path: dst, source });
            }
            placed.push(dst);
        }
    }
    let committed = db.transaction(|tx| -> Result<(), StoreError> {
        for step in &plan.steps {
            match step {
                Step::Preserve(record) => tx.add_conflict(record)?,
                Step::Install { update, .. } => {
                    tx.put_update(update)?;
                    tx.add_known(&group, &update.content_set_id, update.gvsn)?;
                }
                Step::Hold(u) => tx.put_held_aside(u)?,
                Step::Release(u) => {
                    tx.remove_held_aside(&u.uid)?;
                    tx.add_known(&group, &u.content_set_id, u.gvsn)?;
                }
            }
        }
        // Counters only when the plan made versions of ours.
        let moved = (plan.originator.next_version(), plan.originator.last_clock())
            != (originator.next_version(), originator.last_clock());
        if moved {
            tx.commit_originator(&plan.originator)?;
        }
        Ok(())
    });
    if let Err(e) = committed {
        placed.iter().for_each(|p| drop(std::fs::remove_file(p)));
        return Err(e.into());
    }
    *originator = plan.originator;
    for step in &plan.steps {
        match step {
            Step::Install { update, .. } => report.touched.push(update.uid),
            Step::Preserve(r) => report.lost.push(r.uid),
            Step::Hold(_) | Step::Release(_) => {}
        }
    }
    Ok(out)
}

/// Our originator for `folder` (a database GUID made now if the database
/// has none yet).
fn resume_originator(db: &Database, folder: Guid) -> Result<Originator, PullError> {
    let fresh = match db.database_guid()? {
        Some(g) => g,
        None => crate::random::new_guid().map_err(PullError::Random)?,
    };
    Ok(db.resume_originator(folder, fresh)?)
}

/// Handles one answer of a download; returns the engine response once the
/// download is over (done or failed).
fn download_step(
    client: &mut RpcClient,
    mut d: Download,
    first: bool,
    completion: Completion,
    buffer_size: u32,
    inflight: &mut HashMap<u32, Pending>,
    report: &mut PullReport,
) -> Result<Option<EResponse>, PullError> {
    let (folder, gvsn) = (d.folder, d.update.gvsn);
    let failed = |d: &Download, error: DownloadError| {
        let _ = std::fs::remove_file(&d.path);
        Some(EResponse::DownloadFailed { folder, gvsn, error })
    };
    let stub = match completion {
        Completion::Reply(s) => s,
        Completion::Fault(f) => {
            tracing::warn!(%gvsn, fault = format_args!("{f:#x}"), "sync: download call faulted");
            if !d.context.is_null() {
                close(client, &d.context, inflight)?;
            }
            return Ok(failed(&d, DownloadError::Other(f)));
        }
    };
    let (data, eof, status, context) = match Response::decode(if first { 13 } else { 8 }, &stub) {
        Ok(Response::InitializeFileTransferAsync(r)) => {
            if r.status == 0 && update_from_wire(&r.frs_update).gvsn != d.update.gvsn {
                // The partner holds another version now: this one is gone;
                // the next sync brings the new one.
                tracing::info!(%gvsn, "sync: partner has a newer version; update cancelled");
                if !r.server_context.is_null() {
                    close(client, &r.server_context, inflight)?;
                }
                return Ok(failed(&d, DownloadError::Gone));
            }
            (r.data, r.is_end_of_file, r.status, r.server_context)
        }
        Ok(Response::RawGetFileData(r)) => (r.data, r.is_end_of_file, r.status, d.context),
        _ => {
            tracing::warn!(%gvsn, "sync: undecodable file transfer answer");
            if !d.context.is_null() {
                close(client, &d.context, inflight)?;
            }
            return Ok(failed(&d, DownloadError::Other(frs_error::INVALID_PARAMETER)));
        }
    };
    if status != 0 {
        if !context.is_null() {
            close(client, &context, inflight)?;
        }
        let error = match status {
            frs_error::SHARING_VIOLATION => DownloadError::SharingViolation,
            frs_error::XPRESS_INVALID_DATA => DownloadError::InvalidCompressedData,
            frs_error::RDC_GENERIC => DownloadError::RdcGeneric,
            frs_error::FILE_NOT_FOUND => DownloadError::Gone,
            frs_error::CONNECTION_INVALID => DownloadError::ConnectionInvalid,
            frs_error::CONTENTSET_NOT_FOUND => DownloadError::ContentSetNotFound,
            other => DownloadError::Other(other),
        };
        return Ok(failed(&d, error));
    }
    d.file.write_all(&data).map_err(|source| PullError::Staging { path: d.path.clone(), source })?;
    d.bytes += data.len() as u64;
    d.context = context;
    report.bytes_downloaded += data.len() as u64;
    report.largest_piece = report.largest_piece.max(data.len() as u64);
    if !first {
        report.raw_get_file_data_calls += 1;
    }
    if !eof {
        if context.is_null() {
            return Ok(failed(&d, DownloadError::Other(frs_error::INVALID_PARAMETER)));
        }
        let req = Request::RawGetFileData(FileDataRequest { server_context: context, buffer_size });
        let id = client.start(req.opnum(), &req.to_bytes())?;
        inflight.insert(id, Pending::Read(Box::new(d)));
        return Ok(None);
    }
    if !context.is_null() {
        close(client, &context, inflight)?;
    }
    // Made durable with the others before the transaction that installs
    // it (install_batch): one flush per batch, not per file.
    // The staged file must be what the update names (§3.2.4.1.14.1: the
    // hash covers the marshaled data and security); anything else is
    // damaged in transit or at the partner: ask for it to be restaged.
    // A zero hash is a server that did not compute one (§3.2.4.1.4
    // hashRequested is a request): the staged file must still unmarshal.
    match staged_hash(&d.path) {
        Ok(h) if h == d.update.hash || d.update.hash == [0; 20] => {}
        Ok(_) | Err(_) => {
            tracing::warn!(%gvsn, name = %d.update.name, "sync: downloaded file does not match its hash");
            return Ok(failed(&d, DownloadError::InvalidCompressedData));
        }
    }
    let final_path = d.final_path.clone();
    std::fs::rename(&d.path, &final_path).map_err(|source| PullError::Staging { path: final_path.clone(), source })?;
    report.files_downloaded += 1;
    tracing::info!(%gvsn, name = %d.update.name, bytes = d.bytes, "sync: file downloaded");
    Ok(Some(EResponse::FileDownloaded { folder, gvsn }))
}

fn close(client: &mut RpcClient, ctx: &ContextHandle, inflight: &mut HashMap<u32, Pending>) -> Result<(), PullError> {
    let req = Request::RdcClose(crate::wire::frstrans::ContextRequest { server_context: *ctx });
    let id = client.start(req.opnum(), &req.to_bytes())?;
    inflight.insert(id, Pending::Close);
    Ok(())
}

/// The DFS-R hash of a staged file (its marshaled data and security).
pub fn staged_hash(path: &std::path::Path) -> Result<[u8; 20], Box<dyn std::error::Error>> {
    let f = File::open(path)?;
    let mut r = MarshalReader::new(FrsxReader::new(BufReader::with_capacity(1 << 16, f)));
    while r.next()?.is_some() {}
    Ok(r.frs_hash())
}

/// The connection's GUIDs: engine requests to wire calls and back.
struct Ids {
    connection: Guid,
    replica_set: Guid,
}

impl Ids {
    /// The call for `r`; `None` for a download (several calls, run by
    /// [`pull_once`]).
    fn request(&self, r: &ERequest) -> Option<Request> {
        Some(match r {
            ERequest::EstablishConnection => Request::EstablishConnection(EstablishConnectionRequest {
                replica_set_id: self.replica_set,
                connection_id: self.connection,
                downstream_protocol_version: OUR_PROTOCOL_VERSION,
                downstream_flags: 0,
            }),
            ERequest::EstablishSession { folder } => Request::EstablishSession(EstablishSessionRequest {
                connection_id: self.connection,
                content_set_id: *folder,
            }),
            ERequest::RequestVersionVector { folder, sequence, request_type, change_type, vv_generation } => {
                Request::RequestVersionVector(RequestVersionVectorRequest {
                    sequence_number: *sequence,
                    connection_id: self.connection,
                    content_set_id: *folder,
                    request_type: version_request_to_wire(*request_type),
                    change_type: change_to_wire(*change_type),
                    vv_generation: *vv_generation,
                })
            }
            ERequest::AsyncPoll => Request::AsyncPoll(AsyncPollRequest { connection_id: self.connection }),
            ERequest::RequestUpdates { folder, credits, request_type, hash_requested, vv_diff } => {
                Request::RequestUpdates(RequestUpdatesRequest {
                    connection_id: self.connection,
                    content_set_id: *folder,
                    credits_available: *credits,
                    hash_requested: *hash_requested,
                    update_request_type: update_request_to_wire(*request_type),
                    version_vector_diff: vector_to_wire(vv_diff),
                })
            }
            ERequest::UpdateCancel { folder, gvsn, .. } => Request::UpdateCancel(Box::new(UpdateCancelRequest {
                connection_id: self.connection,
                cancel_data: UpdateCancelData {
                    content_set_id: *folder,
                    gvsn_database_id: gvsn.db,
                    gvsn_version: gvsn.version,
                    // §2.2.1.4.5: UNSPECIFIED is the only cancel type.
                    cancel_type: 1,
                    ..Default::default()
                },
            })),
            ERequest::DownloadFile { .. } => return None,
        })
    }

    /// The engine response for the answer to `req`.
    fn response(&self, req: &ERequest, c: Completion) -> Result<EResponse, PullError> {
        let (call, folder) = call_and_folder(req);
        let failed = |error| Ok(EResponse::Failed { call, folder, error });
        let stub = match c {
            Completion::Reply(s) => s,
            Completion::Fault(f) => {
                tracing::warn!(?call, fault = format_args!("{f:#x}"), "sync: call faulted");
                return failed(CallError::Transport);
            }
        };
        let opnum = opnum_of(req);
        let Ok(r) = Response::decode(opnum, &stub) else {
            tracing::warn!(?call, "sync: undecodable answer");
            return failed(CallError::Transport);
        };
        let status = r.status();
        if status != 0 {
            if matches!(call, Call::EstablishConnection) {
                return Err(PullError::Refused { call, status });
            }
            return failed(CallError::from_status(status));
        }
        Ok(match (req, r) {
            (ERequest::EstablishConnection, Response::EstablishConnection(r)) => {
                if !version_compatible(r.upstream_protocol_version) {
                    return Err(PullError::Refused { call, status: frs_error::INCOMPATIBLE_VERSION });
                }
                EResponse::ConnectionEstablished
            }
            (ERequest::EstablishSession { folder }, _) => EResponse::SessionEstablished { folder: *folder },
            (ERequest::RequestVersionVector { folder, sequence, .. }, _) => {
                EResponse::VersionVectorRequested { folder: *folder, sequence: *sequence }
            }
            (ERequest::AsyncPoll, Response::AsyncPoll(r)) => {
                let c = r.response;
                let vector = match c.result.version_vector.as_deref().map(vector_from_wire) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "sync: partner sent a bad version vector");
                        return failed(CallError::Transport);
                    }
                };
                EResponse::AsyncPoll(EPoll {
                    sequence: c.sequence_number,
                    status: c.status,
                    vv_generation: c.result.vv_generation,
                    vector,
                })
            }
            (ERequest::RequestUpdates { folder, .. }, Response::RequestUpdates(r)) => {
                EResponse::Updates(UpdatesResponse {
                    folder: *folder,
                    updates: r.updates.iter().map(update_from_wire).collect(),
                    status: crate::wire::frstrans::convert::update_status_from_wire(r.update_status),
                    cursor: Gvsn::new(r.gvsn_db_guid, r.gvsn_version),
                })
            }
            (ERequest::UpdateCancel { folder, gvsn, .. }, _) => EResponse::UpdateCancelled { folder: *folder, gvsn: *gvsn },
            _ => return failed(CallError::Transport),
        })
    }
}

/// The FrsTransport opnum an engine request is sent as.
fn opnum_of(r: &ERequest) -> u16 {
    use crate::wire::frstrans::opnum;
    match r {
        ERequest::EstablishConnection => opnum::ESTABLISH_CONNECTION,
        ERequest::EstablishSession { .. } => opnum::ESTABLISH_SESSION,
        ERequest::RequestVersionVector { .. } => opnum::REQUEST_VERSION_VECTOR,
        ERequest::AsyncPoll => opnum::ASYNC_POLL,
        ERequest::RequestUpdates { .. } => opnum::REQUEST_UPDATES,
        ERequest::DownloadFile { .. } => opnum::INITIALIZE_FILE_TRANSFER_ASYNC,
        ERequest::UpdateCancel { .. } => opnum::UPDATE_CANCEL,
    }
}

fn call_and_folder(r: &ERequest) -> (Call, Option<Guid>) {
    match r {
        ERequest::EstablishConnection => (Call::EstablishConnection, None),
        ERequest::EstablishSession { folder } => (Call::EstablishSession, Some(*folder)),
        ERequest::RequestVersionVector { folder, .. } => (Call::RequestVersionVector, Some(*folder)),
        ERequest::AsyncPoll => (Call::AsyncPoll, None),
        ERequest::RequestUpdates { folder, .. } | ERequest::DownloadFile { folder, .. } => {
            (Call::RequestUpdates, Some(*folder))
        }
        ERequest::UpdateCancel { folder, .. } => (Call::UpdateCancel, Some(*folder)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ids::Uid;
    use crate::engine::ordering::HoldReason;
    use crate::engine::update::tests::sample;
    use crate::engine::update::FILE_ATTRIBUTE_DIRECTORY;

    const GROUP: Guid = Guid([0x77; 16]);
    const FOLDER: Guid = Guid([0xcc; 16]);
    const PARTNER: Guid = Guid([0x99; 16]);

    fn temp_db(name: &str) -> (std::path::PathBuf, Database, StagingArea) {
        let dir = std::env::temp_dir().join(format!("dfsr-pull-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("staging")).unwrap();
        let db = Database::open(&dir.join("dfsr.tdb")).unwrap();
        (dir.clone(), db, StagingArea::new(dir.join("staging")))
    }

    fn from_partner(v: u64, parent: Uid, dir: bool) -> EUpdate {
        let mut u = sample(Uid::new(PARTNER, v), Gvsn::new(PARTNER, v), parent, &format!("n{v}"));
        if dir {
            u.attributes = FILE_ATTRIBUTE_DIRECTORY;
        }
        u
    }

    /// An orphan is kept aside in the store, and installed (its GVSN then
    /// known) when its parent arrives.
    #[test]
    fn an_orphan_waits_in_the_store_for_its_parent() {
        let (dir, mut db, staging) = temp_db("orphan");
        let parent = from_partner(10, Uid::root_of(FOLDER), true);
        let child = from_partner(11, parent.uid, false);
        let vv = VersionVector::new();
        let mut o = resume_originator(&db, FOLDER).unwrap();
        plan_and_commit(&mut db, &staging, GROUP, &mut o, &vv, &mut PullReport::default(), |i| {
            i.held(child.clone(), HoldReason::Orphan { missing: parent.uid })
        })
        .unwrap();
        assert_eq!(db.held_aside(&child.uid).unwrap(), Some(child.clone()));
        assert_eq!(db.update(&child.uid).unwrap(), None);
        let outcome = plan_and_commit(&mut db, &staging, GROUP, &mut o, &vv, &mut PullReport::default(), |i| {
            let o = i.receive(parent.clone())?;
            i.retry_unblocked()?;
            Ok(o)
        })
        .unwrap();
        assert_eq!(outcome, UpdateOutcome::Installed);
        assert_eq!(db.update(&child.uid).unwrap(), Some(child.clone()));
        assert_eq!(db.held_aside(&child.uid).unwrap(), None);
        let known = db.known_vector(&GROUP, &FOLDER).unwrap();
        assert!(known.contains(&parent.gvsn) && known.contains(&child.gvsn));
        assert_eq!(db.check().unwrap(), vec![]);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A live child of a deleted directory is deleted by us (a tombstone
    /// from our own database, counters stored), never stored live.
    #[test]
    fn a_dangling_child_is_tombstoned_by_us() {
        let (dir, mut db, staging) = temp_db("dangling");
        let mut gone = from_partner(10, Uid::root_of(FOLDER), true);
        gone.present = false;
        let child = from_partner(11, gone.uid, false);
        let vv = VersionVector::new();
        let mut o = resume_originator(&db, FOLDER).unwrap();
        plan_and_commit(&mut db, &staging, GROUP, &mut o, &vv, &mut PullReport::default(), |i| i.receive(gone.clone()).map(|_| ())).unwrap();
        plan_and_commit(&mut db, &staging, GROUP, &mut o, &vv, &mut PullReport::default(), |i| {
            i.held(child.clone(), HoldReason::ParentDeleted { parent: gone.uid })
        })
        .unwrap();
        let ours = db.database_guid().unwrap().expect("a database GUID was made");
        let stored = db.update(&child.uid).unwrap().expect("the child is recorded");
        assert!(!stored.present, "{stored:?}");
        assert_eq!(stored.gvsn.db, ours);
        assert!(db.originator(&FOLDER).unwrap().is_some_and(|o| o.next_version > stored.gvsn.version));
        assert_eq!(db.check().unwrap(), vec![]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
