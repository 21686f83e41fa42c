//! procpool's future: the handle every `submit` returns, with the semantics of
//! Python's `concurrent.futures.Future`, that can also be `.await`ed on any
//! async runtime.
//!
//! # Its place in procpool
//!
//! `procpool-manager` holds the [`Completer`] of every task and completes it
//! from its event-loop thread; `procpool`, the facade, hands the [`Future`] to
//! users and re-exports [`wait`] and [`as_completed`]. This crate depends on
//! `parking_lot` alone and knows nothing of processes: stopping a running task
//! is an *abort hook* that the executor sets ([`Completer::set_abort_hook`]).
//!
//! ```text
//!  caller thread(s): Future handles                executor thread: the Completer
//!  --------------------------------                ------------------------------
//!  let fut = pool.submit(..)       <── pair() ──>   set_running_or_notify_cancel()
//!                                                     (false: it was cancelled, skip it)
//!  fut.result(timeout)  sleeps on the condvar ──┐
//!  fut.await            leaves its waker        │   set_result(output) / set_error(e)
//!  wait, as_completed   register a waiter       ├──   / set_deferred(produce) / set_cancelled()
//!  fut.add_done_callback(f)  stores f           │     1. under the lock: the new phase;
//!                                               │        notify the condvar if one sleeps
//!                       woken / run  <──────────┘     2. lock released: notify waiters,
//!                                                        wake wakers, run callbacks here
//!  the first reader of a deferred outcome runs produce() here, with the lock released
//!    (a process pool decodes the output's bytes so: never on its own thread)
//!  fut.cancel()  pending -> cancelled, at once
//!  fut.abort()   running -> the abort hook ───────>   the executor stops the task (kills
//!                                                     its worker), then set_cancelled()
//!
//!  Both sides hold one Arc<Shared>: a parking_lot Mutex (phase, listeners, hook) + a Condvar.
//! ```
//!
//! # States
//!
//! By [`Future::state`] (the internal `phase` field adds the payload):
//!
//! | from      | to        | by                                                               |
//! | --------- | --------- | ---------------------------------------------------------------- |
//! | Pending   | Running   | [`Completer::set_running_or_notify_cancel`] (returns true)       |
//! | Pending   | Cancelled | [`Future::cancel`], [`Future::abort`], [`Completer::set_cancelled`] |
//! | Pending   | Finished  | [`Completer::set_result`] (output), [`Completer::set_error`] (error) or [`Completer::set_deferred`] (produced by the first reader) |
//! | Running   | Finished  | the same                                                         |
//! | Running   | Cancelled | [`Completer::set_cancelled`]: executor only, after it stopped the task on [`Future::abort`] |
//!
//! Finished and Cancelled are *done* and final; completing a done future again
//! is an [`InvalidState`] error. Dropping a `Completer` cancels a future that
//! is not done, so no waiter hangs on an executor that gave up.
//!
//! # Example
//!
//! ```
//! use std::{thread, time::Duration};
//! use procpool_futures::{pair, Cancelled, Timeout};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum Error { Cancelled, Timeout, Task(String) }
//! impl From<Cancelled> for Error { fn from(_: Cancelled) -> Self { Error::Cancelled } }
//! impl From<Timeout> for Error { fn from(_: Timeout) -> Self { Error::Timeout } }
//!
//! let (future, completer) = pair::<u64, Error>();
//! assert_eq!(future.result(Some(Duration::ZERO)), Err(Error::Timeout));
//!
//! let executor = thread::spawn(move || {
//!     if completer.set_running_or_notify_cancel() {
//!         completer.set_result(6 * 7).unwrap();
//!     }
//! });
//! assert_eq!(future.result(None), Ok(42));
//! assert!(future.done() && !future.cancel());
//! executor.join().unwrap();
//! ```
//!
//! # Differences from CPython
//!
//! - The error type `E` is the user's (the pool's): it must convert from
//!   [`Cancelled`] and [`Timeout`]; there are no exceptions to raise.
//! - [`Future::abort`] stops a running task through the executor's hook; the
//!   executor then ends the future as cancelled (Running -> Cancelled), a
//!   transition CPython does not have.
//! - A cancelled future counts as done for [`wait`] and [`as_completed`] at
//!   once, not only after the executor called `set_running_or_notify_cancel`.
//! - [`Completer::set_running_or_notify_cancel`] returns false instead of
//!   raising on a running or finished future.
//! - A panicking done callback is reported on stderr (no logging dependency).
//! - [`Future::into_result`] moves the outcome out for a `T` that is not `Clone`.
//!
//! # Platforms
//!
//! Any: the crate is plain Rust on `std` and `parking_lot`, with no
//! `unsafe`.
#![forbid(unsafe_code)]

mod as_completed;
mod awaiting;
mod completer;
mod error;
mod future;
mod state;
mod wait;
mod waiter;

pub use as_completed::{as_completed, AsCompleted};
pub use awaiting::AbortOnDrop;
pub use completer::{pair, Completer};
pub use error::{AsCompletedTimeout, Cancelled, InvalidState, Taken, Timeout};
pub use future::Future;
pub use state::{AbortTarget, Deferred, State};
pub use wait::{wait, ReturnWhen, WaitResult};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
