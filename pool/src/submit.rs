//! Submitting one call: [`Pool::submit`] (which waits for room in a bounded
//! backlog), [`Pool::try_submit`] (which does not), [`Pool::submit_async`]
//! (which waits without a thread), and their [`SubmitOptions`].
//!
//! Each encodes the arguments first, in the caller's thread (an error there
//! sends nothing), then takes a place in the backlog if the pool has one,
//! then hands the job to the manager.

use crate::completion::Single;
use crate::{Error, Future, Pool};
use procpool_futures::Completer;
use procpool_ipc::{CallFrame, CallKind, EncodeError, Task};
use procpool_manager::{Acquire, Job, Permit, TryAcquireError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Borrow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Per-call settings for [`Pool::submit_with`] and its siblings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubmitOptions {
    /// Stop the task this long after it starts; it then fails with
    /// [`Error::TimedOut`]. Overrides the pool's limit.
    pub time_limit: Option<Duration>,
    /// The grace period between SIGTERM and SIGKILL when this task is
    /// stopped. Overrides the pool's.
    pub grace: Option<Duration>,
    /// Tasks waiting for a worker are started highest priority first, and
    /// in submit order within one priority. Default 0; `map` chunks have 0.
    /// A running task is never preempted, and a task already handed to a
    /// worker (queued in its pipe behind a short one) keeps its place.
    pub priority: i32,
}

impl SubmitOptions {
    /// No limit, the pool's grace, priority 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// With a time limit.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// With a grace period.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// With a priority (higher runs sooner).
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

impl Pool {
    /// Runs `task(args)` in a worker.
    ///
    /// With a bounded backlog ([`PoolBuilder::max_pending`](crate::PoolBuilder::max_pending))
    /// that is full, it blocks until a waiting task goes to a worker, in
    /// line with other blocked submitters. A done callback runs on the
    /// pool's own thread, the one that frees room: a submit from there does
    /// not wait, it goes in over the bound.
    ///
    /// # Errors
    /// The arguments cannot be encoded ([`Error::Codec`]) or are larger than
    /// a frame may be ([`Error::TooLarge`]): nothing is sent. The pool is
    /// shut down ([`Error::ShutDown`]) or broken ([`Error::BrokenPool`]),
    /// also while this waited for room.
    pub fn submit<A, O>(&self, task: Task<A, O>, args: impl Borrow<A>) -> Result<Future<O>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        self.submit_with(task, args, SubmitOptions::default())
    }

    /// [`submit`](Self::submit) with per-call settings.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub fn submit_with<A, O>(
        &self,
        task: Task<A, O>,
        args: impl Borrow<A>,
        options: SubmitOptions,
    ) -> Result<Future<O>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        self.submit_now(task, args.borrow(), options, Room::WaitFor)
    }

    /// [`submit`](Self::submit) that never waits: with the backlog full it
    /// returns [`Error::Full`] and sends nothing.
    ///
    /// # Errors
    /// [`Error::Full`], or as [`submit`](Self::submit).
    pub fn try_submit<A, O>(
        &self,
        task: Task<A, O>,
        args: impl Borrow<A>,
    ) -> Result<Future<O>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        self.try_submit_with(task, args, SubmitOptions::default())
    }

    /// [`try_submit`](Self::try_submit) with per-call settings.
    ///
    /// # Errors
    /// As [`try_submit`](Self::try_submit).
    pub fn try_submit_with<A, O>(
        &self,
        task: Task<A, O>,
        args: impl Borrow<A>,
        options: SubmitOptions,
    ) -> Result<Future<O>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        self.submit_now(task, args.borrow(), options, Room::IfFree)
    }

    /// Encodes the call, takes a place in the backlog (if the pool has one)
    /// as `room` says, and hands the job in.
    fn submit_now<A, O>(
        &self,
        task: Task<A, O>,
        args: &A,
        options: SubmitOptions,
        room: Room,
    ) -> Result<Future<O>, Error>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        let frame = self.encode_call(task, args)?;
        let permit = match (self.manager().backlog(), room) {
            (None, _) => None,
            (Some(backlog), Room::WaitFor) => Some(backlog.acquire().map_err(Error::from_refused)?),
            (Some(backlog), Room::IfFree) => Some(backlog.try_acquire().map_err(|e| match e {
                TryAcquireError::Full => Error::Full {
                    capacity: backlog.capacity(),
                },
                TryAcquireError::Refused(refused) => Error::from_refused(refused),
            })?),
        };
        self.enqueue(task, frame, options, permit)
    }

    /// [`submit`](Self::submit) for async code: the arguments are encoded
    /// now; awaiting waits for room in the backlog without blocking a
    /// thread (on any runtime), then gives the task's [`Future`], itself to
    /// be awaited for the output.
    ///
    /// ```no_run
    /// # async fn example(pool: &procpool::Pool) -> Result<(), procpool::Error> {
    /// const SQUARE: procpool::Task<u64, u64> = procpool::Task::new("square");
    /// let nine = pool.submit_async(SQUARE, 3).await?.await?;
    /// # assert_eq!(nine, 9);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Dropping it before it is ready gives up its place in line; nothing
    /// was sent.
    pub fn submit_async<A, O>(
        &self,
        task: Task<A, O>,
        args: impl Borrow<A>,
    ) -> SubmitAsync<'_, A, O>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        self.submit_async_with(task, args, SubmitOptions::default())
    }

    /// [`submit_async`](Self::submit_async) with per-call settings.
    pub fn submit_async_with<A, O>(
        &self,
        task: Task<A, O>,
        args: impl Borrow<A>,
        options: SubmitOptions,
    ) -> SubmitAsync<'_, A, O>
    where
        A: Serialize + 'static,
        O: DeserializeOwned + Send + 'static,
    {
        SubmitAsync {
            pool: self,
            task,
            frame: Some(self.encode_call(task, args.borrow())),
            options,
            place: None,
        }
    }

    /// The call's frame with `args` encoded, refused when over the frame
    /// limit.
    fn encode_call<A: Serialize, O>(&self, task: Task<A, O>, args: &A) -> Result<CallFrame, Error> {
        let mut frame = CallFrame::new(task.name());
        task.encode_args(args, frame.payload_buf())?;
        self.check_size(&frame, task.name())?;
        Ok(frame)
    }

    /// Hands the encoded call to the manager, with its future.
    fn enqueue<A, O>(
        &self,
        task: Task<A, O>,
        frame: CallFrame,
        options: SubmitOptions,
        permit: Option<Permit>,
    ) -> Result<Future<O>, Error>
    where
        A: 'static,
        O: DeserializeOwned + Send + 'static,
    {
        let id = self.manager().next_job_id();
        let completer = self.completer(id, self.manager().spin());
        let future = completer.future();
        self.submit_job(Job {
            id,
            task: task.name(),
            kind: CallKind::Single,
            frame,
            completion: Box::new(Single::new(task, completer)),
            time_limit: options.time_limit,
            grace: options.grace,
            priority: options.priority,
            permit,
        })?;
        Ok(future)
    }

    /// Refuses a call that cannot go in a frame, here rather than after it
    /// was queued (counting the call's fields at their largest).
    pub(crate) fn check_size(&self, frame: &CallFrame, task: &'static str) -> Result<(), Error> {
        match frame.check_len(self.manager().max_frame_len()) {
            Ok(()) => Ok(()),
            Err(EncodeError::TooLong { len, limit }) => Err(Error::TooLarge {
                task: task.to_owned(),
                len,
                limit,
            }),
            Err(e) => Err(Error::InvalidArgument(format!(
                "task `{task}`: the call cannot be framed: {e}"
            ))),
        }
    }

    /// The completing side of job `id`'s future, with the abort hook that
    /// stops the job, and how long a reader may spin for it.
    pub(crate) fn completer<T>(&self, id: u64, spin: Duration) -> Completer<T, Error> {
        let completer = Completer::new();
        completer.set_abort_target(Arc::clone(self.aborter()), id);
        completer.set_spin_hint(spin);
        completer
    }
}

