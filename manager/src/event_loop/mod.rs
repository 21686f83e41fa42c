//! The manager thread: one `mio::Poll` over the wake-up channel, every
//! worker's result pipe and pidfd, the call pipes that have bytes waiting,
//! and a timerfd for the nearest deadline. It blocks only in the poll (and,
//! while calls are dense, spins there briefly first: see
//! [`EventLoop::wait_for_events`]).
//!
//! The turn (`run`) composes the parts, each in its own module:
//!
//! | module      | owns                                                        |
//! |-------------|-------------------------------------------------------------|
//! | `token`     | the poll's tokens, typed                                    |
//! | `timers`    | deadlines: the heap and the timerfd                         |
//! | `dispatch`  | the pending queue, idle workers, windows, costs (no I/O)    |
//! | `calls`     | sending: sealing call frames and writing them               |
//! | `results`   | receiving: bounded reads, frames, the protocol's rules      |
//! | `settle`    | the one path from a job's end to its future                 |
//! | `lifecycle` | starting, installing, reaping, replacing, back-off, breaking |
//! | `idle`      | retiring workers idle past the idle timeout                 |
//! | `sources`   | where workers start; the crash-loop guard of each source    |
//! | `stopping`  | aborts, time limits, shutdown, terminate and kill           |

mod calls;
mod dispatch;
mod idle;
mod lifecycle;
mod results;
mod settle;
mod sources;
mod stopping;
mod timers;
mod token;

use crate::config::Config;
use crate::failure::BreakCause;
use crate::launch::spawner::Spawner;
use crate::launch::Launcher;
use crate::mailbox::{Command, Mailbox};
use crate::slot::WorkerSlot;
use crate::stats::Gauges;
use dispatch::Scheduler;
use mio::{Events, Poll};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timers;
use token::Source;

pub(crate) struct EventLoop {
    poll: Poll,
    mailbox: Arc<Mailbox>,
    gauges: Arc<Gauges>,
    config: Config,
    slots: Vec<Option<WorkerSlot>>,
    sched: Scheduler,
    timers: Timers,
    launcher: Arc<Launcher>,
    /// Starts workers off this thread; `spawning` counts its requests not
    /// yet answered.
    spawner: Spawner,
    spawning: usize,
    next_serial: u64,
    /// Where workers start, each with its crash-loop guard (see
    /// `sources`).
    sources: Vec<sources::SourceState>,
    /// When the coldest idle worker reaches the idle timeout (see `idle`).
    idle_check_at: Option<Instant>,
    /// Told once the workers the pool starts with are started (`build`
    /// returns then).
    started_signal: Option<std::sync::mpsc::SyncSender<()>>,
    /// Whether the pool's first start (which waits for the fork server) is
    /// done.
    first_start_done: bool,
    shutting_down: bool,
    /// `kill_workers` was called: a worker that arrives from the spawner
    /// is killed at once.
    killing_all: bool,
    /// A shutdown's deadline: what still runs then is stopped.
    stop_running_at: Option<Instant>,
    broken: Option<BreakCause>,
    /// When the pool last went quiet (no job in flight or queued), and how
    /// long it then stayed quiet before the next submit: the spin rule's
    /// measure of how dense the calls are.
    quiet_since: Option<Instant>,
    quiet_gap: Duration,
    /// CPUs this process may use: the spin rule's yardstick.
    cpus: usize,
    /// The mailbox's commands are swapped into this reused buffer.
    commands: VecDeque<Command>,
    /// Workers with frames to write after this round of dispatch.
    dirty: Vec<usize>,
    /// Workers whose result pipe had more than one turn's share waiting:
    /// read again next turn (the poll is edge-triggered).
    unread: Vec<usize>,
}

impl EventLoop {
    /// Has the loop tell `signal` once the pool's first workers are started.
    pub(crate) fn signal_when_started(&mut self, signal: std::sync::mpsc::SyncSender<()>) {
        self.started_signal = Some(signal);
    }

