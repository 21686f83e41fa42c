//! [`PoolBuilder`]: every setting of a pool, checked when it is built.

use crate::{Error, FailurePolicy, Pool};
use procpool_ipc::Task;
use procpool_manager::Config;
use serde::Serialize;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The smallest [`PoolBuilder::memory_limit`]: below it, a worker cannot
/// map its own program and threads.
const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// Builds a [`Pool`].
///
/// ```no_run
/// # use std::time::Duration;
/// let pool = procpool::Pool::builder()
///     .max_workers(4)
///     .max_tasks_per_child(100)
///     .time_limit(Duration::from_secs(30))
///     .build()?;
/// # Ok::<(), procpool::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PoolBuilder {
    config: Config,
    max_workers: Option<usize>,
    max_tasks_per_child: Option<u64>,
    max_pending: Option<usize>,
    error: Option<Error>,
}

impl PoolBuilder {
    /// The most worker processes alive at once. Default: the available
    /// parallelism. 0 is an invalid argument.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Runs up to `slots` workers through `launcher`: this machine, ssh to
    /// a host, a command prefix (srun, `kubectl exec`). Called once per
    /// place; the pool then runs as many workers as the slots add up to
    /// (and [`max_workers`](Self::max_workers) may not be set as well).
    /// Tasks go to whichever worker is free; new workers start on the
    /// first place, in the order given, that has a free slot. A place whose
    /// workers keep failing (a host down, a key refused) is given up after
    /// [`max_failures_in_a_row`](Self::max_failures_in_a_row), and the
    /// pool goes on with the others. Without this, workers run on this
    /// machine only.
    pub fn workers_on(mut self, launcher: crate::Launcher, slots: usize) -> Self {
        self.config.sources.push(launcher.into_source(slots));
        self
    }

    /// Each worker exits after this many calls (a `map` chunk is one call) and
    /// is replaced. 0 is an invalid argument.
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// A task every worker runs once before any other, with `args`. If it
    /// panics (or, registered with `Registry::register_initializer`, returns
    /// `Err`), the pool breaks: pending and later tasks fail with
    /// [`Error::BrokenPool`] carrying the cause.
    pub fn initializer<A: Serialize, O>(mut self, task: Task<A, O>, args: &A) -> Self {
        let mut bytes = Vec::new();
        match task.encode_args(args, &mut bytes) {
            Ok(()) => self.config.initializer = Some((task.name().to_owned(), bytes)),
            Err(e) => self.error = Some(e.into()),
        }
        self
    }

