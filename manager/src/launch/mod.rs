//! Starting worker processes: forked by the fork server when it is ready,
//! else spawned; and the fork server itself, started again (lazily, with
//! back-off) when it dies.
//!
//! ```text
//!  Launcher::start ──▶ fork server ready? ──yes──▶ Forkserver::fork (pipes in, pid out)
//!                         │ no (starting, dead, off)
//!                         └──▶ sys::spawn (posix_spawnp: own group, fds 0-2 + channel)
//!                              and, if the server is gone and its back-off is over,
//!                              Forkserver::start (not waited for)
//! ```
//!
//! A [`Launcher`] is shared by the manager thread and the spawner thread
//! ([`spawner`]), which starts workers while jobs are in flight.

mod command;
mod forkserver;
mod launched;
mod process;
pub(crate) mod spawner;

pub(crate) use launched::StderrTail;
pub(crate) use process::Process;

use crate::config::{Config, Source};
use crate::sys;
use forkserver::Forkserver;
use parking_lot::Mutex;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A started worker process and our ends of its pipes.
pub(crate) struct Started {
    pub(crate) process: Process,
    /// The call pipe's write end (its stdin).
    pub(crate) calls: OwnedFd,
    /// The result pipe's read end (its stdout).
    pub(crate) results: OwnedFd,
    /// Forked by the fork server (else spawned or launched).
    pub(crate) forked: bool,
    /// The index of its source.
    pub(crate) source: usize,
    /// A launched worker's stderr, as it arrives (`None`: a local worker,
    /// whose stderr is this process's).
    pub(crate) stderr: Option<Arc<StderrTail>>,
}

/// Why a worker could not be started.
#[derive(Debug)]
pub(crate) struct StartError {
    pub(crate) what: String,
    pub(crate) source: io::Error,
}

impl StartError {
    pub(crate) fn new(what: impl Into<String>, source: io::Error) -> Self {
        Self {
            what: what.into(),
            source,
        }
    }

    /// Whether it may pass by itself (out of fds, processes or memory for
    /// now): the start is retried with back-off rather than breaking the
    /// pool at once.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM | libc::EINTR)
        )
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

/// The fork server, if any, and how its failures went.
struct ServerSlot {
    server: Option<Forkserver>,
    /// Failures in a row (it would not start, greet or fork).
    failures: u32,
    /// No new server before this, after a failure.
    retry_at: Option<Instant>,
    /// It will never work (off, another version, too many failures).
    given_up: bool,
}

/// How long the pool's first start waits for a starting fork server's
/// greeting before it spawns its worker instead: a program greets in a
/// millisecond or two (an exec and its start), and the thread that waits
/// (the manager's) has nothing else to do yet but must stay free for
/// commands.
const FIRST_FORK_WAIT: Duration = Duration::from_millis(100);

/// Starts workers as the pool's config says.
pub(crate) struct Launcher {
    config: Config,
    sources: Vec<Source>,
    server: Mutex<ServerSlot>,
    serial: AtomicU64,
    /// The fork server's pid while one runs (0: none), readable without the
    /// lock, so that [`stop`](Self::stop) can end a server that a start is
    /// waiting on while it holds the lock.
    server_pid: AtomicU32,
    /// The pool is going away: no more starts.
    stopping: AtomicBool,
}

