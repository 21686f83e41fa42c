//! The shared state behind a [`Future`] and its [`Completer`](crate::Completer): one mutex, one condvar.
//!
//! Every handle holds an `Arc<Shared>`. All transitions happen under the
//! mutex; whatever runs user or executor code (callbacks, wakers, the abort
//! hook, even dropping a replaced waker) is moved out first and run after the
//! lock is released, so that code may use the future again without deadlock.

use std::any::Any;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use crate::waiter::{self, Waiter};
use crate::{Future, Timeout};

/// Where a future is in its life, as [`Future::state`] reports it.
///
/// ```text
/// Pending ──> Running ──> Finished (output or error)
///    │           │
///    │           └──────> Cancelled   (executor only, after `abort`)
///    └──────────────────> Cancelled   (`cancel`, `abort`)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Submitted, not started: [`Future::cancel`] still succeeds.
    Pending,
    /// The executor started it: only [`Future::abort`] can stop it.
    Running,
    /// It ended with an output or an error.
    Finished,
    /// It was cancelled while pending, or stopped by its executor while running.
    Cancelled,
}

impl State {
    /// Finished or cancelled: the outcome is known and will not change.
    pub fn is_done(self) -> bool {
        matches!(self, State::Finished | State::Cancelled)
    }
}

/// A done callback, as stored until the future is done.
pub(crate) type Callback<T, E> = Box<dyn FnOnce(&Future<T, E>) + Send>;

/// What stops the running tasks of an executor: one value shared by all its
/// futures, each of which names its task by a number
/// ([`Completer::set_abort_target`](crate::Completer::set_abort_target)), so
/// that a future costs no allocation for its hook.
pub trait AbortTarget: Send + Sync {
    /// Stops the task numbered `task`. Called at most once per future, on
    /// the thread that aborts it: it must not block.
    fn abort(&self, task: u64);
}

/// The executor's way to stop a running task.
pub(crate) enum AbortHook {
    Once(Box<dyn FnOnce() + Send>),
    Target(Arc<dyn AbortTarget>, u64),
}

/// An outcome that the first thread to read a future produces: what
/// [`Completer::set_deferred`](crate::Completer::set_deferred) takes. A
/// closure is one; an executor may implement it for a value it already has
/// in a box, to hand that box over without allocating another.
pub trait Deferred<T, E>: Send {
    /// Produces the outcome, once, on the reading thread. It must not panic:
    /// catch a panic and return it as an error.
    fn produce(self: Box<Self>) -> Result<T, E>;
}

impl<T, E, F: FnOnce() -> Result<T, E> + Send> Deferred<T, E> for F {
    fn produce(self: Box<Self>) -> Result<T, E> {
        (*self)()
    }
}

/// The state field with its payload.
///
/// | phase       | [`State`] | how it is entered                                          |
/// | ----------- | --------- | ---------------------------------------------------------- |
/// | `Pending`   | Pending   | creation                                                   |
/// | `Running`   | Running   | `Completer::set_running_or_notify_cancel` from `Pending`   |
/// | `Output(T)` | Finished  | `Completer::set_result` from `Pending` or `Running`        |
/// | `Error(E)`  | Finished  | `Completer::set_error` from `Pending` or `Running`         |
/// | `Deferred`  | Finished  | `Completer::set_deferred` from `Pending` or `Running` |
/// | `Resolving` | Finished  | the first reader takes the `Deferred` function out; it then sets `Output` or `Error` |
/// | `Taken`     | Finished  | `Future::into_result` from `Output` or `Error`             |
/// | `Cancelled` | Cancelled | `cancel`/`abort` from `Pending`; `Completer::set_cancelled` (or dropping the completer) from `Pending` or `Running` |
///
/// No transition leaves `Output`, `Error` or `Cancelled` except `into_result`'s
/// move to `Taken`, which keeps the state `Finished`; `Deferred` leaves only
/// through `Resolving` for `Output` or `Error`, which keeps it too.
pub(crate) enum Phase<T, E> {
    Pending,
    Running,
    Output(T),
    Error(E),
    /// Finished, its outcome still to be produced by the first reader.
    Deferred(Box<dyn Deferred<T, E>>),
    /// Finished, its outcome being produced by a reader (with the lock
    /// released); other readers wait on the condvar.
    Resolving,
    /// `into_result` moved the outcome out. `taken` is `E::from(Taken)`, which
    /// the other handles read as the error; `was_error` says what was moved.
    Taken {
        taken: E,
        was_error: bool,
    },
    Cancelled,
}

