//! The typed ends of jobs: how an output's bytes become a future's value,
//! on the thread that reads it.

use crate::error::TypeNames;
use crate::Error;
use procpool_futures::Completer;
use procpool_ipc::{Payload, Task};
use procpool_manager::{Completion, Failure};
use serde::de::DeserializeOwned;

/// Completes a `submit`'s future. The manager thread only hands over the
/// output's bytes; the thread that takes the result decodes them (a
/// `Deserialize` that panics or is slow costs only its own caller).
pub(crate) struct Single<A, O> {
    pub(crate) task: Task<A, O>,
    pub(crate) completer: Completer<O, Error>,
}

impl<A: 'static, O: DeserializeOwned + Send + 'static> Completion for Single<A, O> {
    fn set_running(&mut self) -> bool {
        self.completer.set_running_or_notify_cancel()
    }

    fn finish(self: Box<Self>, outcome: Result<Payload, Failure>) {
        let task = self.task;
        // Completing twice is impossible here: the manager ends each job once,
        // and a future cancelled meanwhile simply ignores the late outcome.
        let _ = match outcome {
            Ok(payload) => self
                .completer
                .set_deferred(move || task.decode_output(&payload).map_err(Error::from)),
            Err(failure) => {
                let error = Error::from_failure(task.name(), TypeNames::of::<A, O>(), failure);
                self.completer.set_error(error)
            }
        };
    }

    fn cancel(self: Box<Self>) {
        let _ = self.completer.set_cancelled();
    }
}

/// Completes a `map` chunk's future with the chunk's encoded results, which
/// the consuming thread decodes.
pub(crate) struct Chunk {
    pub(crate) task: &'static str,
    pub(crate) types: TypeNames,
    pub(crate) completer: Completer<Payload, Error>,
}

impl Completion for Chunk {
    fn set_running(&mut self) -> bool {
        self.completer.set_running_or_notify_cancel()
    }

    fn finish(self: Box<Self>, outcome: Result<Payload, Failure>) {
        let _ = match outcome {
            Ok(payload) => self.completer.set_result(payload),
            Err(failure) => self
                .completer
                .set_error(Error::from_failure(self.task, self.types, failure)),
        };
    }

    fn cancel(self: Box<Self>) {
        let _ = self.completer.set_cancelled();
    }
}
