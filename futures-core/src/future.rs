//! The user's handle, [`Future`]: CPython's `concurrent.futures.Future` minus the completing side.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{self, Phase, Shared};
use crate::{AbortOnDrop, Cancelled, State, Taken, Timeout};

/// The outcome of a task that may not have finished yet: what every `submit`
/// returns.
///
/// It has CPython's `concurrent.futures.Future` semantics: [`cancel`](Self::cancel)
/// succeeds only while pending, [`result`](Self::result) and
/// [`exception`](Self::exception) block with an optional timeout that never
/// touches the task, [done callbacks](Self::add_done_callback) run exactly once.
/// On top, [`abort`](Self::abort) asks the executor to stop a running task, and
/// it implements [`std::future::Future`], so it can be `.await`ed on any
/// runtime (several tasks may await clones of it).
///
/// A `Future` is a cheap handle: clones share one state, compare equal, and
/// hash alike (identity, as Python's futures do). `T` is the task's output, `E`
/// the error type, which must be able to say [`Cancelled`] and [`Timeout`].
/// The completing side is a separate [`Completer`](crate::Completer) that only
/// the executor holds.
///
/// `Future` is `Send + Sync` when `T` and `E` are `Send`: every access to the
/// payload is under the future's lock. `Debug` shows the state, never the
/// payload.
pub struct Future<T, E> {
    pub(crate) shared: Arc<Shared<T, E>>,
    /// This handle's entry in the waker list while it is being awaited; 0 when
    /// it has none. Not shared by clones: each awaiting handle keeps one slot.
    pub(crate) waker_id: u64,
}

impl<T, E> Future<T, E> {
    pub(crate) fn from_shared(shared: Arc<Shared<T, E>>) -> Self {
        Future {
            shared,
            waker_id: 0,
        }
    }

    /// The identity of the shared state, for deduplication.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// Where the future is now. It may change as soon as this returns, except
    /// from a done state.
    pub fn state(&self) -> State {
        self.shared.inner.lock().phase.state()
    }

    /// Cancels the future if it has not started: CPython's `cancel()`.
    ///
    /// Returns true if it is now cancelled (it was pending, or already
    /// cancelled), false if it is running or finished; a running task is not
    /// touched (see [`abort`](Self::abort) for that). Cancelling wakes every
    /// waiter and runs the done callbacks, on this thread.
    pub fn cancel(&self) -> bool {
        let inner = self.shared.inner.lock();
        match inner.phase {
            Phase::Pending => self.cancel_locked(inner),
            Phase::Cancelled => true,
            _ => false,
        }
    }

    /// Cancels the pending future whose lock is `inner`; tells everyone once
    /// the lock is released.
    fn cancel_locked(&self, mut inner: parking_lot::MutexGuard<'_, state::Inner<T, E>>) -> bool {
        let notices = self.shared.finish(&mut inner, Phase::Cancelled);
        drop(inner);
        notices.fire(&self.shared);
        true
    }

    /// Stops the task, whether it has started or not.
    ///
    /// - Pending: the same as [`cancel`](Self::cancel); returns true.
    /// - Running: runs the executor's abort hook, once: later calls do not run
    ///   it again, and if the executor has not set it yet, it runs as soon as it
    ///   is set. Returns true. The future stays [`Running`](State::Running)
    ///   until the executor has stopped the task and completes it, normally as
    ///   cancelled (or with an error, or with the output if the task won the
    ///   race), so wait for it as usual.
    /// - Done (finished or cancelled): returns false.
    ///
    /// The hook (see [`Completer::set_abort_hook`](crate::Completer::set_abort_hook))
    /// is how an executor stops a running task for real, e.g. by killing the
    /// worker process; this crate knows nothing of processes. It runs on this
    /// thread; a panic in it is contained and reported on stderr.
    pub fn abort(&self) -> bool {
        let mut inner = self.shared.inner.lock();
        match inner.phase {
            Phase::Pending => self.cancel_locked(inner),
            Phase::Running => {
                let hook = if mem::replace(&mut inner.abort_requested, true) {
                    None
                } else {
                    inner.abort_hook.take()
                };
                drop(inner);
                if let Some(hook) = hook {
                    state::run_abort_hook(hook);
                }
                true
            }
            _ => false,
        }
    }

    /// Whether the future was cancelled (CPython's `cancelled()`).
    pub fn cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// Whether the executor is running the task (CPython's `running()`).
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// Whether the future is finished or cancelled (CPython's `done()`).
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// Waits for the outcome and returns a clone of it: CPython's `result(timeout)`.
    ///
    /// `timeout` `None` waits for ever; `Some(Duration::ZERO)` does not block.
    ///
    /// # Errors
    ///
    /// - the task's error, if it failed;
    /// - `E::from(Timeout)` if the future is not done within `timeout` (the task
    ///   is not touched);
    /// - `E::from(Cancelled)` if it was cancelled;
    /// - the `E::from(Taken)` left by [`into_result`](Self::into_result), if
    ///   another handle took the outcome.
    pub fn result(&self, timeout: Option<Duration>) -> Result<T, E>
    where
        T: Clone,
        E: Clone + From<Cancelled> + From<Timeout>,
    {
        let inner = self.shared.resolved(self.shared.lock_done(timeout)?);
        read_cloned(&inner.phase)
    }

