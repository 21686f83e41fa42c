//! Frames: the incremental [`Decoder`] for bytes that arrive, and the
//! [`FrameBuf`] that collects frames to send.

use crate::codec::VecWriter;
use crate::error::{DecodeError, EncodeError};
use crate::payload::{Payload, Spare};
use crate::payload_error::PayloadError;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::ops::Range;

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = 4;

/// The default limit on a frame's payload: 64 MiB. Large enough for big
/// arguments and results, small enough that a worker writing garbage cannot
/// make the parent reserve gigabytes. Pools and workers can raise it.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 << 20;

/// The least spare room offered to one `read`, so that many small frames
/// arrive in one system call.
const MIN_READ: usize = 64 << 10;

/// Past this size an emptied buffer is given back once [`SHRINK_AFTER`]
/// frames in a row were small, so that one huge frame does not pin its
/// memory for the life of the channel, while a stream of big frames keeps
/// its buffer (a fresh one costs a page fault per 4 KiB, and zeroing).
const SHRINK_ABOVE: usize = 4 << 20;
const SHRINK_AFTER: u32 = 64;

/// From this size on, [`Decoder::take_payload`] hands over the buffer rather
/// than copying: past it, a copy costs more than a fresh buffer for the
/// bytes that follow (at most one read's worth).
const TAKE_BUFFER_ABOVE: usize = 256 << 10;

/// What one [`Decoder::read_from`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// This many bytes arrived.
    Data(usize),
    /// The stream is at its end.
    Eof,
}

