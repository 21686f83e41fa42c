//! What a pool tells about itself: the live [`Gauges`] the manager thread
//! writes and callers read, and [`Stats`], a snapshot of them.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Live counters of a pool, written by the manager thread.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
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
    pub(crate) worker_failures: AtomicU64,
    pub(crate) recycled_for_memory: AtomicU64,
    pub(crate) idle_exits: AtomicU64,
    pub(crate) out_of_memory: AtomicU64,
    /// Pending jobs per priority, highest first, once a job with a priority
    /// other than 0 was submitted (before that, all `queued` are at 0).
    pub(crate) by_priority: Mutex<Option<Vec<(i32, usize)>>>,
    /// Whether a caller waiting on a new job should spin (the manager's
    /// reading of how dense the calls are).
    pub(crate) spin_ok: AtomicBool,
}

impl Gauges {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let now = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        let queued = now(&self.queued);
        let queued_by_priority = match &*self.by_priority.lock() {
            Some(levels) => levels.clone(),
            None if queued > 0 => vec![(0, queued)],
            None => Vec::new(),
        };
        Stats {
            queued_by_priority,
            blocked_submitters: 0,
            submits_waited: 0,
            recycled_for_memory: get(&self.recycled_for_memory),
            idle_exits: get(&self.idle_exits),
            out_of_memory: get(&self.out_of_memory),
            workers_alive: now(&self.workers_alive),
            workers_idle: now(&self.workers_idle),
            queued,
            running: now(&self.running),
            finished: get(&self.finished),
            failed: get(&self.failed),
            cancelled: get(&self.cancelled),
            timed_out: get(&self.timed_out),
            workers_replaced: get(&self.workers_replaced),
            workers_started: get(&self.workers_started),
            workers_forked: get(&self.workers_forked),
            worker_failures: get(&self.worker_failures),
        }
    }
}

/// A snapshot of a pool's state and history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Worker processes alive (starting ones included; one already killed
    /// and replaced, whose exit is not yet confirmed, is not counted).
    pub workers_alive: usize,
    /// Workers waiting for a task.
    pub workers_idle: usize,
    /// Tasks waiting for a worker.
    pub queued: usize,
    /// Of those, how many at each priority, highest first (levels with none
    /// waiting left out).
    pub queued_by_priority: Vec<(i32, usize)>,
    /// Submitters waiting now for room in the bounded backlog (threads in
    /// `submit`, and `submit_async` futures).
    pub blocked_submitters: usize,
    /// Submits that had to wait for room in the backlog, in all.
    pub submits_waited: u64,
    /// Tasks sent to a worker and not yet ended (running, or queued in its
    /// window behind the running one).
    pub running: usize,
    /// Tasks that produced an output.
    pub finished: u64,
    /// Tasks that failed (panic, worker death, codec, protocol, broken pool).
    pub failed: u64,
    /// Tasks cancelled before or while running.
    pub cancelled: u64,
    /// Tasks stopped at their time limit.
    pub timed_out: u64,
    /// Workers that ended (died, were stopped, recycled or killed for a
    /// breach) while the pool was in use; those needed again were replaced.
    pub workers_replaced: u64,
    /// Worker processes started in all.
    pub workers_started: u64,
    /// Of those, the ones forked by the fork server (the others were
    /// spawned).
    pub workers_forked: u64,
    /// Worker failures counted by the crash-loop guard: starts that failed,
    /// and workers that died or broke the protocol without completing a
    /// task (a death while running a task is that task's failure, not one
    /// of these).
    pub worker_failures: u64,
    /// Workers that exited after a task left their resident memory over
    /// the pool's `max_memory_per_child` (their result delivered).
    pub recycled_for_memory: u64,
    /// Workers that exited after being idle for the pool's `idle_timeout`.
    pub idle_exits: u64,
    /// Tasks that failed because an allocation failed in their worker
    /// (`Error::OutOfMemory`).
    pub out_of_memory: u64,
}
