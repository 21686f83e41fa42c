//! One worker process as the manager holds it: the child, its pipes, its
//! sentinel, its frames in both directions and the jobs it holds.
//!
//! | `phase`    | meaning                                      | next                     |
//! |------------|----------------------------------------------|--------------------------|
//! | `Starting` | started, no `Hello` yet (deadline: the start | `Ready` on Hello; dead   |
//! |            | timeout); not idle                           |                          |
//! | `Ready`    | serving; idle when its window is empty       | `Retiring`; dead         |
//! | `Retiring` | gets no more calls (recycling, shutdown,     | dead (reaped)            |
//! |            | protocol breach, stop); may still run its    |                          |
//! |            | last job; killed if it lingers               |                          |

use crate::config::Config;
use crate::job::Work;
use crate::launch::{Process, StartError, Started, StderrTail};
use crate::sys::{self, Pidfd};
use crate::Failure;
use mio::unix::pipe::{Receiver, Sender};
use mio::{Interest, Registry, Token};
use procpool_ipc::{AbortCause, Decoder};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a worker is in its life; see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Ready,
    Retiring,
}

/// The most call frames one `writev` takes.
const MAX_SLICES: usize = 64;

pub(crate) struct WorkerSlot {
    /// Distinguishes this process from an earlier one in the same slot, for
    /// timers that outlive it.
    pub(crate) serial: u64,
    pub(crate) process: Process,
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<Pidfd>,
    pub(crate) calls: Option<Sender>,
    calls_registered: bool,
    pub(crate) results: Option<Receiver>,
    pub(crate) decoder: Decoder,
    /// How many of `window`'s frames are fully written, and how many bytes
    /// of the next one.
    written: usize,
    partial: usize,
    pub(crate) phase: Phase,
    /// Jobs sent, in order: the front one runs (since `head_started`), the
    /// others wait in its call pipe.
    pub(crate) window: VecDeque<Work>,
    pub(crate) head_started: Instant,
    /// The summed `cost` of `window`, and how many of them have none
    /// (unknown or long): a window only grows behind short, known work.
    known_load: Duration,
    unknown_load: usize,
    /// Calls it answered.
    pub(crate) served: u64,
    /// When bytes of its results last arrived (for the stall deadline).
    pub(crate) last_progress: Instant,
    /// Set when the worker must die (protocol breach, a missed deadline):
    /// the failure its running job gets, unless the job is stopped for
    /// another reason. Nothing it sends is trusted after.
    pub(crate) failure: Option<Failure>,
    /// Its process group was sent SIGKILL.
    pub(crate) killed: bool,
    /// Killed on purpose (a stop, a breach, a deadline): a replacement was
    /// started at once, so it no longer counts towards `max_workers`, and
    /// its reaping starts no other.
    pub(crate) replaced: bool,
    /// Killed to stop its job: its replacement starts when it is reaped
    /// (or when `Deadline::Replace` fires first), not while it dies.
    pub(crate) replace_when_reaped: bool,
    /// It said `Exiting`, or was told to exit: its end is expected.
    pub(crate) orderly_exit: bool,
    /// Its `Hello` has arrived (only one may).
    pub(crate) said_hello: bool,
    /// It said `Exiting`: no frame may follow.
    pub(crate) said_exiting: bool,
    /// A stall deadline is armed for the frame it is sending.
    pub(crate) stall_armed: bool,
    /// It said it is about to die, and why (`Aborting`).
    pub(crate) aborting: Option<AbortCause>,
    /// It was told to exit for having been idle too long: its end is no
    /// replacement.
    pub(crate) idle_exit: bool,
    /// The index of the source it was started on.
    pub(crate) source: usize,
    /// The pid its `Hello` gave (a launched worker's, on its machine).
    pub(crate) hello_pid: Option<u32>,
    /// Started through a launcher: `process` is the launcher, not the
    /// worker; stops go as frames; the end of its stream is its end.
    pub(crate) launched: bool,
    /// A launched worker's stderr, for messages.
    pub(crate) stderr: Option<Arc<StderrTail>>,
    /// Frames other than calls (a `Stop`), written at the next frame
    /// boundary, and how much of the first is written.
    control: VecDeque<Vec<u8>>,
    control_partial: usize,
}

