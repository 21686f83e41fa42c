//! Idle workers: with an `idle_timeout`, a worker that has had nothing to
//! do for that long is told to exit (its call pipe closed), the coldest
//! first, as long as `min_workers` stay; it comes back on demand like any
//! worker (`lifecycle::start_as_needed`).
//!
//! No timer per worker: the idle list is ordered by when each worker went
//! idle, so the coldest is its first entry, and the loop wakes for that one
//! worker's deadline (`EventLoop::idle_check_at`).

use super::EventLoop;
use crate::slot::Phase;
use crate::stats::Gauges;
use std::time::Instant;

impl EventLoop {
    /// Retires the workers idle for longer than the idle timeout, and sets
    /// when to look next.
    pub(super) fn retire_idle_workers(&mut self) {
        self.idle_check_at = None;
        let Some(timeout) = self.config.idle_timeout else {
            return;
        };
        if self.shutting_down || self.broken.is_some() {
            return;
        }
        let now = Instant::now();
        let mut staying = self.workers_staying();
        while let Some((slot, since)) = self.sched.coldest_idle() {
            if staying <= self.config.min_workers {
                // Looked at again when a worker goes idle or starts.
                return;
            }
            let due = since + timeout;
            if due > now {
                self.idle_check_at = Some(due);
                return;
            }
            self.sched.set_busy(slot);
            let Some(w) = self.worker(slot) else { continue };
            log::debug!(
                "procpool: worker {} idle for {timeout:?}: retiring it",
                w.pid
            );
            w.idle_exit = true;
            self.retire(slot);
            Gauges::bump(&self.gauges.idle_exits);
            staying -= 1;
        }
    }

    /// Workers that will serve on: started or starting, not told to exit
    /// and not killed.
    fn workers_staying(&self) -> usize {
        self.spawning
            + self
                .slots
                .iter()
                .flatten()
                .filter(|w| !w.replaced && w.phase != Phase::Retiring)
                .count()
    }
}
