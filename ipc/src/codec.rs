//! The payload codec: a task's arguments and output as bytes, and the typed
//! task handle both sides share.

use crate::bounded::Budget;
use crate::error::{CodecError, CodecOp};
use crate::payload_error::PayloadError;
use serde::de::{Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// The bincode configuration of every payload and message: little-endian,
/// variable-length integers. Encoding needs no limit; decoding sets one per
/// input (see [`seed_decode`]).
pub(crate) const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Decodes `seed`'s value from `bytes`, borrowing from them, and returns it
/// with the bytes used.
///
/// bincode allocates an owned `String` or byte buffer as soon as it has read
/// its length prefix, before it knows whether the bytes are there; its only
/// guard is the config's byte limit, a compile-time constant. Decoding borrows
/// from the slice, so legitimate strings and buffers are never longer than
/// the input: picking the smallest power-of-4 limit at least as large as the
/// input (and at least 64 KiB) rejects every lying length prefix while
/// allocating at most 4 times the input. (Sequences are preallocated through
/// serde's cautious size hint, at most 1 MiB per nesting level.) The byte
/// limit bounds no loop: that is the [`bounded`](crate::bounded) adapter's
/// work, which callers wrap `seed` in.
pub(crate) fn seed_decode<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
) -> Result<(S::Value, usize), bincode::error::DecodeError> {
    fn with_limit<'de, S: DeserializeSeed<'de>, const LIMIT: usize>(
        seed: S,
        bytes: &'de [u8],
    ) -> Result<(S::Value, usize), bincode::error::DecodeError> {
        let config = bincode::config::standard().with_limit::<LIMIT>();
        bincode::serde::seed_decode_from_slice(seed, bytes, config)
    }
    match bytes.len() {
        0..=0x1_0000 => with_limit::<S, 0x1_0000>(seed, bytes),
        0x1_0001..=0x4_0000 => with_limit::<S, 0x4_0000>(seed, bytes),
        0x4_0001..=0x10_0000 => with_limit::<S, 0x10_0000>(seed, bytes),
        0x10_0001..=0x40_0000 => with_limit::<S, 0x40_0000>(seed, bytes),
        0x40_0001..=0x100_0000 => with_limit::<S, 0x100_0000>(seed, bytes),
        0x100_0001..=0x400_0000 => with_limit::<S, 0x400_0000>(seed, bytes),
        0x400_0001..=0x1000_0000 => with_limit::<S, 0x1000_0000>(seed, bytes),
        0x1000_0001..=0x4000_0000 => with_limit::<S, 0x4000_0000>(seed, bytes),
        _ => with_limit::<S, { (u32::MAX as usize).saturating_mul(4) }>(seed, bytes),
    }
}

/// Decodes a `T` from the start of `bytes` through the bounded adapter, and
/// returns it with the bytes used.
pub(crate) fn bounded_decode<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<(T, usize), PayloadError> {
    let budget = Budget::for_input(bytes.len());
    seed_decode(budget.seed(PhantomData::<T>), bytes).map_err(|e| budget.error(e))
}

/// Appends bytes to a `Vec` without allocating once it has grown: bincode's
/// writer for the reused buffers of [`FrameBuf`](crate::FrameBuf) and the codec.
pub(crate) struct VecWriter<'a>(pub(crate) &'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Appends `value`, encoded, to `out`.
///
/// # Errors
/// [`PayloadError::Unencodable`] when the value's `Serialize` refused,
/// [`PayloadError::Unsupported`] for a sequence without a length; `out` is
/// left as it was.
pub fn encode_value<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), PayloadError> {
    let start = out.len();
    bincode::serde::encode_into_writer(value, VecWriter(out), CONFIG).map_err(|e| {
        out.truncate(start);
        PayloadError::from_encode(e)
    })
}

/// Decodes a whole `T` from `bytes`.
///
/// Decoding is bounded by `bytes`. It borrows from them, so a length prefix
/// can never make it allocate much more than `bytes` hold. Sequences and maps
/// may hold one element per byte plus
/// [`ZERO_SIZED_ALLOWANCE`](crate::ZERO_SIZED_ALLOWANCE), so a few bytes
/// announcing 2^62 zero-sized elements fail at once instead of looping. And
/// values nest at most [`MAX_DEPTH`](crate::MAX_DEPTH) deep, so a recursive
/// type cannot overflow the decoding thread's stack. Every byte must be used.
///
/// A panic in `T`'s `Deserialize` is not caught here (the fuzz targets count
/// on seeing it); [`Task::decode_args`] and [`Task::decode_output`] catch it.
///
/// # Errors
/// The [`PayloadError`] that says what was wrong; never
/// [`PayloadError::Panicked`].
pub fn decode_value<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, PayloadError> {
    let (value, used) = bounded_decode(bytes)?;
    if used != bytes.len() {
        return Err(PayloadError::TrailingBytes {
            used,
            len: bytes.len(),
        });
    }
    Ok(value)
}

/// The most elements one batch call (a `map` chunk) may carry. Elements of a
/// zero-sized type cost no bytes, so the payload's size cannot bound them;
/// this does, before anything is decoded or allocated per element.
pub const MAX_BATCH: usize = 1 << 20;

/// The element count a batch payload announces (its leading length), read
/// without decoding the elements.
///
/// # Errors
/// When the payload does not start with a length.
pub fn batch_len(payload: &[u8]) -> Result<u64, PayloadError> {
    let (len, _) = seed_decode(PhantomData::<u64>, payload).map_err(PayloadError::from_decode)?;
    Ok(len)
}

