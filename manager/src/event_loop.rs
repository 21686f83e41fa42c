//! The manager thread: one `mio::Poll` over the wake-up channel, every
//! worker's result pipe and pidfd, the call pipes that have bytes waiting,
//! and the nearest deadline as the poll timeout. It blocks nowhere else.

use crate::config::{Config, FailurePolicy};
use crate::handle::{Command, Shared};
use crate::job::Job;
use crate::worker::{Phase, Running, StopReason, Worker};
use crate::{Error, ExitInfo};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use procpool_ipc::{Call, ExitReason, FromWorker, Outcome, ReadStatus, ToWorker};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The wake-up channel's token; worker tokens are `slot * 4 + kind`.
pub(crate) const WAKER: Token = Token(usize::MAX);
const RESULTS: usize = 0;
const CALLS: usize = 1;
const PIDFD: usize = 2;

fn token(slot: usize, kind: usize) -> Token {
    Token(slot * 4 + kind)
}

/// How long a worker told to exit (its call pipe closed) may take before it
/// is killed. Generous: it only matters for a worker that ignores EOF.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// How often a worker whose result pipe closed is checked for exit where
/// there is no pidfd to say so.
const REAP_RETRY: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// The running job's time limit.
    TimeLimit,
    /// The grace period after SIGTERM is over: SIGKILL.
    GraceOver,
    /// Look again whether a worker has exited (no pidfd).
    ReapRetry,
    /// A worker told to exit has not: SIGKILL.
    ExitOverdue,
}

/// A deadline, for the worker in `slot` with `serial` (and its job `job`):
/// a timer whose worker or job has changed since is ignored when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    slot: usize,
    serial: u64,
    job: u64,
    kind: TimerKind,
}

pub(crate) struct EventLoop {
    poll: Poll,
    shared: Arc<Shared>,
    config: Config,
    slots: Vec<Option<Worker>>,
    /// Ready workers with nothing to run, most recently freed last: the
    /// warmest is picked first.
    idle: Vec<usize>,
    pending: VecDeque<Job>,
    timers: BinaryHeap<Reverse<Timer>>,
    next_serial: u64,
    start_failures: u32,
    shutting_down: bool,
    /// A shutdown's deadline: what still runs then is stopped.
    stop_running_at: Option<Instant>,
    broken: Option<String>,
    /// The inbox's commands are swapped into this reused buffer.
    commands: VecDeque<Command>,
}

