//! Serving for a launcher (ssh, srun, `kubectl exec`, a wrapper): a worker
//! the pool cannot signal, since it is not the pool's child and may run on
//! another machine. It reads its call channel on a thread of its own, so
//! that a `Stop` frame reaches it while a task runs, and stops the task
//! itself as the pool would: the stop flag and SIGTERM to its own process
//! group at once, SIGKILL to the group when the grace has passed with the
//! call still running. Every other frame goes on to the serve loop
//! unchanged, as bytes ([`ForwardedCalls`] is its `Read`).
//!
//! ```text
//!  call channel ──▶ reader thread ──Call, Shutdown──▶ ForwardedCalls ──▶ serve_channel
//!                        │
//!                        └──Stop { id, grace }──▶ running id? SIGTERM now, SIGKILL after grace
//!                                                 not started? answered `Stopped` when reached
//! ```
//!
//! The end of the channel ends the serve loop as it does for a local
//! worker; a channel with nobody left to read the results (the connection
//! dropped, the pool died) is the liveness watch's to act on.

use procpool_ipc::{Decoder, ReadStatus, ToWorker, HEADER_LEN};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Whether this process serves a launcher (stops arrive as frames).
static ON: AtomicBool = AtomicBool::new(false);

/// The call running and the calls stopped before they started, under one
/// lock, so that a stop and a call's start cannot pass each other.
struct Calls {
    /// The id of the call running, 0 for none (ids start at 1).
    running: u64,
    /// Calls stopped before they started, oldest first.
    stopped_early: Vec<u64>,
}

static CALLS: Mutex<Calls> = Mutex::new(Calls {
    running: 0,
    stopped_early: Vec::new(),
});

/// Stops remembered for calls not started: a window's worth and more. A
/// stop for a call that had just returned is never claimed; the oldest go.
const STOPPED_EARLY_KEPT: usize = 128;

fn calls<T>(f: impl FnOnce(&mut Calls) -> T) -> T {
    // Each critical section is a few assignments: a poisoned lock still
    // holds a consistent state.
    let mut state = CALLS.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut state)
}

/// Frames queued between the reader thread and the serve loop: a window's
/// worth, so that the reader never holds much the loop has not taken.
const QUEUED_FRAMES: usize = 64;

/// What the reader thread hands the serve loop.
enum Chunk {
    /// A whole frame, with its length prefix.
    Frame(Vec<u8>),
    /// The channel broke: the loop reports it as a protocol error.
    Broken(String),
}

/// The serve loop's call channel: the frames the reader thread passed on,
/// as a byte stream.
pub(crate) struct ForwardedCalls {
    frames: Receiver<Chunk>,
    current: Vec<u8>,
    at: usize,
}

impl Read for ForwardedCalls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.frames.recv() {
                Ok(Chunk::Frame(frame)) => {
                    self.current = frame;
                    self.at = 0;
                }
                Ok(Chunk::Broken(why)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                // The reader thread ended: the channel is at its end.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Starts reading `calls` on a thread of its own; stops are carried out
/// there, everything else comes out of the returned reader.
pub(crate) fn forward_calls(
    calls: std::fs::File,
    max_frame_len: usize,
) -> io::Result<ForwardedCalls> {
    ON.store(true, Ordering::Release);
    let (sender, frames) = mpsc::sync_channel(QUEUED_FRAMES);
    std::thread::Builder::new()
        .name("procpool-calls".into())
        .spawn(move || read_calls(calls, max_frame_len, &sender))?;
    Ok(ForwardedCalls {
        frames,
        current: Vec::new(),
        at: 0,
    })
}

fn read_calls(mut calls: std::fs::File, max_frame_len: usize, sender: &SyncSender<Chunk>) {
    let mut decoder = Decoder::with_max_frame_len(max_frame_len);
    loop {
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let _ = sender.send(Chunk::Broken(e.to_string()));
                    return;
                }
            };
            if let Ok(ToWorker::Stop { id, grace_ms }) = ToWorker::decode(frame) {
                stop(id, Duration::from_millis(u64::from(grace_ms)));
                continue;
            }
            let len = u32::try_from(frame.len()).expect("a frame within the limit fits a u32");
            let mut whole = Vec::with_capacity(HEADER_LEN + frame.len());
            whole.extend_from_slice(&len.to_le_bytes());
            whole.extend_from_slice(frame);
            if sender.send(Chunk::Frame(whole)).is_err() {
                return; // the serve loop has ended
            }
        }
        match decoder.read_from(&mut calls) {
            Ok(ReadStatus::Data(_)) => {}
            Ok(ReadStatus::Eof) => {
                if let Err(e) = decoder.finish() {
                    let _ = sender.send(Chunk::Broken(e.to_string()));
                }
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = sender.send(Chunk::Broken(format!("reading calls failed: {e}")));
                return;
            }
        }
    }
}

/// Stops call `id`: at once if it runs (and SIGKILL after `grace` if it
/// still does), or when it is reached if it has not started.
fn stop(id: u64, grace: Duration) {
    let running = calls(|state| {
        if state.running == id {
            return true;
        }
        if !state.stopped_early.contains(&id) {
            if state.stopped_early.len() == STOPPED_EARLY_KEPT {
                state.stopped_early.remove(0);
            }
            state.stopped_early.push(id);
        }
        false
    });
    if !running {
        return;
    }
    crate::sys::STOP_REQUESTED.store(true, Ordering::Relaxed);
    if grace.is_zero() {
        crate::sys::kill_own_group();
        return;
    }
    crate::sys::terminate_own_group();
    let watch = std::thread::Builder::new()
        .name("procpool-grace".into())
        .spawn(move || {
            std::thread::sleep(grace);
            if calls(|state| state.running == id) {
                crate::sys::kill_own_group();
            }
        });
    if watch.is_err() {
        // No thread for the grace: the call is stopped without one.
        crate::sys::kill_own_group();
    }
}

/// Call `id` is about to run: `false` if it was stopped before it started
/// (it must not run). Always `true` for a worker that is no launcher's.
pub(crate) fn starting(id: u64) -> bool {
    if !ON.load(Ordering::Acquire) {
        return true;
    }
    calls(|state| {
        if let Some(at) = state.stopped_early.iter().position(|&s| s == id) {
            state.stopped_early.remove(at);
            return false;
        }
        state.running = id;
        true
    })
}

/// The running call has returned.
pub(crate) fn ended() {
    if ON.load(Ordering::Acquire) {
        calls(|state| state.running = 0);
    }
}