/// A typed task handle: a name plus the types of its arguments and output.
///
/// The parent and the worker share one `const` of this type, so a call with
/// the wrong argument type, or a result read as the wrong type, does not
/// compile. The name is what travels: it must be unique among the tasks a
/// worker registers.
///
/// ```
/// use procpool_ipc::Task;
/// pub const RESIZE: Task<(Vec<u8>, u32), Result<Vec<u8>, String>> = Task::new("resize");
/// assert_eq!(RESIZE.name(), "resize");
/// ```
pub struct Task<Args, Output> {
    name: &'static str,
    // fn(Args) -> Output: the handle owns neither, so it is Send, Sync and
    // Copy whatever the types are.
    types: PhantomData<fn(Args) -> Output>,
}

impl<Args, Output> Task<Args, Output> {
    /// A handle for the task called `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The task's name, as it travels in a `Call`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    fn error(&self, op: CodecOp, type_name: &'static str, cause: PayloadError) -> CodecError {
        CodecError {
            task: self.name.to_owned(),
            op,
            type_name,
            cause,
        }
    }
}

impl<Args: Serialize, Output> Task<Args, Output> {
    /// Appends the encoded arguments to `out`.
    ///
    /// # Errors
    /// [`CodecOp::EncodeArgs`] with what serde reported; `out` is unchanged.
    pub fn encode_args(&self, args: &Args, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_value(args, out)
            .map_err(|r| self.error(CodecOp::EncodeArgs, std::any::type_name::<Args>(), r))
    }
}

impl<Args: DeserializeOwned, Output> Task<Args, Output> {
    /// Decodes the arguments of a call, bounded as [`decode_value`] is.
    ///
    /// A panic in `Args`'s `Deserialize` is caught and returned as
    /// [`PayloadError::Panicked`]; the panic hook still runs first (by
    /// default it prints the message to stderr).
    ///
    /// # Errors
    /// [`CodecOp::DecodeArgs`] with what was wrong.
    pub fn decode_args(&self, bytes: &[u8]) -> Result<Args, CodecError> {
        decode_value_catching_panics(bytes)
            .map_err(|r| self.error(CodecOp::DecodeArgs, std::any::type_name::<Args>(), r))
    }
}

impl<Args, Output: Serialize> Task<Args, Output> {
    /// Appends the encoded output to `out`.
    ///
    /// # Errors
    /// [`CodecOp::EncodeOutput`] with what serde reported; `out` is unchanged.
    pub fn encode_output(&self, output: &Output, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_value(output, out)
            .map_err(|r| self.error(CodecOp::EncodeOutput, std::any::type_name::<Output>(), r))
    }
}

impl<Args, Output: DeserializeOwned> Task<Args, Output> {
    /// Decodes the output of a call, bounded as [`decode_value`] is. In the
    /// parent this runs on the thread that takes the result, the user's: no
    /// bytes make it loop, overflow its stack or unwind it.
    ///
    /// A panic in `Output`'s `Deserialize` is caught and returned as
    /// [`PayloadError::Panicked`]; the panic hook still runs first (by
    /// default it prints the message to stderr).
    ///
    /// # Errors
    /// [`CodecOp::DecodeOutput`] with what was wrong.
    pub fn decode_output(&self, bytes: &[u8]) -> Result<Output, CodecError> {
        decode_value_catching_panics(bytes)
            .map_err(|r| self.error(CodecOp::DecodeOutput, std::any::type_name::<Output>(), r))
    }
}

/// [`decode_value`], with a panic in `T`'s `Deserialize` caught and
/// returned as [`PayloadError::Panicked`]: for decoding on a thread that a
/// user type must not unwind. (The panic hook still runs, and prints.)
///
/// # Errors
/// As [`decode_value`], and `Panicked`.
pub fn decode_value_catching_panics<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PayloadError> {
    // AssertUnwindSafe: after a panic, nothing the closure touched is used
    // again (the budget and the half-decoded value are dropped), and `bytes`
    // are only read.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_value(bytes)))
        .unwrap_or_else(|panic| Err(PayloadError::Panicked(panic_message(panic.as_ref()))))
}

/// The message of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic whose payload is not a string".to_owned()
    }
}

impl<Args, Output> Clone for Task<Args, Output> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Args, Output> Copy for Task<Args, Output> {}

impl<Args, Output> fmt::Debug for Task<Args, Output> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Task({:?}: {} -> {})",
            self.name,
            std::any::type_name::<Args>(),
            std::any::type_name::<Output>()
        )
    }
}

/// An owned byte buffer that travels as one blob.
///
/// A plain `Vec<u8>` argument or output is encoded byte by byte by serde;
/// wrap it in `ByteBuf` to move it at memory speed.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteBuf(pub Vec<u8>);

impl ByteBuf {
    /// Unwraps the bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for ByteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteBuf({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for ByteBuf {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl Deref for ByteBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for ByteBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_bytes`, not `_byte_buf`: reading from a slice, bincode
        // hands the borrowed bytes over and the visitor copies them once;
        // asked for a byte buf it zero-fills a new Vec first, then copies.
        deserializer.deserialize_bytes(ByteBufVisitor)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = ByteBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte buffer")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
        // Formats without a native blob send a sequence; cap the preallocation
        // so a hostile size hint cannot reserve much.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element()? {
            bytes.push(b);
        }
        Ok(ByteBuf(bytes))
    }
}
