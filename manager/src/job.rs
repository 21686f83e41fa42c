//! A unit of work: [`Job`] as the facade submits it, and [`Work`], the one
//! shape it keeps in the manager from the queue to its end.

use crate::backlog::Permit;
use crate::Failure;
use procpool_ipc::{CallFrame, CallKind, Payload};
use std::fmt;
use std::time::Duration;

/// The typed end of a job, erased: the facade implements it over its future
/// and the task's codec, so that the manager itself only moves bytes and
/// runs no user code.
pub trait Completion: Send + 'static {
    /// The job is about to be sent to a worker: mark it running. `false`
    /// means it was cancelled while pending; it is then dropped unsent.
    fn set_running(&mut self) -> bool;

    /// The job ended: the encoded output (moved, for the reader to decode),
    /// or why it failed. Must not block or decode: it runs on the manager
    /// thread.
    fn finish(self: Box<Self>, outcome: Result<Payload, Failure>);

    /// The job was cancelled by the pool (a shutdown that cancels pending
    /// work) or stopped while it ran: the future ends cancelled.
    fn cancel(self: Box<Self>);
}

/// A call to run: what travels, plus how to end it.
pub struct Job {
    /// The id that `Done` carries back and an abort names (from
    /// [`Manager::next_job_id`](crate::Manager::next_job_id)).
    pub id: u64,
    /// The task's registered name.
    pub task: &'static str,
    /// One call or a `map` chunk.
    pub kind: CallKind,
    /// The encoded arguments, in the frame that will carry them (the
    /// manager seals it with the call's fields when it sends it).
    pub frame: CallFrame,
    /// How to complete the caller's future.
    pub completion: Box<dyn Completion>,
    /// Stop the task this long after it starts (overrides the pool's).
    pub time_limit: Option<Duration>,
    /// The grace period between SIGTERM and SIGKILL (overrides the pool's).
    pub grace: Option<Duration>,
    /// Pending jobs of higher priority are sent to workers first; equal
    /// ones in the order they came. 0 is the default.
    pub priority: i32,
    /// Its place in the bounded backlog, given back when it leaves the
    /// queue; `None` outside the backlog (no bound, or a `map` chunk).
    pub permit: Option<Permit>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("task", &self.task)
            .field("kind", &self.kind)
            .field("payload_len", &self.frame.payload().len())
            .field("time_limit", &self.time_limit)
            .field("grace", &self.grace)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// Why a job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// An abort, or the pool's terminate/kill: the future ends cancelled.
    Aborted,
    /// Its time limit passed: the future fails with a time-out.
    TimedOut(Duration),
}

/// A job inside the manager, the same value from the pending queue through
/// a worker's window to its end (see `event_loop::settle`).
pub(crate) struct Work {
    pub(crate) id: u64,
    pub(crate) task: &'static str,
    pub(crate) kind: CallKind,
    /// The call frame, written straight from here; kept until the job ends,
    /// so that a job that never started can go to another worker.
    pub(crate) frame: CallFrame,
    /// `None` once its future was settled early (cancelled while it waited
    /// in a window): whatever the worker says of it later is discarded.
    pub(crate) completion: Option<Box<dyn Completion>>,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) grace: Duration,
    /// Its future is running (`set_running` said yes).
    pub(crate) started: bool,
    pub(crate) stop: Option<StopReason>,
    /// Its task's expected run time when it was sent, if known to be short.
    pub(crate) cost: Option<Duration>,
    pub(crate) priority: i32,
    /// Given back (dropped) when it leaves the pending queue.
    pub(crate) permit: Option<Permit>,
}

impl Work {
    /// A submitted job, with the pool's defaults for what it leaves open.
    pub(crate) fn new(job: Job, default_grace: Duration, default_limit: Option<Duration>) -> Self {
        Self {
            id: job.id,
            task: job.task,
            kind: job.kind,
            frame: job.frame,
            completion: Some(job.completion),
            time_limit: job.time_limit.or(default_limit),
            grace: job.grace.unwrap_or(default_grace),
            started: false,
            stop: None,
            cost: None,
            priority: job.priority,
            permit: job.permit,
        }
    }
}
