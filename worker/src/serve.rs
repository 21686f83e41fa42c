//! The serve loop: Hello, the initializer, then calls until the channel ends.

use crate::registry::Registry;
use crate::settings::Settings;
use procpool_ipc::{
    CallKind, Decoder, Done, EncodeError, ExitReason, FrameBuf, FrameWriter, FromWorker, Hello,
    Outcome, ReadStatus, RemoteError, RemoteErrorKind, ToWorker,
};
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

/// Why the serve loop ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ending {
    /// The call channel reached its end between frames: the parent is done.
    ChannelClosed,
    /// The parent sent `Shutdown`.
    Shutdown,
    /// `max_tasks` calls were served; `Exiting` was sent.
    MaxTasks,
    /// After a call, the resident set (bytes) was over the ceiling;
    /// `Exiting` was sent.
    MemoryCeiling {
        /// The resident set.
        resident: u64,
        /// The ceiling.
        ceiling: u64,
    },
    /// The initializer failed; `Exiting` with the cause was sent.
    InitializerFailed(RemoteError),
    /// The call channel carried something that is not the protocol.
    Protocol(String),
    /// The result channel failed (the parent is gone, usually).
    Io(io::Error),
}

impl Ending {
    /// The exit status a worker process ends with: 0 for the orderly ends, 3
    /// for a failed initializer, 2 for a protocol violation, 1 for a broken
    /// channel.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::ChannelClosed | Self::Shutdown | Self::MaxTasks | Self::MemoryCeiling { .. } => 0,
            Self::InitializerFailed(_) => 3,
            Self::Protocol(_) => 2,
            Self::Io(_) => 1,
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChannelClosed => f.write_str("the call channel closed"),
            Self::Shutdown => f.write_str("the parent asked it to shut down"),
            Self::MaxTasks => f.write_str("it served its maximum number of tasks"),
            Self::MemoryCeiling { resident, ceiling } => write!(
                f,
                "its resident memory ({resident} bytes) is over the ceiling of {ceiling} bytes"
            ),
            Self::InitializerFailed(e) => write!(f, "its initializer failed: {}", e.message),
            Self::Protocol(e) => write!(f, "protocol violation on the call channel: {e}"),
            Self::Io(e) => write!(f, "the result channel failed: {e}"),
        }
    }
}

