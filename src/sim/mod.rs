//! A deterministic simulation of one replication group (issue 6, item 7):
//! N members replicating one folder, all in one process, no threads, no
//! real time, driven by a seeded RNG. Members talk through the engine's own
//! session machines ([`PartnerSync`] clients and [`Responder`] servers,
//! MS-FRS2 §3.2, §3.3) over a simulated network with faults, and install
//! what they receive through the engine's rules (§3.3.4.6.2).
//!
//! **Members** ([`member::Member`]): a database (maximal update per UID and
//! version vector), an `Originator`, a materialized tree, ConflictAndDeleted
//! records, updates held aside; per partner a `PartnerSync` and a
//! `Responder`. Received updates go through the engine's installer
//! ([`crate::engine::install::Installer`], the one the member uses); the
//! simulator only carries its plans out on its maps.
//!
//! **Network and faults**: see [`net`]. Crash-restart: the member loses all
//! in-memory state (database, tree, sessions, held updates, messages) and
//! restarts from its [`store::MemberStore`]; partners see their connection
//! break.
//!
//! **Persistence** ([`store`]): every event handler ends with a commit of
//! the member's records (installed updates, vector merges, originator
//! counters, ConflictAndDeleted records, held updates); a crash-restart
//! replays them. Crashes happen between events and, with
//! `mid_install_crash_rate`, in the middle of an `Install` action (after
//! some of its updates were committed, before the vector merge).
//!
//! **Quiescence**: after the operations, faults stop and partitions heal;
//! the simulation runs until no message is in flight, every client
//! session waits for a change notification, held updates were retried and
//! all version vectors are equal (a session may wait for a notification
//! while its partner has news, engine note 2 below), within a step bound.
//!
//! **Checks** ([`Simulation::check`]): every member has the same tree
//! (path → UID, hash, directory), the same version vector and the same
//! maximal update per UID; no held update still wins; and the losers are
//! in ConflictAndDeleted. A *loser* on member M is:
//! - a UID that had been live in M's tree and is not at the end, unless
//!   M's last removal of it was M's own local delete (Deleted,
//!   ParentDeleted or NameConflict record for that UID);
//! - the live version V that the final version F replaced on M, when F
//!   was not made from V (a concurrent edit or move: a record with V's
//!   GVSN). FRS_UPDATE carries no causal history, so members use the
//!   simulator's ground truth ([`member::Causality`]) to decide this.
//!
//! **Engine notes** (found by this simulation):
//! 1. `PartnerSync` keeps `vv_generation` across a disconnect, and a new
//!    `Responder` (server restart) counts generations from 1: a change on
//!    the restarted server waits for the CHANGE_NOTIFY time-out (300 s)
//!    instead of being notified (liveness only).
//! 2. A transport failure reported for `Call::AsyncPoll` makes
//!    `PartnerSync` re-poll on the same connection; the network therefore
//!    reports any broken connection as a failure of EstablishConnection.
//!
//! Fixed in the engine (issue 13), once worked around here: name-conflict
//! tombstones against a later edit (`Decision::ReissueNameConflictTombstone`)
//! and held-aside GVSNs in the merged vector (`UpdateOutcome::Held`).

pub mod member;
pub mod net;
pub mod store;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::engine::ids::{Guid, Uid};
use crate::engine::local_change::LocalChangeError;
use crate::engine::session::{
    Action, Call, CallError, ChangeType, FolderState, PartnerSync, Request, Responder,
    ResponderConfig, Response, SessionError, SyncConfig,
};

use member::{Causality, Ctx, History, Member, Stats};
use net::{Network, Payload};
use crate::engine::rng::SplitMix64 as SimRng;
use store::{FileStore, MemberStore, MemoryStore, StoreError};

