//! The payload codec: a task's arguments and output as bytes, and the typed
//! task handle both sides share.

use crate::error::{CodecError, CodecOp};
use serde::de::{Deserialize, DeserializeOwned, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// The bincode configuration of every payload and message: little-endian,
/// variable-length integers. Encoding needs no limit; decoding sets one per
/// input (see [`borrow_decode`]).
pub(crate) const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Decodes a `T` that borrows from `bytes`, returning it and the bytes used.
///
/// bincode allocates an owned `String` or byte buffer as soon as it has read
/// its length prefix, before it knows whether the bytes are there; its only
/// guard is the config's byte limit, a compile-time constant. Decoding borrows
/// from the slice, so legitimate strings and buffers are never longer than
/// the input: picking the smallest power-of-4 limit at least as large as the
/// input (and at least 64 KiB) rejects every lying length prefix while
/// allocating at most 4 times the input. (Sequences are preallocated through
/// serde's cautious size hint, at most 1 MiB per nesting level.)
pub(crate) fn borrow_decode<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    fn with_limit<'de, T: Deserialize<'de>, const LIMIT: usize>(
        bytes: &'de [u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        let config = bincode::config::standard().with_limit::<LIMIT>();
        bincode::serde::borrow_decode_from_slice(bytes, config)
    }
    match bytes.len() {
        0..=0x1_0000 => with_limit::<T, 0x1_0000>(bytes),
        0x1_0001..=0x4_0000 => with_limit::<T, 0x4_0000>(bytes),
        0x4_0001..=0x10_0000 => with_limit::<T, 0x10_0000>(bytes),
        0x10_0001..=0x40_0000 => with_limit::<T, 0x40_0000>(bytes),
        0x40_0001..=0x100_0000 => with_limit::<T, 0x100_0000>(bytes),
        0x100_0001..=0x400_0000 => with_limit::<T, 0x400_0000>(bytes),
        0x400_0001..=0x1000_0000 => with_limit::<T, 0x1000_0000>(bytes),
        0x1000_0001..=0x4000_0000 => with_limit::<T, 0x4000_0000>(bytes),
        _ => with_limit::<T, { (u32::MAX as usize).saturating_mul(4) }>(bytes),
    }
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
/// What bincode or the value's `Serialize` reported, as text; `out` is left as
/// it was.
pub fn encode_value<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    bincode::serde::encode_into_writer(value, VecWriter(out), CONFIG).map_err(|e| {
        out.truncate(start);
        e.to_string()
    })
}

/// Decodes a whole `T` from `bytes`.
///
/// Decoding borrows from `bytes`, so a length prefix can never make it
/// allocate much more than `bytes` holds. Every byte must be used.
///
/// # Errors
/// What bincode reported, or that bytes were left over, as text.
pub fn decode_value<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    let (value, used) = borrow_decode(bytes).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the value ({used} of {} used)",
            bytes.len() - used,
            bytes.len()
        ));
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
pub fn batch_len(payload: &[u8]) -> Result<u64, String> {
    let (len, _): (u64, usize) = borrow_decode(payload).map_err(|e| e.to_string())?;
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

    fn error(&self, op: CodecOp, type_name: &'static str, reason: String) -> CodecError {
        CodecError {
            task: self.name.to_owned(),
            op,
            type_name,
            reason,
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
    /// Decodes the arguments of a call.
    ///
    /// # Errors
    /// [`CodecOp::DecodeArgs`] with what was wrong.
    pub fn decode_args(&self, bytes: &[u8]) -> Result<Args, CodecError> {
        decode_value(bytes)
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
    /// Decodes the output of a call.
    ///
    /// # Errors
    /// [`CodecOp::DecodeOutput`] with what was wrong.
    pub fn decode_output(&self, bytes: &[u8]) -> Result<Output, CodecError> {
        decode_value(bytes)
            .map_err(|r| self.error(CodecOp::DecodeOutput, std::any::type_name::<Output>(), r))
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
