//! [`Pool`]: typed submit, stopping, shutdown and statistics.

use crate::error::OsError;
use crate::map::{MapIter, MapOptions};
use crate::{Error, PoolBuilder, Stats};
use procpool_futures::AbortTarget;
use procpool_ipc::Task;
use procpool_manager::{Aborter, Config, Job, Manager, Signal};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A pool of worker processes.
///
/// Tasks are submitted by their typed [`Task`] handle and run in a worker;
/// each submit returns a [`Future`](crate::Future). Dropping the pool shuts it down and
/// waits for running tasks, like leaving CPython's `with` block: give a task
/// that must not hang the program a time limit, or call
/// [`terminate_workers`](Self::terminate_workers).
///
/// # Differences from CPython's `ProcessPoolExecutor`
/// - [`Future::abort`](procpool_futures::Future::abort) stops a running task (SIGTERM, then SIGKILL after the
///   grace period); `cancel` keeps CPython's meaning.
/// - Per-task time limits ([`SubmitOptions::time_limit`](crate::SubmitOptions::time_limit)), priorities, a bounded backlog, memory limits: see [`PoolBuilder`].
/// - A worker that dies fails only its own task with [`Error::WorkerDied`];
///   [`FailurePolicy::BreakPool`](crate::FailurePolicy::BreakPool) restores
///   CPython's broken pool.
/// - Arguments that cannot be encoded, or that are larger than a frame may
///   be, make `submit` return the error; nothing is sent.
/// - A result is decoded by the thread that takes it (`result()`,
///   `into_result`, `.await`, the map iterator), not by the pool's thread: a
///   `Deserialize` that panics fails that future with [`Error::Codec`].
/// - `map` takes a bounded number of chunks ahead of the consumer by default.
///
/// # Nesting
/// A task may build a pool of its own, or run a program that uses procpool
/// as a plain subprocess: the worker takes its settings out of its
/// environment before anything else, so neither takes itself for a worker.
/// The inner pool's workers are the task's children, in process groups of
/// their own, and die with the inner pool (and with the task's worker, which
/// takes its inner pool's thread with it).
pub struct Pool {
    manager: Manager,
    /// What every future's abort calls (one for the pool, not one per
    /// future).
    aborter: Arc<dyn AbortTarget>,
}

/// Stops a job of this pool when its future is aborted.
struct JobAborter(Aborter);

impl AbortTarget for JobAborter {
    fn abort(&self, job: u64) {
        self.0.abort(job);
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A pool with the default settings: as many workers as the available
    /// parallelism, the current executable as the worker program.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`].
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A builder for a pool with other settings.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    pub(crate) fn start(config: Config) -> Result<Self, Error> {
        let manager = Manager::start(config).map_err(|e| Error::Spawn {
            what: "cannot start the pool's manager thread".into(),
            source: OsError(Arc::new(e)),
        })?;
        let aborter = Arc::new(JobAborter(manager.aborter()));
        Ok(Self { manager, aborter })
    }

    pub(crate) fn submit_job(&self, job: Job) -> Result<(), Error> {
        self.manager.submit(job).map_err(Error::from_refused)
    }

    pub(crate) fn manager(&self) -> &Manager {
        &self.manager
    }

    pub(crate) fn aborter(&self) -> &Arc<dyn AbortTarget> {
        &self.aborter
    }

    /// `task` over `inputs`, results in input order, `chunksize` inputs per
    /// call. Inputs are taken lazily, a bounded number of chunks ahead of the
    /// consumer, so an endless iterator works.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunksize` of 0. Failures of single
    /// elements come out of the iterator, at their element.
    pub fn map<A, O, I>(
        &self,
        task: Task<A, O>,
        inputs: I,
        chunksize: usize,
    ) -> Result<MapIter<'_, A, O, I::IntoIter>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_with(task, inputs, MapOptions::new().chunksize(chunksize))
    }

    /// [`map`](Self::map) with a timeout and a lookahead of its own.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunksize` or `buffersize` of 0.
    pub fn map_with<A, O, I>(
        &self,
        task: Task<A, O>,
        inputs: I,
        options: MapOptions,
    ) -> Result<MapIter<'_, A, O, I::IntoIter>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        MapIter::new(self, task, inputs.into_iter(), options)
    }

    /// Takes no more tasks. With `cancel_futures`, tasks not yet started are
    /// cancelled; the rest run to the end. With `wait`, returns once every
    /// worker has exited and been reaped. Calling it again is harmless.
    ///
    /// Without `wait`, the pool finishes its work on its own thread after it
    /// is dropped, and the program waits for that thread when it exits (as
    /// CPython's interpreter joins its executors' threads): a task handed
    /// to the pool is not cut off by `main` returning. A task that must not
    /// hold the program's exit carries a time limit.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.manager.shutdown(wait, cancel_futures);
    }

    /// Shuts down, cancels the tasks not started, and stops every worker:
    /// SIGTERM to each worker's process group, SIGKILL after the grace
    /// period. Running tasks end cancelled. Returns once all are reaped.
    /// (CPython 3.14's `terminate_workers`.)
    pub fn terminate_workers(&self) {
        self.manager.signal_workers(Signal::TERM);
    }

    /// As [`terminate_workers`](Self::terminate_workers), with SIGKILL at
    /// once, to every worker: running, idle or starting. (CPython 3.14's
    /// `kill_workers`.)
    pub fn kill_workers(&self) {
        self.manager.signal_workers(Signal::KILL);
    }

    /// Shuts down and waits at most `deadline` for running tasks; whatever
    /// still runs then is stopped (SIGTERM, SIGKILL after the grace period).
    /// Tasks not started are cancelled when `cancel_futures` is set.
    pub fn shutdown_within(&self, deadline: Duration, cancel_futures: bool) {
        self.manager.shutdown_within(deadline, cancel_futures);
    }

    /// A snapshot of the pool's counters.
    pub fn stats(&self) -> Stats {
        self.manager.stats()
    }
}