/// Why a simulation failed.
#[derive(Debug, Error)]
pub enum SimError {
    /// Members ended with different trees.
    #[error("divergence at {path}: member {a} has {in_a}, member {b} has {in_b}")]
    Divergence {
        /// The first differing path.
        path: String,
        /// One member.
        a: usize,
        /// The other.
        b: usize,
        /// What `a` has there.
        in_a: String,
        /// What `b` has there.
        in_b: String,
    },
    /// Members ended with different version vectors.
    #[error("version vectors of members {a} and {b} differ")]
    VectorDivergence {
        /// One member.
        a: usize,
        /// The other.
        b: usize,
    },
    /// Members hold different maximal updates for a UID.
    #[error("members {a} and {b} hold different updates for {uid} ({path})")]
    UpdateDivergence {
        /// One member.
        a: usize,
        /// The other.
        b: usize,
        /// The UID.
        uid: Uid,
        /// Its path where live, else "-".
        path: String,
    },
    /// A held update still wins over what is installed.
    #[error("member {member} still holds an uninstalled winning update for {uid}")]
    Unresolved {
        /// The member.
        member: usize,
        /// The UID.
        uid: Uid,
    },
    /// A loser is missing from ConflictAndDeleted.
    #[error("member {member}: no ConflictAndDeleted record for {uid}: {what}")]
    MissingRecord {
        /// The member.
        member: usize,
        /// The UID.
        uid: Uid,
        /// What was lost.
        what: String,
    },
    /// The step bound was reached before quiescence.
    #[error("no quiescence after {steps} steps: {detail}")]
    NoQuiescence {
        /// Steps run.
        steps: u64,
        /// What was still busy.
        detail: String,
    },
    /// Bad configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The originator refused a change the simulator made internally.
    #[error(transparent)]
    Local(#[from] LocalChangeError),
    /// A session could not be created.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Which faults are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Lose messages (the connection breaks).
    pub drop: bool,
    /// Random delays.
    pub delay: bool,
    /// Messages of one connection may overtake each other.
    pub reorder: bool,
    /// Groups of members cut off from each other for a while.
    pub partition: bool,
    /// Members crash and restart from their store.
    pub crash: bool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Every fault.
    pub fn all() -> Self {
        Faults {
            drop: true,
            delay: true,
            reorder: true,
            partition: true,
            crash: true,
        }
    }

    /// Parses `none`, `all` or a comma list of `drop,delay,reorder,partition,crash`.
    pub fn parse(s: &str) -> Result<Self, SimError> {
        match s {
            "none" => return Ok(Faults::none()),
            "all" => return Ok(Faults::all()),
            _ => {}
        }
        let mut f = Faults::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "drop" => f.drop = true,
                "delay" => f.delay = true,
                "reorder" => f.reorder = true,
                "partition" => f.partition = true,
                "crash" => f.crash = true,
                other => return Err(SimError::Config(format!("unknown fault {other:?}"))),
            }
        }
        Ok(f)
    }
}

/// Where members persist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// [`MemoryStore`].
    #[default]
    Memory,
    /// [`FileStore`], one file per member in this directory.
    Disk(PathBuf),
}

/// A simulation's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Members (at least 2).
    pub members: usize,
    /// Local operations to generate.
    pub ops: usize,
    /// The seed.
    pub seed: u64,
    /// Faults while operations run.
    pub faults: Faults,
    /// Persistence.
    pub store: StoreKind,
    /// Probability per message of a drop.
    pub drop_rate: f64,
    /// Probability per operation of a crash-restart.
    pub crash_rate: f64,
    /// Probability per installed update of a crash right after it.
    pub mid_install_crash_rate: f64,
    /// Probability per operation that a partition starts.
    pub partition_rate: f64,
    /// Upper bound of events after the operations before giving up.
    pub max_quiesce_steps: u64,
}

