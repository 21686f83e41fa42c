//! [`wait`]: block until some or all of many futures are done (CPython's `concurrent.futures.wait`).

use std::sync::Arc;
use std::time::Duration;

use crate::waiter::{self, Waiter};
use crate::Future;

/// When [`wait`] returns: CPython's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future finishes with an error; if none does, when all
    /// are done. A cancelled future is not an error here, as in CPython.
    FirstException,
    /// When all futures are done. The default, as in CPython.
    #[default]
    AllCompleted,
}

/// What [`wait`] returns: the futures that were done and those that were not,
/// each in input order, each future once.
#[derive(Debug)]
pub struct WaitResult<T, E> {
    /// The futures that were done (finished or cancelled) when `wait` returned.
    pub done: Vec<Future<T, E>>,
    /// The others.
    pub not_done: Vec<Future<T, E>>,
}

/// Waits until the futures meet `return_when`, or `timeout` passes.
///
/// Futures that are already done count; a future passed twice appears once in
/// the result. It never fails: on timeout, the futures still running are in
/// `not_done`, and none is touched. `timeout` `None` waits for ever.
///
/// The calling thread sleeps on one condvar that every future it waits for
/// notifies when done (CPython's waiter), and it deregisters afterwards.
///
/// Unlike CPython, a future cancelled by [`Future::cancel`] counts as done at
/// once, not only once the executor noticed.
///
/// # Examples
///
/// ```
/// use procpool_futures::{pair, wait, Cancelled, ReturnWhen};
///
/// let (a, complete_a) = pair::<u32, Cancelled>();
/// let (b, _complete_b) = pair::<u32, Cancelled>();
/// std::thread::spawn(move || complete_a.set_result(1));
/// let result = wait([&a, &b, &a], None, ReturnWhen::FirstCompleted);
/// assert_eq!(result.done, [a]);
/// assert_eq!(result.not_done, [b]);
/// ```
pub fn wait<'a, T, E, I>(
    fs: I,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> WaitResult<T, E>
where
    I: IntoIterator<Item = &'a Future<T, E>>,
    T: 'a,
    E: 'a,
{
    let deadline = waiter::deadline(timeout);
    let futures = waiter::unique(fs);
    let total = futures.len();
    let waiter = Arc::new(Waiter::default());
    let mut done_before = 0;
    let mut failed_before = false;
    let mut registered = Vec::with_capacity(total);
    for (token, future) in futures.iter().enumerate() {
        match future.shared.register_waiter(&waiter, token) {
            Some(failed) => {
                done_before += 1;
                failed_before |= failed;
            }
            None => registered.push(future),
        }
    }
    let satisfied = |done: usize, failed: bool| {
        done == total
            || match return_when {
                ReturnWhen::FirstCompleted => done > 0,
                ReturnWhen::FirstException => failed,
                ReturnWhen::AllCompleted => false,
            }
    };
    if !satisfied(done_before, failed_before) && timeout != Some(Duration::ZERO) {
        let mut state = waiter.state.lock();
        while !satisfied(
            done_before + state.completed.len(),
            failed_before || state.failed,
        ) {
            if !waiter.block(&mut state, deadline) {
                break;
            }
        }
    }
    for future in registered {
        future.shared.deregister_waiter(&waiter);
    }
    let (done, not_done) = futures.into_iter().partition(Future::done);
    WaitResult { done, not_done }
}
