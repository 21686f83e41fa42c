//! The messages that travel in frames, parent to worker and back.
//!
//! Decoded messages borrow their task name and payload from the frame they
//! came in, so reading a call or a result copies nothing.

use crate::error::DecodeError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first eight bytes of every `Hello`: "procpool" read as a little-endian
/// `u64`. A peer that does not send it is not a procpool worker.
pub const MAGIC: u64 = u64::from_le_bytes(*b"procpool");

/// The protocol version this crate speaks. A worker sends it in its `Hello`;
/// the parent refuses a worker that speaks another.
pub const PROTOCOL_VERSION: u32 = 3;

/// A message from the parent to a worker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ToWorker<'a> {
    /// Run a task.
    #[serde(borrow)]
    Call(Call<'a>),
    /// Finish: the worker exits 0 without reading further.
    Shutdown,
    /// Stop call `id`: a worker whose signals the pool cannot reach (one on
    /// another machine) sets the stop flag and sends SIGTERM to its own
    /// process group at once, and SIGKILL when `grace_ms` have passed with
    /// the call still running. A call not started yet is answered with a
    /// [`RemoteErrorKind::Stopped`] error instead of running. Only workers
    /// started with the settings in their arguments read calls while one
    /// runs; to the others it is sent only between calls, never needed.
    Stop {
        /// The call to stop.
        id: u64,
        /// Milliseconds between SIGTERM and SIGKILL.
        grace_ms: u32,
    },
}

impl<'a> ToWorker<'a> {
    /// Decodes the message in `frame` (a frame's payload, without its length
    /// prefix), borrowing from it.
    ///
    /// # Errors
    /// [`DecodeError::Undecodable`], with what was wrong (bytes left over
    /// after the message included).
    pub fn decode(frame: &'a [u8]) -> Result<Self, DecodeError> {
        decode_message(frame)
    }
}

/// How a call's payload is to be read.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// The payload is one encoded `Args`; the output is one encoded `Output`.
    Single,
    /// The payload is an encoded `Vec<Args>` (a `map` chunk); the output is an
    /// encoded `Vec<Result<Output, RemoteError>>`, one entry per element, so
    /// an error surfaces at its own element.
    Batch,
}

/// One call of a task.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    /// The parent's number for this call; the `Done` carries it back.
    pub id: u64,
    /// The task's registered name.
    pub task: &'a str,
    /// One call, or a batch.
    pub kind: CallKind,
    /// How long the worker should spin for its next call after answering
    /// this one, in microseconds (0: block at once). The parent knows
    /// whether another call is likely to follow within microseconds; the
    /// worker does not.
    pub spin_us: u32,
    /// The encoded arguments.
    #[serde(with = "crate::serde_bytes")]
    pub payload: &'a [u8],
}

impl<'a> Call<'a> {
    /// A call of `task` with one encoded argument value.
    pub fn single(id: u64, task: &'a str, payload: &'a [u8]) -> Self {
        Self {
            id,
            task,
            kind: CallKind::Single,
            spin_us: 0,
            payload,
        }
    }
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("task", &self.task)
            .field("kind", &self.kind)
            .field("spin_us", &self.spin_us)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// A message from a worker to the parent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum FromWorker<'a> {
    /// The worker's first frame.
    Hello(Hello),
    /// A call has ended.
    #[serde(borrow)]
    Done(Done<'a>),
    /// The worker is about to exit 0 on its own, and why. No frame follows.
    Exiting(ExitReason),
    /// The worker is about to die by a signal, and why: the call it runs
    /// fails with that cause rather than as an unexplained death. Sent from
    /// a signal handler (pre-encoded, between frames only). No frame
    /// follows.
    Aborting(AbortCause),
}

impl<'a> FromWorker<'a> {
    /// Decodes the message in `frame`, borrowing from it.
    ///
    /// # Errors
    /// [`DecodeError::Undecodable`], with what was wrong (bytes left over
    /// after the message included).
    pub fn decode(frame: &'a [u8]) -> Result<Self, DecodeError> {
        decode_message(frame)
    }
}

/// Decodes a whole message through the bounded path that payloads take: a
/// worker's bytes are as hostile as any.
fn decode_message<'a, M: Deserialize<'a>>(frame: &'a [u8]) -> Result<M, DecodeError> {
    crate::codec::decode_value(frame).map_err(DecodeError::Undecodable)
}

/// A worker introduces itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: u64,
    /// The protocol version the worker speaks.
    pub version: u32,
    /// The worker's process id.
    pub pid: u32,
    /// The names of the tasks it can run.
    pub tasks: Vec<String>,
}