/// Turns bytes that arrive in any chunking into whole frames.
///
/// Bytes go in through [`feed`](Self::feed) or [`read_from`](Self::read_from);
/// [`next_frame`](Self::next_frame) hands out each complete frame's payload,
/// and a partial frame waits for more. A length prefix is checked against the
/// limit before anything is reserved for it, and the buffer grows only as
/// bytes actually arrive: a peer that claims a 4 GiB frame and sends 13 bytes
/// costs 64 KiB, not 4 GiB.
///
/// A decoder that has returned an error keeps returning it: the stream is out
/// of step and cannot be trusted again.
#[derive(Debug)]
pub struct Decoder {
    /// Initialised bytes; `buf[start..end]` are received and not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_frame_len: usize,
    /// Frames in a row that used under a sixteenth of a big buffer.
    small_frames: u32,
    /// Where the payload of the frame last handed out lies in `buf`, until
    /// more bytes arrive: what [`take_payload`](Self::take_payload) takes from.
    last_frame: Option<Range<usize>>,
    /// A buffer handed over with a large payload comes back here when the
    /// payload is dropped, for the next large frame.
    spare: std::sync::Arc<Spare>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default frame limit ([`DEFAULT_MAX_FRAME_LEN`]).
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder that refuses frames whose payload exceeds `max_frame_len`
    /// bytes (at most `u32::MAX`, the most a prefix can say).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            small_frames: 0,
            last_frame: None,
            spare: std::sync::Arc::default(),
        }
    }

    /// The frame limit.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes received and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Adds bytes that arrived.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Makes one `read` from `reader` into the buffer (retrying on
    /// `Interrupted`).
    ///
    /// For a non-blocking reader, call it until it returns a `WouldBlock`
    /// error, taking the complete frames out with [`next_frame`](Self::next_frame)
    /// between calls.
    ///
    /// # Errors
    /// What the reader returned, `WouldBlock` included.
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<ReadStatus> {
        let want = self.read_size();
        self.make_room(want);
        loop {
            match reader.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(ReadStatus::Eof),
                Ok(n) => {
                    self.end += n;
                    return Ok(ReadStatus::Data(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// How much room the next read gets: the rest of the current frame when
    /// its length is known and valid, but never more than the bytes already
    /// buffered (so the buffer at most doubles per read), and at least
    /// [`MIN_READ`].
    fn read_size(&self) -> usize {
        let have = self.buffered();
        let rest_of_frame = match self.peek_len() {
            // Saturating: a whole frame (and more) may be buffered already.
            Some(len) if len <= self.max_frame_len => (HEADER_LEN + len).saturating_sub(have),
            _ => 0,
        };
        rest_of_frame.min(have.max(MIN_READ)).max(MIN_READ)
    }

    fn peek_len(&self) -> Option<usize> {
        let header = self.buf.get(self.start..self.start + HEADER_LEN)?;
        if self.buffered() < HEADER_LEN {
            return None;
        }
        let header: [u8; HEADER_LEN] = header.try_into().ok()?;
        Some(u32::from_le_bytes(header) as usize)
    }

    /// Ensures `additional` bytes of room after `end`, moving unread bytes to
    /// the front before growing.
    fn make_room(&mut self, additional: usize) {
        // Bytes move or are overwritten below: the last frame is gone.
        self.last_frame = None;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > SHRINK_ABOVE && self.small_frames >= SHRINK_AFTER {
                self.buf = Vec::new();
                self.small_frames = 0;
                self.spare.clear();
            }
        }
        if self.buf.len() - self.end >= additional {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < additional {
            let needed = self.end + additional;
            if needed >= TAKE_BUFFER_ABOVE {
                if let Some(mut spare) = self.spare.take_at_least(needed) {
                    if spare.len() < self.end {
                        spare.resize(self.end, 0);
                    }
                    spare[..self.end].copy_from_slice(&self.buf[..self.end]);
                    self.buf = spare;
                }
            }
            if self.buf.len() < needed {
                self.buf.resize(needed, 0);
            }
        }
    }

    /// Whether a complete frame is buffered, without taking it.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] as soon as a length prefix over the limit has
    /// arrived.
    pub fn frame_ready(&self) -> Result<bool, DecodeError> {
        let Some(len) = self.peek_len() else {
            return Ok(false);
        };
        if len > self.max_frame_len {
            return Err(DecodeError::TooLong {
                len: len as u64,
                limit: self.max_frame_len,
            });
        }
        Ok(self.buffered() >= HEADER_LEN + len)
    }

    /// The payload of the next complete frame, or `None` while it is still
    /// arriving.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] as soon as a length prefix over the limit has
    /// arrived.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if !self.frame_ready()? {
            return Ok(None);
        }
        let len = self.peek_len().expect("frame_ready saw a whole header");
        if len < self.buf.len() / 16 {
            self.small_frames = self.small_frames.saturating_add(1);
        } else {
            self.small_frames = 0;
        }
        let from = self.start + HEADER_LEN;
        self.start = from + len;
        self.last_frame = Some(from..from + len);
        Ok(Some(&self.buf[from..from + len]))
    }

    /// Takes `range` of the frame [`next_frame`](Self::next_frame) handed out
    /// last (its bytes `frame[range]`) as an owned [`Payload`].
    ///
    /// A large payload takes the decoder's buffer itself, without a copy: the
    /// bytes received after that frame move to a fresh buffer (they are at
    /// most one read's worth), and the decoder goes on with it. A small one
    /// is copied. `None` when no frame was handed out since bytes last
    /// arrived, or `range` is not inside it.
    pub fn take_payload(&mut self, range: Range<usize>) -> Option<Payload> {
        let frame = self.last_frame.clone()?;
        if range.start > range.end || range.end > frame.len() {
            return None;
        }
        let at = frame.start + range.start..frame.start + range.end;
        if at.len() < TAKE_BUFFER_ABOVE {
            return Some(Payload::copy_from(&self.buf[at]));
        }
        let rest = &self.buf[self.start..self.end];
        let mut fresh = Vec::with_capacity(rest.len().max(MIN_READ));
        fresh.extend_from_slice(rest);
        fresh.resize(fresh.capacity(), 0);
        let mut taken = std::mem::replace(&mut self.buf, fresh);
        self.end -= self.start;
        self.start = 0;
        self.last_frame = None;
        self.small_frames = 0;
        taken.truncate(frame.end);
        Payload::from_buffer(taken, at, Some(std::sync::Arc::clone(&self.spare)))
    }

    /// Checks that the stream ended on a frame boundary; call it at EOF.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when part of a frame is buffered.
    pub fn finish(&self) -> Result<(), DecodeError> {
        let got = self.buffered();
        if got == 0 {
            return Ok(());
        }
        let expected = match self.peek_len() {
            Some(len) => (HEADER_LEN + len) as u64,
            None => HEADER_LEN as u64,
        };
        Err(DecodeError::Truncated {
            expected,
            got: got as u64,
        })
    }
}

/// Frames waiting to be written, in one reused buffer.
///
/// [`push`](Self::push) appends a frame; [`write_to`](Self::write_to) writes as
/// much as the writer takes and remembers where it stopped, so a
/// non-blocking pipe can be fed over many calls and many frames go out in one
/// `write`. Once the buffer has grown, pushing allocates nothing.
#[derive(Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
    written: usize,
    max_frame_len: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuf {
    /// An empty buffer with the default frame limit.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// An empty buffer that refuses frames over `max_frame_len` bytes.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            written: 0,
            max_frame_len: max_frame_len.min(u32::MAX as usize),
        }
    }

    /// Appends `message` as one frame.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] over the limit, [`EncodeError::Unencodable`] when
    /// serde refuses it; the buffer is left as it was.
    pub fn push<M: Serialize + ?Sized>(&mut self, message: &M) -> Result<(), EncodeError> {
        if self.written == self.buf.len() {
            self.buf.clear();
            self.written = 0;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_LEN]);
        if let Err(e) = bincode::serde::encode_into_writer(
            message,
            VecWriter(&mut self.buf),
            crate::codec::CONFIG,
        ) {
            self.buf.truncate(start);
            return Err(EncodeError::Unencodable(PayloadError::from_encode(e)));
        }
        let len = self.buf.len() - start - HEADER_LEN;
        if len > self.max_frame_len {
            self.buf.truncate(start);
            return Err(EncodeError::TooLong {
                len,
                limit: self.max_frame_len,
            });
        }
        // len <= max_frame_len <= u32::MAX, checked just above.
        self.buf[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(())
    }

    /// The bytes not yet written.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.written..]
    }

    /// Whether everything pushed has been written.
    pub fn is_empty(&self) -> bool {
        self.written == self.buf.len()
    }

    /// Writes pending bytes until all are written or the writer would block.
    ///
    /// Returns `true` when nothing is left pending.
    ///
    /// # Errors
    /// Any error of the writer other than `WouldBlock` and `Interrupted`
    /// (a closed pipe is `BrokenPipe`).
    pub fn write_to<W: Write + ?Sized>(&mut self, writer: &mut W) -> io::Result<bool> {
        while self.written < self.buf.len() {
            match writer.write(&self.buf[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        self.written = 0;
        Ok(true)
    }

    /// Drops everything pending.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.written = 0;
    }
}
