//! Blocking message streams over `Read` and `Write`: the worker's side.

use crate::error::{EncodeError, ReadError};
use crate::frame::{Decoder, FrameBuf, ReadStatus};
use serde::Serialize;
use std::io::{self, Read, Write};

/// Reads whole frames from a blocking reader.
///
/// ```
/// use procpool_ipc::{FrameBuf, FrameReader, ToWorker};
/// let mut out = FrameBuf::new();
/// out.push(&ToWorker::Shutdown).unwrap();
/// let mut reader = FrameReader::new(out.pending());
/// let frame = reader.next_frame().unwrap().unwrap();
/// assert_eq!(ToWorker::decode(frame).unwrap(), ToWorker::Shutdown);
/// assert!(reader.next_frame().unwrap().is_none()); // a clean end
/// ```
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    decoder: Decoder,
}

impl<R: Read> FrameReader<R> {
    /// Reads from `reader` with the default frame limit.
    pub fn new(reader: R) -> Self {
        Self::with_decoder(reader, Decoder::new())
    }

    /// Reads from `reader` with `decoder`'s limit.
    pub fn with_decoder(reader: R, decoder: Decoder) -> Self {
        Self { reader, decoder }
    }

    /// The next frame's payload, blocking until it has arrived; `None` when the
    /// stream ended cleanly between frames.
    ///
    /// # Errors
    /// [`ReadError::Io`] when reading fails, [`ReadError::Decode`] for an
    /// oversize frame or an end inside a frame.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, ReadError> {
        loop {
            if self.decoder.frame_ready()? {
                return Ok(self.decoder.next_frame()?);
            }
            if self.decoder.read_from(&mut self.reader)? == ReadStatus::Eof {
                self.decoder.finish()?;
                return Ok(None);
            }
        }
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }
}

/// Writes frames to a blocking writer, through one reused buffer.
#[derive(Debug)]
pub struct FrameWriter<W> {
    writer: W,
    out: FrameBuf,
}

impl<W: Write> FrameWriter<W> {
    /// Writes to `writer` with the default frame limit.
    pub fn new(writer: W) -> Self {
        Self::with_buf(writer, FrameBuf::new())
    }

    /// Writes to `writer` with `out`'s limit.
    pub fn with_buf(writer: W, out: FrameBuf) -> Self {
        Self { writer, out }
    }

    /// Queues `message` without writing it; [`flush`](Self::flush) sends it.
    ///
    /// # Errors
    /// When `message` cannot be encoded.
    pub fn queue<M: Serialize + ?Sized>(&mut self, message: &M) -> Result<(), EncodeError> {
        self.out.push(message)
    }

    /// Writes every queued frame.
    ///
    /// # Errors
    /// What the writer returned.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.out.write_to(&mut self.writer)? {
            // A blocking writer never says WouldBlock; one that does was
            // non-blocking after all, and retrying here would spin.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.writer.flush()
    }

    /// Writes an already encoded frame (a sealed
    /// [`DoneFrame`](crate::DoneFrame) or [`CallFrame`](crate::CallFrame)),
    /// after anything queued before, without copying it.
    ///
    /// # Errors
    /// What the writer returned.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.flush()?;
        self.writer.write_all(frame)?;
        self.writer.flush()
    }

    /// Queues `message` and writes it (with anything queued before).
    ///
    /// # Errors
    /// When it cannot be encoded (nothing is written) or written.
    pub fn send<M: Serialize + ?Sized>(&mut self, message: &M) -> io::Result<()> {
        self.queue(message)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }
}
