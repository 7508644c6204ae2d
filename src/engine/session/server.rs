//! The server role of one outbound connection (MS-FRS2 §3.2), sans-IO:
//! answers RequestVersionVector through AsyncPoll, RequestUpdates from an
//! [`UpdateDatabase`], and records UpdateCancel.
//!
//! Time is the caller's monotonic clock in milliseconds, as for the client.
//! Replies that RPC returns synchronously come back from
//! [`Responder::handle`]; AsyncPoll completions that happen later (a
//! change, a time-out) are collected with [`Responder::poll_response`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use thiserror::Error;

use crate::engine::ids::{Guid, Gvsn};
use crate::engine::version_vector::VersionVector;

use super::messages::{
    AsyncPollResponse, Call, CallError, ChangeType, Request, Response, UpdateRequestType,
    UpdateStatus, UpdatesResponse, VersionRequestType,
};
use super::store::UpdateDatabase;


/// The most updates one RequestUpdates reply may carry (§3.2.4.1.4
/// `range(0,256)`).
pub const MAX_CREDITS: u32 = 256;

/// Why the responder refused a request (each maps to a status code).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// No EstablishConnection on this connection yet.
    #[error("no outbound connection established")]
    NoConnection,
    /// We do not replicate this folder, or no session was established for
    /// it (§3.2.4.1.4: FRS_ERROR_CONTENTSET_NOT_FOUND).
    #[error("no session for replicated folder {0}")]
    NoSession(Guid),
    /// `creditsAvailable` above 256.
    #[error("{0} credits requested, at most 256 allowed")]
    TooManyCredits(u32),
    /// SLOW or SUBORDINATE sync with a non-zero generation or without
    /// CHANGE_ALL (§3.2.4.1.5).
    #[error("slow or subordinate sync needs CHANGE_ALL and generation 0")]
    BadSlowSync,
    /// SUBORDINATE sync: not offered by this server.
    #[error("subordinate sync is not supported")]
    SubordinateUnsupported,
    /// A request only a server sends to a client (none today) or that the
    /// responder does not serve.
    #[error("request not served by the responder")]
    NotServed,
}

impl RequestError {
    /// The status code returned on the wire.
    pub fn status(&self) -> u32 {
        match self {
            RequestError::NoConnection => CallError::CONNECTION_INVALID,
            RequestError::NoSession(_) => CallError::CONTENTSET_NOT_FOUND,
            _ => super::messages::frs_error::INVALID_PARAMETER,
        }
    }
}

/// Responder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderConfig {
    /// How long a CHANGE_NOTIFY request may wait for a change before it is
    /// completed anyway (ms); the client then asks for the vector, finds
    /// nothing new and waits again. Default 5 minutes.
    pub notify_timeout_ms: u64,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            notify_timeout_ms: 300_000,
        }
    }
}

/// A CHANGE_NOTIFY request waiting for our generation to pass the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingNotify {
    folder: Guid,
    sequence: u32,
    generation: u64,
    deadline: u64,
}

/// Generation tracking of one folder: bumped when the vector changes
/// (§2.2.1.4.12 `vvGeneration`) or an UpdateCancel arrives (§3.2.4.1.8).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Generation {
    value: u64,
    seen: VersionVector,
}

/// The server side of one connection.
#[derive(Debug, Clone)]
pub struct Responder {
    config: ResponderConfig,
    connected: bool,
    sessions: BTreeSet<Guid>,
    generations: BTreeMap<Guid, Generation>,
    pending: Vec<PendingNotify>,
    /// Completed version-vector requests waiting for an AsyncPoll
    /// (§3.2.4.1.5 "MUST queue up any response").
    ready: VecDeque<AsyncPollResponse>,
    poll_registered: bool,
    out: VecDeque<Response>,
    cancelled: BTreeMap<Guid, BTreeSet<Gvsn>>,
}

impl Responder {
    /// A responder for a new connection.
    pub fn new(config: ResponderConfig) -> Self {
        Responder {
            config,
            connected: false,
            sessions: BTreeSet::new(),
            generations: BTreeMap::new(),
            pending: Vec::new(),
            ready: VecDeque::new(),
            poll_registered: false,
            out: VecDeque::new(),
            cancelled: BTreeMap::new(),
        }
    }

    /// The generation of `folder`'s vector, bumped first if the vector
    /// changed since last looked at; `None` for an unknown folder.
    pub fn generation<D: UpdateDatabase + ?Sized>(&mut self, db: &D, folder: &Guid) -> Result<Option<u64>, D::Error> {
        let Some(vv) = db.version_vector(folder)? else { return Ok(None) };
        let g = self.generations.entry(*folder).or_insert(Generation {
            value: 1,
            seen: vv.clone(),
        });
        if g.seen != vv {
            g.value += 1;
            g.seen = vv;
        }
        Ok(Some(g.value))
    }

