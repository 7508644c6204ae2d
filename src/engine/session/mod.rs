//! Partner sessions (MS-FRS2 §3.2 server, §3.3 client), sans-IO in the style
//! of quinn-proto / rustls: no sockets, no threads, no clock. The caller
//! feeds events with the current time — a monotonic clock in
//! **milliseconds**, any origin — and polls for actions.
//!
//! - [`messages`]: engine-level requests and responses per opnum; the wire
//!   layer (`wire::frstrans`) maps them, the engine never sees NDR.
//! - [`client`]: [`PartnerSync`], one connection to one partner with a
//!   session per replicated folder (§3.3.1.1, §3.3.1.2, §3.3.4.6.1).
//! - [`server`]: [`Responder`], answering one client connection (§3.2.4.1).
//! - [`store`]: the database traits both sides use, and
//!   [`MemoryDatabase`].
//! - [`backoff`]: the 1, 2, 4 … 256 s then 300 s retry schedule (§3.1.6).
//!
//! Client folder states (per replicated folder, [`FolderState`]):
//!
//! ```text
//!  Restart --EstablishSession ok--> Idle --(at)--> RequestingVersionVector(NOTIFY)
//!    ^  (CONTENTSET_NOT_FOUND,                     | RequestVersionVector ok
//!    |   back-off)                                 v
//!    |                              WaitingAsyncPoll(NOTIFY)   ("Requesting Version Vector")
//!    |                                             | AsyncPoll: changed (or on_change_notify)
//!    |                                             v
//!    |                              WaitingForCredit  (max_concurrent_syncs)
//!    |                                             | slot free
//!    |                                             v
//!    |                     RequestingVersionVector(ALL) -> WaitingAsyncPoll(ALL) ("Poll Again")
//!    |                                             | AsyncPoll: vector; diff = theirs - ours
//!    |                                             | (empty diff -> Idle)
//!    |                                             v
//!    |          RequestingUpdates(ALL) --MORE--> RequestingUpdates(TOMBSTONES) (prune <= cursor)
//!    |              | DONE                 MORE: prune <= cursor | DONE: diff = full VV
//!    |              |                                            v
//!    |              |                        RequestingUpdates(LIVE) --MORE: prune <= cursor
//!    |              v                                 | DONE
//!    |          Installing (downloads, installs, retries with back-off,
//!    |              |       UpdateCancel on definitive failures)
//!    |              | every update installed / superseded / failed / held
//!    |              v
//!    |          [merge: MergeKnownVector(partner VV - cancelled GVSNs)]
//!    |              v
//!    +--------- Idle (at = now, or back-off when some update failed)
//!
//!  Any state --transport error / failed AsyncPoll completion--> all folders
//!  Restart, connection Disconnected, EstablishConnection after back-off.
//!  EstablishSession -> CONTENTSET_READ_ONLY -> ReadOnly (never retried).
//! ```
//!
//! Pages of one sync are requested only while the updates received and not
//! yet processed stay under `max_queued_updates`; the partner's vector is
//! merged only once every update of the sync was processed (§3.3.4.6).

pub mod backoff;
pub mod client;
pub mod messages;
pub mod server;
pub mod store;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use client::{
    Action, FolderState, PartnerSync, Retry, SessionError, SyncConfig, SyncError, UpdateOutcome,
};
pub use messages::{
    frs_error,
    AsyncPollResponse, Call, CallError, CancelReason, ChangeType, DownloadError, Request, Response,
    StagingPolicy, UpdateRequestType, UpdateStatus, UpdatesResponse, VersionRequestType,
};
pub use server::{RequestError, Responder, ResponderConfig};
pub use store::{MemoryDatabase, UpdateDatabase};
