//! [`as_completed`]: iterate over futures as they become done (CPython's `concurrent.futures.as_completed`).

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::waiter::{self, Waiter};
use crate::{AsCompletedTimeout, Future};

/// Yields each of `fs` once, as it becomes done: those already done first, in
/// input order, then the others in the order they finish.
///
/// A future passed twice is yielded once. `timeout` (`None`: for ever) counts
/// from this call; when it passes with futures unfinished, the iterator yields
/// one [`AsCompletedTimeout`] ("2 (of 4) futures unfinished") and then ends.
/// No future is touched by the timeout.
///
/// The iterator drops its handle of a future when it yields it, so it keeps
/// nothing alive that the caller has let go of. It waits on one condvar that
/// the futures notify (CPython's waiter), never by polling.
///
/// # Examples
///
/// ```
/// # #[derive(Debug, Clone, PartialEq)]
/// # enum Error { Cancelled, Timeout }
/// # impl From<procpool_futures::Cancelled> for Error { fn from(_: procpool_futures::Cancelled) -> Self { Error::Cancelled } }
/// # impl From<procpool_futures::Timeout> for Error { fn from(_: procpool_futures::Timeout) -> Self { Error::Timeout } }
/// use procpool_futures::{as_completed, pair};
///
/// let (slow, complete_slow) = pair::<&str, Error>();
/// let (fast, complete_fast) = pair::<&str, Error>();
/// complete_fast.set_result("fast").unwrap();
/// let mut done = as_completed([&slow, &fast], None);
/// // The finished one comes first, whatever the input order...
/// assert_eq!(done.next().unwrap().unwrap().result(None).unwrap(), "fast");
/// // ...then the others as they finish (here, from another thread).
/// std::thread::spawn(move || complete_slow.set_result("slow"));
/// assert_eq!(done.next().unwrap().unwrap().result(None).unwrap(), "slow");
/// assert!(done.next().is_none());
/// ```
pub fn as_completed<'a, T, E, I>(fs: I, timeout: Option<Duration>) -> AsCompleted<T, E>
where
    I: IntoIterator<Item = &'a Future<T, E>>,
    T: 'a,
    E: 'a,
{
    let deadline = waiter::deadline(timeout);
    let futures = waiter::unique(fs);
    let waiter = Arc::new(Waiter::default());
    let mut ready = VecDeque::new();
    let mut pending = 0;
    for (token, future) in futures.iter().enumerate() {
        match future.shared.register_waiter(&waiter, token) {
            Some(_) => ready.push_back(token),
            None => pending += 1,
        }
    }
    let slots: Vec<_> = futures.into_iter().map(Some).collect();
    AsCompleted {
        total: slots.len(),
        slots,
        ready,
        pending,
        waiter,
        deadline,
        timed_out: false,
    }
}

/// The iterator returned by [`as_completed`].
///
/// Each item is a done future, or, once, the timeout error, after which it
/// yields `None`. Dropping it early deregisters it from the futures.
pub struct AsCompleted<T, E> {
    /// The futures not yet yielded, by token (their index in the deduplicated input).
    slots: Vec<Option<Future<T, E>>>,
    /// Tokens of done futures not yet yielded, in the order to yield them.
    ready: VecDeque<usize>,
    /// How many futures were not done when last seen (still registered).
    pending: usize,
    total: usize,
    waiter: Arc<Waiter>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<T, E> AsCompleted<T, E> {
    fn pop_ready(&mut self) -> Option<Future<T, E>> {
        while let Some(token) = self.ready.pop_front() {
            if let Some(future) = self.slots[token].take() {
                return Some(future);
            }
        }
        None
    }

    fn deregister_all(&mut self) {
        for future in self.slots.iter().flatten() {
            future.shared.deregister_waiter(&self.waiter);
        }
    }
}

impl<T, E> Iterator for AsCompleted<T, E> {
    type Item = Result<Future<T, E>, AsCompletedTimeout>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(future) = self.pop_ready() {
            return Some(Ok(future));
        }
        if self.pending == 0 || self.timed_out {
            return None;
        }
        let mut state = self.waiter.state.lock();
        loop {
            if !state.completed.is_empty() {
                let completed = mem::take(&mut state.completed);
                drop(state);
                self.pending -= completed.len();
                self.ready.extend(completed);
                return self.pop_ready().map(Ok);
            }
            // A deadline already passed returns at once, as timed out.
            let woken = self.waiter.block(&mut state, self.deadline);
            if !woken && state.completed.is_empty() {
                drop(state);
                self.timed_out = true;
                self.deregister_all();
                self.slots.clear();
                return Some(Err(AsCompletedTimeout::new(self.pending, self.total)));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.timed_out {
            (0, Some(0))
        } else {
            // Plus one for a possible timeout error.
            (self.ready.len(), Some(self.ready.len() + self.pending + 1))
        }
    }
}

impl<T, E> FusedIterator for AsCompleted<T, E> {}

impl<T, E> Drop for AsCompleted<T, E> {
    fn drop(&mut self) {
        self.deregister_all();
    }
}

impl<T, E> fmt::Debug for AsCompleted<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("total", &self.total)
            .field("ready", &self.ready.len())
            .field("pending", &self.pending)
            .field("timed_out", &self.timed_out)
            .finish_non_exhaustive()
    }
}
