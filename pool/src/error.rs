//! [`Error`]: everything that can go wrong with a task or the pool, in one
//! type.

use procpool_ipc::{CodecError, CodecOp, PayloadError, RemoteError, RemoteErrorKind};
use procpool_manager::{ExitInfo, Failure, Refused};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// An OS error, shared: [`Error`] is `Clone` (a future hands a clone of its
/// error to every reader) and compares by kind and message.
#[derive(Debug, Clone)]
pub struct OsError(pub Arc<io::Error>);

impl PartialEq for OsError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for OsError {}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything that can go wrong with a task or the pool.
///
/// A task that returns an `Err` value has not failed: its `Result` is its
/// output. These are the failures of running it. `Display` says all there
/// is to say on its own; [`source`](std::error::Error::source) gives the
/// typed cause underneath (the OS error, the codec's cause) for code that
/// inspects it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked in its worker.
    TaskPanicked {
        /// The task's name.
        task: String,
        /// The panic message, with where it happened.
        message: String,
        /// The worker's backtrace, as text.
        backtrace: Option<String>,
    },
    /// Arguments or output could not be encoded or decoded (in this process,
    /// or in the worker), or decoding panicked.
    Codec(CodecError),
    /// The arguments are larger than a frame may be.
    TooLarge {
        /// The task's name.
        task: String,
        /// The size of the encoded call, in bytes.
        len: usize,
        /// The pool's frame limit (`PoolBuilder::max_frame_len`).
        limit: usize,
    },
    /// The worker has no task of that name.
    UnknownTask {
        /// The task's name.
        task: String,
        /// The worker's explanation (with the names it has).
        message: String,
    },
    /// The worker process died while it ran the task.
    WorkerDied {
        /// The worker's pid (on its own machine, for a launched worker).
        pid: u32,
        /// How it ended (for a launched worker: how its launcher ended).
        exit: ExitInfo,
        /// The task it was running.
        task: String,
        /// Where it ran, for a worker started through a launcher (ssh to a
        /// host, srun, ...): its source's name. `None` on this machine.
        place: Option<String>,
    },
    /// The worker broke the protocol, or missed one of its deadlines; it was
    /// killed and replaced.
    Protocol {
        /// The worker's pid.
        pid: u32,
        /// What was wrong.
        detail: String,
    },
    /// The pool cannot run tasks any more (its initializer failed, workers
    /// keep failing, a worker cannot be started, or the CPython failure
    /// policy is on and a worker died).
    BrokenPool {
        /// Why.
        cause: String,
        /// The OS error behind it, when there is one (a start that failed).
        source: Option<OsError>,
    },
    /// The pool has been shut down: it takes no new tasks.
    ShutDown,
    /// The bounded backlog is full ([`Pool::try_submit`](crate::Pool::try_submit)
    /// does not wait for room): nothing was sent.
    Full {
        /// The backlog's size (`PoolBuilder::max_pending`).
        capacity: usize,
    },
    /// An allocation failed while the task ran (past the pool's
    /// `memory_limit`, or the system out of memory): the worker aborted and
    /// was replaced.
    OutOfMemory {
        /// The worker's pid.
        pid: u32,
        /// The task it was running.
        task: String,
        /// The pool's address-space limit per worker, if it set one.
        limit: Option<u64>,
    },
    /// The task ran past its time limit and was stopped.
    TimedOut {
        /// The task's name.
        task: String,
        /// The limit it had.
        limit: Duration,
    },
    /// The task was cancelled before it ran, or stopped while it ran.
    Cancelled,
    /// A wait for a result timed out; the task itself was not touched.
    WaitTimeout,
    /// [`as_completed`](crate::as_completed)'s timeout passed with futures
    /// unfinished; their tasks were not touched.
    AsCompletedTimeout {
        /// Futures not done.
        unfinished: usize,
        /// Futures given.
        total: usize,
    },
    /// A `map`'s timeout passed before this element's result; the calls it
    /// still had in flight were stopped.
    MapTimedOut {
        /// The map's timeout.
        timeout: Duration,
    },
    /// The output was already moved out of the future through another
    /// handle (`into_result`).
    OutputTaken,
    /// An argument to the pool made no sense.
    InvalidArgument(String),
    /// The pool's manager thread could not be started.
    Spawn {
        /// What could not be done.
        what: String,
        /// Why.
        source: OsError,
    },
}

impl Error {
    /// The error for `failure` of a job of `task`.
    pub(crate) fn from_failure(task: &str, type_names: TypeNames, failure: Failure) -> Self {
        match failure {
            Failure::Remote(e) => Self::from_remote(task, type_names, e),
            Failure::WorkerDied { pid, exit, place } => Self::WorkerDied {
                pid,
                exit,
                task: task.to_owned(),
                place,
            },
            Failure::Protocol { pid, detail } => Self::Protocol { pid, detail },
            Failure::TimedOut { limit } => Self::TimedOut {
                task: task.to_owned(),
                limit,
            },
            Failure::BrokenPool(cause) => Self::BrokenPool {
                cause: cause.cause,
                source: cause.source.map(OsError),
            },
            Failure::OutOfMemory { pid, limit } => Self::OutOfMemory {
                pid,
                task: task.to_owned(),
                limit,
            },
            Failure::Unsendable(e) => {
                Self::InvalidArgument(format!("task `{task}`: the call cannot be sent: {e}"))
            }
            other => Self::InvalidArgument(format!("task `{task}`: {other}")),
        }
    }

