//! The executor's side of a future, [`Completer`]: start it, complete it, or stop it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{self, AbortHook, AbortTarget, Deferred, Phase, Shared};
use crate::{Future, InvalidState, State};

/// The completing side of a [`Future`], held by the executor.
///
/// A user of the future cannot complete it: only this handle can, once. The
/// methods mirror CPython's executor-facing `Future` methods
/// (`set_running_or_notify_cancel`, `set_result`, `set_exception`), plus
/// [`set_cancelled`](Self::set_cancelled) and
/// [`set_abort_hook`](Self::set_abort_hook) for stopping a running task.
///
/// Completing is cheap: it notifies the condvar only if a thread is blocked
/// on it, and allocates nothing when nobody listens. Waiters, wakers and then
/// done callbacks run on the completing thread, after the lock is released.
///
/// It is not `Clone`: one owner completes the future (share it in an `Arc` if
/// needed). Dropping a `Completer` whose future is not done cancels the future, so a
/// waiter never hangs on an executor that gave up (or panicked). Complete it
/// with an error first if that should be reported differently.
pub struct Completer<T, E> {
    shared: Arc<Shared<T, E>>,
}

/// A new pending future and its completer.
///
/// # Examples
///
/// ```
/// # #[derive(Debug, Clone, PartialEq)]
/// # enum Error { Cancelled, Timeout }
/// # impl From<procpool_futures::Cancelled> for Error { fn from(_: procpool_futures::Cancelled) -> Self { Error::Cancelled } }
/// # impl From<procpool_futures::Timeout> for Error { fn from(_: procpool_futures::Timeout) -> Self { Error::Timeout } }
/// let (future, completer) = procpool_futures::pair::<u32, Error>();
/// assert!(completer.set_running_or_notify_cancel());
/// completer.set_result(7).unwrap();
/// assert_eq!(future.result(None), Ok(7));
/// ```
pub fn pair<T, E>() -> (Future<T, E>, Completer<T, E>) {
    let completer = Completer::new();
    (completer.future(), completer)
}

impl<T, E> Completer<T, E> {
    /// A completer for a new pending future; get the future with [`future`](Self::future).
    pub fn new() -> Self {
        Completer {
            shared: Arc::new(Shared::new()),
        }
    }

    /// A user handle of the future; call it as often as needed.
    pub fn future(&self) -> Future<T, E> {
        Future::from_shared(Arc::clone(&self.shared))
    }

    /// Marks the future running, unless it was cancelled: CPython's
    /// `set_running_or_notify_cancel()`. Call it just before running the task.
    ///
    /// Returns true if it moved the future from pending to running: run the
    /// task. Returns false if the future was cancelled: do not run it. Unlike
    /// CPython, which raises, it also returns false (and changes nothing) on a
    /// future that is already running or finished, since the task must not
    /// run twice.
    pub fn set_running_or_notify_cancel(&self) -> bool {
        let mut inner = self.shared.inner.lock();
        if matches!(inner.phase, Phase::Pending) {
            inner.phase = Phase::Running;
            true
        } else {
            false
        }
    }

    /// Finishes the future with the task's output: CPython's `set_result`.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if the future is already finished or cancelled; the
    /// output is dropped.
    pub fn set_result(&self, output: T) -> Result<(), InvalidState> {
        self.complete(Phase::Output(output))
    }

    /// Finishes the future with the task's error: CPython's `set_exception`.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if the future is already finished or cancelled.
    pub fn set_error(&self, error: E) -> Result<(), InvalidState> {
        self.complete(Phase::Error(error))
    }

