//! Frames built around their payload: the payload is encoded once, after a
//! gap that later receives the frame header and the message's other fields,
//! so a large argument or output goes to the pipe without another copy.
//!
//! The bytes are exactly those [`FrameBuf::push`](crate::FrameBuf::push)
//! would write for the same `Call` or `Done`: bincode writes a struct's
//! fields in order and a blob as a varint length and its bytes, so the
//! prefix is the encoding of the fields before the payload plus the payload's
//! length, placed right-aligned in the gap.

use crate::codec::CONFIG;
use crate::error::EncodeError;
use crate::frame::HEADER_LEN;
use crate::message::CallKind;
use crate::payload_error::PayloadError;
use serde::Serialize;

/// The most bytes a varint can take.
const MAX_VARINT: usize = 9;

/// A `Call` frame assembled around its encoded arguments.
///
/// ```
/// use procpool_ipc::{CallFrame, CallKind, Decoder, Task, ToWorker};
/// const SQUARE: Task<u64, u64> = Task::new("square");
///
/// let mut frame = CallFrame::new(SQUARE.name());
/// SQUARE.encode_args(&7, frame.payload_buf()).unwrap();
/// frame.seal(1, SQUARE.name(), CallKind::Single, 0, 1 << 20).unwrap();
///
/// let mut decoder = Decoder::new();
/// decoder.feed(frame.bytes());
/// let ToWorker::Call(call) = ToWorker::decode(decoder.next_frame().unwrap().unwrap()).unwrap()
/// else { unreachable!() };
/// assert_eq!((call.id, call.task), (1, "square"));
/// assert_eq!(SQUARE.decode_args(call.payload).unwrap(), 7);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CallFrame {
    /// `[gap][payload]`; once sealed, `buf[start..]` is the frame.
    buf: Vec<u8>,
    headroom: usize,
    start: usize,
}

impl std::fmt::Debug for CallFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFrame")
            .field("payload_len", &self.payload().len())
            .field("sealed", &(self.start < self.headroom))
            .finish()
    }
}

/// The gap a call of `task` needs: header, variant, id, task name, kind,
/// spin budget and payload length at their largest.
fn call_headroom(task: &str) -> usize {
    HEADER_LEN + 1 + MAX_VARINT + MAX_VARINT + task.len() + 1 + 5 + MAX_VARINT
}

impl CallFrame {
    /// An empty frame for a call of `task`; append the encoded arguments to
    /// [`payload_buf`](Self::payload_buf).
    pub fn new(task: &str) -> Self {
        let headroom = call_headroom(task);
        Self {
            buf: vec![0; headroom],
            headroom,
            start: headroom,
        }
    }

    /// The buffer to append the encoded arguments to. Only appending is
    /// meaningful; the bytes before the payload belong to the frame.
    pub fn payload_buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The encoded arguments.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(self.headroom..).unwrap_or_default()
    }

    /// Writes the header and the call's fields in front of the payload. It
    /// can be sealed again (another id or spin budget) before each sending.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when the frame exceeds `max_frame_len`, or
    /// `task` is longer than the name the frame was made for.
    pub fn seal(
        &mut self,
        id: u64,
        task: &str,
        kind: CallKind,
        spin_us: u32,
        max_frame_len: usize,
    ) -> Result<(), EncodeError> {
        let payload_len = self.buf.len().saturating_sub(self.headroom);
        // ToWorker::Call is variant 0; then Call's fields in order.
        let fields = (0u32, id, task, kind, spin_us, payload_len as u64);
        self.start = seal(
            &mut self.buf,
            self.headroom,
            &fields,
            payload_len,
            max_frame_len,
        )?;
        Ok(())
    }

    /// The whole frame, once sealed.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Checks, without sealing, that the frame will fit in `max_frame_len`
    /// whatever id and spin budget it is sealed with: the call's fields are
    /// counted at their largest, so a frame within a few bytes of the limit
    /// is refused here although some seals would fit.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] with that largest length.
    pub fn check_len(&self, max_frame_len: usize) -> Result<(), EncodeError> {
        let len = self.headroom - HEADER_LEN + self.payload().len();
        if len > max_frame_len.min(u32::MAX as usize) {
            return Err(EncodeError::TooLong {
                len,
                limit: max_frame_len,
            });
        }
        Ok(())
    }
}

