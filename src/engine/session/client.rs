//! The client role of one partner connection (MS-FRS2 §3.3), sans-IO.
//!
//! [`PartnerSync`] drives one connection to one partner in one replication
//! group and a replicated-folder session per folder on it. The caller feeds
//! it events — responses ([`PartnerSync::on_response`]), install outcomes
//! ([`PartnerSync::on_update_processed`]), time
//! ([`PartnerSync::on_timer`]) — and drains [`Action`]s with
//! [`PartnerSync::poll_action`]. Time is a monotonic clock in
//! **milliseconds** chosen by the caller; only differences matter.
//!
//! Install actions must be carried out in the order they are polled: the
//! machine emits parents before children (§3.3.4.6.2 ancestral order) and
//! relies on the installer keeping that order.

use std::collections::{HashMap, HashSet, VecDeque};

use thiserror::Error;

use crate::engine::ids::{Guid, Gvsn, Uid};
use crate::engine::ordering::{
    installed_context, order_batch, CycleBreak, Held, HoldReason, Installed, InstalledContext,
};
use crate::engine::replica::ReplicaRead;
use crate::engine::rules::{decide, Decision};
use crate::engine::update::Update;
use crate::engine::version_vector::VersionVector;

use super::backoff::{delay_ms, Backoff};
use super::messages::{
    AsyncPollResponse, Call, CallError, CancelReason, ChangeType, DownloadError, Request, Response,
    StagingPolicy, UpdateRequestType, UpdateStatus, UpdatesResponse, VersionRequestType,
};
use super::server::MAX_CREDITS;

/// Limits of the client (§3.3: "the client uses a credit system to control
/// the number of synchronization instances … and the processing of
/// updates").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// `creditsAvailable` asked per RequestUpdates, 1..=256.
    pub max_credits: u32,
    /// Updates of one folder received and not yet processed (downloading,
    /// installing, retrying, waiting for a parent); no RequestUpdates is
    /// sent that could exceed it.
    pub max_queued_updates: usize,
    /// Folders of this connection syncing at once (from the CHANGE_ALL
    /// request to the merge).
    pub max_concurrent_syncs: usize,
    /// Downloads in flight per folder (Windows servers serve 16).
    pub max_concurrent_downloads: usize,
    /// Download attempts before the update is cancelled (§3.3.4.8 says
    /// retry; we stop somewhere and send UpdateCancel, §3.3.4.17).
    pub max_download_attempts: u32,
    /// `hashRequested` of RequestUpdates.
    pub hash_requested: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_credits: MAX_CREDITS,
            max_queued_updates: 1024,
            max_concurrent_syncs: 4,
            max_concurrent_downloads: 16,
            max_download_attempts: 10,
            hash_requested: true,
        }
    }
}

/// Misuse of the machine by its caller, or a response it cannot place.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    /// A limit of [`SyncConfig`] is zero or above what the protocol allows.
    #[error("invalid sync configuration: {0}")]
    InvalidConfig(&'static str),
    /// The folder is not one of this connection's.
    #[error("unknown replicated folder {0}")]
    UnknownFolder(Guid),
    /// No update with that GVSN is waiting for this event (e.g. its sync
    /// was abandoned after a disconnect).
    #[error("no update {gvsn} of folder {folder} is waiting for this")]
    UnknownUpdate {
        /// The folder.
        folder: Guid,
        /// The GVSN reported.
        gvsn: Gvsn,
    },
    /// A response that does not match the current state; ignored, as
    /// §3.3.4.5 asks for stray AsyncPoll completions.
    #[error("unexpected response ignored: {0}")]
    Unexpected(&'static str),
}

/// An event the machine could not take in full.
#[derive(Debug, Error)]
pub enum SyncError<E: std::error::Error + 'static> {
    /// The event does not fit the state (see [`SessionError`]).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Reading our replicated state failed. The connection is torn down
    /// (an [`Action::Disconnect`]; its syncs abandoned, nothing merged)
    /// and established again after a back-off, so no vector is merged on
    /// the strength of a read that did not happen.
    #[error("reading the replicated state: {0}")]
    Read(#[source] E),
}

/// What should be retried after an install reported [`UpdateOutcome::RetryLater`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Install the staged content again (e.g. a local sharing violation).
    Install,
    /// Download again with this staging policy, then install (§3.3.4.7.1:
    /// STAGING_REQUIRED after a sharing violation, RESTAGING_REQUIRED after
    /// invalid compressed data).
    Download(StagingPolicy),
}

/// How the installer fared with one update of an [`Action::Install`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Installed.
    Installed,
    /// Not installed: what is held supersedes it (found at install time).
    Superseded,
    /// Kept aside until its parent arrives (an orphan, a cycle): processed
    /// for this sync, but its GVSN is left out of the merged vector, so we
    /// never claim a version we have not installed.
    Held,
    /// Not now; retried with back-off 1, 2, 4 … 256 s, then every 300 s.
    RetryLater(Retry),
    /// Failed for good: UpdateCancel is sent and its GVSN is left out of
    /// the merged vector, so the next sync asks for it again.
    Failed,
}

