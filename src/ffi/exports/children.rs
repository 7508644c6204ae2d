//! Called by dfsrd for the restart back-off of its children
//! (`src/c/dfsrd.c`'s table): the policy is [`crate::member::children`].

use crate::member::children::{Backoff, FIRST_DELAY_SECS};

/// A child ended after running `ran_secs` seconds; `backoff` is its row's
/// state (0 before the first restart).
///
/// # Safety
/// `backoff` is NULL or valid for reads and writes for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_child_ended(backoff: *mut u32, ran_secs: i64) {
    // SAFETY: per the contract; Backoff is a transparent u32.
    if let Some(b) = unsafe { backoff.cast::<Backoff>().as_mut() } {
        b.ended(ran_secs);
    }
}

/// The seconds to wait before starting the child again; advances
/// `backoff`. A NULL state waits the shortest time.
///
/// # Safety
/// `backoff` is NULL or valid for reads and writes for the call.
#[no_mangle]
pub unsafe extern "C" fn dfsr_child_restart_delay(backoff: *mut u32) -> u32 {
    // SAFETY: per the contract; Backoff is a transparent u32.
    match unsafe { backoff.cast::<Backoff>().as_mut() } {
        Some(b) => b.next_delay(),
        None => FIRST_DELAY_SECS,
    }
}