/// Writes `[u32 length][fields]` right-aligned before `buf[headroom..]` and
/// returns where the frame starts.
fn seal<F: Serialize>(
    buf: &mut [u8],
    headroom: usize,
    fields: &F,
    payload_len: usize,
    max_frame_len: usize,
) -> Result<usize, EncodeError> {
    let mut prefix = [0u8; 64 + HEADER_LEN];
    let mut fields_buf = Vec::new();
    let encoded: &[u8] =
        match bincode::serde::encode_into_slice(fields, &mut prefix[HEADER_LEN..], CONFIG) {
            Ok(n) => &prefix[HEADER_LEN..HEADER_LEN + n],
            Err(_) => {
                // A long task name: take the slow road.
                bincode::serde::encode_into_writer(
                    fields,
                    crate::codec::VecWriter(&mut fields_buf),
                    CONFIG,
                )
                .map_err(|e| EncodeError::Unencodable(PayloadError::from_encode(e)))?;
                &fields_buf
            }
        };
    let frame_len = encoded.len() + payload_len;
    if frame_len > max_frame_len.min(u32::MAX as usize) {
        return Err(EncodeError::TooLong {
            len: frame_len,
            limit: max_frame_len,
        });
    }
    let need = HEADER_LEN + encoded.len();
    if need > headroom {
        return Err(EncodeError::Unencodable(PayloadError::Unencodable(
            format!("the frame's fields need {need} bytes before the payload, it has {headroom}"),
        )));
    }
    let start = headroom - need;
    // frame_len <= max_frame_len <= u32::MAX, checked above.
    buf[start..start + HEADER_LEN].copy_from_slice(&(frame_len as u32).to_le_bytes());
    buf[start + HEADER_LEN..headroom].copy_from_slice(encoded);
    Ok(start)
}

/// A `Done` frame with an output, assembled around the encoded output.
#[derive(Clone, PartialEq, Eq)]
pub struct DoneFrame {
    buf: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for DoneFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoneFrame")
            .field("output_len", &self.output().len())
            .finish()
    }
}

/// Header, variant, id, outcome variant and output length at their largest.
const DONE_HEADROOM: usize = HEADER_LEN + 1 + MAX_VARINT + 1 + MAX_VARINT;

impl Default for DoneFrame {
    fn default() -> Self {
        Self::new()
    }
}

impl DoneFrame {
    /// An empty frame; reuse it with [`clear`](Self::clear).
    pub fn new() -> Self {
        Self {
            buf: vec![0; DONE_HEADROOM],
            start: DONE_HEADROOM,
        }
    }

    /// Forgets the output, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.truncate(DONE_HEADROOM);
        self.start = DONE_HEADROOM;
    }

    /// The buffer to append the encoded output to (only appending is
    /// meaningful).
    pub fn output_buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The encoded output.
    pub fn output(&self) -> &[u8] {
        &self.buf[DONE_HEADROOM..]
    }

    /// Writes the header and `Done { id, Output(..) }`'s fields in front of
    /// the output.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when the frame exceeds `max_frame_len`.
    pub fn seal(&mut self, id: u64, max_frame_len: usize) -> Result<(), EncodeError> {
        let output_len = self.buf.len() - DONE_HEADROOM;
        // FromWorker::Done is variant 1, Outcome::Output variant 0.
        let fields = (1u32, id, 0u32, output_len as u64);
        self.start = seal(
            &mut self.buf,
            DONE_HEADROOM,
            &fields,
            output_len,
            max_frame_len,
        )?;
        Ok(())
    }

    /// The whole frame, once sealed.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}