impl<T, E> Phase<T, E> {
    pub(crate) fn state(&self) -> State {
        match self {
            Phase::Pending => State::Pending,
            Phase::Running => State::Running,
            Phase::Output(_)
            | Phase::Error(_)
            | Phase::Deferred(_)
            | Phase::Resolving
            | Phase::Taken { .. } => State::Finished,
            Phase::Cancelled => State::Cancelled,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state().is_done()
    }

    /// Whether it finished with an error (what `FirstException` waits for).
    /// A deferred outcome is not known to be an error until it is read.
    pub(crate) fn failed(&self) -> bool {
        matches!(
            self,
            Phase::Error(_)
                | Phase::Taken {
                    was_error: true,
                    ..
                }
        )
    }
}

/// Who to tell when the future is done. Boxed and allocated on first use, so a
/// future nobody listens to completes without allocating.
pub(crate) struct Listeners<T, E> {
    /// Done callbacks, in the order they were added.
    pub(crate) callbacks: Vec<Callback<T, E>>,
    /// One waker per awaiting handle, keyed by the handle's `waker_id`.
    pub(crate) wakers: Vec<(u64, Waker)>,
    /// Blocked `wait`/`as_completed` calls, with the token each gave this future.
    pub(crate) waiters: Vec<(Arc<Waiter>, usize)>,
}

/// Everything behind the mutex.
pub(crate) struct Inner<T, E> {
    pub(crate) phase: Phase<T, E>,
    /// Threads blocked on `Shared::cond`: completing notifies only if nonzero.
    sleepers: u32,
    /// `Future::abort` was called while running (the hook runs once).
    pub(crate) abort_requested: bool,
    /// Source of `Future::waker_id`s; 0 is never handed out.
    pub(crate) last_waker_id: u64,
    pub(crate) listeners: Option<Box<Listeners<T, E>>>,
    pub(crate) abort_hook: Option<AbortHook>,
}

impl<T, E> Inner<T, E> {
    pub(crate) fn listeners(&mut self) -> &mut Listeners<T, E> {
        self.listeners.get_or_insert_with(|| {
            Box::new(Listeners {
                callbacks: Vec::new(),
                wakers: Vec::new(),
                waiters: Vec::new(),
            })
        })
    }
}

/// The allocation every handle of one future shares.
pub(crate) struct Shared<T, E> {
    pub(crate) inner: Mutex<Inner<T, E>>,
    cond: Condvar,
    /// Set (after `phase`) when the future is done, so a spinning reader can
    /// watch it without taking the lock.
    done: AtomicBool,
    /// How long a blocking reader may spin before it sleeps, in microseconds
    /// (the executor's hint; 0 = sleep at once).
    pub(crate) spin_us: AtomicU32,
}

/// What a transition to done moved out of the lock, to be run after it is released.
#[must_use = "notices must be fired, or listeners are never told"]
pub(crate) struct Notices<T, E> {
    listeners: Option<Box<Listeners<T, E>>>,
    hook: Option<AbortHook>,
    failed: bool,
}

impl<T, E> Shared<T, E> {
    pub(crate) fn new() -> Self {
        Shared {
            inner: Mutex::new(Inner {
                phase: Phase::Pending,
                sleepers: 0,
                abort_requested: false,
                last_waker_id: 0,
                listeners: None,
                abort_hook: None,
            }),
            cond: Condvar::new(),
            done: AtomicBool::new(false),
            spin_us: AtomicU32::new(0),
        }
    }

    /// Spins (yielding the CPU each round) until the future is done, the
    /// spin budget is spent or `deadline` passes. A result that arrives within
    /// microseconds is then read without the two context switches of a
    /// condvar sleep and wake-up; `sched_yield` keeps the spin from starving
    /// the very threads that would complete it on a machine with few CPUs.
    fn spin_until_done(&self, deadline: Option<Instant>) {
        let budget = self.spin_us.load(Ordering::Relaxed);
        if budget == 0 {
            return;
        }
        let start = Instant::now();
        let mut end = start + Duration::from_micros(u64::from(budget));
        if let Some(deadline) = deadline {
            end = end.min(deadline);
        }
        while !self.done.load(Ordering::Acquire) {
            std::thread::yield_now();
            if Instant::now() >= end {
                return;
            }
        }
    }

    /// Locks the state once it is done, waiting at most `timeout`.
    ///
    /// `Some(Duration::ZERO)` never blocks. With a spin hint it first spins
    /// for up to the hint ([`spin_until_done`](Self::spin_until_done)), then
    /// sleeps on the condvar.
    pub(crate) fn lock_done(
        &self,
        timeout: Option<Duration>,
    ) -> Result<MutexGuard<'_, Inner<T, E>>, Timeout> {
        let mut inner = self.inner.lock();
        if inner.phase.is_done() {
            return Ok(inner);
        }
        if timeout == Some(Duration::ZERO) {
            return Err(Timeout);
        }
        let deadline = waiter::deadline(timeout);
        if self.spin_us.load(Ordering::Relaxed) > 0 {
            drop(inner);
            self.spin_until_done(deadline);
            inner = self.inner.lock();
            if inner.phase.is_done() {
                return Ok(inner);
            }
        }
        inner.sleepers += 1;
        while !inner.phase.is_done() {
            match deadline {
                None => self.cond.wait(&mut inner),
                Some(deadline) => {
                    if self.cond.wait_until(&mut inner, deadline).timed_out() {
                        break;
                    }
                }
            }
        }
        inner.sleepers -= 1;
        if inner.phase.is_done() {
            Ok(inner)
        } else {
            Err(Timeout)
        }
    }