impl SimConfig {
    /// Defaults for `members`, `ops`, `seed`, all faults, in memory.
    pub fn new(members: usize, ops: usize, seed: u64) -> Self {
        SimConfig {
            members,
            ops,
            seed,
            faults: Faults::all(),
            store: StoreKind::Memory,
            drop_rate: 0.002,
            crash_rate: 0.002,
            mid_install_crash_rate: 0.0005,
            partition_rate: 0.003,
            max_quiesce_steps: 5_000_000,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The configuration's seed.
    pub seed: u64,
    /// Members.
    pub members: usize,
    /// Counters.
    pub stats: Stats,
    /// Tombstones held at the end (member 0).
    pub tombstones: usize,
    /// Live entries at the end.
    pub final_tree_size: usize,
    /// Events processed.
    pub steps: u64,
    /// Simulated time at the end (ms).
    pub sim_ms: u64,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

impl Summary {
    /// The summary as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.stats;
        serde_json::json!({
            "seed": self.seed,
            "members": self.members,
            "ops_applied": s.ops_applied,
            "ops_refused": s.ops_refused,
            "conflicts": s.conflicts,
            "name_conflicts": s.name_conflicts,
            "deleted_records": s.deleted,
            "parent_deleted": s.parent_deleted,
            "cycle_breaks": s.cycle_breaks,
            "cycles_refused": s.cycles_refused,
            "tombstones": self.tombstones,
            "crashes": s.crashes,
            "partitions": s.partitions,
            "messages": s.messages,
            "dropped": s.dropped,
            "held": s.held,
            "final_tree_size": self.final_tree_size,
            "steps": self.steps,
            "sim_ms": self.sim_ms,
            "wall_ms": self.wall.as_secs_f64() * 1000.0,
        })
    }
}

/// RPC time-out after which a broken connection is reported (ms).
const RPC_TIMEOUT_MS: u64 = 3_000;
/// Longest extra delay of a message (ms).
const MAX_DELAY_MS: u64 = 200;
/// Longest gap between operations (ms).
const MAX_OP_GAP_MS: u64 = 100;

/// The folder's content-set GUID.
pub const FOLDER: Guid = Guid([0xF0; 16]);

/// The member database GUIDs: distinct, fixed bytes so byte-wise order is
/// easy to read.
pub(crate) fn member_guid(i: usize) -> Guid {
    let mut b = [0u8; 16];
    b[0] = 0x10 + i as u8;
    b[15] = i as u8;
    Guid(b)
}

/// The whole simulated group.
pub struct Simulation {
    cfg: SimConfig,
    rng: SimRng,
    now: u64,
    members: Vec<Member>,
    stores: Vec<Box<dyn MemberStore>>,
    /// `clients[c][s]`: member c's session to partner s.
    clients: Vec<Vec<Option<PartnerSync>>>,
    /// `responders[s][c]`: member s serving member c.
    responders: Vec<Vec<Option<Responder>>>,
    net: Network,
    causality: Causality,
    history: Vec<History>,
    stats: Stats,
    faults_on: bool,
    /// Side of each member and end time of the current partition.
    partition: Option<(Vec<bool>, u64)>,
    dirty: Vec<bool>,
    steps: u64,
    ops_done: usize,
    next_op_at: u64,
}

fn sync_config() -> SyncConfig {
    SyncConfig {
        max_credits: 32,
        ..SyncConfig::default()
    }
}

fn hash_from(rng: &mut SimRng) -> [u8; 20] {
    let mut h = [0u8; 20];
    for chunk in h.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    h
}

impl Simulation {
    /// Sets up the group: empty folders, sessions starting to connect.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        let n = cfg.members;
        if !(2..=64).contains(&n) {
            return Err(SimError::Config("members must be 2..=64".into()));
        }
        let mut rng = SimRng::new(cfg.seed);
        let mut members = Vec::new();
        let mut stores: Vec<Box<dyn MemberStore>> = Vec::new();
        for i in 0..n {
            let skew = rng.below(2 * crate::engine::update::TICKS_PER_SECOND);
            members.push(Member::new(i, member_guid(i), FOLDER, skew));
            stores.push(match &cfg.store {
                StoreKind::Memory => Box::new(MemoryStore::new()),
                StoreKind::Disk(dir) => {
                    Box::new(FileStore::create(&dir.join(format!("member{i}.log")))?)
                }
            });
        }
        let mut clients = Vec::new();
        let mut responders = Vec::new();
        for c in 0..n {
            let mut row = Vec::new();
            let mut rrow = Vec::new();
            for s in 0..n {
                row.push(if c == s {
                    None
                } else {
                    Some(PartnerSync::new(sync_config(), [FOLDER], 0)?)
                });
                rrow.push((c != s).then(|| Responder::new(ResponderConfig::default())));
            }
            clients.push(row);
            responders.push(rrow);
        }
        let mut sim = Simulation {
            faults_on: true,
            rng,
            now: 0,
            members,
            stores,
            clients,
            responders,
            net: Network::new(n),
            causality: Causality::default(),
            history: vec![History::new(); n],
            stats: Stats::default(),
            partition: None,
            dirty: vec![false; n],
            steps: 0,
            ops_done: 0,
            next_op_at: 1,
            cfg,
        };
        for c in 0..n {
            for s in 0..n {
                sim.drive_client(c, s)?;
            }
        }
        Ok(sim)
    }

    /// Member `i` (read-only).
    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Member `i`, to inject faults in tests (e.g. corrupt its tree).
    pub fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true (at least two members).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Simulated time (ms).
    pub fn now(&self) -> u64 {
        self.now
    }

    fn ctx(&mut self, m: usize) -> (&mut Member, Ctx<'_>) {
        (
            &mut self.members[m],
            Ctx {
                now_ms: self.now,
                causality: &mut self.causality,
                history: &mut self.history[m],
                stats: &mut self.stats,
            },
        )
    }

    fn commit(&mut self, m: usize) -> Result<(), SimError> {
        let batch = self.members[m].take_batch();
        if !batch.is_empty() {
            self.dirty[m] = true;
            self.stores[m].commit(&batch)?;
        }
        Ok(())
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        match &self.partition {
            Some((side, _)) => side[a] != side[b],
            _ => false,
        }
    }

    fn send(&mut self, c: usize, s: usize, payload: Payload) {
        self.stats.messages += 1;
        if self.net.link(c, s).broken {
            self.stats.dropped += 1;
            return;
        }
        let f = self.cfg.faults;
        let lost = self.separated(c, s)
            || (self.faults_on && f.drop && self.rng.chance(self.cfg.drop_rate));
        if lost {
            self.stats.dropped += 1;
            self.net.break_link(c, s, self.now + RPC_TIMEOUT_MS);
            return;
        }
        let extra = if self.faults_on && f.delay {
            self.rng.below(MAX_DELAY_MS + 1)
        } else {
            0
        };
        let fifo = !(self.faults_on && f.reorder);
        self.net.push(c, s, self.now + 1 + extra, fifo, payload);
    }

    /// Runs client `c`'s actions towards partner `s` until none is left.
    fn drive_client(&mut self, c: usize, s: usize) -> Result<(), SimError> {
        loop {
            let Some(client) = self.clients[c][s].as_mut() else {
                return Ok(());
            };
            let Some(action) = client.poll_action() else {
                return Ok(());
            };
            match action {
                Action::Send(req) => self.send(c, s, Payload::ToServer(req)),
                Action::Install(folder, updates) => {
                    for u in updates {
                        let gvsn = u.gvsn;
                        let outcome = {
                            let (m, mut ctx) = self.ctx(c);
                            m.install_received(u, &mut ctx)?
                        };
                        self.commit(c)?;
                        if self.faults_on
                            && self.cfg.faults.crash
                            && self.rng.chance(self.cfg.mid_install_crash_rate)
                        {
                            return self.crash(c);
                        }
                        let now = self.now;
                        if let Some(cl) = self.clients[c][s].as_mut() {
                            if cl
                                .on_update_processed(
                                    folder,
                                    gvsn,
                                    outcome,
                                    now,
                                    &self.members[c].db,
                                )
                                .is_err()
                            {
                                self.stats.stray += 1;
                            }
                        }
                    }
                }
                Action::Hold(_, held) => {
                    let (m, mut ctx) = self.ctx(c);
                    m.on_held(held, &mut ctx)?;
                    self.commit(c)?;
                }
                Action::CycleBreaks(_, breaks) => {
                    let (m, mut ctx) = self.ctx(c);
                    m.on_cycle_breaks(breaks, &mut ctx)?;
                    self.commit(c)?;
                }
                Action::MergeKnownVector(_, vv) => {
                    self.members[c].merge(vv);
                    self.commit(c)?;
                }
                Action::Disconnect => self.net.reset_link(c, s, self.now),
                Action::Schedule(_) => {}
            }
        }
    }

    /// Sends what responder `s`→`c` completed asynchronously.
    fn drain_responder(&mut self, s: usize, c: usize) {
        loop {
            let Some(r) = self.responders[s][c]
                .as_mut()
                .and_then(Responder::poll_response)
            else {
                return;
            };
            self.send(c, s, Payload::ToClient(r));
        }
    }

    /// Tells member `m`'s responders that its database changed.
    fn flush_dirty(&mut self) {
        for m in 0..self.members.len() {
            if !std::mem::take(&mut self.dirty[m]) {
                continue;
            }
            for c in 0..self.members.len() {
                if let Some(r) = self.responders[m][c].as_mut() {
                    infallible(r.on_database_changed(&self.members[m].db));
                }
                self.drain_responder(m, c);
            }
        }
    }

    fn deliver(&mut self, msg: net::InFlight) -> Result<(), SimError> {
        let (c, s) = (msg.client, msg.server);
        let link = self.net.link(c, s);
        if msg.epoch != link.epoch {
            return Ok(());
        }
        match msg.payload {
            Payload::Broken => {
                let now = self.now;

                if let Some(cl) = self.clients[c][s].as_mut() {
                    let failed = Response::Failed {
                        call: Call::EstablishConnection,
                        folder: None,
                        error: CallError::Transport,
                    };
                    if cl
                        .on_response(failed, now, &self.members[c].db)
                        .is_err()
                    {
                        self.stats.stray += 1;
                    }
                }
                self.drive_client(c, s)?;
                // A client that was already disconnected emits no
                // Disconnect: the broken connection is gone all the same.
                if self.net.link(c, s) == link {
                    self.net.reset_link(c, s, self.now);
                }
                Ok(())
            }
            _ if link.broken => Ok(()),
            _ if self.separated(c, s) => {
                self.stats.dropped += 1;
                self.net.break_link(c, s, self.now + RPC_TIMEOUT_MS);
                Ok(())
            }
            Payload::ToServer(req) => {
                if matches!(req, Request::EstablishConnection) {
                    // A new connection gets a new server-side state.
                    self.responders[s][c] = Some(Responder::new(ResponderConfig::default()));
                }
                let now = self.now;
                let reply = match self.responders[s][c].as_mut() {
                    Some(r) => infallible(r.handle(&self.members[s].db, req, now)),
                    None => None,
                };
                if let Some(r) = reply {
                    self.send(c, s, Payload::ToClient(r));
                }
                self.drain_responder(s, c);
                Ok(())
            }
            Payload::ToClient(resp) => {
                let now = self.now;
                if let Some(cl) = self.clients[c][s].as_mut() {
                    if cl
                        .on_response(resp, now, &self.members[c].db)
                        .is_err()
                    {
                        self.stats.stray += 1;
                    }
                }
                self.drive_client(c, s)
            }
        }
    }

    /// Member `m` crashes and restarts from its store.
    pub fn crash(&mut self, m: usize) -> Result<(), SimError> {
        self.stats.crashes += 1;
        let torn = self.rng.chance(0.5);
        self.stores[m].crash(torn)?;
        let records = self.stores[m].load()?;
        let old = &self.members[m];
        let (skew, guid) = (old.skew, old.originator.db());
        self.members[m] = Member::restore(m, guid, FOLDER, skew, records);
        let n = self.members.len();
        for p in 0..n {
            if p == m {
                continue;
            }
            self.clients[m][p] = Some(PartnerSync::new(sync_config(), [FOLDER], self.now)?);
            self.net.reset_link(m, p, self.now);
            self.responders[m][p] = Some(Responder::new(ResponderConfig::default()));
            self.net.break_link(p, m, self.now + RPC_TIMEOUT_MS);
        }
        for p in 0..n {
            self.drive_client(m, p)?;
        }
        Ok(())
    }

    fn next_event(&self, ops_phase: bool) -> Option<u64> {
        let mut t = self.net.next_at();
        let mut consider = |x: Option<u64>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        if ops_phase {
            consider(Some(self.next_op_at));
        }
        if let Some((_, end)) = &self.partition {
            consider(Some(*end));
        }
        for row in &self.clients {
            for cl in row.iter().flatten() {
                consider(cl.poll_timeout());
            }
        }
        for row in &self.responders {
            for r in row.iter().flatten() {
                consider(r.poll_timeout());
            }
        }
        t
    }

    /// One event (or a batch due at the same time); false when nothing is
    /// left to happen.
    fn step(&mut self, ops_phase: bool) -> Result<bool, SimError> {
        let Some(t) = self.next_event(ops_phase) else {
            return Ok(false);
        };
        self.now = self.now.max(t);
        self.steps += 1;
        if let Some((_, end)) = &self.partition {
            if *end <= self.now {
                self.partition = None;
            }
        }
        if ops_phase && self.next_op_at <= self.now {
            self.random_op()?;
            self.ops_done += 1;
            self.next_op_at = self.now + self.rng.range(1, MAX_OP_GAP_MS);
        }
        while let Some(msg) = self.net.pop_due(self.now) {
            self.deliver(msg)?;
        }
        let n = self.members.len();
        let now = self.now;
        for c in 0..n {
            for s in 0..n {
                let due = self.clients[c][s]
                    .as_ref()
                    .and_then(PartnerSync::poll_timeout)
                    .is_some_and(|at| at <= now);
                if due {
                    if let Some(cl) = self.clients[c][s].as_mut() {
                        infallible(cl.on_timer(now, &self.members[c].db));
                    }
                    self.drive_client(c, s)?;
                }
                let rdue = self.responders[s][c]
                    .as_ref()
                    .and_then(Responder::poll_timeout)
                    .is_some_and(|at| at <= now);
                if rdue {
                    if let Some(r) = self.responders[s][c].as_mut() {
                        infallible(r.on_timer(&self.members[s].db, now));
                    }
                    self.drain_responder(s, c);
                }
            }
        }
        self.flush_dirty();
        Ok(true)
    }

    /// Runs `f` on member `m` (a scripted local change) and commits.
    pub fn local<R>(
        &mut self,
        m: usize,
        f: impl FnOnce(&mut Member, &mut Ctx<'_>) -> R,
    ) -> Result<R, SimError> {
        let r = {
            let (mem, mut ctx) = self.ctx(m);
            f(mem, &mut ctx)
        };
        self.commit(m)?;
        self.flush_dirty();
        Ok(r)
    }

    /// Processes events for `ms` of simulated time (no operations).
    pub fn run_for(&mut self, ms: u64) -> Result<(), SimError> {
        let end = self.now + ms;
        while let Some(t) = self.next_event(false) {
            if t > end {
                break;
            }
            self.step(false)?;
        }
        self.now = self.now.max(end);
        Ok(())
    }

    /// Processes one event; false when nothing is scheduled.
    pub fn step_once(&mut self) -> Result<bool, SimError> {
        self.step(false)
    }

    /// Cuts the members with `side[i] == true` off from the others for
    /// `ms` of simulated time.
    pub fn partition(&mut self, side: Vec<bool>, ms: u64) {
        self.stats.partitions += 1;
        self.partition = Some((side, self.now + ms));
    }

    /// Runs until `ops` operations were made.
    pub fn run_ops(&mut self) -> Result<(), SimError> {
        while self.ops_done < self.cfg.ops {
            self.step(true)?;
        }
        Ok(())
    }

    /// No message in flight, every client session waiting for a change
    /// notification, and no member lacking anything a partner has (a
    /// session can wait for a notification while its partner has news: see
    /// the vvGeneration note in the module documentation).
    fn quiescent(&self) -> bool {
        self.net.in_flight() == 0
            && self.dirty.iter().all(|d| !d)
            && self.clients.iter().flatten().flatten().all(|cl| {
                cl.state(&FOLDER) == Some(FolderState::WaitingAsyncPoll(ChangeType::Notify))
            })
            && self.vectors_settled()
    }

    fn vectors_settled(&self) -> bool {
        let v: Vec<_> = self.members.iter().map(|m| m.db.vector()).collect();
        v.iter().all(|x| x == &v[0])
    }

    fn busy_detail(&self) -> String {
        let mut out = Vec::new();
        for (c, row) in self.clients.iter().enumerate() {
            for (s, cl) in row.iter().enumerate() {
                if let Some(cl) = cl {
                    let st = cl.state(&FOLDER);
                    if st != Some(FolderState::WaitingAsyncPoll(ChangeType::Notify)) {
                        out.push(format!(
                            "{c}->{s}: {st:?} ({} outstanding)",
                            cl.outstanding(&FOLDER)
                        ));
                    }
                }
            }
        }
        let msgs: Vec<String> = self
            .net
            .messages()
            .take(8)
            .map(|m| {
                let what = match &m.payload {
                    Payload::ToServer(r) => format!("{r:?}"),
                    Payload::ToClient(r) => format!("{r:?}"),
                    Payload::Broken => "broken".to_string(),
                };
                let what: String = what.chars().take(80).collect();
                format!(
                    "[{}->{} at {} e{}: {what}]",
                    m.client, m.server, m.at, m.epoch
                )
            })
            .collect();
        format!(
            "now {} ms, {} in flight {}; {}",
            self.now,
            self.net.in_flight(),
            msgs.join(" "),
            out.join(", ")
        )
    }

    /// Stops faults, heals partitions and runs until quiescence.
    pub fn quiesce(&mut self) -> Result<(), SimError> {
        self.faults_on = false;
        self.partition = None;
        let start = self.steps;
        loop {
            if self.quiescent() {
                let mut changed = false;
                for m in 0..self.members.len() {
                    let (mem, mut ctx) = self.ctx(m);
                    changed |= mem.retry_held(&mut ctx)?;
                    self.commit(m)?;
                }
                self.flush_dirty();
                if !changed && self.quiescent() {
                    return Ok(());
                }
            }
            if self.steps - start > self.cfg.max_quiesce_steps {
                return Err(SimError::NoQuiescence {
                    steps: self.steps - start,
                    detail: self.busy_detail(),
                });
            }
            if !self.step(false)? {
                return Err(SimError::NoQuiescence {
                    steps: self.steps - start,
                    detail: format!("nothing scheduled; {}", self.busy_detail()),
                });
            }
        }
    }

    /// The convergence and ConflictAndDeleted checks (see the module
    /// documentation); the first failure is returned.
    pub fn check(&self) -> Result<(), SimError> {
        let n = self.members.len();
        let trees: Vec<_> = self.members.iter().map(Member::paths).collect();
        let show = |e: Option<&(Uid, [u8; 20], bool)>| match e {
            None => "nothing".to_string(),
            Some((u, h, d)) => format!(
                "{} {u} hash {:02x}{:02x}{:02x}{:02x}",
                if *d { "dir" } else { "file" },
                h[0],
                h[1],
                h[2],
                h[3]
            ),
        };
        for b in 1..n {
            let keys: BTreeSet<&String> = trees[0].keys().chain(trees[b].keys()).collect();
            for k in keys {
                let (x, y) = (trees[0].get(k), trees[b].get(k));
                if x != y {
                    return Err(SimError::Divergence {
                        path: k.clone(),
                        a: 0,
                        b,
                        in_a: show(x),
                        in_b: show(y),
                    });
                }
            }
        }
        let v0 = self.members[0].db.vector();
        for b in 1..n {
            if self.members[b].db.vector() != v0 {
                return Err(SimError::VectorDivergence { a: 0, b });
            }
        }
        let winners: BTreeMap<Uid, _> = self.members[0]
            .db
            .updates()
            .map(|u| (u.uid, u.gvsn))
            .collect();
        for b in 1..n {
            let other: BTreeMap<Uid, _> = self.members[b]
                .db
                .updates()
                .map(|u| (u.uid, u.gvsn))
                .collect();
            if other != winners {
                let uid = winners
                    .iter()
                    .find(|(u, g)| other.get(u) != Some(g))
                    .map(|(u, _)| *u)
                    .or_else(|| other.keys().find(|u| !winners.contains_key(u)).copied())
                    .unwrap_or_default();
                return Err(SimError::UpdateDivergence {
                    a: 0,
                    b,
                    uid,
                    path: self.members[0].path_of(&uid).unwrap_or_else(|| "-".into()),
                });
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            if let Some(u) = m.unresolved().first() {
                return Err(SimError::Unresolved {
                    member: i,
                    uid: u.uid,
                });
            }
        }
        self.check_losers()
    }

    fn check_losers(&self) -> Result<(), SimError> {
        for (i, m) in self.members.iter().enumerate() {
            let recorded: BTreeSet<(Uid, crate::engine::ids::Gvsn)> =
                m.conflicts.iter().map(|r| (r.uid, r.gvsn)).collect();
            let by_uid: BTreeSet<Uid> = m.conflicts.iter().map(|r| r.uid).collect();
            for (uid, h) in &self.history[i] {
                let Some(fin) = m.db.get(uid) else { continue };
                if !fin.present {
                    if h.ever_live && !h.removed_locally && !by_uid.contains(uid) {
                        return Err(SimError::MissingRecord {
                            member: i,
                            uid: *uid,
                            what: "was live here and was deleted by a partner or a conflict".into(),
                        });
                    }
                    continue;
                }
                if let Some(p) = h.prev_live {
                    if !self.causality.descends(fin.gvsn, p) && !recorded.contains(&(*uid, p)) {
                        return Err(SimError::MissingRecord {
                            member: i,
                            uid: *uid,
                            what: format!("version {p} lost to concurrent {}", fin.gvsn),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Summary of the run so far.
    pub fn summary(&self, wall: Duration) -> Summary {
        let m0 = &self.members[0];
        Summary {
            seed: self.cfg.seed,
            members: self.members.len(),
            stats: self.stats,
            tombstones: m0.db.updates().filter(|u| !u.present).count(),
            final_tree_size: m0.tree.values().filter(|n| n.present).count(),
            steps: self.steps,
            sim_ms: self.now,
            wall,
        }
    }

    // ---- operations ---------------------------------------------------------

    fn random_name(&mut self, dir: bool) -> String {
        let n = self.rng.below(if dir { 8 } else { 24 });
        let c = match (dir, self.rng.chance(0.2)) {
            (true, false) => 'd',
            (true, true) => 'D',
            (false, false) => 'f',
            (false, true) => 'F',
        };
        format!("{c}{n}")
    }

    fn random_dir(&mut self, m: usize) -> Uid {
        let mut dirs = self.members[m].live(Some(true));
        dirs.push(Uid::root_of(FOLDER));
        *self.rng.pick(&dirs).unwrap_or(&Uid::root_of(FOLDER))
    }

    fn other_member(&mut self, m: usize) -> usize {
        let n = self.members.len();
        (m + 1 + self.rng.index(n - 1)) % n
    }

    fn outcome<T>(&mut self, r: Result<T, LocalChangeError>) -> Result<(), SimError> {
        match r {
            Ok(_) => Ok(()),
            Err(LocalChangeError::MoveIntoDescendant { .. }) => {
                self.stats.cycles_refused += 1;
                self.stats.ops_refused += 1;
                Ok(())
            }
            Err(
                LocalChangeError::NameTaken { .. }
                | LocalChangeError::Deleted(_)
                | LocalChangeError::UnknownUid(_)
                | LocalChangeError::ParentDeleted(_)
                | LocalChangeError::ParentUnknown(_)
                | LocalChangeError::ParentNotDirectory(_),
            ) => {
                self.stats.ops_refused += 1;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn op_create(&mut self, m: usize, dir: bool) -> Result<(), SimError> {
        let parent = self.random_dir(m);
        let name = self.random_name(dir);
        let hash = hash_from(&mut self.rng);
        let r = {
            let (mem, mut ctx) = self.ctx(m);
            mem.local_create(parent, &name, dir, hash, &mut ctx)
        };
        self.outcome(r)
    }

    fn op_edit(&mut self, m: usize, uid: Uid) -> Result<(), SimError> {
        let hash = hash_from(&mut self.rng);
        let r = {
            let (mem, mut ctx) = self.ctx(m);
            mem.local_modify(uid, hash, &mut ctx)
        };
        self.outcome(r)
    }

    fn op_move(&mut self, m: usize, uid: Uid, parent: Uid, name: &str) -> Result<(), SimError> {
        let r = {
            let (mem, mut ctx) = self.ctx(m);
            mem.local_move(uid, parent, name, &mut ctx)
        };
        self.outcome(r)
    }

    fn op_delete(&mut self, m: usize, uid: Uid) -> Result<(), SimError> {
        let r = {
            let (mem, mut ctx) = self.ctx(m);
            mem.local_delete(uid, &mut ctx)
        };
        match r {
            Ok(_) => Ok(()),
            Err(SimError::Local(e)) => self.outcome::<()>(Err(e)),
            Err(e) => Err(e),
        }
    }

    /// One random operation (or a scripted concurrent pair) at random
    /// members, then commits.
    fn random_op(&mut self) -> Result<(), SimError> {
        let n = self.members.len();
        let m = self.rng.index(n);
        let kind = self.rng.below(100);
        let mut touched = vec![m];
        match kind {
            0..=24 => self.op_create(m, false)?,
            25..=32 => self.op_create(m, true)?,
            33..=50 => {
                let files = self.members[m].live(Some(false));
                match self.rng.pick(&files).copied() {
                    Some(f) => self.op_edit(m, f)?,
                    None => self.op_create(m, false)?,
                }
            }
            51..=56 => {
                let all = self.members[m].live(None);
                if let Some(u) = self.rng.pick(&all).copied() {
                    let dir = self.members[m].tree.get(&u).is_some_and(|x| x.is_dir);
                    let name = self.random_name(dir);
                    let parent = self.members[m]
                        .tree
                        .get(&u)
                        .map(|x| x.parent)
                        .unwrap_or_default();
                    self.op_move(m, u, parent, &name)?;
                }
            }
            57..=62 => {
                // Move anywhere, including under its own descendants
                // (refused by the originator, §3.3.4.6.2 cycle at the source).
                let all = self.members[m].live(None);
                if let Some(u) = self.rng.pick(&all).copied() {
                    let parent = self.random_dir(m);
                    let name = self.members[m]
                        .tree
                        .get(&u)
                        .map(|x| x.name.clone())
                        .unwrap_or_default();
                    self.op_move(m, u, parent, &name)?;
                }
            }
            63..=67 => {
                let all = self.members[m].live(None);
                if let Some(u) = self.rng.pick(&all).copied() {
                    self.op_delete(m, u)?;
                }
            }
            68..=77 => {
                // Concurrent edits of one file at two members.
                let o = self.other_member(m);
                touched.push(o);
                let files: Vec<Uid> = self.members[m]
                    .live(Some(false))
                    .into_iter()
                    .filter(|u| self.members[o].is_live(u))
                    .collect();
                if let Some(f) = self.rng.pick(&files).copied() {
                    self.op_edit(m, f)?;
                    self.op_edit(o, f)?;
                }
            }
            78..=85 => {
                // Two members create the same name in one directory.
                let o = self.other_member(m);
                touched.push(o);
                let root = Uid::root_of(FOLDER);
                let mut dirs: Vec<Uid> = self.members[m]
                    .live(Some(true))
                    .into_iter()
                    .filter(|u| self.members[o].is_live(u))
                    .collect();
                dirs.push(root);
                let parent = self.rng.pick(&dirs).copied().unwrap_or(root);
                let dir = self.rng.chance(0.3);
                let name = self.random_name(dir);
                let (h1, h2) = (hash_from(&mut self.rng), hash_from(&mut self.rng));
                for (who, h) in [(m, h1), (o, h2)] {
                    let r = {
                        let (mem, mut ctx) = self.ctx(who);
                        mem.local_create(parent, &name, dir, h, &mut ctx)
                    };
                    self.outcome(r)?;
                }
            }
            86..=90 => {
                // A directory deleted at one member while a child is
                // edited at another.
                let o = self.other_member(m);
                touched.push(o);
                let cands: Vec<(Uid, Uid)> = self.members[m]
                    .live(Some(false))
                    .into_iter()
                    .filter(|u| self.members[o].is_live(u))
                    .filter_map(|u| {
                        let p = self.members[m].tree.get(&u)?.parent;
                        (!p.is_root() && self.members[m].is_live(&p)).then_some((p, u))
                    })
                    .collect();
                if let Some((d, f)) = self.rng.pick(&cands).copied() {
                    self.op_delete(m, d)?;
                    self.op_edit(o, f)?;
                }
            }
            _ => {
                // Crossing moves: X under Y at one member, Y under X at
                // another (a cycle only the receivers can see).
                let o = self.other_member(m);
                touched.push(o);
                let dirs: Vec<Uid> = self.members[m]
                    .live(Some(true))
                    .into_iter()
                    .filter(|u| self.members[o].is_live(u))
                    .collect();
                if dirs.len() >= 2 {
                    let x = dirs[self.rng.index(dirs.len())];
                    let y = dirs[self.rng.index(dirs.len())];
                    if x != y {
                        let nx = self.members[m]
                            .tree
                            .get(&x)
                            .map(|t| t.name.clone())
                            .unwrap_or_default();
                        let ny = self.members[o]
                            .tree
                            .get(&y)
                            .map(|t| t.name.clone())
                            .unwrap_or_default();
                        self.op_move(m, x, y, &nx)?;
                        self.op_move(o, y, x, &ny)?;
                    }
                }
            }
        }
        for t in touched {
            self.commit(t)?;
        }
        let f = self.cfg.faults;
        if f.crash && self.rng.chance(self.cfg.crash_rate) {
            let victim = self.rng.index(n);
            self.crash(victim)?;
        }
        if f.partition && self.partition.is_none() && self.rng.chance(self.cfg.partition_rate) {
            let mut side: Vec<bool> = (0..n).map(|_| self.rng.chance(0.5)).collect();
            if side.iter().all(|s| *s) || side.iter().all(|s| !*s) {
                side[self.rng.index(n)] ^= true;
            }
            let end = self.now + self.rng.range(5_000, 30_000);
            self.partition = Some((side, end));
            self.stats.partitions += 1;
        }
        Ok(())
    }
}

/// Runs a whole simulation: operations, quiescence, checks.
pub fn run(cfg: SimConfig) -> Result<Summary, SimError> {
    let start = Instant::now();
    let mut sim = Simulation::new(cfg)?;
    sim.run_ops()?;
    sim.quiesce()?;
    sim.check()?;
    Ok(sim.summary(start.elapsed()))
}

/// The value of what cannot fail: the simulation's reads are memory.
fn infallible<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}
