//! Async support: [`Future`] is a `std::future::Future`, and [`AbortOnDrop`] stops the task when dropped.
//!
//! Each awaiting handle keeps one slot in the future's waker list, keyed by
//! its `waker_id`: a repeated poll replaces that slot's waker unless it
//! `will_wake` the same task, so the list holds one waker per awaiter however
//! often each is polled. Completion (or a cancel) drains the list and wakes
//! them all, after the lock is released. No runtime is needed.

use std::fmt;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::future::read_cloned;
use crate::state::replace_waker;
use crate::{Cancelled, Future};

/// Awaiting a future yields what [`Future::result`] would: a clone of the
/// output, or the error. Several tasks may await clones of one future; each
/// is woken when it is done, cancelled included. Dropping the awaiting
/// handle does not touch the task (see [`Future::abort_on_drop`]).
impl<T, E> StdFuture for Future<T, E>
where
    T: Clone,
    E: Clone + From<Cancelled>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Future` is `Unpin`: an `Arc` and an integer.
        let this = self.get_mut();
        let mut inner = this.shared.inner.lock();
        if inner.phase.is_done() {
            // Completion drained the waker list, our slot included.
            this.waker_id = 0;
            let inner = this.shared.resolved(inner);
            return Poll::Ready(read_cloned(&inner.phase));
        }
        let id = this.waker_id;
        let wakers = &mut inner.listeners().wakers;
        if id != 0 {
            if let Some((_, slot)) = wakers.iter_mut().find(|(slot_id, _)| *slot_id == id) {
                let old = replace_waker(slot, cx.waker());
                drop(inner);
                drop(old);
                return Poll::Pending;
            }
        }
        inner.last_waker_id += 1;
        let id = inner.last_waker_id;
        inner.listeners().wakers.push((id, cx.waker().clone()));
        this.waker_id = id;
        Poll::Pending
    }
}

/// A [`Future`] that [aborts](Future::abort) the task if it is dropped before
/// the future is done: made by [`Future::abort_on_drop`].
///
/// So `tokio::time::timeout(d, future.abort_on_drop())` stops the task itself,
/// not just the wait, when the timeout fires; so does dropping the awaiting
/// task. Awaiting it yields what awaiting the future does.
pub struct AbortOnDrop<T, E> {
    future: Future<T, E>,
    armed: bool,
}

impl<T, E> AbortOnDrop<T, E> {
    pub(crate) fn new(future: Future<T, E>) -> Self {
        AbortOnDrop {
            future,
            armed: true,
        }
    }

    /// The wrapped future.
    pub fn future(&self) -> &Future<T, E> {
        &self.future
    }

    /// Disarms the wrapper and returns the future: dropping it no longer aborts.
    pub fn into_inner(mut self) -> Future<T, E> {
        self.armed = false;
        self.future.clone()
    }
}

impl<T, E> StdFuture for AbortOnDrop<T, E>
where
    T: Clone,
    E: Clone + From<Cancelled>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().future).poll(cx)
    }
}

impl<T, E> Drop for AbortOnDrop<T, E> {
    fn drop(&mut self) {
        // `abort` is a no-op (false) on a done future.
        if self.armed {
            self.future.abort();
        }
    }
}

impl<T, E> fmt::Debug for AbortOnDrop<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortOnDrop")
            .field("future", &self.future)
            .field("armed", &self.armed)
            .finish()
    }
}
