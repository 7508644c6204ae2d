//! When dfsrd starts one of its children (src/c/dfsrd.c's table, e.g. the
//! MS-FRS2 listener) again after it ended: 1 s, doubling up to 60 s while
//! it keeps ending within 10 s of its start, so a child that cannot run
//! does not spin and one that crashed once is back at once.

/// The first back-off, and the one after a child that ran a while.
pub const FIRST_DELAY_SECS: u32 = 1;
/// The longest back-off.
pub const MAX_DELAY_SECS: u32 = 60;
/// A child that ran this long ended on its own, not at start-up.
pub const STABLE_RUN_SECS: i64 = 10;

/// One child's back-off. All-zero (C's static initialiser) is the state
/// before the first restart; dfsrd keeps it as a `uint32_t` in the row.
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: u32,
}

impl Backoff {
    /// The child ended after running `ran_secs`.
    pub fn ended(&mut self, ran_secs: i64) {
        if ran_secs >= STABLE_RUN_SECS {
            self.next = FIRST_DELAY_SECS;
        }
    }

    /// How long to wait before this restart (also after a failed fork);
    /// the next one waits twice as long.
    pub fn next_delay(&mut self) -> u32 {
        let delay = self.next.clamp(FIRST_DELAY_SECS, MAX_DELAY_SECS);
        self.next = delay.saturating_mul(2).min(MAX_DELAY_SECS);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_while_the_child_keeps_failing() {
        let mut b = Backoff::default();
        let delays: Vec<u32> = (0..9)
            .map(|_| {
                let d = b.next_delay();
                b.ended(0);
                d
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_child_that_ran_a_while_is_started_again_at_once() {
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.next_delay();
        }
        b.ended(STABLE_RUN_SECS - 1);
        assert_eq!(b.next_delay(), 16);
        b.ended(STABLE_RUN_SECS);
        assert_eq!(b.next_delay(), FIRST_DELAY_SECS);
    }
}
