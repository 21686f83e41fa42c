//! `Pool::map`: chunks of inputs as batch calls, a bounded number in flight,
//! results in input order.

use crate::completion::Chunk;
use crate::error::TypeNames;
use crate::{Error, Pool};
use procpool_futures::Future;
use procpool_ipc::{
    decode_batch_outputs, BatchOutputs, CallFrame, CallKind, CodecError, CodecOp, Payload, Task,
};
use procpool_manager::{Failure, Job};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::iter::Fuse;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// Settings of [`Pool::map_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapOptions {
    /// Inputs per call, 1 to [`MAX_BATCH`](procpool_ipc::MAX_BATCH). Default 1.
    pub chunksize: usize,
    /// Chunks submitted ahead of the consumer (CPython 3.14's `buffersize`):
    /// that many go out with the call, and one more each time the consumer
    /// takes a chunk's results. Default: four per worker, at least 8.
    pub buffersize: Option<usize>,
    /// A deadline for the whole map, counted from the call: when it passes,
    /// the iterator yields [`Error::MapTimedOut`] and ends, and the calls
    /// still in flight are stopped (CPython cancels only those not started).
    pub timeout: Option<Duration>,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MapOptions {
    /// Chunks of 1, the default lookahead, no timeout.
    pub fn new() -> Self {
        Self {
            chunksize: 1,
            buffersize: None,
            timeout: None,
        }
    }

    /// Inputs per call.
    #[must_use]
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = n;
        self
    }

    /// Chunks submitted ahead of the consumer.
    #[must_use]
    pub fn buffersize(mut self, n: usize) -> Self {
        self.buffersize = Some(n);
        self
    }

    /// A deadline for the whole map.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A chunk on its way: its future and how many inputs it holds.
struct SentChunk {
    future: Future<Payload, Error>,
    len: usize,
}

/// A chunk's results, ready for the consumer: decoded, each turned into an
/// `Error` only when it is taken (a chunk is thousands of elements, and a
/// move per element into another queue was a good part of the cost of one),
/// or one error for each of its elements.
enum Ready<O> {
    Decoded(BatchOutputs<O>),
    Failed { error: Error, left: usize },
}

/// The results of a [`Pool::map`], in input order.
///
/// Each item is one element's output, or the error of its element (a panic,
/// its worker's death, a codec failure). Dropping the iterator stops the
/// chunks still in flight.
pub struct MapIter<'p, A, O, I> {
    pool: &'p Pool,
    task: Task<A, O>,
    inputs: Fuse<I>,
    chunksize: usize,
    buffersize: usize,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    in_flight: VecDeque<SentChunk>,
    ready: VecDeque<Ready<O>>,
    /// Set once the map has ended early (a timeout, a refused submit): only
    /// the error that ended it is still to come.
    ended: bool,
    types: PhantomData<fn(A) -> O>,
}

