//! One worker process as the manager holds it: the child, its pipes, its
//! sentinel, its frames in both directions and the job it runs.
//!
//! | `phase`    | meaning                                   | next                          |
//! |------------|-------------------------------------------|-------------------------------|
//! | `Starting` | spawned, no `Hello` yet; not idle         | `Ready` on Hello; dead        |
//! | `Ready`    | serving; idle when `in_flight` is empty   | `Retiring`; dead              |
//! | `Retiring` | will get no more calls (recycling, shut-  | dead (reaped)                 |
//! |            | down, protocol breach, stop); may still   |                               |
//! |            | run its last job                          |                               |

use crate::config::Config;
use crate::job::Completion;
use crate::sys::{self, Pidfd};
use crate::Error;
use procpool_ipc::{env, CallFrame, Decoder};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Where a worker is in its life; see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Ready,
    Retiring,
}

/// Why a running job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `abort()`, or the pool's terminate/kill: the future ends cancelled.
    Aborted,
    /// The job's time limit passed: the future fails with `TimedOut`.
    TimedOut(Duration),
}

/// A job sent to a worker: the first of a worker's in-flight jobs is
/// running, the others wait in its call pipe (its window).
pub(crate) struct InFlight {
    pub(crate) id: u64,
    pub(crate) task: &'static str,
    pub(crate) kind: procpool_ipc::CallKind,
    /// The call frame, written straight from here; kept until the job ends,
    /// so a job that never started can be sent to another worker if this
    /// one dies.
    pub(crate) frame: CallFrame,
    /// `None` once the future has been completed early (a job cancelled
    /// while it waited in the window): its `Done` is then discarded.
    pub(crate) completion: Option<Box<dyn Completion>>,
    pub(crate) grace: Duration,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) stop: Option<StopReason>,
    /// Its task's expected run time when it was sent, if known to be short.
    pub(crate) cost: Option<Duration>,
}

pub(crate) struct Worker {
    /// Distinguishes this process from an earlier one in the same slot, for
    /// timers that outlive it.
    pub(crate) serial: u64,
    pub(crate) process: Process,
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<Pidfd>,
    pub(crate) calls: Option<mio::unix::pipe::Sender>,
    pub(crate) calls_registered: bool,
    pub(crate) results: Option<mio::unix::pipe::Receiver>,
    pub(crate) decoder: Decoder,
    /// How many of `in_flight`'s frames are fully written, and how many bytes
    /// of the next one.
    pub(crate) written: usize,
    pub(crate) partial: usize,
    pub(crate) phase: Phase,
    /// Jobs sent, in order: the front one runs (since `head_started`).
    pub(crate) in_flight: std::collections::VecDeque<InFlight>,
    pub(crate) head_started: std::time::Instant,
    /// The summed `cost` of `in_flight`, and how many of them have none
    /// (unknown or long): a window only grows behind short, known work.
    pub(crate) known_load: Duration,
    pub(crate) unknown_load: usize,
    pub(crate) served: u64,
    /// Its `Hello` has arrived (only one may).
    pub(crate) said_hello: bool,
    /// Set when the worker must die (protocol breach, stopped task): the
    /// error its job fails with, if the job is not stopped for another reason.
    pub(crate) failure: Option<Error>,
    /// Whether its process group was sent SIGKILL.
    pub(crate) killed: bool,
    /// A replacement was started when it was killed: it no longer counts
    /// towards `max_workers`, and its reaping starts no other.
    pub(crate) replaced: bool,
    /// The worker said `Exiting` or was told to: its end is expected.
    pub(crate) orderly_exit: bool,
}

impl Worker {
    /// Adds a job to the window, keeping the load counts.
    pub(crate) fn push_job(&mut self, job: InFlight) {
        match job.cost {
            Some(cost) => self.known_load += cost,
            None => self.unknown_load += 1,
        }
        self.in_flight.push_back(job);
    }

    /// Takes the running job off the window, keeping the load counts.
    pub(crate) fn pop_job(&mut self) -> Option<InFlight> {
        let job = self.in_flight.pop_front()?;
        self.forget_load(&job);
        if self.written > 0 {
            self.written -= 1;
        } else {
            self.partial = 0;
        }
        Some(job)
    }