    /// GVSNs the client cancelled per folder (§3.2.4.1.8), for accounting
    /// and `dfsrdiag`-style reports.
    pub fn cancelled(&self, folder: &Guid) -> impl Iterator<Item = &Gvsn> {
        self.cancelled.get(folder).into_iter().flatten()
    }

    /// Whether EstablishConnection succeeded on this connection.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether a replicated folder session for `folder` is established
    /// (the check file transfers make, §3.2.4.1.14).
    pub fn in_session(&self, folder: &Guid) -> bool {
        self.connected && self.sessions.contains(folder)
    }

    /// True while an AsyncPoll is registered and not completed.
    pub fn poll_registered(&self) -> bool {
        self.poll_registered
    }

    /// Number of CHANGE_NOTIFY requests waiting for a change.
    pub fn pending_notifies(&self) -> usize {
        self.pending.len()
    }

    /// Handles one request; returns the synchronous reply, or `None` for an
    /// AsyncPoll that is now registered (its completion comes from
    /// [`Self::poll_response`]). A failed read of `db` is returned as is:
    /// the caller answers the call with a failure of its choosing (no
    /// answer is made from a read that did not happen).
    pub fn handle<D: UpdateDatabase + ?Sized>(
        &mut self,
        db: &D,
        request: Request,
        now: u64,
    ) -> Result<Option<Response>, D::Error> {
        let call = call_of(&request);
        let folder = folder_of(&request);
        match self.serve(db, request, now) {
            Ok(r) => Ok(r),
            Err(Refusal::Read(e)) => Err(e),
            Err(Refusal::Request(e)) => Ok(Some(Response::Failed {
                call,
                folder,
                error: CallError::from_status(e.status()),
            })),
        }
    }

    fn check_session<E>(&self, folder: &Guid) -> Result<(), Refusal<E>> {
        if !self.connected {
            return Err(RequestError::NoConnection.into());
        }
        if !self.sessions.contains(folder) {
            return Err(RequestError::NoSession(*folder).into());
        }
        Ok(())
    }