    /// The loop for a pool with `config`, and the two things callers share
    /// with it: its mailbox and its gauges.
    pub(crate) fn new(mut config: Config) -> io::Result<(Self, Arc<Mailbox>, Arc<Gauges>)> {
        config.max_workers = if config.sources.is_empty() {
            config.max_workers.max(1)
        } else {
            config.sources.iter().map(|s| s.slots).sum::<usize>().max(1)
        };
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), Source::Waker.token())?;
        let backlog = config.max_pending.map(crate::backlog::Backlog::new);
        let mailbox = Arc::new(Mailbox::new(waker, backlog));
        let gauges = Arc::new(Gauges::default());
        let launcher = Arc::new(Launcher::new(config.clone()));
        let timers = Timers::new(poll.registry());
        let sources = config
            .sources_or_local()
            .into_iter()
            .map(sources::SourceState::new)
            .collect();
        let event_loop = Self {
            poll,
            mailbox: Arc::clone(&mailbox),
            gauges: Arc::clone(&gauges),
            spawner: Spawner::new(Arc::clone(&launcher), Arc::clone(&mailbox)),
            launcher,
            config,
            slots: Vec::new(),
            sched: Scheduler::default(),
            timers,
            spawning: 0,
            next_serial: 0,
            sources,
            idle_check_at: None,
            started_signal: None,
            first_start_done: false,
            shutting_down: false,
            killing_all: false,
            stop_running_at: None,
            broken: None,
            quiet_since: None,
            quiet_gap: Duration::MAX,
            cpus: crate::cpus_available(),
            commands: VecDeque::new(),
            dirty: Vec::new(),
            unread: Vec::new(),
        };
        Ok((event_loop, mailbox, gauges))
    }

    /// Runs the pool until it is shut down (or broken) and every worker is
    /// reaped.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        if let Some(backlog) = self.mailbox.backlog() {
            backlog.set_manager_thread(std::thread::current().id());
        }
        // The minimum of workers is there before the first submit.
        self.start_workers(self.config.min_workers.min(self.config.max_workers));
        if let Some(signal) = self.started_signal.take() {
            self.publish_stats();
            let _ = signal.send(());
        }
        loop {
            let timeout = if self.unread.is_empty() {
                let next = [self.timers.next(), self.stop_running_at, self.idle_check_at]
                    .into_iter()
                    .chain(self.sources.iter().map(sources::SourceState::resume_at))
                    .flatten()
                    .min();
                self.timers.poll_timeout(next)
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.wait_for_events(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("procpool: the manager's poll failed: {e}");
                    self.break_pool(format!("the manager's poll failed: {e}"), None);
                    break;
                }
            }
            for slot in std::mem::take(&mut self.unread) {
                self.read_results(slot);
            }
            for event in events.iter() {
                match Source::from_token(event.token()) {
                    Source::Waker => {}
                    Source::Timer => self.timers.drain(),
                    Source::Results(slot) => self.read_results(slot),
                    Source::Calls(slot) => self.write_calls(slot),
                    Source::Pidfd(slot) => self.on_exit_signal(slot),
                }
            }
            self.take_started();
            self.take_commands();
            self.fire_timers();
            self.dispatch();
            self.retire_if_done();
            if self.config.idle_timeout.is_some() {
                self.retire_idle_workers();
            }
            self.start_as_needed();
            self.publish_stats();
            if self.finished() {
                break;
            }
        }
        self.teardown();
        self.publish_stats();
    }

    /// Whether calls come close enough together that spinning for the next
    /// one pays: the last gap between the pool going quiet and the next
    /// submit was within the spin budget, and a CPU is free.
    fn calls_are_dense(&self) -> bool {
        !self.config.spin.is_zero()
            && self.quiet_gap <= self.config.spin
            && self.in_flight() < self.cpus
    }

    /// Jobs sent to workers and not yet ended.
    fn in_flight(&self) -> usize {
        self.slots.iter().flatten().map(|w| w.window.len()).sum()
    }

    /// Polls for events: first spinning for up to the spin budget (a zero
    /// timeout poll and a `sched_yield` per round), then blocking until the
    /// next deadline. A pool in use answers a submit or a result within
    /// microseconds; an idle one sleeps after one budget.
    fn wait_for_events(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let spin = self.config.spin;
        // Spinning pays only while CPUs are free (with a job in flight per
        // CPU a spinning manager takes time from the workers) and an event is
        // due soon: a short job's result, or the next of a run of dense
        // submits. Sparse calls sleep at once, as if spinning were off.
        let in_flight = self.in_flight();
        let due_soon = if in_flight == 0 {
            self.quiet_gap <= spin
        } else {
            self.slots
                .iter()
                .flatten()
                .filter_map(|w| w.window.front())
                .any(|job| job.cost.is_some_and(|c| c <= spin))
        };
        if !spin.is_zero() && timeout != Some(Duration::ZERO) && in_flight < self.cpus && due_soon {
            let end = Instant::now() + timeout.map_or(spin, |t| t.min(spin));
            loop {
                self.poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() || self.mailbox.wake_pending() {
                    return Ok(());
                }
                if Instant::now() >= end {
                    break;
                }
                std::thread::yield_now();
            }
        }
        self.poll.poll(events, timeout)
    }

    fn worker(&mut self, slot: usize) -> Option<&mut WorkerSlot> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// Carries out what callers asked for since the last turn.
    fn take_commands(&mut self) {
        self.mailbox.take(&mut self.commands);
        while let Some(command) = self.commands.pop_front() {
            match command {
                Command::Submit(job) => {
                    let work =
                        crate::job::Work::new(job, self.config.grace, self.config.time_limit);
                    match &self.broken {
                        Some(cause) => {
                            let failure = crate::Failure::BrokenPool(cause.clone());
                            self.settle(work, settle::End::Failed(failure));
                        }
                        None => {
                            if let Some(since) = self.quiet_since.take() {
                                self.quiet_gap = since.elapsed();
                            }
                            self.sched.submit(work);
                        }
                    }
                }
                Command::Abort(id) => self.abort(id),
                Command::Shutdown {
                    cancel_futures,
                    stop_running_at,
                } => self.shutdown(cancel_futures, stop_running_at),
                Command::SignalWorkers { signal } => self.signal_workers(signal),
            }
        }
    }

    fn publish_stats(&mut self) {
        let in_flight = self.in_flight();
        if self.quiet_since.is_none() && self.sched.pending() == 0 && in_flight == 0 {
            self.quiet_since = Some(Instant::now());
        }
        let gauges = &self.gauges;
        gauges
            .spin_ok
            .store(self.calls_are_dense(), Ordering::Relaxed);
        gauges
            .workers_alive
            .store(self.workers_counted(), Ordering::Relaxed);
        gauges
            .workers_idle
            .store(self.sched.idle(), Ordering::Relaxed);
        gauges.queued.store(self.sched.pending(), Ordering::Relaxed);
        if let Some(levels) = self.sched.pending_by_priority() {
            *gauges.by_priority.lock() = Some(levels);
        }
        gauges.running.store(in_flight, Ordering::Relaxed);
    }
}