impl EventLoop {
    pub(crate) fn new(poll: Poll, shared: Arc<Shared>, mut config: Config) -> Self {
        config.max_workers = config.max_workers.max(1);
        Self {
            poll,
            shared,
            config,
            slots: Vec::new(),
            idle: Vec::new(),
            pending: VecDeque::new(),
            timers: BinaryHeap::new(),
            next_serial: 0,
            start_failures: 0,
            shutting_down: false,
            stop_running_at: None,
            broken: None,
            commands: VecDeque::new(),
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let next = self.timers.peek().map(|Reverse(t)| t.at);
            let next = match (next, self.stop_running_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("procpool: the manager's poll failed: {e}");
                    self.break_pool(format!("the manager's poll failed: {e}"));
                    break;
                }
            }
            for event in events.iter() {
                let Token(t) = event.token();
                if event.token() == WAKER {
                    continue;
                }
                let slot = t / 4;
                match t % 4 {
                    RESULTS => self.read_results(slot),
                    CALLS => self.flush_calls(slot),
                    PIDFD => self.on_exit_signal(slot),
                    _ => {}
                }
            }
            self.drain_inbox();
            self.fire_timers();
            self.dispatch();
            self.retire_if_done();
            self.spawn_as_needed();
            self.publish_stats();
            if self.finished() {
                break;
            }
        }
        self.teardown();
        self.publish_stats();
    }

    fn worker(&mut self, slot: usize) -> Option<&mut Worker> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    // ----------------------------------------------------------- commands

    fn drain_inbox(&mut self) {
        self.shared.wake_pending.store(false, Ordering::Release);
        std::mem::swap(&mut self.shared.inbox.lock().commands, &mut self.commands);
        while let Some(command) = self.commands.pop_front() {
            match command {
                Command::Submit(job) => match &self.broken {
                    Some(cause) => {
                        let error = Error::BrokenPool {
                            cause: cause.clone(),
                        };
                        self.fail(job.completion, error);
                    }
                    None => self.pending.push_back(job),
                },
                Command::Abort(id) => self.abort(id),
                Command::Shutdown {
                    cancel_futures,
                    stop_running_at,
                } => {
                    self.shutting_down = true;
                    if cancel_futures {
                        self.cancel_pending();
                    }
                    if let Some(at) = stop_running_at {
                        self.stop_running_at = Some(self.stop_running_at.map_or(at, |t| t.min(at)));
                    }
                }
                Command::SignalWorkers { signal } => {
                    self.shutting_down = true;
                    self.cancel_pending();
                    let grace = if signal == libc::SIGKILL {
                        Duration::ZERO
                    } else {
                        self.config.grace
                    };
                    for slot in 0..self.slots.len() {
                        let Some(w) = self.worker(slot) else { continue };
                        w.phase = Phase::Retiring;
                        if w.running.is_some() {
                            self.stop_running(slot, StopReason::Aborted, Some(grace));
                        } else {
                            self.close_calls(slot);
                        }
                    }
                    self.idle.clear();
                }
            }
        }
    }

    fn cancel_pending(&mut self) {
        for job in std::mem::take(&mut self.pending) {
            job.completion.cancel();
            self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn abort(&mut self, id: u64) {
        if let Some(at) = self.pending.iter().position(|job| job.id == id) {
            let job = self.pending.remove(at).expect("position found it");
            job.completion.cancel();
            self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let running_slot = self.slots.iter().position(|w| {
            w.as_ref()
                .and_then(|w| w.running.as_ref())
                .is_some_and(|r| r.id == id)
        });
        if let Some(slot) = running_slot {
            self.stop_running(slot, StopReason::Aborted, None);
        }
    }

    /// Starts stopping the job running in `slot`: SIGTERM to the worker's
    /// group and SIGKILL when the grace ends (grace zero: SIGKILL now).
    fn stop_running(&mut self, slot: usize, reason: StopReason, grace: Option<Duration>) {
        let Some(w) = self.worker(slot) else { return };
        let Some(running) = w.running.as_mut() else {
            return;
        };
        if running.stop.is_some() {
            return;
        }
        running.stop = Some(reason);
        let grace = grace.unwrap_or(running.grace);
        let (job, serial) = (running.id, w.serial);
        log::debug!(
            "procpool: stopping `{}` in worker {} ({reason:?}, grace {grace:?})",
            running.task,
            w.pid
        );
        if grace.is_zero() {
            w.phase = Phase::Retiring;
            w.signal(libc::SIGKILL);
        } else {
            w.signal(libc::SIGTERM);
            self.timers.push(Reverse(Timer {
                at: Instant::now() + grace,
                slot,
                serial,
                job,
                kind: TimerKind::GraceOver,
            }));
        }
        self.idle.retain(|&s| s != slot);
    }

    // ------------------------------------------------------------- timers

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.stop_running_at.is_some_and(|at| at <= now) {
            self.stop_running_at = None;
            self.cancel_pending();
            for slot in 0..self.slots.len() {
                self.stop_running(slot, StopReason::Aborted, None);
            }
        }
        while let Some(Reverse(timer)) = self.timers.peek().copied() {
            if timer.at > now {
                break;
            }
            self.timers.pop();
            let Some(w) = self.worker(timer.slot) else {
                continue;
            };
            if w.serial != timer.serial {
                continue;
            }
            let job_matches = w.running.as_ref().is_some_and(|r| r.id == timer.job);
            match timer.kind {
                TimerKind::TimeLimit if job_matches => {
                    let limit = w
                        .running
                        .as_ref()
                        .and_then(|r| r.time_limit)
                        .unwrap_or_default();
                    self.stop_running(timer.slot, StopReason::TimedOut(limit), None);
                }
                TimerKind::GraceOver if job_matches => {
                    w.phase = Phase::Retiring;
                    w.signal(libc::SIGKILL);
                }
                TimerKind::ReapRetry => self.try_reap(timer.slot),
                TimerKind::ExitOverdue => {
                    log::warn!(
                        "procpool: worker {} did not exit when told to; killing it",
                        w.pid
                    );
                    w.signal(libc::SIGKILL);
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------ results

    fn read_results(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let mut decoder = std::mem::take(&mut w.decoder);
        let mut reached_eof = false;
        while let Some(results) = self.worker(slot).and_then(|w| w.results.as_ref()) {
            let mut reader = results;
            match decoder.read_from(&mut reader) {
                Ok(ReadStatus::Data(_)) => {}
                Ok(ReadStatus::Eof) => {
                    if let Err(e) = decoder.finish() {
                        self.breach(slot, &e.to_string());
                    }
                    reached_eof = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.breach(slot, &format!("reading its results failed: {e}"));
                    break;
                }
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => self.on_frame(slot, frame),
                    Ok(None) => break,
                    Err(e) => {
                        self.breach(slot, &e.to_string());
                        break;
                    }
                }
            }
        }
        if let Some(w) = self.worker(slot) {
            w.decoder = decoder;
            if reached_eof {
                self.close_results(slot);
                let has_pidfd = self.worker(slot).is_some_and(|w| w.pidfd.is_some());
                if !has_pidfd {
                    self.try_reap(slot);
                }
            }
        }
    }

    fn on_frame(&mut self, slot: usize, frame: &[u8]) {
        let message = match FromWorker::decode(frame) {
            Ok(message) => message,
            Err(e) => return self.breach(slot, &e.to_string()),
        };
        let max_tasks = self.config.max_tasks_per_child;
        let Some(w) = self.worker(slot) else { return };
        if w.failure.is_some() {
            // It is being killed for an earlier breach: trust nothing more.
            return;
        }
        match message {
            FromWorker::Hello(hello) => {
                if let Err(e) = hello.check() {
                    return self.breach(slot, &e.to_string());
                }
                if w.phase != Phase::Starting {
                    return self.breach(slot, "it sent a second Hello");
                }
                w.phase = Phase::Ready;
                log::debug!("procpool: worker {} is ready", w.pid);
                self.start_failures = 0;
                self.idle.push(slot);
            }
            FromWorker::Done(done) => {
                let Some(running) = w.running.take() else {
                    return self.breach(slot, "it finished a call it was never given");
                };
                if running.id != done.id {
                    let detail = format!(
                        "it finished call {} while running call {}",
                        done.id, running.id
                    );
                    w.running = Some(running);
                    return self.breach(slot, &detail);
                }
                w.served += 1;
                if max_tasks == Some(w.served) {
                    // It exits now; an Exiting frame follows.
                    w.phase = Phase::Retiring;
                    w.orderly_exit = true;
                } else if w.phase == Phase::Ready {
                    self.idle.push(slot);
                }
                self.complete(running, done.outcome);
            }
            FromWorker::Exiting(reason) => {
                w.orderly_exit = true;
                w.phase = Phase::Retiring;
                log::debug!("procpool: worker {} exits: {reason}", w.pid);
                self.idle.retain(|&s| s != slot);
                if let ExitReason::InitializerFailed(e) = reason {
                    self.break_pool(e.message);
                }
            }
        }
    }

    /// Ends a job whose `Done` arrived.
    fn complete(&mut self, running: Running, outcome: Outcome<'_>) {
        let stats = &self.shared.stats;
        match running.stop {
            // It returned within the grace: the stop still wins.
            Some(StopReason::Aborted) => {
                running.completion.cancel();
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            Some(StopReason::TimedOut(limit)) => {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
                running.completion.finish(Err(Error::TimedOut {
                    task: running.task.to_owned(),
                    limit,
                }));
            }
            None => match outcome {
                Outcome::Output(bytes) => {
                    stats.finished.fetch_add(1, Ordering::Relaxed);
                    running.completion.finish(Ok(bytes));
                }
                Outcome::Error(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    running
                        .completion
                        .finish(Err(Error::from_remote(running.task, e)));
                }
            },
        }
    }

    /// The worker in `slot` broke the protocol: kill it; its job fails with
    /// a protocol error when it is reaped.
    fn breach(&mut self, slot: usize, detail: &str) {
        let Some(w) = self.worker(slot) else { return };
        if w.failure.is_none() {
            log::warn!("procpool: worker {} broke the protocol: {detail}", w.pid);
            w.failure = Some(Error::Protocol {
                pid: w.pid,
                detail: detail.to_owned(),
            });
        }
        w.phase = Phase::Retiring;
        w.signal(libc::SIGKILL);
        self.idle.retain(|&s| s != slot);
        self.close_results(slot);
    }

    // -------------------------------------------------------------- calls

    fn dispatch(&mut self) {
        while !self.pending.is_empty() {
            let Some(slot) = self.idle.pop() else { break };
            let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if w.phase != Phase::Ready || w.running.is_some() {
                continue;
            }
            let Some(mut job) = self.pending.pop_front() else {
                break;
            };
            if !job.completion.set_running() {
                self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                self.idle.push(slot);
                continue;
            }
            let call = Call {
                id: job.id,
                task: job.task,
                kind: job.kind,
                payload: &job.payload,
            };
            if let Err(e) = w.out.push(&ToWorker::Call(call)) {
                self.idle.push(slot);
                let error = Error::Codec {
                    task: job.task.to_owned(),
                    op: procpool_ipc::CodecOp::EncodeArgs,
                    message: format!("task `{}`: cannot send the arguments: {e}", job.task),
                };
                self.fail(job.completion, error);
                continue;
            }
            job.payload = Vec::new();
            let limit = job.time_limit.or(self.config.time_limit);
            w.running = Some(Running {
                id: job.id,
                task: job.task,
                completion: job.completion,
                grace: job.grace.unwrap_or(self.config.grace),
                stop: None,
                time_limit: limit,
            });
            if let Some(limit) = limit {
                self.timers.push(Reverse(Timer {
                    at: Instant::now() + limit,
                    slot,
                    serial: w.serial,
                    job: job.id,
                    kind: TimerKind::TimeLimit,
                }));
            }
            self.flush_calls(slot);
        }
    }

    fn flush_calls(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(calls) = w.calls.as_mut() else {
            w.out.clear();
            return;
        };
        let mut writer: &mio::unix::pipe::Sender = calls;
        match w.out.write_to(&mut writer) {
            Ok(true) => {
                if w.calls_registered {
                    let _ = registry.deregister(calls);
                    w.calls_registered = false;
                }
            }
            Ok(false) => {
                if !w.calls_registered {
                    match registry.register(calls, token(slot, CALLS), Interest::WRITABLE) {
                        Ok(()) => w.calls_registered = true,
                        Err(e) => {
                            log::error!("procpool: cannot watch worker {}'s call pipe: {e}", w.pid)
                        }
                    }
                }
            }
            Err(e) => {
                // EPIPE and friends: the worker is gone or going; its pidfd
                // (or result pipe's EOF) will say so.
                log::debug!("procpool: writing to worker {}: {e}", w.pid);
                w.out.clear();
            }
        }
    }

    /// Closes the call pipe: the worker reads EOF and exits 0.
    fn close_calls(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(mut calls) = w.calls.take() {
            if w.calls_registered {
                let _ = registry.deregister(&mut calls);
                w.calls_registered = false;
            }
            w.orderly_exit = true;
            w.out.clear();
            let (serial, at) = (w.serial, Instant::now() + EXIT_GRACE);
            self.timers.push(Reverse(Timer {
                at,
                slot,
                serial,
                job: 0,
                kind: TimerKind::ExitOverdue,
            }));
        }
    }

    fn close_results(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(mut results) = w.results.take() {
            let _ = registry.deregister(&mut results);
        }
    }

    // ------------------------------------------------------- worker lives

    fn spawn_as_needed(&mut self) {
        if self.broken.is_some() || self.pending.is_empty() {
            return;
        }
        let alive = self.slots.iter().flatten().count();
        let starting = self
            .slots
            .iter()
            .flatten()
            .filter(|w| w.phase == Phase::Starting)
            .count();
        let wanted = self
            .pending
            .len()
            .saturating_sub(self.idle.len() + starting);
        let room = self.config.max_workers.saturating_sub(alive);
        for _ in 0..wanted.min(room) {
            if let Err(e) = self.spawn() {
                log::error!("procpool: {e}");
                self.break_pool(e.to_string());
                return;
            }
        }
    }

    fn spawn(&mut self) -> Result<(), Error> {
        self.next_serial += 1;
        let mut w = Worker::spawn(&self.config, self.next_serial)?;
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let registry = self.poll.registry();
        let registered = (|| {
            if let Some(results) = w.results.as_mut() {
                registry.register(results, token(slot, RESULTS), Interest::READABLE)?;
            }
            if let Some(pidfd) = &w.pidfd {
                let fd = pidfd.as_raw_fd();
                registry.register(&mut SourceFd(&fd), token(slot, PIDFD), Interest::READABLE)?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = registered {
            w.signal(libc::SIGKILL);
            let _ = w.child.wait();
            return Err(Error::Spawn(format!("cannot watch worker {}: {e}", w.pid)));
        }
        log::debug!("procpool: started worker {}", w.pid);
        self.shared
            .stats
            .workers_started
            .fetch_add(1, Ordering::Relaxed);
        self.slots[slot] = Some(w);
        Ok(())
    }

    /// The pidfd turned readable: the worker has exited.
    fn on_exit_signal(&mut self, slot: usize) {
        // Its last frames may still be in the pipe: take them first.
        self.read_results(slot);
        self.try_reap(slot);
    }

    /// Reaps the worker in `slot` if it has exited, and settles its job.
    fn try_reap(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let status = match w.child.try_wait() {
            Ok(Some(status)) => ExitInfo::from_status(status),
            Ok(None) => {
                if w.pidfd.is_none() {
                    let (serial, at) = (w.serial, Instant::now() + REAP_RETRY);
                    self.timers.push(Reverse(Timer {
                        at,
                        slot,
                        serial,
                        job: 0,
                        kind: TimerKind::ReapRetry,
                    }));
                }
                return;
            }
            Err(e) => {
                log::error!("procpool: waiting for worker {}: {e}", w.pid);
                ExitInfo::Code(-1)
            }
        };
        self.remove(slot, status);
    }

    fn remove(&mut self, slot: usize, exit: ExitInfo) {
        self.close_results(slot);
        self.close_calls(slot);
        let registry = self.poll.registry();
        let Some(mut w) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(pidfd) = &w.pidfd {
            let fd = pidfd.as_raw_fd();
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        self.idle.retain(|&s| s != slot);
        let expected = w.orderly_exit || w.killed;
        if !expected {
            // What the task started dies with it (the group outlives a
            // crashed leader only through its members).
            let _ = crate::sys::signal_group(w.pid, libc::SIGKILL);
            log::warn!("procpool: worker {} died unexpectedly ({exit})", w.pid);
        } else {
            log::debug!("procpool: worker {} exited ({exit})", w.pid);
        }
        if !self.shutting_down || !self.pending.is_empty() {
            self.shared
                .stats
                .workers_replaced
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut break_cause = None;
        if let Some(running) = w.running.take() {
            match running.stop {
                Some(StopReason::Aborted) => {
                    running.completion.cancel();
                    self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                Some(StopReason::TimedOut(limit)) => {
                    self.shared.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    running.completion.finish(Err(Error::TimedOut {
                        task: running.task.to_owned(),
                        limit,
                    }));
                }
                None => {
                    let error = w.failure.take().unwrap_or_else(|| Error::WorkerDied {
                        pid: w.pid,
                        exit,
                        task: running.task.to_owned(),
                    });
                    if self.config.failure_policy == FailurePolicy::BreakPool
                        && matches!(error, Error::WorkerDied { .. })
                    {
                        break_cause = Some(format!("a worker died: {error}"));
                    }
                    self.fail(running.completion, error);
                }
            }
        }
        if w.phase == Phase::Starting && !w.killed && self.broken.is_none() && !self.shutting_down {
            self.start_failures += 1;
            if self.start_failures >= self.config.max_start_failures {
                break_cause = Some(format!(
                    "{} workers in a row exited before serving (the last, {}, with {exit})",
                    self.start_failures, w.pid
                ));
            }
        }
        if let Some(cause) = break_cause {
            self.break_pool(cause);
        }
    }

    fn fail(&self, completion: Box<dyn crate::job::Completion>, error: Error) {
        self.shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        completion.finish(Err(error));
    }

    /// The pool can run nothing more: fail what is pending and running, kill
    /// the workers, refuse later submits.
    fn break_pool(&mut self, cause: String) {
        if self.broken.is_some() {
            return;
        }
        log::warn!("procpool: the pool is broken: {cause}");
        self.shared.inbox.lock().broken = Some(cause.clone());
        let error = Error::BrokenPool {
            cause: cause.clone(),
        };
        self.broken = Some(cause);
        for job in std::mem::take(&mut self.pending) {
            self.fail(job.completion, error.clone());
        }
        for w in self.slots.iter_mut().flatten() {
            if w.running.is_some() && w.failure.is_none() {
                w.failure = Some(error.clone());
            }
            w.phase = Phase::Retiring;
            w.signal(libc::SIGKILL);
        }
        self.idle.clear();
    }

    /// When shutting down and nothing is left to run, tells the idle workers
    /// to exit.
    fn retire_if_done(&mut self) {
        if !(self.shutting_down || self.broken.is_some()) || !self.pending.is_empty() {
            return;
        }
        for slot in 0..self.slots.len() {
            let idle = self
                .worker(slot)
                .is_some_and(|w| w.running.is_none() && w.calls.is_some());
            if idle {
                if let Some(w) = self.worker(slot) {
                    w.phase = Phase::Retiring;
                }
                self.close_calls(slot);
            }
        }
        self.idle.clear();
    }

    fn finished(&self) -> bool {
        (self.shutting_down || self.broken.is_some())
            && self.pending.is_empty()
            && self.slots.iter().all(Option::is_none)
    }

    /// The loop has ended: nothing should be left, but make sure no process
    /// outlives the manager.
    fn teardown(&mut self) {
        for slot in 0..self.slots.len() {
            if let Some(w) = self.worker(slot) {
                w.signal(libc::SIGKILL);
                let status = w
                    .child
                    .wait()
                    .map_or(ExitInfo::Code(-1), ExitInfo::from_status);
                self.remove(slot, status);
            }
        }
        for job in std::mem::take(&mut self.pending) {
            job.completion.cancel();
        }
    }

    fn publish_stats(&self) {
        let stats = &self.shared.stats;
        let alive = self.slots.iter().flatten().count();
        let running = self
            .slots
            .iter()
            .flatten()
            .filter(|w| w.running.is_some())
            .count();
        stats.workers_alive.store(alive, Ordering::Relaxed);
        stats.workers_idle.store(self.idle.len(), Ordering::Relaxed);
        stats.queued.store(self.pending.len(), Ordering::Relaxed);
        stats.running.store(running, Ordering::Relaxed);
    }
}