    /// The error for what a worker reported about `task`.
    fn from_remote(task: &str, type_names: TypeNames, e: RemoteError) -> Self {
        let codec = |op: CodecOp, type_name: &'static str| {
            Self::Codec(CodecError {
                task: task.to_owned(),
                op,
                type_name,
                cause: PayloadError::Remote(e.message.clone()),
            })
        };
        match e.kind {
            RemoteErrorKind::Panicked => Self::TaskPanicked {
                task: task.to_owned(),
                message: e.message,
                backtrace: e.backtrace,
            },
            RemoteErrorKind::UnknownTask => Self::UnknownTask {
                task: task.to_owned(),
                message: e.message,
            },
            RemoteErrorKind::ArgsDecode => codec(CodecOp::DecodeArgs, type_names.args),
            RemoteErrorKind::OutputEncode => codec(CodecOp::EncodeOutput, type_names.output),
            RemoteErrorKind::Initializer => Self::BrokenPool {
                cause: e.message,
                source: None,
            },
            _ => Self::Protocol {
                pid: 0,
                detail: format!("task `{task}`: {e}"),
            },
        }
    }

    /// The error for a submit the pool refused.
    pub(crate) fn from_refused(refused: Refused) -> Self {
        match refused {
            Refused::ShutDown => Self::ShutDown,
            Refused::Broken(cause) => Self::BrokenPool {
                cause: cause.cause,
                source: cause.source.map(OsError),
            },
        }
    }

    /// Whether this is a broken-pool error.
    pub fn is_broken_pool(&self) -> bool {
        matches!(self, Self::BrokenPool { .. })
    }
}

/// The Rust types of a task's arguments and output, for codec errors that
/// the worker reports (it sends their cause in words).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeNames {
    pub(crate) args: &'static str,
    pub(crate) output: &'static str,
}

impl TypeNames {
    pub(crate) fn of<A, O>() -> Self {
        Self {
            args: std::any::type_name::<A>(),
            output: std::any::type_name::<O>(),
        }
    }
}

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<procpool_futures::Cancelled> for Error {
    fn from(_: procpool_futures::Cancelled) -> Self {
        Self::Cancelled
    }
}

impl From<procpool_futures::Timeout> for Error {
    fn from(_: procpool_futures::Timeout) -> Self {
        Self::WaitTimeout
    }
}

impl From<procpool_futures::Taken> for Error {
    fn from(_: procpool_futures::Taken) -> Self {
        Self::OutputTaken
    }
}

impl From<procpool_futures::AsCompletedTimeout> for Error {
    fn from(e: procpool_futures::AsCompletedTimeout) -> Self {
        Self::AsCompletedTimeout {
            unfinished: e.unfinished(),
            total: e.total(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TaskPanicked { message, .. } => f.write_str(message),
            Self::Codec(e) => write!(f, "{e}"),
            Self::TooLarge { task, len, limit } => write!(
                f,
                "task `{task}`: its call takes {len} bytes, over the pool's frame limit of \
                 {limit} bytes (PoolBuilder::max_frame_len); nothing was sent"
            ),
            Self::UnknownTask { message, .. } => f.write_str(message),
            Self::WorkerDied {
                pid,
                exit,
                task,
                place: None,
            } => write!(
                f,
                "worker {pid} terminated abruptly ({exit}) while running `{task}`"
            ),
            Self::WorkerDied {
                pid,
                exit,
                task,
                place: Some(place),
            } => write!(
                f,
                "worker {pid} on {place} terminated abruptly (its launcher: {exit}) \
                 while running `{task}`"
            ),
            Self::Protocol { pid, detail } => {
                write!(
                    f,
                    "worker {pid} broke the protocol and was replaced: {detail}"
                )
            }
            Self::BrokenPool { cause, .. } => write!(f, "the pool is broken: {cause}"),
            Self::ShutDown => f.write_str("the pool has been shut down"),
            Self::Full { capacity } => write!(
                f,
                "the pool's backlog is full ({capacity} tasks waiting for a worker); \
                 nothing was sent"
            ),
            Self::OutOfMemory { pid, task, limit } => {
                write!(
                    f,
                    "task `{task}` ran out of memory in worker {pid}: an allocation failed"
                )?;
                if let Some(limit) = limit {
                    write!(f, " past the pool's memory limit of {limit} bytes")?;
                }
                f.write_str("; the worker aborted and was replaced")
            }
            Self::TimedOut { task, limit } => write!(
                f,
                "task `{task}` ran past its time limit of {limit:?} and was stopped"
            ),
            Self::Cancelled => f.write_str("the task was cancelled"),
            Self::WaitTimeout => {
                f.write_str("timed out waiting for the result (the task was not touched)")
            }
            Self::AsCompletedTimeout { unfinished, total } => {
                write!(f, "{unfinished} (of {total}) futures unfinished")
            }
            Self::MapTimedOut { timeout } => write!(
                f,
                "the map's timeout of {timeout:?} passed; its remaining calls were stopped"
            ),
            Self::OutputTaken => {
                f.write_str("the output was already taken through another handle of this future")
            }
            Self::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Self::Spawn { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::BrokenPool {
                source: Some(os), ..
            }
            | Self::Spawn { source: os, .. } => Some(&*os.0),
            _ => None,
        }
    }
}
