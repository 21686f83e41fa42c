//! Byte slices as one bincode blob instead of a sequence of `u8`s.
//!
//! serde encodes a `Vec<u8>` or `&[u8]` element by element, which bincode
//! decodes at a few hundred MB/s. A field marked
//! `#[serde(with = "procpool_ipc::serde_bytes")]` goes through
//! `serialize_bytes` / `deserialize_bytes` instead: a length and one copy
//! (or, for a borrowed `&[u8]`, no copy at all). The idea is the
//! `serde_bytes` crate's, kept to the two cases procpool needs; for owned
//! buffers use [`ByteBuf`](crate::ByteBuf).

use serde::de::{Deserializer, Error, Visitor};
use serde::Serializer;
use std::fmt;

/// Serializes a byte slice as one blob.
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserializes a blob as a slice borrowed from the input.
///
/// # Errors
/// When the input holds no blob, or the deserializer cannot lend one (it must
/// read from a slice).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<&'de [u8], D::Error> {
    deserializer.deserialize_bytes(BorrowedBytes)
}

struct BorrowedBytes;

impl<'de> Visitor<'de> for BorrowedBytes {
    type Value = &'de [u8];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a borrowed byte slice")
    }

    fn visit_borrowed_bytes<E: Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(v)
    }
}
