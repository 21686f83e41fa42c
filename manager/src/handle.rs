//! The caller's side: [`Manager`], the commands it sends to the manager
//! thread, and the counters it reads back.

use crate::config::Config;
use crate::event_loop::EventLoop;
use crate::job::Job;
use crate::Error;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What callers ask of the manager thread.
pub(crate) enum Command {
    Submit(Job),
    /// Stop the job with this id: cancel it if pending, stop its worker if
    /// running.
    Abort(u64),
    /// Take no more work; finish (or, with `cancel_futures`, cancel) what is
    /// queued; then stop the workers and the thread.
    Shutdown {
        cancel_futures: bool,
        stop_running_at: Option<std::time::Instant>,
    },
    /// Shut down, cancel what is pending and send `signal` to every worker
    /// (CPython 3.14's `terminate_workers` / `kill_workers`).
    SignalWorkers {
        signal: i32,
    },
}

/// The inbox: commands in arrival order, and whether more may come.
pub(crate) struct Inbox {
    pub(crate) commands: VecDeque<Command>,
    pub(crate) shut_down: bool,
    pub(crate) broken: Option<String>,
}

/// What the caller side and the manager thread share.
pub(crate) struct Shared {
    pub(crate) inbox: Mutex<Inbox>,
    pub(crate) waker: mio::Waker,
    /// Set by the first command since the manager last drained, so a burst of
    /// submits costs one wake-up.
    pub(crate) wake_pending: AtomicBool,
    pub(crate) next_id: AtomicU64,
    /// Whether a caller waiting on a new job should spin (the manager's
    /// reading of how dense the calls are).
    pub(crate) spin_ok: AtomicBool,
    pub(crate) stats: Counters,
    /// Workers the spawner thread has started (or failed to), for the
    /// manager to take in.
    pub(crate) spawned: Mutex<Vec<Result<crate::worker::Worker, Error>>>,
    /// The fork server, once the spawner thread has started it; both
    /// threads fork workers from it.
    pub(crate) forkserver: Mutex<Option<crate::forkserver::Forkserver>>,
}

impl Shared {
    /// Queues `command` and wakes the manager thread if it may be asleep.
    ///
    /// # Errors
    /// [`Error::ShutDown`] or [`Error::BrokenPool`] for a submit the pool no
    /// longer takes; the command is dropped (a job's future ends cancelled).
    pub(crate) fn send(&self, command: Command) -> Result<(), Error> {
        {
            let mut inbox = self.inbox.lock();
            if let Command::Submit(_) = command {
                if let Some(cause) = &inbox.broken {
                    let cause = cause.clone();
                    return Err(Error::BrokenPool { cause });
                }
                if inbox.shut_down {
                    return Err(Error::ShutDown);
                }
            }
            if let Command::Shutdown { .. } | Command::SignalWorkers { .. } = command {
                inbox.shut_down = true;
            }
            inbox.commands.push_back(command);
        }
        self.wake();
        Ok(())
    }

    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                // An eventfd write fails only if the counter would overflow,
                // which needs 2^64 unread wakes: the manager is awake anyway.
                log::warn!("procpool: waking the manager failed: {e}");
            }
        }
    }
}

/// Live counters of a pool; [`Stats`] is a snapshot of them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) workers_alive: AtomicUsize,
    pub(crate) workers_idle: AtomicUsize,
    pub(crate) queued: AtomicUsize,
    pub(crate) running: AtomicUsize,
    pub(crate) finished: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) workers_replaced: AtomicU64,
    pub(crate) workers_started: AtomicU64,
    pub(crate) workers_forked: AtomicU64,
}

/// A snapshot of a pool's state and history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Worker processes alive (starting ones included; one already killed
    /// and replaced, whose exit is not yet confirmed, is not counted).
    pub workers_alive: usize,
    /// Workers waiting for a task.
    pub workers_idle: usize,
    /// Tasks waiting for a worker.
    pub queued: usize,
    /// Tasks running in a worker.
    pub running: usize,
    /// Tasks that produced an output.
    pub finished: u64,
    /// Tasks that failed (panic, worker death, codec, protocol, broken pool).
    pub failed: u64,
    /// Tasks cancelled before or while running.
    pub cancelled: u64,
    /// Tasks stopped at their time limit.
    pub timed_out: u64,
    /// Workers that died or exited on their own and were replaced.
    pub workers_replaced: u64,
    /// Worker processes started in all.
    pub workers_started: u64,
    /// Of those, the ones forked by the fork server (the others were
    /// spawned).
    pub workers_forked: u64,
}

