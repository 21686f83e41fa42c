//! Deadlines: one heap of [`Timer`]s and a timerfd that wakes the poll at
//! the nearest, to the microsecond.

use super::token::Source;
use crate::sys::TimerFd;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What is due when a timer fires. Each is for one worker (by slot and
/// serial): a timer whose worker has changed since is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Deadline {
    /// The running job's time limit.
    TimeLimit { job: u64 },
    /// The grace period after SIGTERM is over: SIGKILL.
    GraceOver { job: u64 },
    /// A started worker has not said `Hello` in time.
    Hello,
    /// A frame it began has not progressed in time.
    Stall,
    /// It was told to exit, or said it would, and has not.
    Exit,
    /// Look again whether it has exited (no pidfd to say so).
    Reap,
    /// Killed to stop its job and not reaped yet: start its replacement
    /// without waiting any longer.
    Replace,
}

/// A deadline of the worker in `slot` with `serial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub(crate) at: Instant,
    pub(crate) slot: usize,
    pub(crate) serial: u64,
    pub(crate) deadline: Deadline,
}

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    /// Fires at the nearest deadline (`None` where timerfd is missing: the
    /// poll timeout, rounded to milliseconds, does the job then).
    fd: Option<TimerFd>,
    /// The deadline the timerfd is armed for: a turn whose nearest deadline
    /// is the same costs no system call (most turns, since deadlines such as
    /// a worker's start timeout stay in the heap for seconds).
    armed: Option<Instant>,
}

impl Timers {
    /// Timers whose fd is watched under [`Source::Timer`].
    pub(crate) fn new(registry: &Registry) -> Self {
        let fd = TimerFd::new().ok().filter(|timer| {
            let fd = timer.as_raw_fd();
            registry
                .register(
                    &mut SourceFd(&fd),
                    Source::Timer.token(),
                    Interest::READABLE,
                )
                .is_ok()
        });
        Self {
            heap: BinaryHeap::new(),
            fd,
            armed: None,
        }
    }

    /// Arms `deadline` for the worker in `slot` with `serial`, `after` from
    /// now.
    pub(crate) fn arm(&mut self, after: Duration, slot: usize, serial: u64, deadline: Deadline) {
        self.heap.push(Reverse(Timer {
            at: Instant::now() + after,
            slot,
            serial,
            deadline,
        }));
    }

    /// The nearest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// The next timer due by `now`, taken off the heap.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let Reverse(next) = *self.heap.peek()?;
        if next.at > now {
            return None;
        }
        self.heap.pop();
        Some(next)
    }

    /// The poll's timeout for a wake-up at `at`: the timerfd is armed for
    /// it, and the poll's own timeout is only a backstop a millisecond late.
    pub(crate) fn poll_timeout(&mut self, at: Option<Instant>) -> Option<Duration> {
        let at = at?;
        let after = at.saturating_duration_since(Instant::now());
        if let Some(fd) = &self.fd {
            if !after.is_zero() && (self.armed == Some(at) || fd.set(Some(after)).is_ok()) {
                self.armed = Some(at);
                return Some(after + Duration::from_millis(1));
            }
        }
        Some(after)
    }

    /// Clears the fired timerfd's readiness.
    pub(crate) fn drain(&mut self) {
        if let Some(fd) = &self.fd {
            fd.drain();
        }
        self.armed = None;
    }
}