/// What the caller must do, polled with [`PartnerSync::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the partner.
    Send(Request),
    /// Install these updates of a folder, in this order (downloaded
    /// content is staged; tombstones have none), then report each with
    /// [`PartnerSync::on_update_processed`].
    Install(Guid, Vec<Update>),
    /// Keep these updates aside (orphans, dangling children, unbreakable
    /// cycles, §3.3.4.6.2); they count as processed for this sync. The
    /// GVSNs of orphans and cycles are left out of the merged vector (they
    /// are known once installed); a dangling child is the installer's to
    /// resolve now (`install::Installer::held`).
    Hold(Guid, Vec<Held>),
    /// Originate an update keeping the old parent for each (§3.3.4.6.2
    /// cycle conflict, see `local_change::Originator::break_cycle`).
    CycleBreaks(Guid, Vec<CycleBreak>),
    /// Every update of a sync was processed: merge this (the partner's
    /// vector without the cancelled GVSNs) into our known vector (§3.3.4.6).
    MergeKnownVector(Guid, VersionVector),
    /// Tear the connection down (§3.3.1.1 Disconnected); an
    /// EstablishConnection follows after a back-off.
    Disconnect,
    /// Call [`PartnerSync::on_timer`] at this time (ms) at the latest.
    Schedule(u64),
}

/// A folder's replicated-folder-session state (§3.3.1.2), as reported by
/// [`PartnerSync::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderState {
    /// No session; EstablishSession is (re)tried after a back-off.
    Restart,
    /// EstablishSession sent.
    EstablishingSession,
    /// In session, nothing outstanding; the next step is timed.
    Idle,
    /// RequestVersionVector sent, not yet acknowledged.
    RequestingVersionVector(ChangeType),
    /// RequestVersionVector acknowledged; waiting for its AsyncPoll
    /// completion (NOTIFY: "Requesting Version Vector"; ALL: "Poll Again").
    WaitingAsyncPoll(ChangeType),
    /// Notified of a change, waiting for a sync slot (§3.3 GetCredits).
    WaitingForCredit,
    /// RequestUpdates pages in this phase (§3.3.4.6.1).
    RequestingUpdates(UpdateRequestType),
    /// All pages received; downloads and installs outstanding.
    Installing,
    /// The folder is read-only on the partner (0x2375): left alone.
    ReadOnly,
}

/// Where an update of a sync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for a download slot, or for `at` after a failure.
    Download { policy: StagingPolicy, at: u64 },
    /// DownloadFile sent.
    Downloading { policy: StagingPolicy },
    /// Content staged (or a tombstone): waiting to be emitted in order.
    Ready,
    /// In an Install action, outcome pending.
    Installing,
    /// Install to be retried at `at`.
    RetryInstall { at: u64 },
}

#[derive(Debug, Clone)]
struct Entry {
    update: Update,
    /// The page (batch) it came in; tombstones wait for their batch.
    page: u64,
    stage: Stage,
    attempts: u32,
}

impl Entry {
    /// A new install candidate: live updates download first.
    fn new(update: Update, page: u64, now: u64) -> Entry {
        let stage = if update.present {
            Stage::Download { policy: StagingPolicy::ServerDefault, at: now }
        } else {
            Stage::Ready
        };
        Entry { update, page, stage, attempts: 0 }
    }
}

/// One sync of a folder: from the partner's vector to the merge.
#[derive(Debug, Clone)]
struct SyncRun {
    /// The partner's vector (merged at the end).
    partner: VersionVector,
    /// The VV of §3.3.4.6.1: what the partner has and we lack.
    full: VersionVector,
    phase: UpdateRequestType,
    /// The current `versionVectorDiff`.
    diff: VersionVector,
    request_outstanding: bool,
    pages_done: bool,
    seen: HashSet<Gvsn>,
    pipeline: Vec<Entry>,
    /// Orphans waiting for a parent of this sync.
    deferred: Vec<Update>,
    failed: Vec<Gvsn>,
    /// Held aside (orphans, cycles): out of the merge, not fetched again
    /// at once.
    held_aside: Vec<Gvsn>,
    /// Orphans dropped to make room; fetched again by the next sync.
    dropped: Vec<Gvsn>,
    dropped_uids: HashSet<Uid>,
    page: u64,
}

impl SyncRun {
    fn outstanding(&self) -> usize {
        self.pipeline.len() + self.deferred.len()
    }

    /// Pipeline entry `i` failed for good: UpdateCancel (§3.3.4.17), its
    /// GVSN left out of the merge; the entries below it that were not
    /// handed to the installer yet are dropped, to be fetched again with it.
    fn fail(
        &mut self,
        i: usize,
        reason: CancelReason,
        folder: Guid,
        actions: &mut VecDeque<Action>,
    ) {
        let e = self.pipeline.remove(i);
        let gvsn = e.update.gvsn;
        self.failed.push(gvsn);
        actions.push_back(Action::Send(Request::UpdateCancel {
            folder,
            gvsn,
            reason,
        }));
        let mut gone: HashSet<Uid> = HashSet::from([e.update.uid]);
        let mut j = 0;
        while j < self.pipeline.len() {
            let x = &self.pipeline[j];
            if x.stage != Stage::Installing && x.update.present && gone.contains(&x.update.parent) {
                let x = self.pipeline.remove(j);
                gone.insert(x.update.uid);
                self.dropped.push(x.update.gvsn);
                self.dropped_uids.insert(x.update.uid);
            } else {
                j += 1;
            }
        }
        self.dropped_uids.extend(gone);
    }
}

#[derive(Debug, Clone)]
enum St {
    Restart {
        at: u64,
    },
    EstablishingSession,
    Idle {
        at: u64,
    },
    Awaiting {
        sequence: u32,
        change: ChangeType,
        acked: bool,
    },
    WaitingForCredit,
    Syncing(Box<SyncRun>),
    ReadOnly,
}

