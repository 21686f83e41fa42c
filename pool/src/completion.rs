//! The typed ends of jobs: how an encoded output becomes a future's value.

use crate::Error;
use procpool_futures::Completer;
use procpool_ipc::Task;
use procpool_manager::Completion;
use serde::de::DeserializeOwned;

/// Completes a `submit`'s future: decodes the output as the task's type.
pub(crate) struct Single<A, O> {
    pub(crate) task: Task<A, O>,
    pub(crate) completer: Completer<O, Error>,
}

impl<A: 'static, O: DeserializeOwned + Send + 'static> Completion for Single<A, O> {
    fn set_running(&mut self) -> bool {
        self.completer.set_running_or_notify_cancel()
    }

    fn finish(self: Box<Self>, outcome: Result<&[u8], Error>) {
        // Completing twice is impossible here: the manager ends each job once,
        // and a future cancelled meanwhile simply ignores the late outcome.
        let _ = match outcome.and_then(|bytes| self.task.decode_output(bytes).map_err(Error::from))
        {
            Ok(output) => self.completer.set_result(output),
            Err(error) => self.completer.set_error(error),
        };
    }

    fn cancel(self: Box<Self>) {
        let _ = self.completer.set_cancelled();
    }
}

/// Completes a `map` chunk's future with the chunk's encoded results, which
/// the consuming thread decodes (so the manager thread only moves bytes).
pub(crate) struct Chunk {
    pub(crate) completer: Completer<Vec<u8>, Error>,
}

impl Completion for Chunk {
    fn set_running(&mut self) -> bool {
        self.completer.set_running_or_notify_cancel()
    }

    fn finish(self: Box<Self>, outcome: Result<&[u8], Error>) {
        let _ = match outcome {
            Ok(bytes) => self.completer.set_result(bytes.to_vec()),
            Err(error) => self.completer.set_error(error),
        };
    }

    fn cancel(self: Box<Self>) {
        let _ = self.completer.set_cancelled();
    }
}
