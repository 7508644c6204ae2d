//! The simulated network between members: one link per (client member,
//! server member) pair carrying that connection's requests and responses.
//!
//! Fault model:
//! - **delay**: each message takes 1 ms plus, with the fault on, up to
//!   200 ms more;
//! - **reorder**: without it a link is FIFO; with it later messages may
//!   overtake earlier ones;
//! - **drop** and **partition**: a lost message breaks the connection (as
//!   a reset TCP connection does). Everything else in flight on it is lost
//!   and, after the RPC time-out, the client session is told the
//!   connection failed (a transport error), which takes it to Disconnected
//!   and a reconnect after back-off (§3.3.1.1). `PartnerSync` has no
//!   request time-out of its own, so this is how a drop reaches it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::engine::session::{Request, Response};

/// What travels on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Client → server.
    ToServer(Request),
    /// Server → client.
    ToClient(Response),
    /// The connection broke: tell the client (after the time-out).
    Broken,
}

/// A message in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Delivery time (ms).
    pub at: u64,
    /// Tie-breaker: send order.
    pub seq: u64,
    /// The client member of the connection.
    pub client: usize,
    /// The server member.
    pub server: usize,
    /// The connection epoch it was sent on.
    pub epoch: u64,
    /// The content.
    pub payload: Payload,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// State of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Bumped when the connection is torn down; older messages are lost.
    pub epoch: u64,
    /// Broken and not yet torn down by the client.
    pub broken: bool,
    /// Last delivery time scheduled (FIFO links).
    pub last_at: u64,
}

/// Messages in flight and the links' state.
#[derive(Debug, Clone)]
pub struct Network {
    queue: BinaryHeap<Reverse<InFlight>>,
    links: Vec<Vec<Link>>,
    seq: u64,
}

impl Network {
    /// `n` members, every pair linked both ways.
    pub fn new(n: usize) -> Self {
        Network {
            queue: BinaryHeap::new(),
            links: vec![vec![Link::default(); n]; n],
            seq: 0,
        }
    }

    /// The link of client `c` to server `s`.
    pub fn link(&self, c: usize, s: usize) -> Link {
        self.links[c][s]
    }

    /// Mutable link state.
    pub fn link_mut(&mut self, c: usize, s: usize) -> &mut Link {
        &mut self.links[c][s]
    }

    /// Queues a message for delivery at `at` (FIFO links never deliver
    /// before an earlier message of the same link).
    pub fn push(&mut self, c: usize, s: usize, at: u64, fifo: bool, payload: Payload) {
        let link = &mut self.links[c][s];
        let at = if fifo {
            let at = at.max(link.last_at);
            link.last_at = at;
            at
        } else {
            at
        };
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at,
            seq: self.seq,
            client: c,
            server: s,
            epoch: link.epoch,
            payload,
        }));
    }

    /// The connection broke: mark it and schedule the client's transport
    /// error at `at`. No-op when already broken.
    pub fn break_link(&mut self, c: usize, s: usize, at: u64) {
        if self.links[c][s].broken {
            return;
        }
        self.links[c][s].broken = true;
        self.push(c, s, at, false, Payload::Broken);
    }

    /// The client tore the connection down (or restarted): new epoch.
    pub fn reset_link(&mut self, c: usize, s: usize, now: u64) {
        let l = &mut self.links[c][s];
        l.epoch += 1;
        l.broken = false;
        l.last_at = now;
    }

    /// When the next message is due.
    pub fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|m| m.0.at)
    }

    /// The next message if due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<InFlight> {
        if self.next_at()? <= now {
            self.queue.pop().map(|m| m.0)
        } else {
            None
        }
    }

    /// The messages in flight, in no particular order.
    pub fn messages(&self) -> impl Iterator<Item = &InFlight> {
        self.queue.iter().map(|m| &m.0)
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
