//! A unit of work as the manager sees it: a name, encoded arguments and an
//! erased way to complete the caller's future.

use crate::Error;
use procpool_ipc::CallKind;
use std::fmt;
use std::time::Duration;

/// The typed end of a job, erased: the facade implements it over a
/// `procpool_futures::Completer` and the task's codec, so the manager itself
/// only moves bytes.
pub trait Completion: Send + 'static {
    /// The job is about to be sent to a worker: mark it running. `false`
    /// means it was cancelled while pending; it is then dropped unsent.
    fn set_running(&mut self) -> bool;

    /// The job ended: its encoded output, or why it failed.
    fn finish(self: Box<Self>, outcome: Result<&[u8], Error>);

    /// The job was cancelled by the pool (a shutdown that cancels pending
    /// work) or stopped while it ran: the future ends cancelled.
    fn cancel(self: Box<Self>);
}

/// A call to run: what travels, plus how to end it.
pub struct Job {
    /// The id that `Done` carries back and `abort` names (from
    /// [`Manager::next_job_id`](crate::Manager::next_job_id)).
    pub id: u64,
    /// The task's registered name.
    pub task: &'static str,
    /// One call or a `map` chunk.
    pub kind: CallKind,
    /// The encoded arguments, in the frame that will carry them (the
    /// manager seals it with the call's fields when it sends it).
    pub frame: procpool_ipc::CallFrame,
    /// How to complete the caller's future.
    pub completion: Box<dyn Completion>,
    /// Stop the task this long after it starts (overrides the pool's).
    pub time_limit: Option<Duration>,
    /// The grace period between SIGTERM and SIGKILL (overrides the pool's).
    pub grace: Option<Duration>,
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
            .finish()
    }
}