impl<'p, A, O, I> MapIter<'p, A, O, I>
where
    A: Serialize + 'static,
    O: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    pub(crate) fn new(
        pool: &'p Pool,
        task: Task<A, O>,
        inputs: I,
        options: MapOptions,
    ) -> Result<Self, Error> {
        if options.chunksize == 0 {
            return Err(Error::InvalidArgument(
                "chunksize must be at least 1".into(),
            ));
        }
        if options.chunksize > procpool_ipc::MAX_BATCH {
            return Err(Error::InvalidArgument(format!(
                "chunksize {} is over the limit of {} inputs per call",
                options.chunksize,
                procpool_ipc::MAX_BATCH
            )));
        }
        if options.buffersize == Some(0) {
            return Err(Error::InvalidArgument(
                "buffersize must be at least 1".into(),
            ));
        }
        let workers = pool.manager().max_workers();
        let mut map = Self {
            pool,
            task,
            inputs: inputs.fuse(),
            chunksize: options.chunksize,
            buffersize: options.buffersize.unwrap_or((4 * workers).max(8)),
            deadline: options.timeout.map(|t| Instant::now() + t),
            timeout: options.timeout,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            ended: false,
            types: PhantomData,
        };
        // The first chunks go out with the call, as CPython's map submits
        // its first `buffersize` calls: the workers start on them while the
        // caller gets ready to consume.
        map.top_up();
        Ok(map)
    }

    /// Submits chunks until `buffersize` are in flight or the inputs end.
    fn top_up(&mut self) {
        while !self.ended && self.in_flight.len() < self.buffersize {
            let chunk: Vec<A> = self.inputs.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                return;
            }
            if let Err(error) = self.submit_chunk(&chunk) {
                // Nothing after this chunk can run either (shut down, broken,
                // unencodable): its elements get the error, then the map ends.
                self.stop_in_flight();
                self.ready.push_back(Ready::Failed {
                    error,
                    left: chunk.len(),
                });
                self.ended = true;
            }
        }
    }

    fn submit_chunk(&mut self, chunk: &[A]) -> Result<(), Error> {
        let task = self.task.name();
        let mut frame = CallFrame::new(task);
        procpool_ipc::encode_value(chunk, frame.payload_buf()).map_err(|cause| {
            Error::Codec(CodecError {
                task: task.to_owned(),
                op: CodecOp::EncodeArgs,
                type_name: std::any::type_name::<Vec<A>>(),
                cause,
            })
        })?;
        self.pool.check_size(&frame, task)?;
        let id = self.pool.manager().next_job_id();
        // The consumer takes chunks as fast as the workers make them: a
        // short yielding spin saves a sleep and a wake-up per chunk.
        let completer = self.pool.completer(id, self.pool.manager().spin_budget());
        let future = completer.future();
        self.pool.submit_job(Job {
            id,
            task,
            kind: CallKind::Batch,
            frame,
            completion: Box::new(Chunk {
                task,
                types: TypeNames::of::<A, O>(),
                completer,
            }),
            time_limit: None,
            grace: None,
            priority: 0,
            // A map's lookahead is its own bound (`buffersize`).
            permit: None,
        })?;
        self.in_flight.push_back(SentChunk {
            future,
            len: chunk.len(),
        });
        Ok(())
    }

    /// Decodes a finished chunk into per-element results, here on the
    /// consumer's thread. A `Deserialize` that panics fails the chunk's
    /// elements with a codec error rather than unwinding the consumer.
    fn unpack(&mut self, len: usize, outcome: Result<Payload, Error>) {
        let task = self.task.name();
        let decoded = outcome.and_then(|bytes| {
            decode_batch_outputs::<O>(&bytes).map_err(|cause| {
                Error::Codec(CodecError {
                    task: task.to_owned(),
                    op: CodecOp::DecodeOutput,
                    type_name: std::any::type_name::<O>(),
                    cause,
                })
            })
        });
        self.ready.push_back(match decoded {
            Ok(results) => Ready::Decoded(results),
            Err(error) => Ready::Failed { error, left: len },
        });
    }

    /// The next ready result, if any.
    fn take_ready(&mut self) -> Option<Result<O, Error>> {
        loop {
            let item = match self.ready.front_mut()? {
                Ready::Decoded(results) => results.next().map(|r| {
                    r.map_err(|e| {
                        let types = TypeNames::of::<A, O>();
                        Error::from_failure(self.task.name(), types, Failure::Remote(e))
                    })
                }),
                Ready::Failed { left: 0, .. } => None,
                Ready::Failed { error, left } => {
                    *left -= 1;
                    Some(Err(error.clone()))
                }
            };
            match item {
                Some(item) => return Some(item),
                None => {
                    self.ready.pop_front();
                }
            }
        }
    }

    /// Aborts the chunks still in flight, the last submitted first: those
    /// queued behind a running chunk are cancelled before it is stopped, so
    /// that its worker's death cannot send them to a replacement first.
    fn stop_in_flight(&mut self) {
        for chunk in self.in_flight.drain(..).rev() {
            chunk.future.abort();
        }
    }
}

impl<A, O, I> Iterator for MapIter<'_, A, O, I>
where
    A: Serialize + 'static,
    O: DeserializeOwned + 'static,
    I: Iterator<Item = A>,
{
    type Item = Result<O, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.take_ready() {
                // Keep the workers fed while the consumer works on this one.
                self.top_up();
                return Some(item);
            }
            if self.ended {
                return None;
            }
            self.top_up();
            if !self.ready.is_empty() {
                continue;
            }
            let chunk = self.in_flight.pop_front()?;
            let timeout = self
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            match chunk.future.clone().into_result(timeout) {
                Err(Error::WaitTimeout) => {
                    // The map's deadline: stop what is still running and end
                    // (this chunk, the oldest, last).
                    self.stop_in_flight();
                    chunk.future.abort();
                    self.ended = true;
                    return Some(Err(Error::MapTimedOut {
                        timeout: self.timeout.unwrap_or_default(),
                    }));
                }
                outcome => self.unpack(chunk.len, outcome),
            }
        }
    }
}

impl<A, O, I> Drop for MapIter<'_, A, O, I> {
    fn drop(&mut self) {
        // As `stop_in_flight` (whose impl needs the serde bounds): the last
        // submitted first.
        for chunk in self.in_flight.drain(..).rev() {
            chunk.future.abort();
        }
    }
}
