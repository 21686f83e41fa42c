//! What a pool is configured with: the manager's half of the builder.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// What happens to the pool when a worker dies while it runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Only that task fails (worker-died); the worker is replaced and the
    /// pool goes on. procpool's default.
    #[default]
    ReplaceWorker,
    /// CPython's: the whole pool breaks; every pending and running task and
    /// every later submit fails with broken-pool.
    BreakPool,
}

/// How workers of a [`Source`] are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// On this machine, as the pool's children (forked by the fork server,
    /// or spawned): signalled, reaped and watched by pidfd.
    Local,
    /// Through a launcher program: `argv` (`ssh HOST`, `srun ...`,
    /// `kubectl exec -i POD --`, any wrapper), then the worker program and
    /// its arguments. The worker is not the pool's child: its settings go
    /// in its first argument, a task is stopped by a `Stop` frame (backed by
    /// killing the launcher), and the end of its stream is its end.
    Command {
        /// The launcher and its arguments, before the worker's command.
        argv: Vec<OsString>,
        /// The launcher hands the command to a shell (ssh does): the
        /// worker's command is quoted for it.
        through_shell: bool,
    },
}

/// Where some of a pool's workers run, and how many at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its name in messages ("ssh to gpu1", "local").
    pub name: String,
    /// How its workers start.
    pub launch: Launch,
    /// The most workers it runs at once.
    pub slots: usize,
    /// The worker program there; `None`: the pool's
    /// ([`Config::program`], else this executable's path).
    pub program: Option<PathBuf>,
}

impl Source {
    /// This machine, `slots` workers.
    pub fn local(slots: usize) -> Self {
        Self {
            name: "local".to_owned(),
            launch: Launch::Local,
            slots,
            program: None,
        }
    }

    /// Whether its workers are started through a launcher.
    pub fn is_launched(&self) -> bool {
        matches!(self.launch, Launch::Command { .. })
    }
}

/// The manager's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The most worker processes alive at once (at least 1).
    pub max_workers: usize,
    /// A worker exits after this many calls and is replaced.
    pub max_tasks_per_child: Option<u64>,
    /// The initializer's task name and encoded arguments, run once in every
    /// worker before any task.
    pub initializer: Option<(String, Vec<u8>)>,
    /// The worker program; `None` re-executes the current executable.
    pub program: Option<PathBuf>,
    /// Arguments for the worker program.
    pub args: Vec<OsString>,
    /// Changes to the environment workers get, in order: a variable set,
    /// or (`None`) removed.
    pub env: Vec<(OsString, Option<OsString>)>,
    /// Workers start from an empty environment (plus `env` and the pool's
    /// own variables) instead of this process's.
    pub env_clear: bool,
    /// The workers' working directory; `None`: this process's.
    pub cwd: Option<PathBuf>,
    /// What a worker's death does to the pool.
    pub failure_policy: FailurePolicy,
    /// The largest frame either side accepts.
    pub max_frame_len: usize,
    /// The default grace period between SIGTERM and SIGKILL when a running
    /// task is stopped.
    pub grace: Duration,
    /// The default per-task time limit.
    pub time_limit: Option<Duration>,
    /// Worker failures in a row (a start that failed, or a worker that died
    /// or broke the protocol without completing a task it was not running)
    /// after which the pool is declared broken. Between failures, starts
    /// back off: see [`restart_backoff`](Self::restart_backoff).
    pub max_failures_in_a_row: u32,
    /// The wait before the next start after one failure; it doubles with
    /// each failure in a row, up to [`restart_backoff_max`](Self::restart_backoff_max).
    pub restart_backoff: Duration,
    /// The longest wait between starts after failures.
    pub restart_backoff_max: Duration,
    /// How long a started worker may take to say `Hello` (its exec and the
    /// program's start up to `serve_if_worker`) before it is killed.
    pub start_timeout: Duration,
    /// How long a worker may leave a frame unfinished (some of its bytes
    /// arrived, no more for this long) before it is killed.
    pub stall_timeout: Duration,
    /// How long a worker may take to exit once it said `Exiting` or was told
    /// to (its call pipe closed) before it is killed.
    pub exit_timeout: Duration,
    /// Workers started with the pool and kept (replaced when they end, never
    /// retired for idleness), at most `max_workers`. Default 0, as CPython:
    /// a pool starts its workers at the first submits.
    pub min_workers: usize,
    /// A worker with nothing to do for this long exits (unless that would
    /// leave fewer than `min_workers`); it comes back on demand. `None`:
    /// idle workers stay, as CPython's.
    pub idle_timeout: Option<Duration>,
    /// After a call that leaves a worker's resident set above this many
    /// bytes, the worker exits (its result delivered first) and the next
    /// call runs on a fresh one.
    pub max_memory_per_child: Option<u64>,
    /// Each worker's address space is limited to this many bytes
    /// (`RLIMIT_AS`): an allocation past it fails, the worker aborts, and
    /// the call it ran fails with out-of-memory.
    pub memory_limit: Option<u64>,
    /// Where workers run. Empty: this machine, `max_workers` of them. Else
    /// `max_workers` is the sum of the sources' slots.
    pub sources: Vec<Source>,
    /// The most submitted tasks that may wait for a worker (not counting
    /// `map`'s chunks, which have their own bound); a submit past it waits
    /// for room. `None`: no bound.
    pub max_pending: Option<usize>,
    /// Keep a fork server (a started copy of the worker program that forks
    /// new workers), so that replacing a worker costs a fork, not a spawn
    /// and exec. Default true; it falls back to spawning by itself.
    pub forkserver: bool,
    /// The pipe buffer asked for each direction (best effort).
    pub pipe_buffer: usize,
    /// How long the manager thread, a worker that has answered, and a caller
    /// blocked on a result spin (yielding the CPU) before they sleep. Zero:
    /// always sleep. See DESIGN.md "Speed": on this kind of machine a sleep
    /// and wake-up costs tens of microseconds, a yielding spin a few.
    pub spin: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_workers: crate::cpus_available(),
            max_tasks_per_child: None,
            initializer: None,
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            cwd: None,
            failure_policy: FailurePolicy::default(),
            max_frame_len: procpool_ipc::DEFAULT_MAX_FRAME_LEN,
            grace: Duration::from_secs(1),
            time_limit: None,
            max_failures_in_a_row: 5,
            restart_backoff: Duration::from_millis(50),
            restart_backoff_max: Duration::from_secs(5),
            start_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            exit_timeout: Duration::from_secs(3),
            min_workers: 0,
            idle_timeout: None,
            max_memory_per_child: None,
            memory_limit: None,
            max_pending: None,
            sources: Vec::new(),
            forkserver: true,
            pipe_buffer: 1 << 20,
            spin: Duration::from_micros(50),
        }
    }
}

impl Config {
    /// The sources, with the default (this machine, `max_workers`) when
    /// none was given.
    pub fn sources_or_local(&self) -> Vec<Source> {
        if self.sources.is_empty() {
            vec![Source::local(self.max_workers.max(1))]
        } else {
            self.sources.clone()
        }
    }

    /// The wait before the next start after `failures` failures in a row:
    /// [`restart_backoff`](Self::restart_backoff), doubled per failure after
    /// the first, at most [`restart_backoff_max`](Self::restart_backoff_max).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.restart_backoff
            .saturating_mul(1 << doublings)
            .min(self.restart_backoff_max)
    }
}
