//! procpool-ipc: the wire protocol that procpool's parent and every worker
//! process speak.
//!
//! This is the lowest crate of the house. `procpool-worker` (inside each child)
//! and `procpool-manager` (the parent's event loop) both depend on it and on
//! nothing of each other: the manager can drive any program that speaks this
//! protocol. It depends on serde and bincode only; it never sees mio, libc or
//! a process.
//!
//! ```text
//!  parent (manager)                                 worker process
//!  ----------------                                 --------------
//!  Task::encode_args(&args) -> payload bytes
//!  FrameBuf::push(&ToWorker::Call{..})   ==call pipe==>  FrameReader / Decoder
//!        [u32 LE length][bincode message]                  -> ToWorker::Call (borrows the frame)
//!                                                          Task::decode_args(payload)
//!                                                          run the task
//!  Decoder::read_from(result pipe)  <==result pipe==  FrameWriter::send(&FromWorker::Done{..})
//!    -> FromWorker::Done (borrows the frame)               Task::encode_output(&output)
//!    Decoder::take_payload -> Payload (owned: a large
//!      one keeps the frame's buffer, no copy)
//!  (on the reader's thread) Task::decode_output(&payload)
//!    bounded by the input: element budget, depth limit
//! ```
//!
//! A frame is a little-endian `u32` payload length followed by the payload,
//! one bincode-encoded message ([`ToWorker`] or [`FromWorker`]). Everything
//! here treats bytes as hostile: the [`Decoder`] checks a frame's length
//! against its limit before it allocates, grows its buffer only as bytes
//! arrive, decodes with a byte limit and requires that a message uses every
//! byte of its frame. Messages and payloads decode through one bounded path:
//! a sequence may hold one element per byte of its input plus
//! [`ZERO_SIZED_ALLOWANCE`] that take none, and values nest at most
//! [`MAX_DEPTH`] deep, so no bytes make a decode loop for ever or overflow
//! the decoding thread's stack. No input makes it panic; every violation is a
//! [`DecodeError`] or a [`CodecError`] whose [`PayloadError`] cause says what
//! was wrong.
//!
//! # Example
//!
//! ```
//! use procpool_ipc::{Decoder, FrameBuf, ToWorker, Call, Task};
//!
//! const SQUARE: Task<u64, u64> = Task::new("square");
//!
//! // The parent encodes a call...
//! let mut args = Vec::new();
//! SQUARE.encode_args(&7, &mut args).unwrap();
//! let mut out = FrameBuf::new();
//! out.push(&ToWorker::Call(Call::single(1, SQUARE.name(), &args))).unwrap();
//!
//! // ...and the worker decodes it from whatever chunks the pipe delivers.
//! let mut decoder = Decoder::new();
//! for chunk in out.pending().chunks(3) {
//!     decoder.feed(chunk);
//! }
//! let frame = decoder.next_frame().unwrap().expect("a whole frame arrived");
//! let ToWorker::Call(call) = ToWorker::decode(frame).unwrap() else { unreachable!() };
//! assert_eq!(SQUARE.decode_args(call.payload).unwrap(), 7);
//! ```
//!
//! # Platforms
//!
//! Any: the crate is plain Rust over `Read` and `Write`, with no `unsafe`.
#![forbid(unsafe_code)]

mod batch;
mod bounded;
mod codec;
pub mod env;
mod error;
mod frame;
mod inplace;
mod io;
mod message;
mod payload;
mod payload_error;
pub mod serde_bytes;

pub use batch::{decode_batch_outputs, decode_batch_outputs_uncaught, BatchOutputs};
pub use bounded::{MAX_DEPTH, ZERO_SIZED_ALLOWANCE};
pub use codec::{
    batch_len, decode_value, decode_value_catching_panics, encode_value, ByteBuf, Task, MAX_BATCH,
};
pub use error::{CodecError, CodecOp, DecodeError, EncodeError, ReadError};
pub use frame::{Decoder, FrameBuf, ReadStatus, DEFAULT_MAX_FRAME_LEN, HEADER_LEN};
pub use inplace::{CallFrame, DoneFrame};
pub use io::{FrameReader, FrameWriter};
pub use message::{
    AbortCause, Call, CallKind, Done, ExitReason, FromWorker, Hello, Outcome, RemoteError,
    RemoteErrorKind, ToWorker, MAGIC, PROTOCOL_VERSION,
};
pub use payload::Payload;
pub use payload_error::PayloadError;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