    /// The unwritten parts of the call frames, in order (at most 64 slices,
    /// what one `writev` takes comfortably).
    pub(crate) fn unwritten_slices(&self) -> Vec<std::io::IoSlice<'_>> {
        let mut slices = Vec::new();
        for (i, job) in self
            .in_flight
            .iter()
            .enumerate()
            .skip(self.written)
            .take(64)
        {
            let bytes = job.frame.bytes();
            let from = if i == self.written { self.partial } else { 0 };
            slices.push(std::io::IoSlice::new(&bytes[from.min(bytes.len())..]));
        }
        slices
    }

    /// Records that `n` more bytes of the call frames were written.
    pub(crate) fn advance_written(&mut self, mut n: usize) {
        while n > 0 && self.written < self.in_flight.len() {
            let left = self.in_flight[self.written].frame.bytes().len() - self.partial;
            if n >= left {
                n -= left;
                self.written += 1;
                self.partial = 0;
            } else {
                self.partial += n;
                n = 0;
            }
        }
    }

    /// Gives up writing: the worker will read no more.
    pub(crate) fn mark_all_written(&mut self) {
        self.written = self.in_flight.len();
        self.partial = 0;
    }

    /// Takes every job but the running one off the window. Only for a
    /// worker that will read no further calls (it is exiting or dying): a
    /// frame it was in the middle of receiving is abandoned.
    pub(crate) fn drain_waiting(&mut self) -> Vec<InFlight> {
        let from = self.in_flight.len().min(1);
        let waiting: Vec<InFlight> = self.in_flight.drain(from..).collect();
        for job in &waiting {
            self.forget_load(job);
        }
        if self.written > self.in_flight.len()
            || (self.written == self.in_flight.len() && self.partial > 0)
        {
            self.mark_all_written();
        }
        waiting
    }

    fn forget_load(&mut self, job: &InFlight) {
        match job.cost {
            Some(cost) => self.known_load = self.known_load.saturating_sub(cost),
            None => self.unknown_load = self.unknown_load.saturating_sub(1),
        }
    }

    /// Whether a job costing `cost` fits in the window under `budget`; the
    /// load it would make.
    pub(crate) fn window_room(
        &self,
        cost: Duration,
        budget: Duration,
        max_jobs: usize,
        max_tasks: Option<u64>,
    ) -> Option<Duration> {
        // A recycling worker runs only so many more calls: never queue one it
        // will not reach.
        let will_run = max_tasks.map_or(u64::MAX, |m| m.saturating_sub(self.served));
        if self.in_flight.len() as u64 + 1 > will_run
            || self.phase != Phase::Ready
            || self.calls.is_none()
            || self.unknown_load > 0
            || self.in_flight.len() >= max_jobs
            || self
                .in_flight
                .front()
                .is_some_and(|head| head.stop.is_some())
        {
            return None;
        }
        let load = self.known_load + cost;
        (load <= budget).then_some(load)
    }

    /// Starts a worker process: call pipe on its stdin, result pipe on its
    /// stdout, its own process group, the settings in its environment.
    ///
    /// Runs on the spawner thread, which lives as long as the manager: the
    /// worker's parent-death signal fires when the thread that spawned it
    /// exits.
    pub(crate) fn spawn(config: &Config, serial: u64) -> Result<Self, Error> {
        let (mut command, program) = worker_command(config)?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|e| Error::Spawn(format!("{}: {e}", program.display())))?;
        let pid = child.id();
        let calls = OwnedFd::from(child.stdin.take().expect("stdin was piped"));
        let results = OwnedFd::from(child.stdout.take().expect("stdout was piped"));
        Self::assemble(config, serial, Process::Spawned(child), pid, calls, results)
    }

    /// Forks a worker from the fork server: a millisecond less than
    /// [`spawn`](Self::spawn), the exec and the program's start being done.
    pub(crate) fn fork(
        forkserver: &mut crate::forkserver::Forkserver,
        config: &Config,
        serial: u64,
    ) -> Result<Self, Error> {
        let pipes = sys::pipe().and_then(|calls| Ok((calls, sys::pipe()?)));
        let ((calls_read, calls_write), (results_read, results_write)) =
            pipes.map_err(|e| Error::Spawn(format!("cannot make a worker's pipes: {e}")))?;
        let pid = forkserver
            .fork(serial, [&calls_read, &results_write])
            .map_err(|e| Error::Spawn(format!("the fork server: {e}")))?;
        // The worker's ends are the worker's now.
        drop((calls_read, results_write));
        Self::assemble(
            config,
            serial,
            Process::Forked { pid, status: None },
            pid,
            calls_write,
            results_read,
        )
    }

    /// A worker whose process `pid` is running, from our ends of its pipes.
    fn assemble(
        config: &Config,
        serial: u64,
        mut process: Process,
        pid: u32,
        calls: OwnedFd,
        results: OwnedFd,
    ) -> Result<Self, Error> {
        let setup = (|| {
            let calls = mio::unix::pipe::Sender::from(calls);
            let results = mio::unix::pipe::Receiver::from(results);
            calls.set_nonblocking(true)?;
            results.set_nonblocking(true)?;
            sys::grow_pipe(&calls, config.pipe_buffer);
            sys::grow_pipe(&results, config.pipe_buffer);
            let pidfd = Pidfd::open(pid)?;
            Ok::<_, std::io::Error>((calls, results, pidfd))
        })();
        let (calls, results, pidfd) = match setup {
            Ok(parts) => parts,
            Err(e) => {
                // Hand nothing half-made back: kill and reap the child here.
                let _ = sys::signal_group(pid, libc::SIGKILL);
                let _ = process.wait();
                return Err(Error::Spawn(format!("setting up worker {pid}: {e}")));
            }
        };
        Ok(Self {
            serial,
            process,
            pid,
            pidfd,
            calls: Some(calls),
            calls_registered: false,
            results: Some(results),
            decoder: Decoder::with_max_frame_len(config.max_frame_len),
            written: 0,
            partial: 0,
            phase: Phase::Starting,
            in_flight: std::collections::VecDeque::new(),
            head_started: std::time::Instant::now(),
            known_load: Duration::ZERO,
            unknown_load: 0,
            served: 0,
            said_hello: false,
            failure: None,
            killed: false,
            replaced: false,
            orderly_exit: false,
        })
    }

    /// Sends `signal` to the worker's whole process group (the task's own
    /// children too). Only valid before the worker is reaped.
    pub(crate) fn signal(&mut self, signal: i32) {
        if signal == libc::SIGKILL {
            if self.killed {
                return;
            }
            self.killed = true;
        }
        if let Err(e) = sys::signal_group(self.pid, signal) {
            log::warn!("procpool: signal {signal} to worker {}: {e}", self.pid);
            // The group call failed; at least reach the worker itself.
            if let Some(pidfd) = &self.pidfd {
                let _ = pidfd.send_signal(signal);
            }
        }
    }
}