    fn serve<D: UpdateDatabase + ?Sized>(
        &mut self,
        db: &D,
        request: Request,
        now: u64,
    ) -> Result<Option<Response>, Refusal<D::Error>> {
        let read = Refusal::Read;
        match request {
            Request::EstablishConnection => {
                self.connected = true;
                Ok(Some(Response::ConnectionEstablished))
            }
            Request::EstablishSession { folder } => {
                if !self.connected {
                    return Err(RequestError::NoConnection.into());
                }
                if db.version_vector(&folder).map_err(read)?.is_none() {
                    return Err(RequestError::NoSession(folder).into());
                }
                self.sessions.insert(folder);
                Ok(Some(Response::SessionEstablished { folder }))
            }
            Request::RequestVersionVector {
                folder,
                sequence,
                request_type,
                change_type,
                vv_generation,
            } => {
                self.check_session(&folder)?;
                match request_type {
                    VersionRequestType::Normal => {}
                    VersionRequestType::Slow => {
                        if vv_generation != 0 || change_type != ChangeType::All {
                            return Err(RequestError::BadSlowSync.into());
                        }
                    }
                    VersionRequestType::Subordinate => {
                        return Err(RequestError::SubordinateUnsupported.into())
                    }
                }
                let generation = self
                    .generation(db, &folder)
                    .map_err(read)?
                    .ok_or(RequestError::NoSession(folder))?;
                // A newer request for the folder replaces a waiting one.
                self.pending.retain(|p| p.folder != folder);
                match change_type {
                    ChangeType::All => {
                        let vector = db.version_vector(&folder).map_err(read)?.unwrap_or_default();
                        self.ready.push_back(AsyncPollResponse {
                            sequence,
                            status: 0,
                            vv_generation: generation,
                            vector: Some(vector),
                        });
                    }
                    ChangeType::Notify if generation > vv_generation => {
                        self.ready.push_back(notification(sequence, generation));
                    }
                    ChangeType::Notify => self.pending.push(PendingNotify {
                        folder,
                        sequence,
                        generation: vv_generation,
                        deadline: now.saturating_add(self.config.notify_timeout_ms),
                    }),
                }
                self.deliver();
                Ok(Some(Response::VersionVectorRequested { folder, sequence }))
            }
            Request::AsyncPoll => {
                if !self.connected {
                    return Err(RequestError::NoConnection.into());
                }
                if let Some(r) = self.ready.pop_front() {
                    // A registered poll would have taken it already.
                    return Ok(Some(Response::AsyncPoll(r)));
                }
                if self.poll_registered {
                    // §3.2.4.1.6: the old callback completes with a failure.
                    self.out.push_back(Response::AsyncPoll(AsyncPollResponse {
                        sequence: 0,
                        status: super::messages::frs_error::OPERATION_ABORTED,
                        vv_generation: 0,
                        vector: None,
                    }));
                }
                self.poll_registered = true;
                Ok(None)
            }
            Request::RequestUpdates {
                folder,
                credits,
                request_type,
                vv_diff,
                ..
            } => {
                self.check_session(&folder)?;
                if credits > MAX_CREDITS {
                    return Err(RequestError::TooManyCredits(credits).into());
                }
                let page = serve_updates(db, folder, credits as usize, request_type, &vv_diff).map_err(read)?;
                Ok(Some(Response::Updates(page)))
            }
            Request::DownloadFile { folder, update, .. } => {
                self.check_session(&folder)?;
                // Content is the staging layer's; here we only say whether
                // that version is still the one we hold.
                let mut one = VersionVector::new();
                one.insert(update.gvsn);
                let held = db.updates_in(&folder, &one, UpdateRequestType::Live, None, 1).map_err(read)?;
                Ok(Some(if held.is_empty() {
                    Response::DownloadFailed {
                        folder,
                        gvsn: update.gvsn,
                        error: super::messages::DownloadError::Gone,
                    }
                } else {
                    Response::FileDownloaded {
                        folder,
                        gvsn: update.gvsn,
                    }
                }))
            }
            Request::UpdateCancel { folder, gvsn, .. } => {
                self.check_session(&folder)?;
                self.cancelled.entry(folder).or_default().insert(gvsn);
                // §3.2.4.1.8: the GVSN must come back with the next vector
                // request: bump the generation so a waiting notify fires.
                if let Some(g) = self.generations.get_mut(&folder) {
                    g.value += 1;
                }
                // A failed read leaves the notifies waiting for the next
                // tick; the cancel itself is recorded either way.
                let checked = self.check_pending(db);
                self.deliver();
                checked.map_err(read)?;
                Ok(Some(Response::UpdateCancelled { folder, gvsn }))
            }
        }
    }

    /// Our database changed: completes CHANGE_NOTIFY requests whose folder
    /// generation now passes the client's (§3.2.4.1.5).
    /// A failed read keeps the requests waiting and is returned.
    pub fn on_database_changed<D: UpdateDatabase + ?Sized>(&mut self, db: &D) -> Result<(), D::Error> {
        let r = self.check_pending(db);
        self.deliver();
        r
    }

    /// Time passed: completes notify requests past their time-out (with
    /// the client's own generation when ours cannot be read: it asks
    /// again). A failed read is returned after everything due was done.
    pub fn on_timer<D: UpdateDatabase + ?Sized>(&mut self, db: &D, now: u64) -> Result<(), D::Error> {
        let (due, keep): (Vec<_>, Vec<_>) = self.pending.iter().partition(|p| p.deadline <= now);
        self.pending = keep;
        let mut first_error = None;
        for p in due {
            let generation = match self.generation(db, &p.folder) {
                Ok(g) => g.unwrap_or(p.generation),
                Err(e) => {
                    first_error.get_or_insert(e);
                    p.generation
                }
            };
            self.ready.push_back(notification(p.sequence, generation));
        }
        let checked = self.check_pending(db);
        self.deliver();
        match first_error {
            Some(e) => Err(e),
            None => checked,
        }
    }

    /// The earliest time [`Self::on_timer`] has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// The next asynchronous completion to send to the client.
    pub fn poll_response(&mut self) -> Option<Response> {
        self.out.pop_front()
    }

