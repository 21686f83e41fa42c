//! Stopping work: aborts, time limits and their grace periods, shutdown
//! (with a deadline), terminate and kill; and the deadlines that fire.

use super::settle::End;
use super::timers::Deadline;
use super::EventLoop;
use crate::failure::Signal;
use crate::job::StopReason;
use crate::slot::Phase;
use procpool_ipc::{FrameBuf, ToWorker};
use std::time::{Duration, Instant};

/// How long after a stop's grace a launched worker may take to answer or
/// die (the way back over a network) before its launcher is killed and its
/// stream ended.
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// How long the replacement of a worker killed to stop its job waits for
/// the victim to be reaped. A victim dies within a millisecond or two; one
/// that takes longer (a huge address space to tear down, stuck in the
/// kernel) is replaced without waiting for it.
const REPLACE_WAIT: Duration = Duration::from_millis(20);

impl EventLoop {
    /// Stops the job `id`: cancelled if still queued or waiting in a window,
    /// its worker stopped if it runs.
    pub(super) fn abort(&mut self, id: u64) {
        if let Some(work) = self.sched.remove(id) {
            return self.settle(work, End::Cancelled);
        }
        for slot in 0..self.slots.len() {
            let Some(w) = self.worker(slot) else { continue };
            let Some(at) = w.window.iter().position(|j| j.id == id) else {
                continue;
            };
            if at == 0 {
                return self.stop_head(slot, StopReason::Aborted, None);
            }
            // Not started: it ends cancelled now. The worker will still
            // reach it; if it is running then, it is stopped like any other.
            let job = &mut w.window[at];
            if job.stop.is_none() {
                job.stop = Some(StopReason::Aborted);
                if let Some(completion) = job.completion.take() {
                    crate::stats::Gauges::bump(&self.gauges.cancelled);
                    completion.cancel();
                }
            }
            return;
        }
    }

    /// Starts stopping the job running in `slot` (the head of its window):
    /// SIGTERM to the worker's group and SIGKILL when the grace ends (grace
    /// zero: SIGKILL now).
    pub(super) fn stop_head(&mut self, slot: usize, reason: StopReason, grace: Option<Duration>) {
        let Some(w) = self.worker(slot) else { return };
        let Some(head) = w.window.front_mut() else {
            return;
        };
        if head.stop.is_some() && head.completion.is_some() {
            // Already being stopped.
            return;
        }
        if head.stop.is_none() {
            head.stop = Some(reason);
        }
        let grace = grace.unwrap_or(head.grace);
        let (job, serial) = (head.id, w.serial);
        log::debug!(
            "procpool: stopping `{}` in worker {} ({reason:?}, grace {grace:?})",
            head.task,
            w.pid
        );
        // Nothing more goes to this worker until the stop has played out.
        self.sched.set_busy(slot);
        if self.worker(slot).is_some_and(|w| w.launched) {
            return self.stop_launched(slot, job, grace);
        }
        if grace.is_zero() {
            self.kill_stopped(slot);
        } else {
            if let Some(w) = self.worker(slot) {
                w.signal(libc::SIGTERM);
            }
            self.timers
                .arm(grace, slot, serial, Deadline::GraceOver { job });
        }
    }

    /// Stops job `job` of a launched worker, which no signal of ours
    /// reaches: a `Stop` frame, which the worker obeys (SIGTERM to its group
    /// now, SIGKILL after `grace`), backed by killing its launcher and
    /// ending its stream if it has not answered or died [`STOP_MARGIN`]
    /// after the grace.
    fn stop_launched(&mut self, slot: usize, job: u64, grace: Duration) {
        let Some(w) = self.worker(slot) else { return };
        if w.calls.is_none() {
            return self.kill_stopped(slot);
        }
        let grace_ms = u32::try_from(grace.as_millis()).unwrap_or(u32::MAX);
        let mut frame = FrameBuf::new();
        if let Err(e) = frame.push(&ToWorker::Stop { id: job, grace_ms }) {
            log::error!("procpool: cannot encode a stop: {e}");
            return self.kill_stopped(slot);
        }
        w.queue_control(frame.pending().to_vec());
        let serial = w.serial;
        self.write_calls(slot);
        self.timers.arm(
            grace + STOP_MARGIN,
            slot,
            serial,
            Deadline::GraceOver { job },
        );
    }