/// The manager of one pool: owns the manager thread, which owns the workers.
///
/// Dropping it shuts the pool down and waits, like leaving CPython's `with`
/// block, unless [`shutdown`](Self::shutdown) was already called without
/// waiting.
pub struct Manager {
    shared: Arc<Shared>,
    max_workers: usize,
    spin: std::time::Duration,
    cpus: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Manager {
    /// Starts the manager thread. Workers start on demand, but for
    /// [`Config::prestart`] of them, which start at once.
    ///
    /// # Errors
    /// When the poll or the thread cannot be created.
    pub fn start(config: Config) -> io::Result<Self> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), crate::event_loop::WAKER)?;
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                commands: VecDeque::new(),
                shut_down: false,
                broken: None,
            }),
            waker,
            wake_pending: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            spin_ok: AtomicBool::new(false),
            stats: Counters::default(),
            spawned: Mutex::new(Vec::new()),
            forkserver: Mutex::new(None),
        });
        let max_workers = config.max_workers.max(1);
        let spin = config.spin;
        let spawner = crate::spawner::Spawner::new(config.clone(), Arc::clone(&shared));
        let event_loop = EventLoop::new(poll, Arc::clone(&shared), config, spawner);
        let thread = std::thread::Builder::new()
            .name("procpool-manager".into())
            .spawn(move || event_loop.run())?;
        Ok(Self {
            shared,
            max_workers,
            spin,
            cpus: crate::cpus_available(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A fresh job id.
    pub fn next_job_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues `job`.
    ///
    /// # Errors
    /// [`Error::ShutDown`] after shutdown, [`Error::BrokenPool`] once broken;
    /// the job is dropped unsent.
    pub fn submit(&self, job: Job) -> Result<(), Error> {
        self.shared.send(Command::Submit(job))
    }

    /// A handle that can stop jobs from any thread (an abort hook), without
    /// keeping the pool alive.
    pub fn aborter(&self) -> Aborter {
        Aborter(Arc::downgrade(&self.shared))
    }

    /// Stops the job `id`: cancelled if still queued; if running, its worker's
    /// process group gets SIGTERM, then SIGKILL after the grace period, and
    /// the future ends cancelled once the process is gone (or the task has
    /// returned within the grace).
    pub fn abort(&self, id: u64) {
        let _ = self.shared.send(Command::Abort(id));
    }

    /// Takes no more tasks; with `cancel_futures` cancels those not started;
    /// the rest run to completion, then the workers exit. With `wait`, returns
    /// once every worker is reaped and the manager thread has ended.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let _ = self.shared.send(Command::Shutdown {
            cancel_futures,
            stop_running_at: None,
        });
        if wait {
            self.join();
        }
    }

    /// Shuts down and waits; tasks still running after `deadline` are stopped
    /// (SIGTERM, then SIGKILL after their grace) and end cancelled.
    pub fn shutdown_within(&self, deadline: std::time::Duration, cancel_futures: bool) {
        let _ = self.shared.send(Command::Shutdown {
            cancel_futures,
            stop_running_at: Some(std::time::Instant::now() + deadline),
        });
        self.join();
    }

    /// The spin budget for a caller about to wait on a new job (see
    /// [`Config::spin`]): zero when there is already a job in flight per CPU,
    /// where a spinning caller would only slow the workers down.
    pub fn spin(&self) -> std::time::Duration {
        let c = &self.shared.stats;
        let busy = c.running.load(Ordering::Relaxed) + c.queued.load(Ordering::Relaxed);
        if busy < self.cpus && self.shared.spin_ok.load(Ordering::Relaxed) {
            self.spin
        } else {
            std::time::Duration::ZERO
        }
    }

    /// The pool's spin budget, unconditionally (see [`Config::spin`]).
    pub fn spin_budget(&self) -> std::time::Duration {
        self.spin
    }

    /// The most workers the pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    /// Shuts down, cancels every task not started, and sends `signal`
    /// (SIGTERM or SIGKILL) to every worker's process group; the running tasks
    /// end cancelled. Does nothing more on a pool already shut down this way.
    pub fn signal_workers(&self, signal: i32, wait: bool) {
        let _ = self.shared.send(Command::SignalWorkers { signal });
        if wait {
            self.join();
        }
    }

    /// Whether shutdown has been requested.
    pub fn is_shut_down(&self) -> bool {
        self.shared.inbox.lock().shut_down
    }

    /// The broken-pool cause, once broken.
    pub fn broken(&self) -> Option<String> {
        self.shared.inbox.lock().broken.clone()
    }

    /// Waits for the manager thread to end (every worker reaped). Callers
    /// racing here all return once it has ended.
    fn join(&self) {
        let mut thread = self.thread.lock();
        if let Some(thread) = thread.take() {
            if thread.join().is_err() {
                log::error!("procpool: the manager thread panicked");
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        Stats {
            workers_alive: c.workers_alive.load(Ordering::Relaxed),
            workers_idle: c.workers_idle.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            workers_replaced: c.workers_replaced.load(Ordering::Relaxed),
            workers_started: c.workers_started.load(Ordering::Relaxed),
            workers_forked: c.workers_forked.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let detached = self.shared.inbox.lock().shut_down;
        if detached && self.thread.lock().is_some() {
            // shutdown(wait = false) was asked for: let the thread finish
            // the work on its own (it reaps every worker before it ends).
            return;
        }
        self.shutdown(true, false);
    }
}

/// Stops jobs of a pool from anywhere, without keeping the pool alive: what a
/// future's abort hook holds.
#[derive(Debug, Clone)]
pub struct Aborter(std::sync::Weak<Shared>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Aborter {
    /// See [`Manager::abort`]; does nothing once the pool is gone.
    pub fn abort(&self, id: u64) {
        if let Some(shared) = self.0.upgrade() {
            let _ = shared.send(Command::Abort(id));
        }
    }
}
