//! How a job or a worker failed, as the manager reports it: [`Failure`],
//! [`ExitInfo`] and [`Signal`]. The facade turns a failure into its own
//! error type, adding what only it knows (the task's types).

use procpool_ipc::{EncodeError, RemoteError};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A signal, by number, with its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// SIGTERM: a request to stop, which a task can see
    /// (`procpool_worker::stop_requested`).
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// SIGKILL: stops a process at once.
    pub const KILL: Signal = Signal(libc::SIGKILL);

    /// The signal with this number.
    pub fn from_number(number: i32) -> Self {
        Self(number)
    }

    /// Its number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Its name ("SIGSEGV"), or "signal" for one without a common name.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGKILL => "SIGKILL",
            libc::SIGTERM => "SIGTERM",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGILL => "SIGILL",
            libc::SIGINT => "SIGINT",
            libc::SIGHUP => "SIGHUP",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGXCPU => "SIGXCPU",
            _ => "signal",
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signal {} ({})", self.0, self.name())
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitInfo {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(Signal),
}

impl ExitInfo {
    /// From a reaped child's status.
    pub(crate) fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(Signal(signal)),
            // Neither: stopped or continued, which a reaped child never is.
            (None, None) => Self::Code(-1),
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => write!(f, "killed by {signal}"),
        }
    }
}

/// Why the pool broke: the cause in words and, where there is one, the OS
/// error behind it (a worker that could not be started).
#[derive(Debug, Clone)]
pub struct BreakCause {
    /// What happened, in words.
    pub cause: String,
    /// The OS error behind it.
    pub source: Option<Arc<io::Error>>,
}

impl fmt::Display for BreakCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cause)
    }
}

/// Why the pool refused a submit.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The pool was shut down.
    ShutDown,
    /// The pool is broken.
    Broken(BreakCause),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown => f.write_str("the pool was shut down: it takes no new work"),
            Self::Broken(cause) => write!(f, "the pool is broken: {cause}"),
        }
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ShutDown => None,
            Self::Broken(cause) => cause
                .source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

/// Why a job did not produce an output.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// The worker ran the call and reports an error: the task panicked, it
    /// has no task of that name, or the arguments or output did not survive
    /// its codec.
    Remote(RemoteError),
    /// The worker process ended while it ran the job.
    WorkerDied {
        /// The worker's pid (on its own machine, for a launched worker).
        pid: u32,
        /// How it ended (for a launched worker: how its launcher ended).
        exit: ExitInfo,
        /// Where it ran, for a launched worker (its source's name).
        place: Option<String>,
    },
    /// The worker broke the protocol (or a deadline of it) and was killed.
    Protocol {
        /// The worker's pid.
        pid: u32,
        /// What it did wrong.
        detail: String,
    },
    /// The job ran past its time limit and was stopped.
    TimedOut {
        /// The limit.
        limit: Duration,
    },
    /// The pool broke before or while the job ran.
    BrokenPool(BreakCause),
    /// The job's call could not be framed (its arguments are over the frame
    /// limit).
    Unsendable(EncodeError),
    /// An allocation failed while the job ran (under the pool's
    /// `memory_limit`, or the system out of memory), and the worker aborted.
    OutOfMemory {
        /// The worker's pid.
        pid: u32,
        /// The pool's address-space limit per worker, if it set one.
        limit: Option<u64>,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote(e) => write!(f, "{e}"),
            Self::WorkerDied {
                pid,
                exit,
                place: None,
            } => write!(f, "worker {pid} terminated abruptly ({exit})"),
            Self::WorkerDied {
                pid,
                exit,
                place: Some(place),
            } => write!(
                f,
                "worker {pid} on {place} terminated abruptly (its launcher: {exit})"
            ),
            Self::Protocol { pid, detail } => {
                write!(
                    f,
                    "worker {pid} broke the protocol and was killed: {detail}"
                )
            }
            Self::TimedOut { limit } => write!(f, "ran past its time limit of {limit:?}"),
            Self::BrokenPool(cause) => write!(f, "the pool is broken: {cause}"),
            Self::Unsendable(e) => write!(f, "the call cannot be sent: {e}"),
            Self::OutOfMemory { pid, limit } => {
                write!(f, "worker {pid} ran out of memory: an allocation failed")?;
                if let Some(limit) = limit {
                    write!(f, " under the limit of {limit} bytes")?;
                }
                f.write_str(" and it aborted")
            }
        }
    }
}