#[derive(Debug, Clone)]
struct Folder {
    st: St,
    backoff: Backoff,
    /// The generation of the partner's vector we last synced against.
    vv_generation: u64,
    /// Skip the next notify wait (a change notify arrived while busy).
    resync: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Disconnected { at: u64 },
    Connecting,
    Connected,
}

/// The client side of one partner connection (§3.3): the connection state
/// machine (§3.3.1.1) and a session state machine per replicated folder
/// (§3.3.1.2, §3.3.4.6.1).
#[derive(Debug, Clone)]
pub struct PartnerSync {
    config: SyncConfig,
    conn: Conn,
    conn_backoff: Backoff,
    poll_outstanding: bool,
    poll_retry_at: Option<u64>,
    poll_backoff: Backoff,
    folders: std::collections::BTreeMap<Guid, Folder>,
    /// Folders notified and waiting for a sync slot, first come first.
    credit_queue: VecDeque<Guid>,
    next_sequence: u32,
    actions: VecDeque<Action>,
    announced: Option<u64>,
    now: u64,
}

/// What ordering needs of the installed state for `batch`: the sync's
/// pipeline (received, not yet installed) over the store.
fn context_for<S: ReplicaRead + ?Sized>(
    batch: &[Update],
    store: &S,
    pipeline: &[Entry],
) -> Result<InstalledContext, S::Error> {
    let pending: HashMap<Uid, Installed> = pipeline
        .iter()
        .map(|e| (e.update.uid, Installed { parent: e.update.parent, present: e.update.present }))
        .collect();
    installed_context(batch, |uid| match pending.get(uid) {
        Some(i) => Ok(Some(*i)),
        None => Ok(store.update(uid)?.map(|u| Installed { parent: u.parent, present: u.present })),
    })
}

impl PartnerSync {
    /// A machine for one partner connection replicating `folders`; it
    /// starts Disconnected and immediately asks for EstablishConnection.
    pub fn new(
        config: SyncConfig,
        folders: impl IntoIterator<Item = Guid>,
        now: u64,
    ) -> Result<Self, SessionError> {
        if config.max_credits == 0 || config.max_credits > MAX_CREDITS {
            return Err(SessionError::InvalidConfig("max_credits must be 1..=256"));
        }
        if config.max_queued_updates == 0 {
            return Err(SessionError::InvalidConfig("max_queued_updates is 0"));
        }
        if config.max_concurrent_syncs == 0 {
            return Err(SessionError::InvalidConfig("max_concurrent_syncs is 0"));
        }
        if config.max_concurrent_downloads == 0 {
            return Err(SessionError::InvalidConfig("max_concurrent_downloads is 0"));
        }
        let folders = folders
            .into_iter()
            .map(|f| {
                (
                    f,
                    Folder {
                        st: St::Restart { at: now },
                        backoff: Backoff::new(),
                        vv_generation: 0,
                        resync: false,
                    },
                )
            })
            .collect();
        let mut s = PartnerSync {
            config,
            conn: Conn::Connecting,
            conn_backoff: Backoff::new(),
            poll_outstanding: false,
            poll_retry_at: None,
            poll_backoff: Backoff::new(),
            folders,
            credit_queue: VecDeque::new(),
            next_sequence: 1,
            actions: VecDeque::new(),
            announced: None,
            now,
        };
        s.actions
            .push_back(Action::Send(Request::EstablishConnection));
        Ok(s)
    }