impl WorkerSlot {
    /// A worker from a started process: its pipes non-blocking (and large),
    /// a pidfd to watch. On failure the process is killed and reaped here.
    pub(crate) fn new(started: Started, config: &Config, serial: u64) -> Result<Self, StartError> {
        let Started {
            mut process,
            calls,
            results,
            forked: _,
            source,
            stderr,
        } = started;
        let launched = stderr.is_some();
        let pid = process.pid();
        let setup = (|| {
            let calls = Sender::from(calls);
            let results = Receiver::from(results);
            calls.set_nonblocking(true)?;
            results.set_nonblocking(true)?;
            sys::grow_pipe(&calls, config.pipe_buffer);
            sys::grow_pipe(&results, config.pipe_buffer);
            let pidfd = Pidfd::open(pid)?;
            Ok::<_, io::Error>((calls, results, pidfd))
        })();
        let (calls, results, pidfd) = match setup {
            Ok(parts) => parts,
            Err(e) => {
                process.kill_and_reap();
                return Err(StartError::new(format!("setting up worker {pid}"), e));
            }
        };
        let now = Instant::now();
        Ok(Self {
            serial,
            process,
            pid,
            pidfd,
            calls: Some(calls),
            calls_registered: false,
            results: Some(results),
            decoder: Decoder::with_max_frame_len(config.max_frame_len),
            written: 0,
            partial: 0,
            phase: Phase::Starting,
            window: VecDeque::new(),
            head_started: now,
            known_load: Duration::ZERO,
            unknown_load: 0,
            served: 0,
            last_progress: now,
            failure: None,
            killed: false,
            replaced: false,
            replace_when_reaped: false,
            orderly_exit: false,
            said_hello: false,
            said_exiting: false,
            stall_armed: false,
            aborting: None,
            idle_exit: false,
            source,
            hello_pid: None,
            launched,
            stderr,
            control: VecDeque::new(),
            control_partial: 0,
        })
    }

    /// Ready, serving, with nothing to run.
    pub(crate) fn is_idle(&self) -> bool {
        self.phase == Phase::Ready && self.window.is_empty() && self.calls.is_some()
    }

    /// Adds a job to the window, keeping the load counts.
    pub(crate) fn push_job(&mut self, job: Work) {
        match job.cost {
            Some(cost) => self.known_load += cost,
            None => self.unknown_load += 1,
        }
        self.window.push_back(job);
    }

    /// Takes the running job off the window, keeping the load counts.
    pub(crate) fn pop_job(&mut self) -> Option<Work> {
        let job = self.window.pop_front()?;
        self.forget_load(&job);
        if self.written > 0 {
            self.written -= 1;
        } else {
            self.partial = 0;
        }
        Some(job)
    }

    /// Takes every job but the running one off the window. Only for a
    /// worker that will read no further calls (it is exiting or dying): a
    /// frame it was in the middle of receiving is abandoned.
    pub(crate) fn drain_waiting(&mut self) -> Vec<Work> {
        let from = self.window.len().min(1);
        let waiting: Vec<Work> = self.window.drain(from..).collect();
        for job in &waiting {
            self.forget_load(job);
        }
        if self.written > self.window.len()
            || (self.written == self.window.len() && self.partial > 0)
        {
            self.mark_all_written();
        }
        waiting
    }

    fn forget_load(&mut self, job: &Work) {
        match job.cost {
            Some(cost) => self.known_load = self.known_load.saturating_sub(cost),
            None => self.unknown_load = self.unknown_load.saturating_sub(1),
        }
    }

    /// The summed expected cost of the jobs it holds that are known to be
    /// short, and how many it holds whose cost is unknown or long.
    pub(crate) fn load(&self) -> (Duration, usize) {
        (self.known_load, self.unknown_load)
    }

    /// Whether it takes more work into its window: it serves, its call pipe
    /// is open, and its running job is not being stopped.
    pub(crate) fn takes_work(&self) -> bool {
        self.phase == Phase::Ready
            && self.calls.is_some()
            && self.window.front().is_none_or(|head| head.stop.is_none())
    }

    /// Writes the call frames not yet written, many per `writev`, straight
    /// from the jobs' own buffers, until all are out or the pipe is full (it
    /// is then watched for room under `token`).
    pub(crate) fn write_calls(&mut self, registry: &Registry, token: Token) {
        // Out of `self` for the loop, so that the frames can be borrowed.
        let Some(mut calls) = self.calls.take() else {
            return;
        };
        loop {
            let written = {
                let pending = self.unwritten_slices();
                if pending.is_empty() {
                    if self.calls_registered {
                        let _ = registry.deregister(&mut calls);
                        self.calls_registered = false;
                    }
                    break;
                }
                io::Write::write_vectored(&mut &calls, &pending)
            };
            match written {
                Ok(0) => break,
                Ok(n) => self.advance_written(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.calls_registered {
                        match registry.register(&mut calls, token, Interest::WRITABLE) {
                            Ok(()) => self.calls_registered = true,
                            Err(e) => log::error!(
                                "procpool: cannot watch worker {}'s call pipe: {e}",
                                self.pid
                            ),
                        }
                    }
                    break;
                }
                Err(e) => {
                    // EPIPE and friends: the worker is gone or going; its
                    // pidfd (or result pipe's EOF) will say so.
                    log::debug!("procpool: writing to worker {}: {e}", self.pid);
                    self.mark_all_written();
                    break;
                }
            }
        }
        self.calls = Some(calls);
    }

