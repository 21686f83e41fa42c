//! The one error type users of the pool see, and how a worker ended.

use procpool_ipc::{CodecError, CodecOp, RemoteError, RemoteErrorKind};
use std::fmt;
use std::time::Duration;

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitInfo {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ExitInfo {
    /// From a reaped child's status.
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(signal),
            // Neither: stopped or continued, which a reaped child never is.
            (None, None) => Self::Code(-1),
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => {
                write!(f, "killed by signal {signal} ({})", signal_name(*signal))
            }
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

/// Everything that can go wrong with a task or the pool.
///
/// A task that returns an `Err` value has not failed: its `Result` is its
/// output. These are the failures of running it.
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
    /// Arguments or output could not be encoded or decoded.
    Codec {
        /// The task's name.
        task: String,
        /// Which half failed.
        op: CodecOp,
        /// What serde or bincode said.
        message: String,
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
        /// The worker's pid.
        pid: u32,
        /// How it ended.
        exit: ExitInfo,
        /// The task it was running.
        task: String,
    },
    /// The worker broke the protocol; it was killed and replaced.
    Protocol {
        /// The worker's pid.
        pid: u32,
        /// What was wrong.
        detail: String,
    },
    /// The pool cannot run tasks any more (its initializer failed, workers
    /// die at start, or the CPython failure policy is on and a worker died).
    BrokenPool {
        /// Why.
        cause: String,
    },
    /// The pool has been shut down: it takes no new tasks.
    ShutDown,
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
    /// A worker process could not be started.
    Spawn(String),
}

impl Error {
    /// The error for a `RemoteError` a worker sent about `task`.
    pub fn from_remote(task: &str, e: RemoteError) -> Self {
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
            RemoteErrorKind::ArgsDecode => Self::Codec {
                task: task.to_owned(),
                op: CodecOp::DecodeArgs,
                message: e.message,
            },
            RemoteErrorKind::OutputEncode => Self::Codec {
                task: task.to_owned(),
                op: CodecOp::EncodeOutput,
                message: e.message,
            },
            RemoteErrorKind::Initializer => Self::BrokenPool { cause: e.message },
            _ => Self::Protocol {
                pid: 0,
                detail: format!("task `{task}`: {e}"),
            },
        }
    }

    /// Whether this is a broken-pool error.
    pub fn is_broken_pool(&self) -> bool {
        matches!(self, Self::BrokenPool { .. })
    }
}

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Self::Codec {
            message: e.to_string(),
            task: e.task,
            op: e.op,
        }
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TaskPanicked { message, .. } => f.write_str(message),
            Self::Codec { message, .. } => f.write_str(message),
            Self::UnknownTask { message, .. } => f.write_str(message),
            Self::WorkerDied { pid, exit, task } => write!(
                f,
                "worker {pid} terminated abruptly ({exit}) while running `{task}`"
            ),
            Self::Protocol { pid, detail } => {
                write!(
                    f,
                    "worker {pid} broke the protocol and was replaced: {detail}"
                )
            }
            Self::BrokenPool { cause } => write!(f, "the pool is broken: {cause}"),
            Self::ShutDown => f.write_str("the pool has been shut down"),
            Self::TimedOut { task, limit } => {
                write!(
                    f,
                    "task `{task}` ran past its time limit of {limit:?} and was stopped"
                )
            }
            Self::Cancelled => f.write_str("the task was cancelled"),
            Self::WaitTimeout => {
                f.write_str("timed out waiting for the result (the task was not touched)")
            }
            Self::MapTimedOut { timeout } => write!(
                f,
                "the map's timeout of {timeout:?} passed; its remaining calls were stopped"
            ),
            Self::OutputTaken => {
                f.write_str("the output was already taken through another handle of this future")
            }
            Self::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Self::Spawn(what) => write!(f, "cannot start a worker: {what}"),
        }
    }
}

impl std::error::Error for Error {}
