//! Sending: pending jobs to idle workers (or into the windows of busy ones),
//! their call frames sealed and written.

use super::dispatch::{least_loaded, Window};
use super::settle::End;
use super::token::Source;
use super::EventLoop;
use crate::slot::Phase;
use crate::stats::Gauges;
use crate::Failure;
use procpool_ipc::{RemoteError, RemoteErrorKind};
use std::time::Instant;

impl EventLoop {
    /// Sends queued jobs to workers: idle ones first (the most recently idle,
    /// whose caches are warm), then into the windows of busy workers when
    /// every job involved is known to be short. One write per worker for
    /// everything it got this round.
    pub(super) fn dispatch(&mut self) {
        while let Some(front) = self.sched.front() {
            let task = front.task;
            let slot = match self.sched.take_idle() {
                Some(slot) => slot,
                None => match self.window_for(task) {
                    Some(slot) => slot,
                    None => break,
                },
            };
            if !self
                .worker(slot)
                .is_some_and(|w| w.phase == Phase::Ready && w.calls.is_some())
            {
                continue;
            }
            let Some(mut work) = self.sched.pop() else {
                break;
            };
            // Out of the queue: its place in the backlog is free.
            drop(work.permit.take());
            if let Err(names) = self.sched.tasks().check(work.task) {
                let message = format!("no task `{}` in this worker (it has: {names})", work.task);
                let error = RemoteError::new(RemoteErrorKind::UnknownTask, message);
                self.settle(work, End::Failed(Failure::Remote(error)));
                self.return_to_idle(slot);
                continue;
            }
            if !work.started {
                let running = work
                    .completion
                    .as_mut()
                    .is_some_and(|completion| completion.set_running());
                if !running {
                    // Cancelled while it waited.
                    Gauges::bump(&self.gauges.cancelled);
                    self.return_to_idle(slot);
                    continue;
                }
                work.started = true;
            }
            let spin_us = if self.calls_are_dense() {
                u32::try_from(self.config.spin.as_micros()).unwrap_or(u32::MAX)
            } else {
                0
            };
            let sealed = work.frame.seal(
                work.id,
                work.task,
                work.kind,
                spin_us,
                self.config.max_frame_len,
            );
            if let Err(e) = sealed {
                self.settle(work, End::Failed(Failure::Unsendable(e)));
                self.return_to_idle(slot);
                continue;
            }
            work.cost = self.sched.costs().short(work.task);
            let Some(w) = self.worker(slot) else { continue };
            let became_head = w.window.is_empty();
            w.push_job(work);
            if became_head {
                w.head_started = Instant::now();
                self.head_changed(slot);
            }
            if !self.dirty.contains(&slot) {
                self.dirty.push(slot);
            }
        }
        while let Some(slot) = self.dirty.pop() {
            self.write_calls(slot);
        }
    }

    /// A busy worker whose window can take a job of `task`: everything it
    /// holds, and the job, are known to be short. The least loaded one.
    fn window_for(&mut self, task: &str) -> Option<usize> {
        let cost = self.sched.costs().short(task)?;
        let windows = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, w)| Some((slot, Window::of(w.as_ref()?))));
        least_loaded(windows, cost, self.config.max_tasks_per_child)
    }

    /// A worker picked for a job it did not get goes back where it was.
    fn return_to_idle(&mut self, slot: usize) {
        if self.worker(slot).is_some_and(|w| w.is_idle()) {
            self.sched.set_idle(slot);
        }
    }

    /// Writes what `slot`'s worker has waiting in its call pipe.
    pub(super) fn write_calls(&mut self, slot: usize) {
        let registry = self.poll.registry();
        if let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            w.write_calls(registry, Source::Calls(slot).token());
        }
    }
}