impl Hello {
    /// The `Hello` of this process, speaking this crate's protocol.
    pub fn new(pid: u32, tasks: Vec<String>) -> Self {
        Self {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            pid,
            tasks,
        }
    }

    /// Checks that the peer is a procpool worker speaking this version.
    ///
    /// # Errors
    /// [`DecodeError::BadMagic`] or [`DecodeError::BadVersion`].
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.magic != MAGIC {
            return Err(DecodeError::BadMagic { got: self.magic });
        }
        if self.version != PROTOCOL_VERSION {
            return Err(DecodeError::BadVersion {
                got: self.version,
                expected: PROTOCOL_VERSION,
            });
        }
        Ok(())
    }
}

/// The end of one call.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Done<'a> {
    /// The id of the `Call`.
    pub id: u64,
    /// Its output or its error.
    #[serde(borrow)]
    pub outcome: Outcome<'a>,
}

/// What a call produced.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The encoded output (for a batch, the encoded per-element results).
    Output(#[serde(with = "crate::serde_bytes")] &'a [u8]),
    /// The call failed in the worker.
    Error(RemoteError),
}

impl fmt::Debug for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Output(bytes) => write!(f, "Output({} bytes)", bytes.len()),
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

/// An error that happened in a worker, as text that can cross processes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// What kind of failure.
    pub kind: RemoteErrorKind,
    /// What happened, in words (for a panic, its message).
    pub message: String,
    /// A backtrace captured in the worker, as text, when there is one.
    pub backtrace: Option<String>,
}

impl RemoteError {
    /// An error of `kind` without a backtrace.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            backtrace: None,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RemoteError {}

/// The kinds of failure a worker reports.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// The task panicked.
    Panicked,
    /// The worker has no task of that name.
    UnknownTask,
    /// The arguments could not be decoded.
    ArgsDecode,
    /// The output could not be encoded.
    OutputEncode,
    /// The initializer failed or panicked.
    Initializer,
    /// The call was stopped (`Stop`) before it started, and did not run.
    Stopped,
}

impl fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Panicked => "task panicked",
            Self::UnknownTask => "unknown task",
            Self::ArgsDecode => "arguments could not be decoded",
            Self::OutputEncode => "output could not be encoded",
            Self::Initializer => "initializer failed",
            Self::Stopped => "stopped before it started",
        })
    }
}

/// Why a worker exits on its own.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// It ran its `max_tasks_per_child` tasks.
    MaxTasks,
    /// The parent sent `Shutdown`.
    Shutdown,
    /// The initializer failed: the pool should stop starting workers.
    InitializerFailed(RemoteError),
    /// After its last call its resident memory was over the pool's ceiling
    /// (`max_memory_per_child`), in bytes: the pool starts a fresh worker.
    MemoryCeiling {
        /// Its resident set when it checked.
        resident: u64,
        /// The ceiling it was given.
        ceiling: u64,
    },
}

/// Why a worker is about to die by a signal.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbortCause {
    /// An allocation failed (the worker's address-space limit, or the
    /// system out of memory) and Rust's allocation-error handler aborted
    /// the process.
    OutOfMemory,
}

impl fmt::Display for AbortCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory => f.write_str("an allocation failed: out of memory"),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxTasks => f.write_str("ran its maximum number of tasks"),
            Self::Shutdown => f.write_str("was told to shut down"),
            Self::InitializerFailed(e) => write!(f, "initializer failed: {}", e.message),
            Self::MemoryCeiling { resident, ceiling } => write!(
                f,
                "its resident memory ({resident} bytes) is over the ceiling of {ceiling} bytes"
            ),
        }
    }
}