/// How a synchronous submit takes its place in a full backlog.
#[derive(Clone, Copy)]
enum Room {
    /// Waits in line (`submit`).
    WaitFor,
    /// Not at all: `Error::Full` (`try_submit`).
    IfFree,
}

/// What [`Pool::submit_async`] returns: resolves to the task's [`Future`]
/// once the job is in the pool (after waiting for room in the backlog), or
/// to the error that kept it out.
#[must_use = "nothing is submitted unless it is awaited"]
pub struct SubmitAsync<'a, A, O> {
    pool: &'a Pool,
    task: Task<A, O>,
    /// The encoded call until it is submitted (or why it could not be
    /// encoded); `None` after.
    frame: Option<Result<CallFrame, Error>>,
    options: SubmitOptions,
    /// Its place in the backlog's line, while it waits.
    place: Option<Acquire>,
}

impl<A, O> std::fmt::Debug for SubmitAsync<'_, A, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitAsync")
            .field("task", &self.task.name())
            .field("waiting", &self.place.is_some())
            .finish_non_exhaustive()
    }
}

impl<A, O> std::future::Future for SubmitAsync<'_, A, O>
where
    A: 'static,
    O: DeserializeOwned + Send + 'static,
{
    type Output = Result<Future<O>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin (references, a Copy handle, owned values).
        let this = self.get_mut();
        let frame = match this.frame.take() {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Err(e)),
            None => {
                return Poll::Ready(Err(Error::InvalidArgument(
                    "a submit_async future was polled after it completed".into(),
                )))
            }
        };
        let permit = match this.pool.manager().backlog() {
            None => None,
            Some(backlog) => {
                let place = this.place.get_or_insert_with(|| backlog.acquire_async());
                match Pin::new(place).poll(cx) {
                    Poll::Pending => {
                        this.frame = Some(Ok(frame));
                        return Poll::Pending;
                    }
                    Poll::Ready(result) => {
                        this.place = None;
                        Some(result.map_err(Error::from_refused)?)
                    }
                }
            }
        };
        Poll::Ready(this.pool.enqueue(this.task, frame, this.options, permit))
    }
}
