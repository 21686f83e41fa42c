//! The waiter that `wait` and `as_completed` register on many futures at once (CPython's `_Waiter`).
//!
//! A future keeps a list of `(waiter, token)` pairs and, when it becomes done,
//! pushes its token into each waiter and wakes the one thread blocked on it.
//! So one thread can wait for the first of many futures without polling.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::Future;

/// One blocked `wait` or `as_completed`: the tokens of the futures that became
/// done since it registered, in completion order.
#[derive(Default)]
pub(crate) struct Waiter {
    pub(crate) state: Mutex<WaiterState>,
    cond: Condvar,
}

/// What a [`Waiter`] learned, guarded by its mutex.
#[derive(Default)]
pub(crate) struct WaiterState {
    /// Tokens of the futures that became done, in the order they did.
    pub(crate) completed: Vec<usize>,
    /// Whether one of them finished with an error (cancelled is not an error,
    /// as in CPython's `FIRST_EXCEPTION`).
    pub(crate) failed: bool,
}

impl Waiter {
    /// Called by a future that became done, after it released its own lock.
    pub(crate) fn notify(&self, token: usize, failed: bool) {
        let mut state = self.state.lock();
        state.completed.push(token);
        state.failed |= failed;
        drop(state);
        self.cond.notify_one();
    }

    /// Blocks until notified or `deadline`; returns false when the deadline passed.
    pub(crate) fn block(
        &self,
        state: &mut MutexGuard<'_, WaiterState>,
        deadline: Option<Instant>,
    ) -> bool {
        match deadline {
            None => {
                self.cond.wait(state);
                true
            }
            Some(deadline) => !self.cond.wait_until(state, deadline).timed_out(),
        }
    }
}

/// The instant a wait of `timeout` that starts now ends; `None` waits forever
/// (also when the timeout is too large to represent).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Clones of `fs` in input order, each future once (by identity).
pub(crate) fn unique<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
) -> Vec<Future<T, E>> {
    let fs = fs.into_iter();
    let mut seen = HashSet::with_capacity(fs.size_hint().0);
    fs.filter(|f| seen.insert(f.addr())).cloned().collect()
}
