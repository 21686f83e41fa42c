//! Worker lives: starting (here or on the spawner thread), installing,
//! reaping, replacing, retiring; the crash-loop guard; breaking the pool.
//!
//! The guard: a *failure* is a start that failed, or a worker that died,
//! broke the protocol or missed a deadline without completing a task and
//! not while running one (a death while running a task is charged to the
//! task, which fails with worker-died: one crashing task does not count
//! against the pool). After each failure, starts wait for a back-off that
//! doubles per failure in a row; a completed task ends the row; after
//! `max_failures_in_a_row` the pool breaks with the last cause. Workers are
//! started only while there is work for them (or to keep `min_workers` of them),
//! so a pool whose workers cannot live does not spin while idle.

use super::settle::End;
use super::sources::SourceState;
use super::timers::Deadline;
use super::token::Source;
use super::EventLoop;
use crate::config::FailurePolicy;
use crate::failure::{BreakCause, ExitInfo};
use crate::launch::{StartError, Started};
use crate::slot::{Phase, WorkerSlot};
use crate::stats::Gauges;
use crate::Failure;
use mio::unix::SourceFd;
use mio::Interest;
use procpool_ipc::AbortCause;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a worker whose result pipe closed is checked for exit where
/// there is no pidfd to say so.
const REAP_RETRY: Duration = Duration::from_millis(2);

/// How long the manager waits for a launched worker's stderr to be read to
/// its end when the worker ended before its `Hello`, so that the error
/// quotes the launcher's last words. Only that failure pays it.
const STDERR_END_WAIT: Duration = Duration::from_millis(200);

impl EventLoop {
    /// Starts workers while there is work for them: the pending jobs that no
    /// idle or starting worker will take, up to `max_workers`, and at least
    /// `min_workers`; each on the first source (in the order given) that
    /// may start one (see `sources`).
    pub(super) fn start_as_needed(&mut self) {
        if self.broken.is_some() || (self.shutting_down && self.sched.pending() == 0) {
            return;
        }
        let alive = self.workers_counted();
        let starting = self.spawning
            + self
                .slots
                .iter()
                .flatten()
                .filter(|w| w.phase == Phase::Starting)
                .count();
        let mut wanted = self
            .sched
            .pending()
            .saturating_sub(self.sched.idle() + starting);
        if !self.shutting_down {
            wanted = wanted.max(self.config.min_workers.saturating_sub(alive));
        }
        let room = self.config.max_workers.saturating_sub(alive);
        self.start_workers(wanted.min(room));
    }

    /// Starts up to `n` workers, on the sources that may start one (fewer
    /// if a start fails or no source may).
    pub(super) fn start_workers(&mut self, n: usize) {
        for _ in 0..n {
            let Some(source) = self.source_to_start() else {
                return;
            };
            if !self.start_one(source) {
                return;
            }
        }
    }

    /// The first source that may start a worker now.
    fn source_to_start(&mut self) -> Option<usize> {
        let now = Instant::now();
        let mut counts = vec![(0usize, 0usize); self.sources.len()];
        for w in self.slots.iter().flatten().filter(|w| !w.replaced) {
            if let Some((alive, starting)) = counts.get_mut(w.source) {
                *alive += 1;
                if w.phase == Phase::Starting {
                    *starting += 1;
                }
            }
        }
        self.sources
            .iter_mut()
            .zip(counts)
            .position(|(source, (alive, starting))| {
                source.may_start(now, alive + source.spawning, starting + source.spawning)
            })
    }