    /// Waits for the outcome and returns the task's error, if any: CPython's
    /// `exception(timeout)`.
    ///
    /// `Ok(None)` if it finished with an output (also when that output was
    /// taken), `Ok(Some(error))` if the task failed.
    ///
    /// # Errors
    ///
    /// `E::from(Timeout)`, `E::from(Cancelled)`, or the `E::from(Taken)` left
    /// by [`into_result`](Self::into_result) if it took an error, as for
    /// [`result`](Self::result).
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<E>, E>
    where
        E: Clone + From<Cancelled> + From<Timeout>,
    {
        let inner = self.shared.resolved(self.shared.lock_done(timeout)?);
        match &inner.phase {
            Phase::Output(_)
            | Phase::Taken {
                was_error: false, ..
            } => Ok(None),
            Phase::Error(e) => Ok(Some(e.clone())),
            Phase::Taken { taken, .. } => Err(taken.clone()),
            _ => Err(Cancelled.into()),
        }
    }

    /// Waits for the outcome and lends it to `f`, so `T` and `E` need not be `Clone`.
    ///
    /// `f` gets `Ok(&output)` or `Err(&error)`; after [`into_result`](Self::into_result)
    /// took the outcome, the `E::from(Taken)` it left.
    ///
    /// # Errors
    ///
    /// `E::from(Timeout)` or `E::from(Cancelled)`, without calling `f`.
    ///
    /// # Caveats
    ///
    /// `f` runs while the future's lock is held: keep it short, and do not use
    /// this future (or a clone) inside it, which would deadlock.
    pub fn with_result<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(Result<&T, &E>) -> R,
    ) -> Result<R, E>
    where
        E: From<Cancelled> + From<Timeout>,
    {
        let inner = self.shared.resolved(self.shared.lock_done(timeout)?);
        match &inner.phase {
            Phase::Output(t) => Ok(f(Ok(t))),
            Phase::Error(e) | Phase::Taken { taken: e, .. } => Ok(f(Err(e))),
            _ => Err(Cancelled.into()),
        }
    }

    /// Waits for the outcome and moves it out, so `T` need not be `Clone`.
    ///
    /// Other handles of this future then read `E::from(Taken)` as its error
    /// ([`exception`](Self::exception) still returns `Ok(None)` for them when
    /// the outcome was an output); the state stays [`Finished`](State::Finished).
    ///
    /// # Errors
    ///
    /// The task's error (moved out too), `E::from(Cancelled)`, `E::from(Taken)`
    /// if another handle took the outcome first, or `E::from(Timeout)`.
    ///
    /// # Caveats
    ///
    /// This handle is consumed even when the wait times out; clone it first to
    /// try again.
    pub fn into_result(self, timeout: Option<Duration>) -> Result<T, E>
    where
        E: From<Cancelled> + From<Timeout> + From<Taken>,
    {
        let mut inner = self.shared.resolved(self.shared.lock_done(timeout)?);
        let was_error = match inner.phase {
            Phase::Output(_) => false,
            Phase::Error(_) => true,
            Phase::Taken { .. } => return Err(Taken.into()),
            _ => return Err(Cancelled.into()),
        };
        let phase = mem::replace(
            &mut inner.phase,
            Phase::Taken {
                taken: E::from(Taken),
                was_error,
            },
        );
        drop(inner);
        match phase {
            Phase::Output(t) => Ok(t),
            Phase::Error(e) => Err(e),
            _ => unreachable!("checked above under the same lock"),
        }
    }

    /// Calls `f` with this future once it is done: CPython's `add_done_callback`.
    ///
    /// Callbacks run in the order they were added, exactly once each, on the
    /// thread that completes or cancels the future (for a pool, its manager
    /// thread: keep them short), or at once on this thread if the future is
    /// already done. They run without the future's lock held, so they may use
    /// the future. A callback that panics is contained, reported on stderr,
    /// and the next one still runs.
    pub fn add_done_callback<F>(&self, f: F)
    where
        F: FnOnce(&Future<T, E>) + Send + 'static,
    {
        let mut inner = self.shared.inner.lock();
        if inner.phase.is_done() {
            drop(inner);
            state::run_callback(Box::new(f), self);
        } else {
            inner.listeners().callbacks.push(Box::new(f));
        }
    }

    /// Wraps the future so that dropping it before it is done calls
    /// [`abort`](Self::abort), e.g. when `tokio::time::timeout` gives up on it.
    pub fn abort_on_drop(self) -> AbortOnDrop<T, E> {
        AbortOnDrop::new(self)
    }
}

/// Reads a done phase for `result()` and `.await`.
pub(crate) fn read_cloned<T, E>(phase: &Phase<T, E>) -> Result<T, E>
where
    T: Clone,
    E: Clone + From<Cancelled>,
{
    match phase {
        Phase::Output(t) => Ok(t.clone()),
        Phase::Error(e) | Phase::Taken { taken: e, .. } => Err(e.clone()),
        _ => Err(Cancelled.into()),
    }
}

impl<T, E> Clone for Future<T, E> {
    fn clone(&self) -> Self {
        Future::from_shared(Arc::clone(&self.shared))
    }
}

impl<T, E> Drop for Future<T, E> {
    fn drop(&mut self) {
        if self.waker_id == 0 {
            return;
        }
        let mut inner = self.shared.inner.lock();
        let waker = inner.listeners.as_mut().and_then(|listeners| {
            let i = listeners
                .wakers
                .iter()
                .position(|(id, _)| *id == self.waker_id)?;
            Some(listeners.wakers.swap_remove(i))
        });
        drop(inner);
        drop(waker);
    }
}

impl<T, E> PartialEq for Future<T, E> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T, E> Eq for Future<T, E> {}

impl<T, E> Hash for Future<T, E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.addr().hash(state);
    }
}

impl<T, E> fmt::Debug for Future<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