    /// Queues a frame that is not a call (a `Stop`): it goes out at the next
    /// frame boundary, before the calls not yet begun.
    pub(crate) fn queue_control(&mut self, frame: Vec<u8>) {
        self.control.push_back(frame);
    }

    /// The unwritten bytes, in order: the rest of a call frame already
    /// begun, then the control frames, then the calls not begun.
    fn unwritten_slices(&self) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::new();
        let mut next = self.written;
        if self.partial > 0 {
            if let Some(job) = self.window.get(next) {
                let bytes = job.frame.bytes();
                slices.push(IoSlice::new(&bytes[self.partial.min(bytes.len())..]));
                next += 1;
            }
        }
        for (i, frame) in self.control.iter().enumerate() {
            let from = if i == 0 { self.control_partial } else { 0 };
            slices.push(IoSlice::new(&frame[from.min(frame.len())..]));
        }
        for job in self.window.iter().skip(next).take(MAX_SLICES) {
            slices.push(IoSlice::new(job.frame.bytes()));
        }
        slices
    }

    /// Records that `n` more bytes were written, in the order of
    /// [`unwritten_slices`](Self::unwritten_slices).
    fn advance_written(&mut self, mut n: usize) {
        if self.partial > 0 && self.written < self.window.len() {
            let left = self.window[self.written].frame.bytes().len() - self.partial;
            if n < left {
                self.partial += n;
                return;
            }
            n -= left;
            self.written += 1;
            self.partial = 0;
        }
        while n > 0 {
            let Some(frame) = self.control.front() else {
                break;
            };
            let left = frame.len() - self.control_partial;
            if n < left {
                self.control_partial += n;
                return;
            }
            n -= left;
            self.control.pop_front();
            self.control_partial = 0;
        }
        while n > 0 && self.written < self.window.len() {
            let left = self.window[self.written].frame.bytes().len() - self.partial;
            if n >= left {
                n -= left;
                self.written += 1;
                self.partial = 0;
            } else {
                self.partial += n;
                n = 0;
            }
        }
    }

    /// Gives up writing: the worker will read no more.
    fn mark_all_written(&mut self) {
        self.written = self.window.len();
        self.partial = 0;
        self.control.clear();
        self.control_partial = 0;
    }

    /// Closes the call pipe: a worker reads EOF and exits 0. What was not
    /// written is abandoned.
    pub(crate) fn close_calls(&mut self, registry: &Registry) {
        if let Some(mut calls) = self.calls.take() {
            if self.calls_registered {
                let _ = registry.deregister(&mut calls);
                self.calls_registered = false;
            }
            self.mark_all_written();
        }
    }

    /// Stops watching the result pipe and closes it.
    pub(crate) fn close_results(&mut self, registry: &Registry) {
        if let Some(mut results) = self.results.take() {
            let _ = registry.deregister(&mut results);
        }
    }

    /// Sends `signal` to the worker's whole process group (the task's own
    /// children too). Only valid before the worker is reaped.
    pub(crate) fn signal(&mut self, signal: i32) {
        if self.process.reaped() {
            return;
        }
        if signal == libc::SIGKILL {
            if self.killed {
                return;
            }
            self.killed = true;
        }
        if let Err(e) = sys::signal_group(self.pid, signal) {
            log::warn!("procpool: signal {signal} to worker {}: {e}", self.pid);
            // The group call failed; at least reach the worker itself.
            if let Some(pidfd) = &self.pidfd {
                let _ = pidfd.send_signal(signal);
            }
        }
    }

    /// Marks it as a worker that must die with `failure` (unless one was
    /// set before), and kills it.
    pub(crate) fn condemn(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        self.phase = Phase::Retiring;
        self.signal(libc::SIGKILL);
    }
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        // Whatever owns a child reaps it: a slot dropped before its process
        // was reaped (a teardown) takes the process with it.
        self.process.kill_and_reap();
    }
}