    /// Kills the worker whose job is being stopped, and replaces it once it
    /// is reaped (after [`REPLACE_WAIT`] at the latest).
    ///
    /// Not at once: on a machine with few CPUs the replacement's start (the
    /// fork server's fork, the new worker's first steps) competes with the
    /// victim's teardown, and the stopped future, which resolves when the
    /// victim is reaped, waits for both. Measured on 2 vCPUs
    /// (`procpool-bench` cancel_running, interleaved runs): abort to future
    /// resolved 1.04 ms with the start at once, 0.65 ms without.
    fn kill_stopped(&mut self, slot: usize) {
        self.kill_worker(slot);
        let Some(w) = self.worker(slot) else { return };
        if w.launched {
            // Its teardown is on another machine: nothing to compete with.
            return self.replace_now(slot);
        }
        w.replace_when_reaped = true;
        let serial = w.serial;
        if self.in_flight() > 0 {
            // The replacement will go through the spawner thread.
            self.spawner.warm();
        }
        self.timers
            .arm(REPLACE_WAIT, slot, serial, Deadline::Replace);
    }

    /// The job at the head of `slot`'s window has just started: arm its time
    /// limit, carry out a stop asked for while it waited, and let the worker
    /// take more work when it has none.
    pub(super) fn head_changed(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let serial = w.serial;
        match w.window.front() {
            None => {
                if w.is_idle() {
                    self.sched.set_idle(slot);
                }
            }
            Some(head) => {
                let (job, limit, stopped) = (head.id, head.time_limit, head.stop);
                if let Some(limit) = limit {
                    self.timers
                        .arm(limit, slot, serial, Deadline::TimeLimit { job });
                }
                if let Some(reason) = stopped {
                    self.stop_head(slot, reason, None);
                }
            }
        }
    }

    /// Carries out the deadlines that are due.
    pub(super) fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.stop_running_at.is_some_and(|at| at <= now) {
            self.stop_running_at = None;
            self.cancel_pending();
            for slot in 0..self.slots.len() {
                self.stop_head(slot, StopReason::Aborted, None);
            }
        }
        while let Some(timer) = self.timers.pop_due(now) {
            let slot = timer.slot;
            let Some(w) = self.worker(slot) else { continue };
            if w.serial != timer.serial {
                continue;
            }
            let head = w.window.front().map(|j| (j.id, j.time_limit));
            match timer.deadline {
                Deadline::TimeLimit { job } => {
                    if let Some((id, Some(limit))) = head {
                        if id == job {
                            self.stop_head(slot, StopReason::TimedOut(limit), None);
                        }
                    }
                }
                Deadline::GraceOver { job } => {
                    if head.is_some_and(|(id, _)| id == job) {
                        self.kill_stopped(slot);
                    }
                }
                Deadline::Hello => self.check_hello(slot),
                Deadline::Stall => self.check_stall(slot),
                Deadline::Exit => {
                    log::warn!(
                        "procpool: worker {} did not exit in time when it had to; killing it",
                        w.pid
                    );
                    self.kill_worker(slot);
                }
                Deadline::Reap => self.try_reap(slot),
                Deadline::Replace => self.replace_now(slot),
            }
        }
    }

    /// Takes no more work; with `cancel_futures` cancels what is queued;
    /// what still runs at `stop_running_at` is stopped.
    pub(super) fn shutdown(&mut self, cancel_futures: bool, stop_running_at: Option<Instant>) {
        self.shutting_down = true;
        if cancel_futures {
            self.cancel_pending();
        }
        if let Some(at) = stop_running_at {
            self.stop_running_at = Some(self.stop_running_at.map_or(at, |t| t.min(at)));
        }
    }

    /// Shuts down, cancels what is queued, and stops every worker: with
    /// SIGKILL at once, idle and starting ones included; with SIGTERM, the
    /// running jobs get their grace period and the others are told to exit.
    pub(super) fn signal_workers(&mut self, signal: Signal) {
        self.shutting_down = true;
        let kill = signal == Signal::KILL;
        self.killing_all |= kill;
        self.cancel_pending();
        if kill {
            // Not even a start under way is waited for.
            self.launcher.stop();
        }
        let grace = if kill {
            Duration::ZERO
        } else {
            self.config.grace
        };
        for slot in 0..self.slots.len() {
            let Some(w) = self.worker(slot) else { continue };
            w.phase = Phase::Retiring;
            // What waits in its window never starts.
            let waiting = w.drain_waiting();
            let running = !w.window.is_empty();
            for work in waiting {
                self.settle(work, End::Cancelled);
            }
            if running {
                self.stop_head(slot, StopReason::Aborted, Some(grace));
            } else if kill {
                if let Some(w) = self.worker(slot) {
                    w.orderly_exit = true;
                }
                self.kill_worker(slot);
            } else {
                self.retire(slot);
            }
        }
        self.sched.clear_idle();
    }

    fn cancel_pending(&mut self) {
        for work in self.sched.drain() {
            self.settle(work, End::Cancelled);
        }
    }
}
