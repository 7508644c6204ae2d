//! The retry schedule of DFS-R (MS-FRS2 §3.1.6 and note `<18>`): 1, 2, 4,
//! 8, 16, 32, 64, 128 and 256 seconds, then every 300 seconds.

/// Milliseconds per second (session time is in milliseconds).
pub const MS_PER_SECOND: u64 = 1000;

/// The delay after the last doubling: 300 s (§3.1.6).
pub const MAX_DELAY_MS: u64 = 300 * MS_PER_SECOND;

/// Number of doubling steps before the 300 s plateau (1 s … 256 s).
const DOUBLINGS: u32 = 9;

/// The delay before retry number `attempt` (0-based), in milliseconds:
/// `2^attempt` seconds for attempts 0..=8, then 300 s.
pub fn delay_ms(attempt: u32) -> u64 {
    if attempt < DOUBLINGS {
        (1u64 << attempt) * MS_PER_SECOND
    } else {
        MAX_DELAY_MS
    }
}

/// A retry counter following [`delay_ms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    /// A fresh schedule (next delay 1 s).
    pub const fn new() -> Self {
        Backoff { attempts: 0 }
    }

    /// Failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Records a failure and returns when to retry: `now + delay`.
    pub fn next_retry(&mut self, now: u64) -> u64 {
        let d = delay_ms(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        now.saturating_add(d)
    }

    /// Back to the start after a success.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_1_2_4_to_256_then_300() {
        let mut b = Backoff::new();
        let mut now = 0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let at = b.next_retry(now);
            delays.push((at - now) / MS_PER_SECOND);
            now = at;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        b.reset();
        assert_eq!(b.next_retry(5), 1005);
        assert_eq!(delay_ms(u32::MAX), MAX_DELAY_MS);
    }
}
