//! procpool: a process pool executor for Rust, with the contract of Python's
//! `concurrent.futures.ProcessPoolExecutor` and tasks that can really be
//! stopped.
//!
//! This is the crate users depend on: a thin facade over
//! `procpool-manager` (the parent's event loop), `procpool-worker` (the
//! child's main loop), `procpool-futures` (the future) and `procpool-ipc`
//! (the wire protocol and typed tasks). It adds the [`Pool`], its
//! [`PoolBuilder`], typed [`Pool::submit`] and [`Pool::map`], and one
//! [`Error`] type.
//!
//! ```text
//!  caller thread                   manager thread (mio)                 worker process (one of N)
//!  -------------                   --------------------                 -------------------------
//!  pool.submit(TASK, args)
//!    Task::encode_args
//!    a place in the backlog        (max_pending: submit waits, try_submit
//!                                   says Full, submit_async awaits)
//!    Manager::submit(Job)  ----->  pending (by priority) -> worker -->  serve_if_worker(tasks):
//!    returns Future<Output>        Call frame on its call pipe          Registry::call (catch_unwind)
//!                                  Done frame on its result pipe <---   Done { output | RemoteError }
//!  fut.result() / .await  <-----   Completion: the output's bytes (Payload) into the future
//!    decodes the output here
//!  fut.abort() ---------------->   SIGTERM to its group, SIGKILL after grace; future cancelled
//!                                  pidfd readable: reap, fail only its task, replace it
//! ```
//!
//! # Example
//!
//! A program is its own worker: the pool re-executes the current binary,
//! whose `main` first calls [`serve_if_worker`].
//!
//! ```no_run
//! use procpool::{Pool, Registry, Task};
//!
//! const SQUARE: Task<u64, u64> = Task::new("square");
//! const DIVIDE: Task<(i64, i64), Result<i64, String>> = Task::new("divide");
//!
//! fn tasks() -> Registry {
//!     Registry::new()
//!         .with(SQUARE, |x| x * x)
//!         .with(DIVIDE, |(a, b)| if b == 0 { Err("division by zero".into()) } else { Ok(a / b) })
//! }
//!
//! fn main() -> Result<(), procpool::Error> {
//!     procpool::serve_if_worker(tasks); // a worker serves here and exits
//!
//!     let pool = Pool::builder().max_workers(2).build()?;
//!     let nine = pool.submit(SQUARE, 3)?;
//!     assert_eq!(nine.result(None)?, 9);
//!     assert_eq!(pool.submit(DIVIDE, (1, 0))?.result(None)?, Err("division by zero".into()));
//!     let squares: Vec<u64> = pool.map(SQUARE, 0..1000, 100)?.collect::<Result<_, _>>()?;
//!     assert_eq!(squares[999], 999 * 999);
//!     Ok(())
//! }
//! ```
//!
//! # Platforms
//!
//! Linux only: the crates below do not build elsewhere (a `compile_error!`
//! says so). Which guarantees hold where:
//!
//! | where | what differs |
//! | ----- | ------------ |
//! | Linux 5.3 and later | everything in these docs: a worker's exit is seen through its pidfd, at once |
//! | Linux before 5.3, or pidfds refused (seccomp) | the same guarantees; a worker's exit is seen as the end of its result pipe, CPython's way (the conformance suite runs this way in CI too) |
//! | glibc before 2.34 (no `posix_spawn_file_actions_addclosefrom_np`) | fds the host leaked without close-on-exec reach a worker until its [`serve_if_worker`] closes them (a worker started with [`PoolBuilder::worker_program`] that is not built on `procpool-worker` keeps them) |
//! | a container without `/proc` | a worker whose output ends cannot be told dying from alive: it is killed at once, as a living one would be; [`PoolBuilder::max_memory_per_child`] reads nothing and recycles no worker |
//! | workers on other machines ([`PoolBuilder::workers_on`] with ssh, `srun`, `kubectl exec`) | no parent-death signal: a worker ends when its stream ends; a stop is a frame the worker obeys, backed by killing the local launcher; [`PoolBuilder::memory_limit`] and `max_memory_per_child` apply on the worker's host |
//!
//! [`PoolBuilder::memory_limit`] is `RLIMIT_AS`: it limits address space,
//! not resident memory, so set it well above what a task touches (a
//! thread's stack and the allocator's arenas count in full).
#![deny(unsafe_code)]

mod builder;
mod completion;
mod error;
mod launcher;
mod map;
mod pool;
mod submit;

pub use builder::PoolBuilder;
pub use error::{Error, OsError};
pub use launcher::Launcher;
pub use map::{MapIter, MapOptions};
pub use pool::Pool;
pub use submit::{SubmitAsync, SubmitOptions};

pub use procpool_futures::{wait, ReturnWhen, State, WaitResult};
pub use procpool_ipc::{ByteBuf, CodecError, CodecOp, PayloadError, Task};
pub use procpool_manager::{ExitInfo, FailurePolicy, Signal, Stats};
pub use procpool_worker::{serve, serve_if_worker, stop_requested, DuplicateTask, Registry};

/// The future every submit returns: CPython's `Future` semantics, awaitable
/// on any runtime, and [`abort`](procpool_futures::Future::abort) to stop
/// the running task.
pub type Future<T> = procpool_futures::Future<T, Error>;

/// Yields each of `futures` once, finished ones first, the rest as they
/// finish (CPython's `as_completed`); when `timeout` passes first, one
/// [`Error::AsCompletedTimeout`] saying how many are unfinished, and the end.
/// The tasks are not touched by the timeout.
pub fn as_completed<'a, T: 'a, I>(
    futures: I,
    timeout: Option<std::time::Duration>,
) -> AsCompleted<T>
where
    I: IntoIterator<Item = &'a Future<T>>,
{
    AsCompleted(procpool_futures::as_completed(futures, timeout))
}

/// The iterator of [`as_completed`].
#[derive(Debug)]
pub struct AsCompleted<T>(procpool_futures::AsCompleted<T, Error>);

impl<T> Iterator for AsCompleted<T> {
    type Item = Result<Future<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|item| item.map_err(Error::from))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<T> std::iter::FusedIterator for AsCompleted<T> {}

/// The README's examples (the crate's README is the repository's), compiled
/// as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

/// A [`Future`] that aborts its task when dropped unfinished: what
/// `tokio::time::timeout(d, fut.abort_on_drop())` needs.
pub type AbortOnDrop<T> = procpool_futures::AbortOnDrop<T, Error>;