/// The command that starts the worker program as `config` says (no stdio
/// set), and the program's path.
pub(crate) fn worker_command(config: &Config) -> Result<(Command, PathBuf), Error> {
    let program = match &config.program {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| Error::Spawn(format!("cannot find the current executable: {e}")))?,
    };
    let mut command = Command::new(&program);
    command
        .args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env(env::WORKER, env::WORKER_MODE)
        .env(env::PARENT_PID, std::process::id().to_string())
        .env(env::MAX_FRAME_LEN, config.max_frame_len.to_string())
        .env_remove(env::FORKSERVER);
    // std keeps its posix_spawn fast path for a process group (no pre_exec
    // closure here on purpose).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    match config.max_tasks_per_child {
        Some(n) => command.env(env::MAX_TASKS, n.to_string()),
        None => command.env_remove(env::MAX_TASKS),
    };
    match &config.initializer {
        Some((name, args)) => command
            .env(env::INITIALIZER, name)
            .env(env::INITIALIZER_ARGS, env::hex_encode(args)),
        None => command
            .env_remove(env::INITIALIZER)
            .env_remove(env::INITIALIZER_ARGS),
    };
    Ok((command, program))
}

/// A worker's process: spawned by std, or forked by the fork server (a
/// child of ours all the same, thanks to `CLONE_PARENT`, reaped by pid).
pub(crate) enum Process {
    Spawned(Child),
    Forked {
        pid: u32,
        /// Kept once reaped: the pid is not ours to wait for again.
        status: Option<ExitStatus>,
    },
}

impl Process {
    /// Waits for the process to exit.
    pub(crate) fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Self::Spawned(child) => child.wait(),
            Self::Forked { pid, status } => match status {
                Some(done) => Ok(*done),
                None => {
                    let done = sys::wait_child(*pid, true)?
                        .ok_or_else(|| std::io::Error::other("a blocking wait returned early"))?;
                    *status = Some(done);
                    Ok(done)
                }
            },
        }
    }

    /// Its exit status if it has exited, without blocking.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Self::Spawned(child) => child.try_wait(),
            Self::Forked { pid, status } => {
                if status.is_none() {
                    *status = sys::wait_child(*pid, false)?;
                }
                Ok(*status)
            }
        }
    }
}
