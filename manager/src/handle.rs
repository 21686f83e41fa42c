//! The caller's side: [`Manager`], which owns the manager thread, and
//! [`Aborter`].

use crate::backlog::Backlog;
use crate::config::Config;
use crate::event_loop::EventLoop;
use crate::failure::Refused;
use crate::failure::{BreakCause, Signal};
use crate::job::Job;
use crate::mailbox::{Command, Mailbox};
use crate::stats::{Gauges, Stats};
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The manager of one pool: owns the manager thread, which owns the workers.
///
/// Dropping it shuts the pool down and waits, like leaving CPython's `with`
/// block, unless [`shutdown`](Self::shutdown) was already called without
/// waiting.
pub struct Manager {
    mailbox: Arc<Mailbox>,
    gauges: Arc<Gauges>,
    max_workers: usize,
    max_frame_len: usize,
    spin: Duration,
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
    /// [`Config::min_workers`] of them, which are started (not yet ready)
    /// when this returns.
    ///
    /// # Errors
    /// When the poll or the thread cannot be created.
    pub fn start(config: Config) -> io::Result<Self> {
        let max_workers = config.max_workers.max(1);
        let (max_frame_len, spin) = (config.max_frame_len, config.spin);
        let min_workers = config.min_workers;
        let (mut event_loop, mailbox, gauges) = EventLoop::new(config)?;
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        if min_workers > 0 {
            event_loop.signal_when_started(started_tx);
        } else {
            drop(started_tx); // nothing to wait for: `recv` returns at once
        }
        let thread = std::thread::Builder::new()
            .name("procpool-manager".into())
            .spawn({
                let mailbox = Arc::clone(&mailbox);
                move || {
                    // A bug here must not leave callers waiting for ever:
                    // unwinding drops the loop (its workers are killed and
                    // reaped, its futures end cancelled), and the pool
                    // refuses what comes after.
                    let run = std::panic::AssertUnwindSafe(move || event_loop.run());
                    if let Err(panic) = std::panic::catch_unwind(run) {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        log::error!("procpool: the manager thread panicked: {what}");
                        mailbox.abandon(BreakCause {
                            cause: format!("the pool's manager thread panicked: {what}"),
                            source: None,
                        });
                    }
                }
            })?;
        // Err: the thread ended (a panic) or there was nothing to wait for.
        let _ = started.recv();
        Ok(Self {
            mailbox,
            gauges,
            max_workers,
            max_frame_len,
            spin,
            cpus: crate::cpus_available(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A fresh job id.
    pub fn next_job_id(&self) -> u64 {
        self.mailbox.next_id()
    }

    /// Queues `job`.
    ///
    /// # Errors
    /// [`Refused`] once the pool is shut down or broken; the job is dropped
    /// unsent.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        self.mailbox.send(Command::Submit(job))
    }

    /// The bounded backlog, when the pool has one ([`Config::max_pending`]):
    /// a submit takes a [`Permit`](crate::Permit) from it for its job.
    pub fn backlog(&self) -> Option<&Arc<Backlog>> {
        self.mailbox.backlog()
    }

    /// A handle that can stop jobs from any thread (an abort hook), without
    /// keeping the pool alive.
    pub fn aborter(&self) -> Aborter {
        Aborter(Arc::downgrade(&self.mailbox))
    }

    /// Takes no more tasks; with `cancel_futures` cancels those not started;
    /// the rest run to completion, then the workers exit. With `wait`, returns
    /// once every worker is reaped and the manager thread has ended.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let _ = self.mailbox.send(Command::Shutdown {
            cancel_futures,
            stop_running_at: None,
        });
        if wait {
            self.join();
        }
    }

    /// Shuts down and waits; tasks still running after `deadline` are stopped
    /// (SIGTERM, then SIGKILL after their grace) and end cancelled.
    pub fn shutdown_within(&self, deadline: Duration, cancel_futures: bool) {
        let _ = self.mailbox.send(Command::Shutdown {
            cancel_futures,
            stop_running_at: Some(Instant::now() + deadline),
        });
        self.join();
    }

    /// Shuts down, cancels every task not started, and sends `signal`
    /// (SIGTERM or SIGKILL) to every worker's process group: running tasks
    /// end cancelled; with SIGKILL every worker, idle or starting, is killed
    /// at once. Returns once every worker is reaped.
    pub fn signal_workers(&self, signal: Signal) {
        let _ = self.mailbox.send(Command::SignalWorkers { signal });
        self.join();
    }

    /// The spin budget for a caller about to wait on a new job (see
    /// [`Config::spin`]): zero when there is already a job in flight per CPU,
    /// where a spinning caller would only slow the workers down.
    pub fn spin(&self) -> Duration {
        let g = &self.gauges;
        let busy = g.running.load(Ordering::Relaxed) + g.queued.load(Ordering::Relaxed);
        if busy < self.cpus && g.spin_ok.load(Ordering::Relaxed) {
            self.spin
        } else {
            Duration::ZERO
        }
    }

    /// The pool's spin budget, unconditionally (see [`Config::spin`]).
    pub fn spin_budget(&self) -> Duration {
        self.spin
    }

    /// The most workers the pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    /// The largest frame the pool sends or accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
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
        let mut stats = self.gauges.snapshot();
        if let Some(backlog) = self.mailbox.backlog() {
            (stats.blocked_submitters, stats.submits_waited) = backlog.waiting();
        }
        stats
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.mailbox.is_shut_down() {
            if let Some(thread) = self.thread.lock().take() {
                // shutdown(wait = false) was asked for: the thread finishes
                // the work on its own (it reaps every worker before it ends),
                // and the program waits for it when it exits, as CPython's
                // interpreter joins its executors' threads at exit.
                crate::sys::join_at_exit(thread);
                return;
            }
        }
        self.shutdown(true, false);
    }
}

/// Stops jobs of a pool from anywhere, without keeping the pool alive: what a
/// future's abort hook holds.
#[derive(Clone)]
pub struct Aborter(Weak<Mailbox>);

impl std::fmt::Debug for Aborter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aborter")
    }
}

impl Aborter {
    /// Stops the job `id`: cancelled if still queued; if running, its
    /// worker's process group gets SIGTERM, then SIGKILL after the grace
    /// period, and the future ends cancelled once the process is gone (or
    /// the task has returned within the grace). Does nothing once the pool
    /// is gone.
    pub fn abort(&self, id: u64) {
        if let Some(mailbox) = self.0.upgrade() {
            let _ = mailbox.send(Command::Abort(id));
        }
    }
}