impl Launcher {
    pub(crate) fn new(config: Config) -> Self {
        let sources = config.sources_or_local();
        // The fork server serves local workers only.
        let given_up = !config.forkserver || sources.iter().all(Source::is_launched);
        Self {
            config,
            sources,
            server: Mutex::new(ServerSlot {
                server: None,
                failures: 0,
                retry_at: None,
                given_up,
            }),
            serial: AtomicU64::new(0),
            server_pid: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// Starts a worker: forked when the fork server is ready, else spawned.
    /// With `wait_for_server`, a fork server that is starting (or started
    /// now) is waited for a little ([`FIRST_FORK_WAIT`]) rather than passed
    /// by: the pool's first start, so that it too is a fork.
    pub(crate) fn start(
        &self,
        source: usize,
        wait_for_server: bool,
    ) -> Result<Started, StartError> {
        let spec = self.sources.get(source).ok_or_else(|| {
            StartError::new(
                format!("no source {source}"),
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        if spec.is_launched() {
            if self.stopping.load(Ordering::SeqCst) {
                return Err(Self::stopping_error());
            }
            return launched::launch(&self.config, source, spec);
        }
        if let Some(started) = self.try_fork(wait_for_server) {
            return Ok(Started { source, ..started });
        }
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Self::stopping_error());
        }
        self.spawn().map(|started| Started { source, ..started })
    }

    fn stopping_error() -> StartError {
        StartError::new(
            "the pool is stopping",
            io::Error::from(io::ErrorKind::Interrupted),
        )
    }

    /// A fork from the fork server, starting the server first when it is
    /// gone and its back-off is over; `None` when there is none ready (the
    /// worker is then spawned).
    fn try_fork(&self, wait_for_server: bool) -> Option<Started> {
        let mut slot = self.server.lock();
        if slot.given_up || self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        if slot.server.is_none() && slot.retry_at.is_none_or(|at| Instant::now() >= at) {
            match Forkserver::start(&self.config) {
                Ok(server) => {
                    log::debug!("procpool: started fork server {}", server.pid());
                    self.server_pid.store(server.pid(), Ordering::SeqCst);
                    if self.stopping.load(Ordering::SeqCst) {
                        // `stop` may have looked for the pid before it was
                        // stored: do not wait on this server.
                        return None;
                    }
                    slot.server = Some(server);
                }
                Err(e) => {
                    self.server_failed(&mut slot, &e.source, &format!("it did not start: {e}"));
                    return None;
                }
            }
        }
        let server = slot.server.as_mut()?;
        // The pool's first start waits a little for a server that is
        // starting, so that it too is a fork; never long, since the server
        // is the user's program starting up (a slow one gets its first
        // worker spawned, and the next forked).
        let wait = if wait_for_server {
            FIRST_FORK_WAIT
        } else {
            Duration::ZERO
        };
        let outcome = match server.ready_within(wait) {
            Ok(false) => return None,
            Ok(true) => self.fork(server),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(started) => {
                slot.failures = 0;
                Some(started)
            }
            Err(e) => {
                // Dropping the server kills and reaps it.
                slot.server = None;
                self.server_pid.store(0, Ordering::SeqCst);
                self.server_failed(&mut slot, &e, &e.to_string());
                None
            }
        }
    }

    /// Counts a failure of the fork server and sets when the next may start.
    fn server_failed(&self, slot: &mut ServerSlot, error: &io::Error, what: &str) {
        slot.failures += 1;
        let another_program = error.kind() == io::ErrorKind::InvalidData;
        if another_program || slot.failures >= self.config.max_failures_in_a_row {
            slot.given_up = true;
            log::warn!("procpool: the fork server failed ({what}); workers will be spawned");
        } else {
            let wait = self.config.backoff_after(slot.failures);
            slot.retry_at = Some(Instant::now() + wait);
            log::info!(
                "procpool: the fork server failed ({what}); workers are spawned, \
                 another server starts in {wait:?} at the earliest"
            );
        }
    }

    fn fork(&self, server: &mut Forkserver) -> io::Result<Started> {
        let ((calls_read, calls_write), (results_read, results_write)) = pipes()?;
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let forked = server.fork(serial, [&calls_read, &results_write]);
        // The worker's ends are the worker's now (if there is a worker).
        drop((calls_read, results_write));
        let pid = match forked {
            Ok(pid) => pid,
            Err(e) => {
                forkserver::reap_unanswered_fork(&results_read);
                return Err(e);
            }
        };
        if !sys::is_child(pid) {
            // A wrapper program stands between us and the server, so its
            // forks are the wrapper's children, which we could not reap:
            // no fork server for this pool.
            let _ = sys::signal_group(pid, libc::SIGKILL);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "its forks are not children of the pool (a wrapper program starts it)",
            ));
        }
        Ok(Started {
            process: Process::new(pid),
            calls: calls_write,
            results: results_read,
            forked: true,
            source: 0,
            stderr: None,
        })
    }

    /// Spawns the worker program (an exec: a millisecond or more).
    fn spawn(&self) -> Result<Started, StartError> {
        let ((calls_read, calls_write), (results_read, results_write)) =
            pipes().map_err(|e| StartError::new("cannot make a worker's pipes", e))?;
        let (spec, program) = command::spawn_spec(&self.config, false)
            .map_err(|e| StartError::new("cannot build the worker's command", e))?;
        let pid = sys::spawn(&spec, &calls_read, &results_write)
            .map_err(|e| StartError::new(program.display().to_string(), e))?;
        Ok(Started {
            process: Process::new(pid),
            calls: calls_write,
            results: results_read,
            forked: false,
            source: 0,
            stderr: None,
        })
    }

    /// The pool is going away: no more starts, and a start waiting on the
    /// fork server (its greeting, or a fork's answer) ends at once, the
    /// server being killed under it. Then the server is reaped.
    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let pid = self.server_pid.swap(0, Ordering::SeqCst);
        if pid != 0 {
            // It leads a group of its own; reaped below, under the lock.
            let _ = sys::signal_group(pid, libc::SIGKILL);
        }
        let mut slot = self.server.lock();
        slot.given_up = true;
        slot.server = None;
    }
}

/// A worker's call pipe and result pipe, each (read end, write end).
type Pipes = ((OwnedFd, OwnedFd), (OwnedFd, OwnedFd));

fn pipes() -> io::Result<Pipes> {
    Ok((sys::pipe()?, sys::pipe()?))
}