    /// The worker program. Default: the current executable, re-executed
    /// (its `main` must call [`serve_if_worker`](crate::serve_if_worker)
    /// first).
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.config.program = Some(program.into());
        self
    }

    /// Arguments for the worker program.
    pub fn worker_args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// An environment variable for the workers. Later calls for the same
    /// variable (this, or [`worker_env_remove`](Self::worker_env_remove))
    /// win.
    pub fn worker_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.config.env.push((key.into(), Some(value.into())));
        self
    }

    /// A variable of this process's environment that workers do not get.
    pub fn worker_env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.config.env.push((key.into(), None));
        self
    }

    /// Workers start from an empty environment: only the variables set
    /// with [`worker_env`](Self::worker_env) (and the pool's own, which the
    /// worker takes out of its environment at once).
    pub fn worker_env_clear(mut self) -> Self {
        self.config.env_clear = true;
        self.config.env.clear();
        self
    }

    /// The directory workers start in. Default: this process's. It must
    /// exist when the pool is built. A relative
    /// [`worker_program`](Self::worker_program) path is taken from this
    /// process's directory, not the workers'.
    pub fn worker_cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cwd = Some(dir.into());
        self
    }

    /// What a worker's death does to the pool. Default:
    /// [`FailurePolicy::ReplaceWorker`].
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.config.failure_policy = policy;
        self
    }

    /// The largest frame (encoded arguments or output plus a few bytes)
    /// either side accepts. Default 64 MiB.
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.config.max_frame_len = bytes;
        self
    }

    /// How long a task being stopped gets between SIGTERM (which it can see
    /// through [`stop_requested`](crate::stop_requested)) and SIGKILL.
    /// Default 1 s; zero kills at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// A time limit for every task, counted from its start; a task past it is
    /// stopped and fails with [`Error::TimedOut`]. Default: none.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.config.time_limit = Some(limit);
        self
    }

    /// Workers kept warm: started with the pool (they exist when
    /// [`build`](Self::build) returns), replaced when they end, and never
    /// retired by the [`idle_timeout`](Self::idle_timeout). At most
    /// `max_workers`. The first task then does not wait for a process start
    /// (about a millisecond, more for a large program). Default 0, as
    /// CPython: workers start at the first submits.
    pub fn min_workers(mut self, workers: usize) -> Self {
        self.config.min_workers = workers;
        self
    }

    /// A worker with nothing to do for this long exits (but for the
    /// [`min_workers`](Self::min_workers)); workers come back when tasks
    /// do. Default: none, idle workers stay (as CPython's). A pool that is
    /// busy in bursts gives its memory back between them (loky's default
    /// is 300 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// How many tasks may wait for a worker (not yet running) before
    /// [`submit`](Pool::submit) blocks, [`try_submit`](Pool::try_submit)
    /// returns [`Error::Full`] and [`submit_async`](Pool::submit_async)
    /// waits: a producer faster than the workers is held back instead of
    /// queueing without limit. `map` is not counted: it bounds itself
    /// (`buffersize`). Default: no bound, as CPython. 0 is an invalid
    /// argument.
    pub fn max_pending(mut self, tasks: usize) -> Self {
        self.max_pending = Some(tasks);
        self
    }

    /// A worker whose resident memory is above `bytes` after a task exits
    /// (the task's result is delivered first) and the next task runs on a
    /// fresh worker: a task that leaks, or a heap that never shrinks, does
    /// not grow a worker without end (Celery's `max_memory_per_child`).
    /// Checked after each call, in the worker (a `map` chunk is one call).
    pub fn max_memory_per_child(mut self, bytes: u64) -> Self {
        self.config.max_memory_per_child = Some(bytes);
        self
    }

    /// A hard cap: each worker's address space is limited to `bytes`
    /// (`RLIMIT_AS`). An allocation past it fails; Rust then aborts the
    /// worker, and the task it ran fails with [`Error::OutOfMemory`] (not an
    /// anonymous SIGABRT); the pool goes on with a fresh worker. Address
    /// space is more than resident memory (thread stacks, the allocator's
    /// reserved arenas, mapped files all count): leave a few hundred MiB of
    /// room over what tasks use. At least 16 MiB.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit = Some(bytes);
        self
    }

    /// Whether the pool keeps a fork server: a started copy of the worker
    /// program (its registry built, before any initializer) from which
    /// workers are forked. It starts in place of the pool's first worker,
    /// which is its first fork (about 0.1 ms later than a spawned one);
    /// every later worker, and every replacement of one killed, crashed or
    /// recycled, is a fork of it too (a fraction of a millisecond, against a
    /// millisecond or more for a spawn and exec of the program), and a fork
    /// has a smaller resident set (it maps only the code it runs, not what
    /// the program's start touched). It costs one process; the pool falls
    /// back to spawning when it cannot start or fails. Default true.
    ///
    /// The fork server builds the registry once and its forks inherit it, so
    /// what building the registry opens (a connection, a file) would be
    /// shared by the forked workers: per-worker resources belong in the
    /// [`initializer`](Self::initializer), which every worker runs itself.
    /// Building the registry must not start threads (a fork server with
    /// threads refuses to serve, and workers are spawned).
    pub fn fork_server(mut self, enabled: bool) -> Self {
        self.config.forkserver = enabled;
        self
    }

    /// How long the pool's threads and workers spin (yielding the CPU)
    /// before they sleep while waiting for the next event: a call that
    /// answers within it costs a few microseconds instead of two sleeps and
    /// wake-ups. Default 50 µs; zero always sleeps (least CPU).
    pub fn spin(mut self, budget: Duration) -> Self {
        self.config.spin = budget;
        self
    }

    /// How long a started worker may take to say it is ready (its exec and
    /// the program's start, up to `serve_if_worker`) before it is killed and
    /// counted as a failed start. Default 10 s.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.config.start_timeout = timeout;
        self
    }

    /// How long a worker may leave a message half sent (some of its bytes
    /// arrived, then none for this long) before it is killed; its task fails
    /// with [`Error::Protocol`]. Default 10 s.
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.config.stall_timeout = timeout;
        self
    }

    /// How long a worker may take to exit when it has to (told to at
    /// shutdown or retirement, or after saying it would) before it is
    /// killed. Default 3 s.
    pub fn exit_timeout(mut self, timeout: Duration) -> Self {
        self.config.exit_timeout = timeout;
        self
    }

    /// The crash-loop guard: after this many worker failures in a row (a
    /// start that failed, or a worker that died or broke the protocol
    /// without completing a task and not while running one), the pool
    /// breaks with the last cause. Default 5; at least 1.
    pub fn max_failures_in_a_row(mut self, n: u32) -> Self {
        self.config.max_failures_in_a_row = n;
        self
    }

    /// The wait before starting a worker again after a failure, doubled per
    /// failure in a row up to `max`. Default 50 ms, at most 5 s.
    pub fn restart_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.config.restart_backoff = first;
        self.config.restart_backoff_max = max;
        self
    }

    /// Starts the pool: its manager thread, and the
    /// [`min_workers`](Self::min_workers); the others start on demand.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a setting that makes no sense, or when
    /// called inside a worker process that did not serve; [`Error::Spawn`]
    /// when the manager thread cannot start.
    pub fn build(mut self) -> Result<Pool, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if procpool_worker::Settings::is_worker() {
            return Err(Error::InvalidArgument(
                "this process was started as a procpool worker but is building a pool: \
                 call procpool::serve_if_worker(..) first thing in main"
                    .into(),
            ));
        }
        if !self.config.sources.is_empty() && self.max_workers.is_some() {
            return Err(Error::InvalidArgument(
                "max_workers and workers_on both set: with workers_on, the pool runs as many \
                 workers as the slots add up to"
                    .into(),
            ));
        }
        if let Some(source) = self.config.sources.iter().find(|s| s.slots == 0) {
            return Err(Error::InvalidArgument(format!(
                "workers_on {} with 0 slots",
                source.name
            )));
        }
        match self.max_workers {
            Some(0) => {
                return Err(Error::InvalidArgument(
                    "max_workers must be at least 1".into(),
                ))
            }
            Some(n) => self.config.max_workers = n,
            None => {}
        }
        match self.max_tasks_per_child {
            Some(0) => {
                return Err(Error::InvalidArgument(
                    "max_tasks_per_child must be at least 1".into(),
                ))
            }
            n => self.config.max_tasks_per_child = n,
        }
        if self.config.max_failures_in_a_row == 0 {
            return Err(Error::InvalidArgument(
                "max_failures_in_a_row must be at least 1".into(),
            ));
        }
        match self.max_pending {
            Some(0) => {
                return Err(Error::InvalidArgument(
                    "max_pending must be at least 1".into(),
                ))
            }
            n => self.config.max_pending = n,
        }
        if let Some(bytes) = self.config.memory_limit {
            if bytes < MIN_MEMORY_LIMIT {
                return Err(Error::InvalidArgument(format!(
                    "a memory_limit of {bytes} bytes leaves a worker no room to start \
                     (at least {MIN_MEMORY_LIMIT})"
                )));
            }
        }
        if self.config.max_memory_per_child == Some(0) {
            return Err(Error::InvalidArgument(
                "max_memory_per_child must be at least 1 byte".into(),
            ));
        }
        if self.config.idle_timeout == Some(Duration::ZERO) {
            return Err(Error::InvalidArgument(
                "idle_timeout must be more than zero".into(),
            ));
        }
        if let Some(dir) = &self.config.cwd {
            if !dir.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "worker_cwd {} is not a directory",
                    dir.display()
                )));
            }
        }
        if self.config.max_frame_len < 64 {
            return Err(Error::InvalidArgument(format!(
                "max_frame_len of {} bytes is too small for any message",
                self.config.max_frame_len
            )));
        }
        Pool::start(self.config)
    }
}