    /// Starts a worker of `source`: here when no job is in flight (nothing
    /// waits on this thread, and a hop to the spawner would only add a
    /// wake-up), else on the spawner thread so that the other workers'
    /// results are not held up for the millisecond a start takes (longer
    /// through a launcher). The pool's first start waits briefly for the
    /// fork server, so that every local worker is a fork. `false` when it
    /// failed (the failure is dealt with).
    fn start_one(&mut self, source: usize) -> bool {
        let first = !std::mem::replace(&mut self.first_start_done, true);
        if self.in_flight() == 0 && !self.sources[source].spec.is_launched() {
            return match self.launcher.start(source, first) {
                Ok(started) => self.install(started),
                Err(e) => {
                    self.start_failed(source, e);
                    false
                }
            };
        }
        match self.spawner.request(source) {
            Ok(()) => {
                self.spawning += 1;
                self.sources[source].spawning += 1;
                true
            }
            Err(e) => {
                self.start_failed(source, e);
                false
            }
        }
    }

    /// Takes in the workers the spawner thread has started.
    pub(super) fn take_started(&mut self) {
        for (source, result) in self.spawner.take_started() {
            self.spawning = self.spawning.saturating_sub(1);
            if let Some(state) = self.sources.get_mut(source) {
                state.spawning = state.spawning.saturating_sub(1);
            }
            match result {
                Ok(mut started) if self.killing_all => started.process.kill_and_reap(),
                Ok(started) => {
                    self.install(started);
                }
                Err(e) => self.start_failed(source, e),
            }
        }
    }

    /// A start failed: a passing shortage (fds, processes, memory) is a
    /// failure in a row, retried after the back-off; anything else (no such
    /// program, not executable) will not get better, and gives the source
    /// up (the pool breaks when it was the last).
    fn start_failed(&mut self, source: usize, e: StartError) {
        log::error!("procpool: cannot start a worker: {e}");
        if e.is_transient() {
            self.count_failure(source, format!("a worker could not be started: {e}"));
        } else {
            let cause = format!("cannot start a worker: {e}");
            if let Some(state) = self.sources.get_mut(source) {
                state.give_up(cause.clone());
            }
            if self.sources.iter().all(SourceState::is_given_up) {
                self.break_pool(cause, Some(e.source));
            }
        }
    }

