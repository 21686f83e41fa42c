//! [`Payload`]: the bytes of one encoded value that arrived in a frame,
//! owned, so that they can be handed to another thread and decoded there.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex};

/// Bytes a small payload keeps inline: the encoded numbers, short strings and
/// unit values that most results are, without an allocation.
const INLINE: usize = 38;

/// The bytes of one encoded value (a task's output or a batch of them) taken
/// out of a received frame, owned.
///
/// A small payload is copied into the value itself; a large one keeps the
/// very buffer its frame was read into
/// ([`Decoder::take_payload`](crate::Decoder::take_payload)), so a 100 MiB
/// output moves from the pipe to the thread that decodes it without another
/// copy.
pub struct Payload {
    repr: Repr,
}

enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    /// `buf[range]`; the rest of `buf` (the frame's header and fields) is
    /// not part of the payload. When dropped, `buf` goes back to `home`, the
    /// decoder it came from.
    Buffer {
        buf: Vec<u8>,
        range: Range<usize>,
        home: Option<Arc<Spare>>,
    },
}

/// One large buffer kept for a decoder's next large frame. A decoder hands
/// its buffer over with a large payload and would grow a new one for the
/// next, zero-filling and page-faulting it in, each time: a stream of large
/// results (a 16 MiB echo) was a third slower so. The payload, once decoded
/// and dropped on the reader's thread, gives the buffer back instead.
#[derive(Default, Debug)]
pub(crate) struct Spare(Mutex<Option<Vec<u8>>>);

impl Spare {
    /// Keeps `buf` (replacing an older one).
    fn put(&self, buf: Vec<u8>) {
        if let Ok(mut spare) = self.0.lock() {
            *spare = Some(buf);
        }
    }

    /// The kept buffer, if its capacity is at least `len`.
    pub(crate) fn take_at_least(&self, len: usize) -> Option<Vec<u8>> {
        let mut spare = self.0.lock().ok()?;
        if spare.as_ref()?.capacity() >= len {
            spare.take()
        } else {
            None
        }
    }

    /// Gives the kept buffer's memory back.
    pub(crate) fn clear(&self) {
        if let Ok(mut spare) = self.0.lock() {
            *spare = None;
        }
    }
}

impl Payload {
    /// A payload holding a copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut inline = [0; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Self {
                    repr: Repr::Inline { len, bytes: inline },
                }
            }
            _ => Self::from_vec(bytes.to_vec()),
        }
    }

    /// A payload of all of `bytes`, without a copy.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let range = 0..bytes.len();
        Self {
            repr: Repr::Buffer {
                buf: bytes,
                range,
                home: None,
            },
        }
    }

    /// `buf[range]` without a copy, giving `buf` back to `home` when
    /// dropped; `None` when `range` is not inside `buf`.
    pub(crate) fn from_buffer(
        buf: Vec<u8>,
        range: Range<usize>,
        home: Option<Arc<Spare>>,
    ) -> Option<Self> {
        buf.get(range.clone())?;
        Some(Self {
            repr: Repr::Buffer { buf, range, home },
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            // The range was checked against the buffer when it was made, and
            // neither changes after.
            Repr::Buffer { buf, range, .. } => &buf[range.clone()],
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        if let Repr::Buffer {
            buf,
            home: Some(home),
            ..
        } = &mut self.repr
        {
            home.put(std::mem::take(buf));
        }
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        Self::copy_from(self.as_bytes())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Payload {}

impl Default for Payload {
    fn default() -> Self {
        Self::copy_from(&[])
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_are_inline_and_large_ones_keep_their_buffer() {
        for len in [0, 1, INLINE, INLINE + 1, 1 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let payload = Payload::copy_from(&bytes);
            assert_eq!(payload.as_bytes(), &bytes[..]);
            assert_eq!(matches!(payload.repr, Repr::Inline { .. }), len <= INLINE);
        }
        let buf = vec![9u8; 100];
        let at = buf.as_ptr();
        let home = Arc::new(Spare::default());
        let payload = Payload::from_buffer(buf, 10..90, Some(Arc::clone(&home))).expect("in range");
        assert_eq!(payload.len(), 80);
        assert_eq!(payload.as_ptr(), at.wrapping_add(10), "not copied");
        assert!(Payload::from_buffer(vec![0; 4], 2..9, None).is_none());
        // Dropped, its buffer goes home, for a frame that fits in it.
        drop(payload);
        assert!(home.take_at_least(101).is_none());
        assert_eq!(home.take_at_least(100).map(|b| b.as_ptr()), Some(at));
    }
}