    /// Completes the notifies whose folder moved on; one whose folder
    /// cannot be read stays pending, and the first error is returned.
    fn check_pending<D: UpdateDatabase + ?Sized>(&mut self, db: &D) -> Result<(), D::Error> {
        let pending = std::mem::take(&mut self.pending);
        let mut first_error = None;
        for p in pending {
            match self.generation(db, &p.folder) {
                Ok(Some(g)) if g > p.generation => self.ready.push_back(notification(p.sequence, g)),
                Ok(Some(_)) => self.pending.push(p),
                Ok(None) => self.ready.push_back(AsyncPollResponse {
                    sequence: p.sequence,
                    status: CallError::CONTENTSET_NOT_FOUND,
                    vv_generation: 0,
                    vector: None,
                }),
                Err(e) => {
                    first_error.get_or_insert(e);
                    self.pending.push(p);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn deliver(&mut self) {
        if self.poll_registered {
            if let Some(r) = self.ready.pop_front() {
                self.poll_registered = false;
                self.out.push_back(Response::AsyncPoll(r));
            }
        }
    }
}

/// Why a request got no reply of its own.
enum Refusal<E> {
    /// Refused by the protocol (answered with its status).
    Request(RequestError),
    /// Reading our database failed.
    Read(E),
}

impl<E> From<RequestError> for Refusal<E> {
    fn from(e: RequestError) -> Self {
        Refusal::Request(e)
    }
}

fn notification(sequence: u32, generation: u64) -> AsyncPollResponse {
    AsyncPollResponse {
        sequence,
        status: 0,
        vv_generation: generation,
        vector: None,
    }
}

/// Which call a request is, for its failure response.
pub fn call_of(r: &Request) -> Call {
    match r {
        Request::EstablishConnection => Call::EstablishConnection,
        Request::EstablishSession { .. } => Call::EstablishSession,
        Request::RequestVersionVector { .. } => Call::RequestVersionVector,
        Request::AsyncPoll => Call::AsyncPoll,
        // A refused download is reported like a failed RequestUpdates of
        // the folder; the client restarts the folder session.
        Request::RequestUpdates { .. } | Request::DownloadFile { .. } => Call::RequestUpdates,
        Request::UpdateCancel { .. } => Call::UpdateCancel,
    }
}

fn folder_of(r: &Request) -> Option<Guid> {
    match r {
        Request::EstablishConnection | Request::AsyncPoll => None,
        Request::EstablishSession { folder }
        | Request::RequestVersionVector { folder, .. }
        | Request::RequestUpdates { folder, .. }
        | Request::DownloadFile { folder, .. }
        | Request::UpdateCancel { folder, .. } => Some(*folder),
    }
}

/// The last GVSN a vector covers, `(NIL, 0)` when empty.
fn last_of(vv: &VersionVector) -> Gvsn {
    vv.iter()
        .last()
        .map(|(g, r)| Gvsn::new(g, r.last))
        .unwrap_or_default()
}

/// One RequestUpdates page (§3.2.4.1.4): updates whose GVSN is in `diff`,
/// at most `limit`, in GVSN order, tombstones first for ALL; MORE with the
/// cursor at the last update sent when some are left, DONE with the cursor
/// at the end of `diff` otherwise.
///
/// For ALL, when the tombstones alone overflow, the page holds tombstones
/// only and the cursor is the last one; when they all fit, live updates
/// fill the rest and the cursor is the end of `diff` (every tombstone was
/// considered), so the client's TOMBSTONES phase finds nothing and its LIVE
/// phase, with the full vector, gets every live update (§3.3.4.6.1).
pub fn serve_updates<D: UpdateDatabase + ?Sized>(
    db: &D,
    folder: Guid,
    limit: usize,
    kind: UpdateRequestType,
    diff: &VersionVector,
) -> Result<UpdatesResponse, D::Error> {
    let page = |kind, limit: usize| -> Result<(Vec<_>, bool), D::Error> {
        let mut v = db.updates_in(&folder, diff, kind, None, limit.saturating_add(1))?;
        let more = v.len() > limit;
        v.truncate(limit);
        Ok((v, more))
    };
    let end = last_of(diff);
    let cursor_of =
        |v: &[crate::engine::update::Update]| v.last().map(|u| u.gvsn).unwrap_or_default();
    let (updates, status, cursor) = match kind {
        UpdateRequestType::Tombstones | UpdateRequestType::Live => {
            let (v, more) = page(kind, limit)?;
            if more {
                let c = cursor_of(&v);
                (v, UpdateStatus::More, c)
            } else {
                (v, UpdateStatus::Done, end)
            }
        }
        UpdateRequestType::All => {
            let (mut tombs, more) = page(UpdateRequestType::Tombstones, limit)?;
            if more {
                let c = cursor_of(&tombs);
                (tombs, UpdateStatus::More, c)
            } else {
                let (live, more) = page(UpdateRequestType::Live, limit - tombs.len())?;
                tombs.extend(live);
                let status = if more {
                    UpdateStatus::More
                } else {
                    UpdateStatus::Done
                };
                (tombs, status, end)
            }
        }
    };
    Ok(UpdatesResponse {
        folder,
        updates,
        status,
        cursor,
    })
}