    /// Gives a new worker a slot, watches its pipe and pidfd, and arms its
    /// start deadline. `false` when it could not be watched (it is then
    /// killed, and the pool broken: the poll itself is failing).
    fn install(&mut self, started: Started) -> bool {
        self.next_serial += 1;
        let (forked, source) = (started.forked, started.source);
        let mut w = match WorkerSlot::new(started, &self.config, self.next_serial) {
            Ok(w) => w,
            Err(e) => {
                self.start_failed(source, e);
                return false;
            }
        };
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let registry = self.poll.registry();
        let watched = (|| {
            if let Some(results) = w.results.as_mut() {
                registry.register(results, Source::Results(slot).token(), Interest::READABLE)?;
            }
            if let Some(pidfd) = &w.pidfd {
                let fd = pidfd.as_raw_fd();
                registry.register(
                    &mut SourceFd(&fd),
                    Source::Pidfd(slot).token(),
                    Interest::READABLE,
                )?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = watched {
            let what = format!("cannot watch worker {}", w.pid);
            drop(w); // kills and reaps it
            self.break_pool(format!("{what}: {e}"), Some(e));
            return false;
        }
        log::debug!("procpool: started worker {}", w.pid);
        Gauges::bump(&self.gauges.workers_started);
        if forked {
            Gauges::bump(&self.gauges.workers_forked);
        }
        let serial = w.serial;
        self.slots[slot] = Some(w);
        self.timers
            .arm(self.config.start_timeout, slot, serial, Deadline::Hello);
        true
    }

    /// The worker in `slot` has not said `Hello` in time.
    pub(super) fn check_hello(&mut self, slot: usize) {
        let timeout = self.config.start_timeout;
        if self
            .worker(slot)
            .is_some_and(|w| w.phase == Phase::Starting)
        {
            self.breach(slot, format!("it did not say Hello within {timeout:?}"));
        }
    }

    /// Stops reading `slot`'s results (its worker is condemned: nothing it
    /// sends counts any more); without a pidfd, whose readiness would say
    /// the worker exited, looks for its exit from now on.
    pub(super) fn stop_reading(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        w.close_results(registry);
        if w.pidfd.is_none() {
            let serial = w.serial;
            self.timers.arm(REAP_RETRY, slot, serial, Deadline::Reap);
        }
    }

    /// Closes `slot`'s call pipe: the worker reads EOF and exits, within the
    /// exit timeout or it is killed.
    pub(super) fn retire(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        w.phase = Phase::Retiring;
        if w.calls.is_none() {
            return;
        }
        w.close_calls(registry);
        w.orderly_exit = true;
        let serial = w.serial;
        self.sched.set_busy(slot);
        self.timers
            .arm(self.config.exit_timeout, slot, serial, Deadline::Exit);
    }

    /// The pidfd turned readable: the worker (a launched worker's
    /// launcher) has exited.
    pub(super) fn on_exit_signal(&mut self, slot: usize) {
        // Its last frames may still be in the pipe: take them first.
        self.read_results_up_to(slot, super::results::Share::All);
        if let Some(w) = self.worker(slot) {
            if w.launched && w.results.is_some() {
                // The launcher is gone, the worker's stream is not (a
                // wrapper that left the worker running): the worker lives
                // on, until its stream ends. The launcher is reaped now.
                if let Err(e) = w.process.try_wait() {
                    log::warn!("procpool: reaping launcher {}: {e}", w.pid);
                }
                return;
            }
        }
        self.try_reap(slot);
    }

    /// Kills the worker in `slot` at once: SIGKILL to its process group
    /// (a launched worker's launcher's), and for a launched worker, whose
    /// process the pool may not reach, the end of its stream too (it then
    /// kills its own group: nobody reads its results any more).
    pub(super) fn kill_worker(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        w.phase = Phase::Retiring;
        w.signal(libc::SIGKILL);
        if w.launched {
            w.close_calls(registry);
            self.stop_reading(slot);
            self.try_reap(slot);
        }
    }

    /// Reaps the worker in `slot` if it has exited, and settles its jobs.
    pub(super) fn try_reap(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        if !w.orderly_exit && !w.killed {
            // It died on its own: what its task started dies with it. Done
            // before reaping, while the group id cannot have been reused.
            w.signal(libc::SIGKILL);
            w.killed = false;
        }
        let exit = match w.process.try_wait() {
            Ok(Some(status)) => ExitInfo::from_status(status),
            Ok(None) => {
                if w.pidfd.is_none() {
                    let serial = w.serial;
                    self.timers.arm(REAP_RETRY, slot, serial, Deadline::Reap);
                }
                return;
            }
            Err(e) => {
                log::error!("procpool: waiting for worker {}: {e}", w.pid);
                ExitInfo::Code(-1)
            }
        };
        self.remove(slot, exit);
    }

    /// The worker in `slot` is gone: its running job fails (or ends as its
    /// stop said), the jobs waiting in its window go back to the queue, and
    /// its end is weighed by the crash-loop guard.
    fn remove(&mut self, slot: usize, exit: ExitInfo) {
        let registry = self.poll.registry();
        let Some(mut w) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        w.close_results(registry);
        w.close_calls(registry);
        if let Some(pidfd) = &w.pidfd {
            let fd = pidfd.as_raw_fd();
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        self.sched.set_busy(slot);
        if w.orderly_exit || w.killed {
            log::debug!("procpool: worker {} exited ({exit})", w.pid);
        } else {
            log::warn!("procpool: worker {} died unexpectedly ({exit})", w.pid);
        }
        if !w.idle_exit && (!self.shutting_down || self.sched.pending() > 0) {
            Gauges::bump(&self.gauges.workers_replaced);
        }
        let failure = w.failure.take().unwrap_or(match (w.aborting, exit) {
            // It said why before it died, and died as it said.
            (Some(AbortCause::OutOfMemory), ExitInfo::Signal(signal))
                if signal.number() == libc::SIGABRT =>
            {
                Failure::OutOfMemory {
                    pid: w.pid,
                    limit: self.config.memory_limit,
                }
            }
            _ => Failure::WorkerDied {
                pid: w.hello_pid.filter(|_| w.launched).unwrap_or(w.pid),
                exit,
                place: self.place_of(&w),
            },
        });
        let breach = matches!(failure, Failure::Protocol { .. });
        // Killed on purpose to stop a job, or told to exit: not a failure.
        let deliberate = w.orderly_exit || (w.killed && !breach);
        let waiting = w.drain_waiting();
        let head = w.pop_job();
        let (source, replace) = (w.source, w.replace_when_reaped && !w.replaced);
        let mut break_cause = None;
        // A breach was counted when it happened.
        let counts = !deliberate && !breach && w.served == 0 && head.is_none();
        let mut description = match self.place_of(&w) {
            Some(place) => format!("worker {} on {place} {}", w.pid, describe(&failure)),
            None => format!("worker {} {}", w.pid, describe(&failure)),
        };
        if let Some(stderr) = w.stderr.as_ref().filter(|_| !w.said_hello) {
            // Before its Hello, a launched worker's stderr says why (a host
            // down, a key refused, no program there).
            let said = stderr.text_when_ended(STDERR_END_WAIT);
            if !said.is_empty() {
                description = format!("{description} before its Hello; its stderr: {said}");
            }
        }
        if let Some(head) = head {
            if matches!(failure, Failure::OutOfMemory { .. }) {
                Gauges::bump(&self.gauges.out_of_memory);
            }
            if head.stop.is_none()
                && head.completion.is_some()
                && self.config.failure_policy == FailurePolicy::BreakPool
                && matches!(failure, Failure::WorkerDied { .. })
            {
                break_cause = Some(format!("a worker died: {description}"));
            }
            self.settle(head, End::Failed(failure));
        }
        for job in waiting.into_iter().rev() {
            self.requeue(job);
        }
        drop(w);
        if let Some(cause) = break_cause {
            self.break_pool(cause, None);
        } else if counts {
            self.count_failure(source, description);
        }
        if replace {
            self.replace_reaped();
        }
    }

    /// Starts the replacement of a worker killed to stop its job, now that
    /// it is reaped (see `kill_stopped`).
    fn replace_reaped(&mut self) {
        if self.broken.is_some()
            || self.shutting_down
            || self.workers_counted() >= self.config.max_workers
        {
            return;
        }
        if let Some(source) = self.source_to_start() {
            self.start_one(source);
        }
    }

    /// Where a launched worker ran (its source's name); `None` for a local
    /// one.
    fn place_of(&self, w: &WorkerSlot) -> Option<String> {
        w.launched
            .then(|| self.sources.get(w.source).map(|s| s.spec.name.clone()))
            .flatten()
    }

    /// One more failure in a row on `source`: back off, or give the source
    /// up after too many (and break the pool when none is left).
    pub(super) fn count_failure(&mut self, source: usize, description: String) {
        if self.broken.is_some() || self.shutting_down {
            return;
        }
        Gauges::bump(&self.gauges.worker_failures);
        let (max, config) = (self.config.max_failures_in_a_row, &self.config);
        let Some(state) = self.sources.get_mut(source) else {
            return;
        };
        let Some(cause) = state.failed(&description, max, |n| config.backoff_after(n)) else {
            return;
        };
        if self.sources.iter().all(SourceState::is_given_up) {
            self.break_pool(cause, None);
        } else {
            log::error!(
                "procpool: no more workers on {}: {cause}",
                self.sources[source].spec.name
            );
        }
    }

    /// A worker of `source` completed a task: its row of failures is over.
    pub(super) fn worker_succeeded(&mut self, source: usize) {
        if let Some(state) = self.sources.get_mut(source) {
            state.succeeded();
        }
    }

    /// Starts the replacement of the worker in `slot`, killed on purpose (a
    /// stop), without waiting for its death to be confirmed: a launched
    /// worker at once, a local one when it is not reaped in time. The killed
    /// worker no longer counts towards `max_workers`.
    pub(super) fn replace_now(&mut self, slot: usize) {
        if self.broken.is_some() || self.shutting_down {
            return;
        }
        let Some(w) = self.worker(slot) else { return };
        if w.replaced || w.phase == Phase::Starting {
            return;
        }
        w.replaced = true;
        if let Some(source) = self.source_to_start() {
            self.start_one(source);
        }
    }

    /// Sends every job `slot` holds back to the queue: the worker has said
    /// it will run nothing more (recycling), so none of them has started.
    pub(super) fn requeue_all(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let waiting = w.drain_waiting();
        let head = w.pop_job();
        for job in waiting.into_iter().rev() {
            self.requeue(job);
        }
        if let Some(head) = head {
            self.requeue(head);
        }
    }

    /// The pool can run nothing more: fail what is pending and running, kill
    /// the workers, refuse later submits.
    pub(super) fn break_pool(&mut self, cause: String, source: Option<io::Error>) {
        if self.broken.is_some() {
            return;
        }
        log::warn!("procpool: the pool is broken: {cause}");
        let cause = BreakCause {
            cause,
            source: source.map(Arc::new),
        };
        self.mailbox.set_broken(cause.clone());
        self.broken = Some(cause.clone());
        for work in self.sched.drain() {
            self.settle(work, End::Failed(Failure::BrokenPool(cause.clone())));
        }
        for slot in 0..self.slots.len() {
            let Some(w) = self.worker(slot) else { continue };
            let waiting = w.drain_waiting();
            w.condemn(Failure::BrokenPool(cause.clone()));
            self.stop_reading(slot);
            for work in waiting {
                self.settle(work, End::Failed(Failure::BrokenPool(cause.clone())));
            }
        }
        self.sched.clear_idle();
    }

    /// When shutting down (or broken) with nothing left to run, tells the
    /// workers with nothing to do to exit.
    pub(super) fn retire_if_done(&mut self) {
        if !(self.shutting_down || self.broken.is_some()) || self.sched.pending() > 0 {
            return;
        }
        if self.in_flight() == 0 {
            // Nothing can need a worker any more: a start still under way
            // (waiting on the fork server, say) ends now.
            self.launcher.stop();
        }
        for slot in 0..self.slots.len() {
            if self
                .worker(slot)
                .is_some_and(|w| w.window.is_empty() && w.calls.is_some())
            {
                self.retire(slot);
            }
        }
        self.sched.clear_idle();
    }

    pub(super) fn finished(&self) -> bool {
        (self.shutting_down || self.broken.is_some())
            && self.sched.pending() == 0
            && self.spawning == 0
            && self.slots.iter().all(Option::is_none)
    }

    /// The loop has ended: nothing should be left, but make sure no process
    /// outlives the manager.
    pub(super) fn teardown(&mut self) {
        // No start waits on the fork server any more; after the spawner has
        // stopped, nothing new can arrive.
        self.launcher.stop();
        for (_, started) in self.spawner.stop() {
            if let Ok(mut started) = started {
                started.process.kill_and_reap();
            }
        }
        self.spawning = 0;
        for slot in 0..self.slots.len() {
            if let Some(w) = self.worker(slot) {
                w.signal(libc::SIGKILL);
                let exit = w
                    .process
                    .wait()
                    .map_or(ExitInfo::Code(-1), ExitInfo::from_status);
                self.remove(slot, exit);
            }
        }
        for work in self.sched.drain() {
            self.settle(work, End::Cancelled);
        }
    }

    /// Worker processes that count towards `max_workers`: all but those
    /// already killed and replaced.
    pub(super) fn workers_counted(&self) -> usize {
        self.spawning + self.slots.iter().flatten().filter(|w| !w.replaced).count()
    }
}

/// A failure in words, as the crash-loop guard reports it.
fn describe(failure: &Failure) -> String {
    match failure {
        Failure::WorkerDied { exit, .. } => format!("died ({exit})"),
        Failure::Protocol { detail, .. } => format!("broke the protocol: {detail}"),
        other => other.to_string(),
    }
}