    /// The configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest time something is due ([`Self::on_timer`]).
    pub fn poll_timeout(&self) -> Option<u64> {
        let now = self.now;
        let mut t: Option<u64> = None;
        let mut consider = |at: u64| {
            if at > now {
                t = Some(t.map_or(at, |x| x.min(at)));
            }
        };
        if let Conn::Disconnected { at } = self.conn {
            consider(at);
        }
        if let Some(at) = self.poll_retry_at {
            consider(at);
        }
        for f in self.folders.values() {
            match &f.st {
                St::Restart { at } | St::Idle { at } => consider(*at),
                St::Syncing(run) => {
                    for e in &run.pipeline {
                        match e.stage {
                            Stage::Download { at, .. } | Stage::RetryInstall { at } => consider(at),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }

    /// The session state of `folder`.
    pub fn state(&self, folder: &Guid) -> Option<FolderState> {
        let f = self.folders.get(folder)?;
        Some(match &f.st {
            St::Restart { .. } => FolderState::Restart,
            St::EstablishingSession => FolderState::EstablishingSession,
            St::Idle { .. } => FolderState::Idle,
            St::Awaiting { change, acked, .. } => {
                if *acked {
                    FolderState::WaitingAsyncPoll(*change)
                } else {
                    FolderState::RequestingVersionVector(*change)
                }
            }
            St::WaitingForCredit => FolderState::WaitingForCredit,
            St::Syncing(run) if run.pages_done => FolderState::Installing,
            St::Syncing(run) => FolderState::RequestingUpdates(run.phase),
            St::ReadOnly => FolderState::ReadOnly,
        })
    }

    /// Updates of `folder`'s current sync received and not yet processed.
    pub fn outstanding(&self, folder: &Guid) -> usize {
        match self.folders.get(folder).map(|f| &f.st) {
            Some(St::Syncing(run)) => run.outstanding(),
            _ => 0,
        }
    }

    /// Folders syncing now (counted against `max_concurrent_syncs`).
    pub fn active_syncs(&self) -> usize {
        self.folders.values().filter(|f| is_active(&f.st)).count()
    }

    /// Time passed: runs whatever is due.
    pub fn on_timer<S: ReplicaRead + ?Sized>(&mut self, now: u64, store: &S) -> Result<(), S::Error> {
        self.advance(now);
        self.pump(store)
    }

    /// Start a sync of `folder` soon without waiting for the partner's
    /// change notification (schedule opened, admin request): a CHANGE_ALL
    /// request is sent now, or right after the sync in progress.
    pub fn on_change_notify<S: ReplicaRead + ?Sized>(
        &mut self,
        folder: Guid,
        now: u64,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        self.advance(now);
        let f = self
            .folders
            .get_mut(&folder)
            .ok_or(SessionError::UnknownFolder(folder))?;
        match f.st {
            St::Idle { .. }
            | St::Awaiting {
                change: ChangeType::Notify,
                ..
            } => {
                f.st = St::Idle { at: now };
                f.resync = true;
            }
            St::Awaiting { .. } | St::Syncing(_) | St::WaitingForCredit => f.resync = true,
            St::Restart { .. } | St::EstablishingSession | St::ReadOnly => {}
        }
        self.pump(store).map_err(SyncError::Read)
    }

    /// A response or completion from the partner (or the transfer layer).
    pub fn on_response<S: ReplicaRead + ?Sized>(
        &mut self,
        response: Response,
        now: u64,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        self.advance(now);
        let r = self.dispatch(response, store);
        if let Err(SyncError::Read(_)) = &r {
            self.disconnect();
        }
        self.pump(store).map_err(SyncError::Read)?;
        r
    }

    /// The installer's outcome for one update of an [`Action::Install`].
    pub fn on_update_processed<S: ReplicaRead + ?Sized>(
        &mut self,
        folder: Guid,
        gvsn: Gvsn,
        outcome: UpdateOutcome,
        now: u64,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        self.advance(now);
        let f = self
            .folders
            .get_mut(&folder)
            .ok_or(SessionError::UnknownFolder(folder))?;
        let St::Syncing(run) = &mut f.st else {
            return Err(SessionError::UnknownUpdate { folder, gvsn }.into());
        };
        let i = run
            .pipeline
            .iter()
            .position(|e| e.update.gvsn == gvsn && e.stage == Stage::Installing)
            .ok_or(SessionError::UnknownUpdate { folder, gvsn })?;
        match outcome {
            UpdateOutcome::Installed | UpdateOutcome::Superseded => {
                run.pipeline.remove(i);
            }
            UpdateOutcome::Held => {
                let e = run.pipeline.remove(i);
                run.held_aside.push(e.update.gvsn);
            }
            UpdateOutcome::RetryLater(_)
                if run.dropped_uids.contains(&run.pipeline[i].update.parent) =>
            {
                // Its parent failed or was dropped: fetch both again.
                let e = run.pipeline.remove(i);
                run.dropped.push(e.update.gvsn);
                run.dropped_uids.insert(e.update.uid);
            }
            UpdateOutcome::RetryLater(retry) => {
                let e = &mut run.pipeline[i];
                let at = now.saturating_add(delay_ms(e.attempts));
                e.attempts = e.attempts.saturating_add(1);
                e.stage = match retry {
                    Retry::Install => Stage::RetryInstall { at },
                    Retry::Download(policy) => Stage::Download { policy, at },
                };
            }
            UpdateOutcome::Failed => {
                run.fail(i, CancelReason::InstallFailed, folder, &mut self.actions);
            }
        }
        self.pump(store).map_err(SyncError::Read)
    }

    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    fn alloc_sequence(&mut self) -> u32 {
        let s = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1).max(1);
        s
    }

    /// §3.3.1.1: to Disconnected, every session back to Restart, syncs
    /// abandoned without merging.
    fn disconnect(&mut self) {
        let now = self.now;
        if !matches!(self.conn, Conn::Disconnected { .. }) {
            self.actions.push_back(Action::Disconnect);
        }
        self.conn = Conn::Disconnected {
            at: self.conn_backoff.next_retry(now),
        };
        self.poll_outstanding = false;
        self.poll_retry_at = None;
        self.credit_queue.clear();
        for f in self.folders.values_mut() {
            // The next connection meets a new server session, whose
            // vector generations start again (§3.2.4.1.6): a stale one
            // would hold CHANGE_NOTIFY until its time-out.
            f.vv_generation = 0;
            if !matches!(f.st, St::ReadOnly) {
                f.st = St::Restart { at: now };
                f.resync = false;
            }
        }
    }

    /// §3.3.4.6 CONTENTSET_NOT_FOUND: the folder goes back to Restart.
    fn restart_folder(&mut self, folder: Guid) {
        let now = self.now;
        self.credit_queue.retain(|g| *g != folder);
        if let Some(f) = self.folders.get_mut(&folder) {
            if !matches!(f.st, St::ReadOnly) {
                f.st = St::Restart {
                    at: f.backoff.next_retry(now),
                };
            }
        }
    }

    fn dispatch<S: ReplicaRead + ?Sized>(
        &mut self,
        response: Response,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        let now = self.now;
        match response {
            Response::ConnectionEstablished => {
                if self.conn != Conn::Connecting {
                    return Err(SessionError::Unexpected("EstablishConnection reply").into());
                }
                self.conn = Conn::Connected;
                self.conn_backoff.reset();
                for f in self.folders.values_mut() {
                    if let St::Restart { at } = &mut f.st {
                        *at = (*at).min(now);
                    }
                }
                Ok(())
            }
            Response::SessionEstablished { folder } => {
                let f = self
                    .folders
                    .get_mut(&folder)
                    .ok_or(SessionError::UnknownFolder(folder))?;
                if !matches!(f.st, St::EstablishingSession) {
                    return Err(SessionError::Unexpected("EstablishSession reply").into());
                }
                // §3.3.4.3: register for a change notification.
                f.st = St::Idle { at: now };
                Ok(())
            }
            Response::VersionVectorRequested { folder, sequence } => {
                let f = self
                    .folders
                    .get_mut(&folder)
                    .ok_or(SessionError::UnknownFolder(folder))?;
                match &mut f.st {
                    St::Awaiting {
                        sequence: s, acked, ..
                    } if *s == sequence => {
                        *acked = true;
                        Ok(())
                    }
                    _ => Err(SessionError::Unexpected("RequestVersionVector reply").into()),
                }
            }
            Response::AsyncPoll(r) => self.on_async_poll(r, store),
            Response::Updates(r) => self.on_updates(r, store),
            Response::FileDownloaded { folder, gvsn } => {
                let run = self.run_mut(folder, gvsn)?;
                let e = run
                    .pipeline
                    .iter_mut()
                    .find(|e| e.update.gvsn == gvsn && matches!(e.stage, Stage::Downloading { .. }))
                    .ok_or(SessionError::UnknownUpdate { folder, gvsn })?;
                e.stage = Stage::Ready;
                // Install retries get their own schedule.
                e.attempts = 0;
                Ok(())
            }
            Response::DownloadFailed {
                folder,
                gvsn,
                error,
            } => Ok(self.on_download_failed(folder, gvsn, error)?),
            Response::UpdateCancelled { .. } => Ok(()),
            Response::Failed {
                call,
                folder,
                error,
            } => {
                self.on_failed(call, folder, error);
                Ok(())
            }
        }
    }

    fn run_mut(&mut self, folder: Guid, gvsn: Gvsn) -> Result<&mut SyncRun, SessionError> {
        match self.folders.get_mut(&folder).map(|f| &mut f.st) {
            Some(St::Syncing(run)) => Ok(run),
            Some(_) => Err(SessionError::UnknownUpdate { folder, gvsn }),
            None => Err(SessionError::UnknownFolder(folder)),
        }
    }

    fn on_failed(&mut self, call: Call, folder: Option<Guid>, error: CallError) {
        let now = self.now;
        match (call, folder, error) {
            // A broken transport takes the pending completion with it: the
            // folder waiting for it could never move on, so disconnect.
            (Call::AsyncPoll, _, CallError::Transport) => self.disconnect(),
            // §3.3.4.5: AsyncPoll failing on invocation is retried later.
            (Call::AsyncPoll, _, _) => {
                self.poll_outstanding = false;
                self.poll_retry_at = Some(self.poll_backoff.next_retry(now));
            }
            // §3.3.4.3: read-only, do not ask again.
            (Call::EstablishSession, Some(f), CallError::ContentSetReadOnly) => {
                if let Some(f) = self.folders.get_mut(&f) {
                    f.st = St::ReadOnly;
                }
            }
            (
                Call::EstablishSession,
                Some(f),
                CallError::ContentSetNotFound | CallError::Other(_),
            ) => self.restart_folder(f),
            (Call::RequestUpdates | Call::UpdateCancel, Some(f), CallError::ContentSetNotFound) => {
                self.restart_folder(f)
            }
            // Everything else: §3.3.4.2/4/6/17 "transition to Disconnected".
            _ => self.disconnect(),
        }
    }

    fn on_async_poll<S: ReplicaRead + ?Sized>(
        &mut self,
        r: AsyncPollResponse,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        let now = self.now;
        self.poll_outstanding = false;
        self.poll_backoff.reset();
        if r.status != 0 {
            // §3.3.4.5: a failed completion disconnects.
            self.disconnect();
            return Ok(());
        }
        let found = self.folders.iter().find_map(|(g, f)| match f.st {
            St::Awaiting {
                sequence, change, ..
            } if sequence == r.sequence => Some((*g, change)),
            _ => None,
        });
        let Some((folder, change)) = found else {
            return Err(SessionError::Unexpected("AsyncPoll completion").into());
        };
        match change {
            ChangeType::Notify => {
                // §3.3.4.5 NORMAL_SYNC in Requesting Version Vector: ask for
                // the vector (when a sync slot is free).
                if let Some(f) = self.folders.get_mut(&folder) {
                    f.st = St::WaitingForCredit;
                }
                self.credit_queue.push_back(folder);
                Ok(())
            }
            ChangeType::All => {
                let Some(partner) = r.vector else {
                    if let Some(f) = self.folders.get_mut(&folder) {
                        f.st = St::Idle {
                            at: f.backoff.next_retry(now),
                        };
                    }
                    return Err(SessionError::Unexpected(
                        "AsyncPoll for CHANGE_ALL without a vector",
                    )
                    .into());
                };
                let full = store
                    .known_vector(&folder)
                    .map_err(SyncError::Read)?
                    .request_from(&partner);
                let Some(f) = self.folders.get_mut(&folder) else {
                    return Err(SessionError::UnknownFolder(folder).into());
                };
                f.vv_generation = r.vv_generation;
                if full.is_empty() {
                    // Nothing new: nothing to merge either (ours ⊇ theirs).
                    f.backoff.reset();
                    f.st = St::Idle { at: now };
                } else {
                    f.st = St::Syncing(Box::new(SyncRun {
                        partner,
                        diff: full.clone(),
                        full,
                        phase: UpdateRequestType::All,
                        request_outstanding: false,
                        pages_done: false,
                        seen: HashSet::new(),
                        pipeline: Vec::new(),
                        deferred: Vec::new(),
                        failed: Vec::new(),
                        dropped: Vec::new(),
                        held_aside: Vec::new(),
                        dropped_uids: HashSet::new(),
                        page: 0,
                    }));
                }
                Ok(())
            }
        }
    }

    fn on_updates<S: ReplicaRead + ?Sized>(
        &mut self,
        r: UpdatesResponse,
        store: &S,
    ) -> Result<(), SyncError<S::Error>> {
        let now = self.now;
        let folder = r.folder;
        let f = self
            .folders
            .get_mut(&folder)
            .ok_or(SessionError::UnknownFolder(folder))?;
        let St::Syncing(run) = &mut f.st else {
            return Err(SessionError::Unexpected("RequestUpdates reply").into());
        };
        if !run.request_outstanding {
            return Err(SessionError::Unexpected("RequestUpdates reply").into());
        }
        run.request_outstanding = false;
        run.page += 1;
        let empty_page = r.updates.is_empty();

        // Sort the page out against what we hold (§3.3.4.6.2).
        let mut batch = Vec::new();
        for u in r.updates {
            // Only what we asked for, once.
            if u.content_set_id != folder || !run.full.contains(&u.gvsn) {
                continue;
            }
            if !run.seen.insert(u.gvsn) {
                continue;
            }
            if u.validate().is_err() {
                run.failed.push(u.gvsn);
                self.actions.push_back(Action::Send(Request::UpdateCancel {
                    folder,
                    gvsn: u.gvsn,
                    reason: CancelReason::Invalid,
                }));
                continue;
            }
            let pending = run.pipeline.iter().rev().find(|e| e.update.uid == u.uid);
            let against = match pending {
                Some(e) => Some(e.update.clone()),
                None => store.update(&u.uid).map_err(SyncError::Read)?,
            };
            // A name-conflict tombstone meeting a present update that
            // beats it is the installer's to settle (it re-issues the
            // tombstone); superseded and same are processed.
            if let Ok(Decision::Install | Decision::ReissueNameConflictTombstone) = decide(&u, against.as_ref()) {
                batch.push(u);
            }
        }
        batch.append(&mut run.deferred);
        let context = context_for(&batch, store, &run.pipeline).map_err(SyncError::Read)?;
        let ordered = order_batch(batch, &context);
        let page = run.page;
        for u in ordered.install {
            run.pipeline.push(Entry::new(u, page, now));
        }
        let mut hold = Vec::new();
        for h in ordered.held {
            match h.reason {
                HoldReason::Orphan { .. } => run.deferred.push(h.update),
                HoldReason::Cycle => {
                    run.held_aside.push(h.update.gvsn);
                    hold.push(h);
                }
                HoldReason::ParentDeleted { .. } => hold.push(h),
            }
        }
        if !hold.is_empty() {
            self.actions.push_back(Action::Hold(folder, hold));
        }
        if !ordered.cycle_breaks.is_empty() {
            self.actions
                .push_back(Action::CycleBreaks(folder, ordered.cycle_breaks));
        }

        // §3.3.4.6.1 state transitions.
        let before = (run.phase, run.diff.clone());
        match (run.phase, r.status) {
            (UpdateRequestType::All | UpdateRequestType::Live, UpdateStatus::Done) => {
                run.pages_done = true;
            }
            (UpdateRequestType::All, UpdateStatus::More) => {
                run.phase = UpdateRequestType::Tombstones;
                run.diff.remove_through(&r.cursor);
            }
            (UpdateRequestType::Tombstones | UpdateRequestType::Live, UpdateStatus::More) => {
                run.diff.remove_through(&r.cursor);
            }
            (UpdateRequestType::Tombstones, UpdateStatus::Done) => {
                run.phase = UpdateRequestType::Live;
                run.diff = run.full.clone();
            }
        }
        // Nothing can be left in an empty diff: skip the empty request.
        if !run.pages_done && run.diff.is_empty() {
            if run.phase == UpdateRequestType::Tombstones {
                run.phase = UpdateRequestType::Live;
                run.diff = run.full.clone();
            } else {
                run.pages_done = true;
            }
        }
        if r.status == UpdateStatus::More && empty_page && before == (run.phase, run.diff.clone()) {
            // A MORE that moved nothing would loop forever: abandon the
            // sync (no merge) and try again later.
            f.st = St::Idle {
                at: f.backoff.next_retry(now),
            };
            return Err(SessionError::Unexpected(
                "RequestUpdates MORE without progress",
            )
            .into());
        }
        Ok(())
    }

    fn on_download_failed(
        &mut self,
        folder: Guid,
        gvsn: Gvsn,
        error: DownloadError,
    ) -> Result<(), SessionError> {
        let now = self.now;
        match error {
            DownloadError::ConnectionInvalid => {
                self.disconnect();
                return Ok(());
            }
            DownloadError::ContentSetNotFound => {
                self.restart_folder(folder);
                return Ok(());
            }
            _ => {}
        }
        let max = self.config.max_download_attempts;
        let run = self.run_mut(folder, gvsn)?;
        let i = run
            .pipeline
            .iter()
            .position(|e| e.update.gvsn == gvsn && matches!(e.stage, Stage::Downloading { .. }))
            .ok_or(SessionError::UnknownUpdate { folder, gvsn })?;
        let e = &mut run.pipeline[i];
        e.attempts = e.attempts.saturating_add(1);
        let give_up = error == DownloadError::Gone || e.attempts >= max;
        if give_up {
            let mut out = VecDeque::new();
            run.fail(i, CancelReason::DownloadFailed, folder, &mut out);
            self.actions.extend(out);
        } else {
            let Stage::Downloading { policy } = e.stage else {
                return Ok(());
            };
            let policy = match error {
                DownloadError::SharingViolation => StagingPolicy::StagingRequired,
                DownloadError::InvalidCompressedData => StagingPolicy::RestagingRequired,
                _ => policy,
            };
            e.stage = Stage::Download {
                policy,
                at: now.saturating_add(delay_ms(e.attempts - 1)),
            };
        }
        Ok(())
    }

    /// Runs everything that can run now, then announces the next timer. A
    /// failed read disconnects (see [`SyncError::Read`]).
    fn pump<S: ReplicaRead + ?Sized>(&mut self, store: &S) -> Result<(), S::Error> {
        let r = self.pump_once(store);
        if r.is_err() {
            self.disconnect();
        }
        self.announce();
        r
    }

    fn pump_once<S: ReplicaRead + ?Sized>(&mut self, store: &S) -> Result<(), S::Error> {
        let now = self.now;
        if let Conn::Disconnected { at } = self.conn {
            if at <= now {
                self.conn = Conn::Connecting;
                self.actions
                    .push_back(Action::Send(Request::EstablishConnection));
            }
        }
        if self.conn == Conn::Connected {
            // §3.3.4.2 / §3.3.4.5: keep one AsyncPoll registered.
            let poll_due = match self.poll_retry_at {
                Some(t) => t <= now,
                None => true,
            };
            if !self.poll_outstanding && poll_due {
                self.poll_outstanding = true;
                self.poll_retry_at = None;
                self.actions.push_back(Action::Send(Request::AsyncPoll));
            }
            self.pump_folders(store)?;
        }
        Ok(())
    }

    /// Asks for a timer call when the next due time changed.
    fn announce(&mut self) {
        let t = self.poll_timeout();
        if t != self.announced {
            self.announced = t;
            if let Some(at) = t {
                self.actions.push_back(Action::Schedule(at));
            }
        }
    }

    fn pump_folders<S: ReplicaRead + ?Sized>(&mut self, store: &S) -> Result<(), S::Error> {
        // Repeat while a sync finishes (a slot frees, a folder goes idle).
        loop {
            let mut changed = false;
            let ids: Vec<Guid> = self.folders.keys().copied().collect();
            for id in ids {
                changed |= self.pump_folder(id, store)?;
            }
            while self.active_syncs() < self.config.max_concurrent_syncs {
                let Some(id) = self.credit_queue.pop_front() else {
                    break;
                };
                if let Some(f) = self.folders.get(&id) {
                    if matches!(f.st, St::WaitingForCredit) {
                        self.request_vector(id, ChangeType::All);
                        changed = true;
                    }
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }

    fn request_vector(&mut self, folder: Guid, change: ChangeType) {
        let sequence = self.alloc_sequence();
        let Some(f) = self.folders.get_mut(&folder) else {
            return;
        };
        // §3.2.4.1.5: NORMAL sync carries the last generation received.
        let vv_generation = f.vv_generation;
        f.st = St::Awaiting {
            sequence,
            change,
            acked: false,
        };
        self.actions
            .push_back(Action::Send(Request::RequestVersionVector {
                folder,
                sequence,
                request_type: VersionRequestType::Normal,
                change_type: change,
                vv_generation,
            }));
    }

    /// One folder's due work; true when its state changed in a way that
    /// may let another folder proceed.
    fn pump_folder<S: ReplicaRead + ?Sized>(&mut self, id: Guid, store: &S) -> Result<bool, S::Error> {
        let now = self.now;
        let Some(f) = self.folders.get_mut(&id) else {
            return Ok(false);
        };
        match &mut f.st {
            St::Restart { at } if *at <= now => {
                f.st = St::EstablishingSession;
                self.actions
                    .push_back(Action::Send(Request::EstablishSession { folder: id }));
                Ok(false)
            }
            St::Idle { at } if *at <= now => {
                if std::mem::take(&mut f.resync) {
                    f.st = St::WaitingForCredit;
                    self.credit_queue.push_back(id);
                    Ok(true)
                } else {
                    self.request_vector(id, ChangeType::Notify);
                    Ok(false)
                }
            }
            St::Syncing(run) => {
                let done = pump_sync(id, run, &self.config, now, store, &mut self.actions)?;
                if done {
                    let failed = !run.failed.is_empty();
                    if !run.dropped.is_empty() {
                        f.resync = true;
                    }
                    let mut excluded = VersionVector::new();
                    for g in run.failed.iter().chain(&run.dropped).chain(&run.held_aside) {
                        excluded.insert(*g);
                    }
                    let merged = run.partner.difference(&excluded);
                    self.actions.push_back(Action::MergeKnownVector(id, merged));
                    let at = if failed {
                        f.backoff.next_retry(now)
                    } else {
                        f.backoff.reset();
                        now
                    };
                    f.st = St::Idle { at };
                    // Go on at once (notify request) unless backing off.
                    self.pump_folder(id, store)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            _ => Ok(false),
        }
    }
}

fn is_active(st: &St) -> bool {
    matches!(
        st,
        St::Syncing(_)
            | St::Awaiting {
                change: ChangeType::All,
                ..
            }
    )
}

/// Drives one sync: retries, downloads, installs in order, the next
/// RequestUpdates. Returns true when the sync is complete (merge time).
fn pump_sync<S: ReplicaRead + ?Sized>(
    folder: Guid,
    run: &mut SyncRun,
    config: &SyncConfig,
    now: u64,
    store: &S,
    actions: &mut VecDeque<Action>,
) -> Result<bool, S::Error> {
    loop {
        // Retries that are due.
        for e in &mut run.pipeline {
            if let Stage::RetryInstall { at } = e.stage {
                if at <= now {
                    e.stage = Stage::Ready;
                }
            }
        }
        // Downloads, in order, up to the cap.
        let mut downloading = run
            .pipeline
            .iter()
            .filter(|e| matches!(e.stage, Stage::Downloading { .. }))
            .count();
        for e in &mut run.pipeline {
            if downloading >= config.max_concurrent_downloads {
                break;
            }
            if let Stage::Download { policy, at } = e.stage {
                if at <= now {
                    e.stage = Stage::Downloading { policy };
                    downloading += 1;
                    actions.push_back(Action::Send(Request::DownloadFile {
                        folder,
                        update: e.update.clone(),
                        staging_policy: policy,
                        rdc_desired: false,
                    }));
                }
            }
        }
        // Installs: a live update waits for an earlier entry of its parent,
        // a tombstone for the earlier entries of its batch.
        // Runs after every response over up to max_queued_updates entries,
        // so it hashes only what can block: a parent is a directory (or
        // the tombstone of one), and entries are pushed in page order, so
        // "an earlier entry of this page is blocked" is "the last blocked
        // entry is of this page".
        let mut blocked_parents: HashSet<Uid> = HashSet::new();
        let mut last_blocked_page: Option<u64> = None;
        let mut install = Vec::new();
        for e in &mut run.pipeline {
            if e.stage == Stage::Installing {
                continue;
            }
            debug_assert!(last_blocked_page.map_or(true, |p| p <= e.page), "pipeline out of page order");
            let free = if e.update.present {
                blocked_parents.is_empty() || !blocked_parents.contains(&e.update.parent)
            } else {
                last_blocked_page != Some(e.page)
            };
            if e.stage == Stage::Ready && free {
                e.stage = Stage::Installing;
                install.push(e.update.clone());
            } else {
                if !e.update.present || e.update.is_directory() {
                    blocked_parents.insert(e.update.uid);
                }
                last_blocked_page = Some(e.page);
            }
        }
        if !install.is_empty() {
            actions.push_back(Action::Install(folder, install));
        }
        // The next page, within the queue cap (§3.3 credits).
        if !run.pages_done && !run.request_outstanding {
            let mut room = config.max_queued_updates.saturating_sub(run.outstanding());
            if room == 0 && run.pipeline.is_empty() && !run.deferred.is_empty() {
                // Only orphans fill the queue: drop them and leave their
                // GVSNs out of the merge, so the next sync (started at once)
                // fetches them again, when their parents are installed.
                // Every sync installs the top of each chain, so this ends.
                for u in run.deferred.drain(..) {
                    run.dropped.push(u.gvsn);
                    run.dropped_uids.insert(u.uid);
                }
                room = config.max_queued_updates;
            }
            if room > 0 {
                let credits = (config.max_credits as usize).min(room) as u32;
                run.request_outstanding = true;
                actions.push_back(Action::Send(Request::RequestUpdates {
                    folder,
                    credits,
                    request_type: run.phase,
                    hash_requested: config.hash_requested,
                    vv_diff: run.diff.clone(),
                }));
            }
        }
        if !(run.pages_done && !run.request_outstanding && run.pipeline.is_empty()) {
            return Ok(false);
        }
        if run.deferred.is_empty() {
            return Ok(true);
        }
        // Last chance for orphans: their parents may be installed now.
        let context = context_for(&run.deferred, store, &[])?;
        let batch = std::mem::take(&mut run.deferred);
        let ordered = order_batch(batch, &context);
        let page = run.page + 1;
        run.page = page;
        let mut progressed = false;
        for u in ordered.install {
            progressed = true;
            run.pipeline.push(Entry::new(u, page, now));
        }
        // Orphans of a dropped parent are fetched again with it; the rest
        // are the caller's to keep.
        let mut hold = Vec::new();
        for h in ordered.held {
            match h.reason {
                HoldReason::Orphan { missing } if run.dropped_uids.contains(&missing) => {
                    run.dropped.push(h.update.gvsn);
                    run.dropped_uids.insert(h.update.uid);
                }
                HoldReason::Orphan { .. } | HoldReason::Cycle => {
                    run.held_aside.push(h.update.gvsn);
                    hold.push(h);
                }
                HoldReason::ParentDeleted { .. } => hold.push(h),
            }
        }
        if !hold.is_empty() {
            actions.push_back(Action::Hold(folder, hold));
        }
        if !ordered.cycle_breaks.is_empty() {
            actions.push_back(Action::CycleBreaks(folder, ordered.cycle_breaks));
        }
        if !progressed {
            return Ok(true);
        }
    }
}