/// Serves calls from `calls` with `registry`, writing results to `results`,
/// until the channel ends. This is the whole worker without the process
/// setup, so it can run over any `Read`/`Write` (tests, fuzzing, a custom
/// launcher).
pub fn serve_channel<R: Read, W: Write>(
    registry: &Registry,
    settings: &Settings,
    mut calls: R,
    results: W,
) -> Ending {
    crate::panic_capture::install_hook();
    let mut out = FrameWriter::with_buf(
        results,
        FrameBuf::with_max_frame_len(settings.max_frame_len),
    );
    let mut names: Vec<String> = registry.names().map(str::to_owned).collect();
    names.sort_unstable();
    if let Err(e) = out.send(&FromWorker::Hello(Hello::new(std::process::id(), names))) {
        return Ending::Io(e);
    }
    if let Some((name, args)) = &settings.initializer {
        if let Err(e) = registry.initialize(name, args) {
            let mut e = e;
            if e.kind != RemoteErrorKind::Initializer {
                e.message = format!("initializer `{name}`: {} ({})", e.message, e.kind);
                e.kind = RemoteErrorKind::Initializer;
            }
            let _ = out.send(&FromWorker::Exiting(ExitReason::InitializerFailed(
                e.clone(),
            )));
            return Ending::InitializerFailed(e);
        }
    }
    let mut decoder = Decoder::with_max_frame_len(settings.max_frame_len);
    let mut done = procpool_ipc::DoneFrame::new();
    let mut served: u64 = 0;
    loop {
        match decoder.frame_ready() {
            Ok(true) => {}
            Ok(false) => {
                // Nothing whole is buffered (and every Done is out): block.
                match decoder.read_from(&mut calls) {
                    Ok(ReadStatus::Data(_)) => continue,
                    Ok(ReadStatus::Eof) => {
                        return match decoder.finish() {
                            Ok(()) => Ending::ChannelClosed,
                            Err(e) => Ending::Protocol(e.to_string()),
                        }
                    }
                    Err(e) => return Ending::Protocol(format!("reading calls failed: {e}")),
                }
            }
            Err(e) => return Ending::Protocol(e.to_string()),
        }
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(e) => return Ending::Protocol(e.to_string()),
        };
        let call = match ToWorker::decode(frame) {
            Ok(ToWorker::Call(call)) => call,
            Ok(ToWorker::Shutdown) => {
                let _ = out.send(&FromWorker::Exiting(ExitReason::Shutdown));
                return Ending::Shutdown;
            }
            // A stop between calls: the call it names is not running here.
            Ok(ToWorker::Stop { .. }) => continue,
            Err(e) => return Ending::Protocol(e.to_string()),
        };
        done.clear();
        crate::sys::NEXT_SPIN_US.store(call.spin_us, Ordering::Relaxed);
        let result = if crate::remote::starting(call.id) {
            let result = registry.call(call.task, call.kind, call.payload, done.output_buf());
            crate::remote::ended();
            result
        } else {
            Err(RemoteError::new(
                RemoteErrorKind::Stopped,
                format!(
                    "call {} of `{}` was stopped before it started",
                    call.id, call.task
                ),
            ))
        };
        // A stop request belongs to the call it interrupted: cleared once it
        // returned, before its Done is sent and the next call starts.
        crate::sys::STOP_REQUESTED.store(false, Ordering::Relaxed);
        // An output is sent from the buffer it was encoded into; an error, or
        // an output too large for a frame, as a queued message.
        let failure = match result {
            Ok(()) => done
                .seal(call.id, settings.max_frame_len)
                .err()
                .map(|e| unsendable(call.task, call.kind, e)),
            Err(e) => Some(e),
        };
        served += 1;
        let ending = if settings.max_tasks == Some(served) {
            Some(Ending::MaxTasks)
        } else {
            settings.max_memory.and_then(|ceiling| {
                let resident = crate::memory::resident_over(ceiling)?;
                Some(Ending::MemoryCeiling { resident, ceiling })
            })
        };
        let writing = crate::memory::FrameInProgress::start();
        if let Some(error) = failure {
            let message = FromWorker::Done(Done {
                id: call.id,
                outcome: Outcome::Error(error),
            });
            if let Err(e) = out.queue(&message) {
                return Ending::Io(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        } else if let Err(e) = out.write_frame(done.bytes()) {
            return Ending::Io(e);
        }
        let exiting = match ending {
            Some(Ending::MaxTasks) => Some(ExitReason::MaxTasks),
            Some(Ending::MemoryCeiling { resident, ceiling }) => {
                Some(ExitReason::MemoryCeiling { resident, ceiling })
            }
            _ => None,
        };
        if let Some(reason) = exiting {
            if let Err(e) = out.queue(&FromWorker::Exiting(reason)) {
                return Ending::Io(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        // Each Done goes out before the next call starts: held back, it would
        // be lost if that call kills the process, and the parent would think
        // the finished call still runs (and charge it the next one's time).
        // Frames queued behind it are still read many per `read`.
        if let Err(e) = out.flush() {
            return Ending::Io(e);
        }
        drop(writing);
        if let Some(ending) = ending {
            return ending;
        }
    }
}

/// The error sent instead of an output that cannot go in a frame (too long
/// for the limit), so the parent hears why.
fn unsendable(task: &str, kind: CallKind, e: EncodeError) -> RemoteError {
    let what = match kind {
        CallKind::Single => "output",
        CallKind::Batch => "batch of outputs",
    };
    let reason = match e {
        EncodeError::TooLong { len, limit } => {
            format!("{len} bytes, over the frame limit of {limit} bytes")
        }
        other => other.to_string(),
    };
    RemoteError::new(
        RemoteErrorKind::OutputEncode,
        format!("task `{task}`: cannot send the {what}: {reason}"),
    )
}