    /// Finishes the future with an outcome that the first thread to read it
    /// produces: `produce` runs once, on the thread that first calls
    /// [`result`](Future::result), [`exception`](Future::exception),
    /// [`into_result`](Future::into_result), [`with_result`](Future::with_result)
    /// or `.await`s the future, without the future's lock held (so that this
    /// completer, `state()` and the other handles never wait on it); a second
    /// reader waits for its outcome rather than running it again.
    ///
    /// This is how an executor keeps user code off its own thread: a process
    /// pool hands over the output's bytes and the reader decodes them, so a
    /// slow or panicking `Deserialize` costs only its own caller. Waiters are
    /// told at once; for [`wait`](crate::wait)'s `FirstException` the
    /// outcome does not count as an error until it has been produced.
    ///
    /// `produce` must not panic: catch a panic and return it as an error. If
    /// it panics anyway, the panic is contained (reported on stderr) and the
    /// future reads as cancelled.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if the future is already finished or cancelled;
    /// `produce` is dropped unrun.
    pub fn set_deferred<F>(&self, produce: F) -> Result<(), InvalidState>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.complete(Phase::Deferred(Box::new(produce)))
    }

    /// [`set_deferred`](Self::set_deferred) with an outcome already boxed.
    ///
    /// # Errors
    ///
    /// As [`set_deferred`](Self::set_deferred).
    pub fn set_deferred_boxed(
        &self,
        produce: Box<dyn Deferred<T, E> + 'static>,
    ) -> Result<(), InvalidState> {
        self.complete(Phase::Deferred(produce))
    }

    /// Ends the future as cancelled, from pending or running.
    ///
    /// An executor calls it after it stopped a running task on
    /// [`abort`](Future::abort) (Running -> Cancelled), or to cancel pending
    /// work, e.g. on `shutdown(cancel_futures)`.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if the future is already finished or cancelled.
    pub fn set_cancelled(&self) -> Result<(), InvalidState> {
        self.complete(Phase::Cancelled)
    }

    fn complete(&self, phase: Phase<T, E>) -> Result<(), InvalidState> {
        let mut inner = self.shared.inner.lock();
        if inner.phase.is_done() {
            return Err(InvalidState::new(inner.phase.state()));
        }
        let notices = self.shared.finish(&mut inner, phase);
        drop(inner);
        notices.fire(&self.shared);
        Ok(())
    }

    /// Lets a thread blocked in [`Future::result`] (and the other blocking
    /// accessors) spin for up to `budget` before it sleeps: worth it when the
    /// executor expects the result within microseconds, as a process pool
    /// does for short tasks. The spin yields the CPU every round. Zero (the
    /// default) sleeps at once.
    pub fn set_spin_hint(&self, budget: Duration) {
        let micros = u32::try_from(budget.as_micros()).unwrap_or(u32::MAX);
        self.shared
            .spin_us
            .store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how [`Future::abort`] stops the running task, e.g. by telling the
    /// manager to kill the worker process that runs it.
    ///
    /// The hook runs at most once, on the thread that calls `abort` (or in a
    /// dropped [`AbortOnDrop`](crate::AbortOnDrop), possibly inside an async
    /// task): it must not block. If `abort` was already called while the
    /// future was running, the hook runs at once, on this thread, so setting
    /// it after `set_running_or_notify_cancel` loses no abort. A later call
    /// replaces a hook that has not run. The hook is dropped, unrun, once the
    /// future is done.
    pub fn set_abort_hook<F>(&self, hook: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.install_abort_hook(AbortHook::Once(Box::new(hook)));
    }

    /// [`set_abort_hook`](Self::set_abort_hook) with a hook that an
    /// executor shares among all its futures: aborting this future calls
    /// `target.abort(task)`. Unlike a closure, it costs the future no
    /// allocation.
    pub fn set_abort_target(&self, target: Arc<dyn AbortTarget>, task: u64) {
        self.install_abort_hook(AbortHook::Target(target, task));
    }

    fn install_abort_hook(&self, hook: AbortHook) {
        let mut inner = self.shared.inner.lock();
        if inner.phase.is_done() {
            return;
        }
        if inner.abort_requested && matches!(inner.phase, Phase::Running) {
            drop(inner);
            state::run_abort_hook(hook);
        } else {
            let old = inner.abort_hook.replace(hook);
            drop(inner);
            drop(old);
        }
    }

    /// Where the future is now.
    pub fn state(&self) -> State {
        self.shared.inner.lock().phase.state()
    }

    /// Whether the future was cancelled (by a user while pending, or by this completer).
    pub fn is_cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// Whether the future is done (finished or cancelled).
    pub fn is_done(&self) -> bool {
        self.state().is_done()
    }

    /// Whether [`Future::abort`] was called while the future was running.
    pub fn is_abort_requested(&self) -> bool {
        self.shared.inner.lock().abort_requested
    }
}

impl<T, E> Default for Completer<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> Drop for Completer<T, E> {
    fn drop(&mut self) {
        // Ignoring the error: a done future is what we want.
        let _ = self.complete(Phase::Cancelled);
    }
}

impl<T, E> fmt::Debug for Completer<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.inner.lock();
        f.debug_struct("Completer")
            .field("state", &inner.phase.state())
            .field("abort_requested", &inner.abort_requested)
            .finish_non_exhaustive()
    }
}