    /// Produces a deferred outcome, once, on the reading thread, and returns
    /// the guard once the phase holds an outcome.
    ///
    /// The function runs with the lock released (it is user code, slow
    /// perhaps: the executor's completer and other handles must not wait on
    /// it); a reader that comes meanwhile waits on the condvar for its
    /// outcome rather than producing it again. The executor's function must
    /// not panic (`set_deferred` says so); if it does anyway, the panic is
    /// contained and the future reads as cancelled.
    pub(crate) fn resolved<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner<T, E>>,
    ) -> MutexGuard<'a, Inner<T, E>>
    where
        E: From<crate::Cancelled>,
    {
        loop {
            match inner.phase {
                Phase::Deferred(_) => {
                    let Phase::Deferred(produce) = mem::replace(&mut inner.phase, Phase::Resolving)
                    else {
                        unreachable!("matched just above, under the same lock");
                    };
                    let outcome = MutexGuard::unlocked(&mut inner, || {
                        panic::catch_unwind(AssertUnwindSafe(|| produce.produce()))
                    });
                    inner.phase = match outcome {
                        Ok(Ok(output)) => Phase::Output(output),
                        Ok(Err(error)) => Phase::Error(error),
                        Err(payload) => {
                            report_panic("a deferred outcome", payload.as_ref());
                            Phase::Error(E::from(crate::Cancelled))
                        }
                    };
                    // Readers that came while it was produced wait for it.
                    self.cond.notify_all();
                    return inner;
                }
                Phase::Resolving => self.cond.wait(&mut inner),
                _ => return inner,
            }
        }
    }

    /// Moves a not-done future to the done `phase`, wakes the threads blocked
    /// in `lock_done` and takes out everything to run after unlocking.
    pub(crate) fn finish(&self, inner: &mut Inner<T, E>, phase: Phase<T, E>) -> Notices<T, E> {
        debug_assert!(!inner.phase.is_done() && phase.is_done());
        let failed = phase.failed();
        inner.phase = phase;
        self.done.store(true, Ordering::Release);
        if inner.sleepers > 0 {
            // parking_lot requeues the sleepers onto the mutex: no thundering herd.
            self.cond.notify_all();
        }
        Notices {
            listeners: inner.listeners.take(),
            hook: inner.abort_hook.take(),
            failed,
        }
    }

    /// Registers `waiter` under `token` unless the future is done; if it is,
    /// returns whether it failed instead.
    pub(crate) fn register_waiter(&self, waiter: &Arc<Waiter>, token: usize) -> Option<bool> {
        let mut inner = self.inner.lock();
        if inner.phase.is_done() {
            return Some(inner.phase.failed());
        }
        inner.listeners().waiters.push((Arc::clone(waiter), token));
        None
    }

    /// Removes `waiter` if it is still registered (a done future already dropped it).
    pub(crate) fn deregister_waiter(&self, waiter: &Arc<Waiter>) {
        let mut inner = self.inner.lock();
        if let Some(listeners) = inner.listeners.as_mut() {
            listeners.waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
        }
    }
}

impl<T, E> Notices<T, E> {
    /// Tells everyone, in CPython's order: blocked waits, then (our addition)
    /// wakers, then the done callbacks. Call without holding the lock.
    pub(crate) fn fire(self, shared: &Arc<Shared<T, E>>) {
        // The hook can never be needed again; drop what it owns here, unlocked.
        drop(self.hook);
        let Some(listeners) = self.listeners else {
            return;
        };
        let Listeners {
            callbacks,
            wakers,
            waiters,
        } = *listeners;
        for (waiter, token) in waiters {
            waiter.notify(token, self.failed);
        }
        for (_, waker) in wakers {
            waker.wake();
        }
        if !callbacks.is_empty() {
            let future = Future::from_shared(Arc::clone(shared));
            for callback in callbacks {
                run_callback(callback, &future);
            }
        }
    }
}

/// Runs one done callback; a panic is contained and reported on stderr, as
/// CPython logs "exception calling callback" and goes on.
pub(crate) fn run_callback<T, E>(callback: Callback<T, E>, future: &Future<T, E>) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(future))) {
        report_panic("a done callback", payload.as_ref());
    }
}

/// Runs the executor's abort hook; a panic in it is contained like a callback's
/// (it may run inside `AbortOnDrop::drop`, where a panic could abort the process).
pub(crate) fn run_abort_hook(hook: AbortHook) {
    let run = || match hook {
        AbortHook::Once(hook) => hook(),
        AbortHook::Target(target, task) => target.abort(task),
    };
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(run)) {
        report_panic("the abort hook", payload.as_ref());
    }
}

fn report_panic(what: &str, payload: &(dyn Any + Send)) {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>");
    eprintln!("procpool-futures: {what} panicked (contained): {message}");
}

/// Takes the waker out of `slot` when it is replaced or removed, so the caller
/// can drop it after unlocking: dropping a waker may drop a task that holds a
/// handle of this very future.
pub(crate) fn replace_waker(slot: &mut Waker, new: &Waker) -> Option<Waker> {
    if slot.will_wake(new) {
        None
    } else {
        Some(mem::replace(slot, new.clone()))
    }
}
