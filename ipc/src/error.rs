//! The typed errors of the protocol: one enum per operation.

use crate::payload_error::PayloadError;
use std::fmt;
use std::io;

/// What was wrong with bytes that arrived: a frame or the message inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame's length prefix claims more bytes than the decoder accepts.
    /// Nothing was allocated for it.
    TooLong {
        /// The length the prefix claimed.
        len: u64,
        /// The decoder's limit.
        limit: usize,
    },
    /// The stream ended in the middle of a frame.
    Truncated {
        /// Bytes the unfinished frame needed (header included).
        expected: u64,
        /// Bytes of it that arrived before the end.
        got: u64,
    },
    /// The frame's bytes are not a valid message, or the message ended
    /// before its frame did ([`PayloadError::TrailingBytes`]).
    Undecodable(PayloadError),
    /// A `Hello` that does not start with procpool's magic number: the peer
    /// is not a procpool worker.
    BadMagic {
        /// The magic number that arrived.
        got: u64,
    },
    /// A `Hello` from a worker that speaks another protocol version.
    BadVersion {
        /// The version the worker speaks.
        got: u32,
        /// The version this side speaks.
        expected: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len, limit } => {
                write!(f, "frame of {len} bytes is over the limit of {limit} bytes")
            }
            Self::Truncated { expected, got } => write!(
                f,
                "stream ended inside a frame: {got} of its {expected} bytes arrived"
            ),
            Self::Undecodable(cause) => write!(f, "frame holds no valid message: {cause}"),
            Self::BadMagic { got } => {
                write!(f, "peer is not a procpool worker (magic {got:#018x})")
            }
            Self::BadVersion { got, expected } => write!(
                f,
                "peer speaks protocol version {got}, this side speaks {expected}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Undecodable(cause) => Some(cause),
            _ => None,
        }
    }
}

/// Why a message could not be written as a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message is longer than a frame may be.
    TooLong {
        /// The encoded length.
        len: usize,
        /// The frame limit.
        limit: usize,
    },
    /// The message cannot be encoded.
    Unencodable(PayloadError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len, limit } => write!(
                f,
                "encoded message of {len} bytes is over the frame limit of {limit} bytes"
            ),
            Self::Unencodable(cause) => write!(f, "message cannot be encoded: {cause}"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unencodable(cause) => Some(cause),
            Self::TooLong { .. } => None,
        }
    }
}

/// Which half of a task's payload codec failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecOp {
    /// Encoding the arguments (in the parent).
    EncodeArgs,
    /// Decoding the arguments (in the worker).
    DecodeArgs,
    /// Encoding the output (in the worker).
    EncodeOutput,
    /// Decoding the output (in the parent).
    DecodeOutput,
}

impl CodecOp {
    fn describe(self) -> &'static str {
        match self {
            Self::EncodeArgs => "encode the arguments",
            Self::DecodeArgs => "decode the arguments",
            Self::EncodeOutput => "encode the output",
            Self::DecodeOutput => "decode the output",
        }
    }
}

/// A task's arguments or output that could not be encoded or decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct CodecError {
    /// The task's name.
    pub task: String,
    /// What was being done.
    pub op: CodecOp,
    /// The Rust type involved.
    pub type_name: &'static str,
    /// What was wrong.
    pub cause: PayloadError,
}

impl fmt::Debug for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodecError")
            .field("task", &self.task)
            .field("op", &self.op)
            .field("type_name", &self.type_name)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task `{}`: cannot {} ({}): {}",
            self.task,
            self.op.describe(),
            self.type_name,
            self.cause
        )
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Why reading a message from a blocking stream failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The stream failed.
    Io(io::Error),
    /// The bytes were not a valid frame or message.
    Decode(DecodeError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "reading a frame failed: {e}"),
            Self::Decode(e) => write!(f, "bad frame: {e}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Decode(e) => Some(e),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<DecodeError> for ReadError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}
