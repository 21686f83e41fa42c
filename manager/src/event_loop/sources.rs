//! Where workers start, and the crash-loop guard, per source: this
//! machine, or a launcher (ssh to a host, srun, `kubectl exec`).
//!
//! A *failure* is a start that failed, or a worker that died, broke the
//! protocol or missed a deadline without completing a task and not while
//! running one (a death while running a task is charged to the task). Each
//! source counts its own failures in a row: after one, its next start waits
//! for a back-off that doubles per failure, and only one start probes it at
//! a time; a completed task ends its row. After `max_failures_in_a_row` the
//! source is given up: the pool goes on with the others, and breaks with
//! the last cause when none is left. One dead host among healthy ones thus
//! costs a few probes, not a stream of ssh attempts, and not the pool.

use crate::config::Source;
use std::time::Instant;

/// A source and how its starts have gone.
pub(crate) struct SourceState {
    pub(crate) spec: Source,
    /// Start requests sent to the spawner thread and not yet answered.
    pub(crate) spawning: usize,
    failures_in_a_row: u32,
    /// After a failure, no worker of it starts before this.
    resume_at: Option<Instant>,
    /// Why it was given up, once it was.
    given_up: Option<String>,
}

impl SourceState {
    pub(crate) fn new(spec: Source) -> Self {
        Self {
            spec,
            spawning: 0,
            failures_in_a_row: 0,
            resume_at: None,
            given_up: None,
        }
    }

    /// Whether a worker of it may start now, with `starting` of its workers
    /// starting and `alive` counted: not given up, not backing off, a free
    /// slot, and, after a failure, none starting already (one probe at a
    /// time).
    pub(crate) fn may_start(&mut self, now: Instant, alive: usize, starting: usize) -> bool {
        if self.given_up.is_some() || alive >= self.spec.slots {
            return false;
        }
        if let Some(at) = self.resume_at {
            if now < at {
                return false;
            }
            self.resume_at = None;
        }
        self.failures_in_a_row == 0 || starting == 0
    }

    /// One more failure; `Some(cause)` when that gives the source up.
    pub(crate) fn failed(
        &mut self,
        description: &str,
        max_in_a_row: u32,
        backoff: impl FnOnce(u32) -> std::time::Duration,
    ) -> Option<String> {
        self.failures_in_a_row += 1;
        let n = self.failures_in_a_row;
        if n >= max_in_a_row {
            let cause = format!("{n} worker failures in a row; the last: {description}");
            self.given_up = Some(cause.clone());
            return Some(cause);
        }
        let wait = backoff(n);
        log::warn!(
            "procpool: {description}; {n} failures in a row on {}, next start in {wait:?}",
            self.spec.name
        );
        self.resume_at = Some(Instant::now() + wait);
        None
    }

    /// Gives it up at once (a start that will not get better).
    pub(crate) fn give_up(&mut self, cause: String) {
        self.given_up = Some(cause);
    }

    /// A worker of it completed a task: its row of failures is over.
    pub(crate) fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
        self.resume_at = None;
    }

    pub(crate) fn is_given_up(&self) -> bool {
        self.given_up.is_some()
    }

    /// When its back-off ends, if it is in one.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        self.resume_at
    }
}
