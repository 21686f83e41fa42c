//! The one path from a job's end to its future: every ending (an output, a
//! failure, a stop, a cancel) goes through [`EventLoop::settle`], which also
//! keeps the counters.

use super::EventLoop;
use crate::job::{StopReason, Work};
use crate::stats::Gauges;
use crate::Failure;
use procpool_ipc::Payload;

/// How a job ended, before a stop asked for it is taken into account.
pub(crate) enum End {
    /// It returned this encoded output.
    Output(Payload),
    /// It failed.
    Failed(Failure),
    /// It was cancelled or stopped.
    Cancelled,
}

impl EventLoop {
    /// Ends `work` with `end`. A stop asked for the job wins over whatever
    /// else happened to it (a task that returned within its grace period
    /// still ends cancelled or timed out). A job whose future was settled
    /// already is dropped.
    pub(super) fn settle(&mut self, work: Work, end: End) {
        let Work {
            completion,
            frame,
            stop,
            ..
        } = work;
        // The call frame (the arguments: 16 MiB, say) is freed before the
        // future completes: its reader allocates the output next, and finds
        // that memory free to reuse rather than growing the heap again.
        drop(frame);
        let Some(completion) = completion else {
            return;
        };
        let end = match stop {
            Some(StopReason::Aborted) => End::Cancelled,
            Some(StopReason::TimedOut(limit)) => End::Failed(Failure::TimedOut { limit }),
            None => end,
        };
        let gauges = &self.gauges;
        match end {
            End::Output(payload) => {
                Gauges::bump(&gauges.finished);
                completion.finish(Ok(payload));
            }
            End::Failed(failure) => {
                if let Failure::TimedOut { .. } = failure {
                    Gauges::bump(&gauges.timed_out);
                } else {
                    Gauges::bump(&gauges.failed);
                }
                completion.finish(Err(failure));
            }
            End::Cancelled => {
                Gauges::bump(&gauges.cancelled);
                completion.cancel();
            }
        }
    }

    /// Puts a job that never started running in a worker back at the front
    /// of the queue, or ends it cancelled if it was stopped meanwhile.
    pub(super) fn requeue(&mut self, work: Work) {
        if work.completion.is_none() {
            return;
        }
        if work.stop.is_some() {
            return self.settle(work, End::Cancelled);
        }
        self.sched.requeue(work);
    }
}
