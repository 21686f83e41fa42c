//! The typed ends of jobs: how an output's bytes become a future's value,
//! on the thread that reads it.

use crate::error::TypeNames;
use crate::Error;
use procpool_futures::{Completer, Deferred};
use procpool_ipc::{Payload, Task};
use procpool_manager::{Completion, Failure};
use serde::de::DeserializeOwned;

/// Completes a `submit`'s future. The manager thread only hands over the
/// output's bytes; the thread that takes the result decodes them (a
/// `Deserialize` that panics or is slow costs only its own caller). The box
/// the job came in is handed to the future with the bytes in it, so a
/// result costs no allocation of its own.
pub(crate) struct Single<A, O> {
    task: Task<A, O>,
    completer: Option<Completer<O, Error>>,
    output: Payload,
}

impl<A, O> Single<A, O> {
    pub(crate) fn new(task: Task<A, O>, completer: Completer<O, Error>) -> Self {
        Self {
            task,
            completer: Some(completer),
            output: Payload::default(),
        }
    }
}

impl<A: 'static, O: DeserializeOwned + Send + 'static> Completion for Single<A, O> {
    fn set_running(&mut self) -> bool {
        self.completer
            .as_ref()
            .is_some_and(Completer::set_running_or_notify_cancel)
    }

    fn finish(mut self: Box<Self>, outcome: Result<Payload, Failure>) {
        let Some(completer) = self.completer.take() else {
            return;
        };
        // Completing twice is impossible here: the manager ends each job once,
        // and a future cancelled meanwhile simply ignores the late outcome.
        let _ = match outcome {
            Ok(payload) => {
                self.output = payload;
                completer.set_deferred_boxed(self)
            }
            Err(failure) => {
                let task = self.task.name();
                completer.set_error(Error::from_failure(task, TypeNames::of::<A, O>(), failure))
            }
        };
    }

    fn cancel(mut self: Box<Self>) {
        if let Some(completer) = self.completer.take() {
            let _ = completer.set_cancelled();
        }
    }
}

impl<A, O: DeserializeOwned + Send> Deferred<O, Error> for Single<A, O> {
    fn produce(self: Box<Self>) -> Result<O, Error> {
        self.task.decode_output(&self.output).map_err(Error::from)
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
