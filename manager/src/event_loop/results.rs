//! Receiving: a bounded share of each worker's result pipe per turn, its
//! frames decoded and checked against the protocol's rules.

use super::settle::End;
use super::timers::Deadline;
use super::EventLoop;
use crate::slot::Phase;
use crate::stats::Gauges;
use crate::Failure;
use procpool_ipc::{
    AbortCause, ExitReason, FromWorker, Hello, Outcome, Payload, ReadStatus, RemoteError,
};
use std::io;
use std::ops::Range;
use std::time::Instant;

/// The most bytes read from one worker per turn while others may be
/// waiting: a 100 MiB result streams in over many turns, and a small result
/// of another worker completes between them.
const READ_SHARE: usize = 1 << 20;

/// How much to read from a worker this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    /// [`READ_SHARE`], then come back next turn.
    Turn,
    /// Everything there is: the worker has exited, its pipe holds at most
    /// one pipe buffer, and it must be read before the worker is reaped.
    All,
}

/// A frame, decoded, owning what it carries.
enum Message {
    Hello(Hello),
    Output { id: u64, payload: Option<Payload> },
    Error { id: u64, error: RemoteError },
    Exiting(ExitReason),
    Aborting(AbortCause),
    Garbage(String),
}

/// Where `part` lies inside `whole`, which it borrows from.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

impl EventLoop {
    /// Reads what `slot`'s worker sent, up to `share`, and acts on each
    /// whole frame.
    pub(super) fn read_results(&mut self, slot: usize) {
        self.read_results_up_to(slot, Share::Turn);
    }

    pub(super) fn read_results_up_to(&mut self, slot: usize, share: Share) {
        let mut read = 0;
        let mut reached_eof = false;
        loop {
            let Some(w) = self.worker(slot) else { return };
            let Some(results) = w.results.as_ref() else {
                return;
            };
            let status = w.decoder.read_from(&mut &*results);
            match status {
                Ok(ReadStatus::Data(n)) => {
                    read += n;
                    w.last_progress = Instant::now();
                }
                Ok(ReadStatus::Eof) => reached_eof = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.breach(slot, format!("reading its results failed: {e}"));
                    return;
                }
            }
            self.take_frames(slot);
            if self.worker(slot).is_none_or(|w| w.failure.is_some()) {
                // Condemned: nothing more it sends is read.
                return;
            }
            if reached_eof {
                return self.on_results_closed(slot);
            }
            if share == Share::Turn && read >= READ_SHARE {
                self.unread.push(slot);
                break;
            }
        }
        self.watch_for_stall(slot);
    }

    /// Acts on every whole frame the decoder holds.
    fn take_frames(&mut self, slot: usize) {
        loop {
            let Some(w) = self.worker(slot) else { return };
            if w.failure.is_some() {
                // It is being killed: trust nothing more it sent.
                return;
            }
            let decoder = &mut w.decoder;
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => return self.breach(slot, e.to_string()),
            };
            let message = match FromWorker::decode(frame) {
                Ok(FromWorker::Hello(hello)) => Message::Hello(hello),
                Ok(FromWorker::Done(done)) => match done.outcome {
                    Outcome::Output(bytes) => {
                        let range = range_in(frame, bytes);
                        Message::Output {
                            id: done.id,
                            payload: decoder.take_payload(range),
                        }
                    }
                    Outcome::Error(error) => Message::Error { id: done.id, error },
                },
                Ok(FromWorker::Exiting(reason)) => Message::Exiting(reason),
                Ok(FromWorker::Aborting(cause)) => Message::Aborting(cause),
                Err(e) => Message::Garbage(e.to_string()),
            };
            self.on_message(slot, message);
        }
    }

    fn on_message(&mut self, slot: usize, message: Message) {
        let max_tasks = self.config.max_tasks_per_child;
        let ceiling = self.config.max_memory_per_child;
        let Some(w) = self.worker(slot) else { return };
        if w.said_exiting {
            return self.breach(slot, "it sent a frame after saying it was exiting".into());
        }
        match message {
            Message::Garbage(detail) => self.breach(slot, detail),
            Message::Hello(hello) => {
                if let Err(e) = hello.check() {
                    return self.breach(slot, e.to_string());
                }
                if w.said_hello {
                    return self.breach(slot, "it sent a second Hello".into());
                }
                w.said_hello = true;
                w.hello_pid = Some(hello.pid);
                // A worker told to retire before it said hello (a shutdown
                // right after its start) stays retiring.
                let ready = w.phase == Phase::Starting;
                if ready {
                    w.phase = Phase::Ready;
                    log::debug!("procpool: worker {} is ready", w.pid);
                }
                self.sched.tasks().announce(hello.tasks);
                if ready {
                    self.sched.set_idle(slot);
                }
            }
            Message::Output { id, payload } => {
                let Some(payload) = payload else {
                    return self.breach(slot, "its output lies outside its frame".into());
                };
                self.on_done(slot, id, End::Output(payload));
            }
            Message::Error { id, error } => {
                self.on_done(slot, id, End::Failed(Failure::Remote(error)));
            }
            Message::Exiting(reason) => {
                // A worker exits on its own only after its last task of
                // `max_tasks_per_child`, after a task that left it over the
                // memory ceiling, or when its initializer failed (the
                // manager never sends `Shutdown`): anything else would have
                // its jobs requeued for ever by workers that run none.
                let truthful = match &reason {
                    ExitReason::MaxTasks => max_tasks == Some(w.served),
                    ExitReason::InitializerFailed(_) => w.served == 0,
                    ExitReason::MemoryCeiling { ceiling: said, .. } => {
                        ceiling == Some(*said) && w.served > 0
                    }
                    _ => false,
                };
                if !truthful {
                    return self.breach(
                        slot,
                        format!("it said it was exiting ({reason}) with no reason to"),
                    );
                }
                log::debug!("procpool: worker {} exits: {reason}", w.pid);
                w.said_exiting = true;
                w.orderly_exit = true;
                w.phase = Phase::Retiring;
                let serial = w.serial;
                self.sched.set_busy(slot);
                self.requeue_all(slot);
                self.timers
                    .arm(self.config.exit_timeout, slot, serial, Deadline::Exit);
                match reason {
                    ExitReason::InitializerFailed(e) => self.break_pool(e.message, None),
                    ExitReason::MemoryCeiling { .. } => {
                        Gauges::bump(&self.gauges.recycled_for_memory);
                    }
                    _ => {}
                }
            }
            Message::Aborting(cause) => {
                // It dies next (by SIGABRT); what it ran fails with the
                // cause when it is reaped. Nothing may follow, and it gets
                // no more calls.
                log::warn!("procpool: worker {} is aborting: {cause}", w.pid);
                w.said_exiting = true;
                w.aborting = Some(cause);
                w.phase = Phase::Retiring;
                let serial = w.serial;
                self.sched.set_busy(slot);
                self.timers
                    .arm(self.config.exit_timeout, slot, serial, Deadline::Exit);
            }
        }
    }

    /// A call ended in the worker: its job is settled, and the worker has
    /// shown that it works.
    fn on_done(&mut self, slot: usize, id: u64, end: End) {
        let max_tasks = self.config.max_tasks_per_child;
        let Some(w) = self.worker(slot) else { return };
        let head = w.window.front().map(|job| job.id);
        if head != Some(id) {
            let detail = match head {
                Some(head) => format!("it finished call {id} while running call {head}"),
                None => format!("it finished call {id}, which it was never given"),
            };
            return self.breach(slot, detail);
        }
        let job = w.pop_job().expect("its head was checked just above");
        let now = Instant::now();
        let ran = now.saturating_duration_since(w.head_started);
        w.head_started = now;
        w.served += 1;
        let source = w.source;
        if max_tasks == Some(w.served) {
            // It exits now; an Exiting frame follows. Nothing else it holds
            // will start: it goes to another worker.
            w.phase = Phase::Retiring;
            w.orderly_exit = true;
            self.requeue_all(slot);
        }
        self.sched.costs().learn(job.task, ran);
        self.worker_succeeded(source);
        self.settle(job, end);
        self.head_changed(slot);
    }

    /// The result pipe reached its end. A worker told to exit, killed, or
    /// dying (a process closes its fds before its exit is reported) is
    /// reaped as usual, and its exit status tells what happened, a frame cut
    /// short included. One still running has closed its output while alive,
    /// which it must not: it is killed at once.
    fn on_results_closed(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if w.launched {
            // A launched worker's stream is all the pool sees of it: its
            // end is the worker's end. The launcher follows (ssh exits); one
            // that lingers is killed after the exit timeout.
            w.close_results(registry);
            let (serial, exited) = (w.serial, matches!(w.process.try_wait(), Ok(Some(_))));
            if exited || w.pidfd.is_none() {
                return self.try_reap(slot);
            }
            self.timers
                .arm(self.config.exit_timeout, slot, serial, Deadline::Exit);
            return;
        }
        let dying = crate::sys::is_exiting(w.pid) == Some(true);
        if w.orderly_exit || w.killed || dying {
            w.close_results(registry);
            if w.pidfd.is_none() {
                // Without a pidfd the pipe's end is the sign of its exit.
                self.try_reap(slot);
            }
            return;
        }
        let detail = match w.decoder.finish() {
            Err(e) => e.to_string(),
            Ok(()) => "it closed its result pipe while still running".to_owned(),
        };
        self.breach(slot, detail);
    }

    /// Arms the stall deadline while a frame is unfinished.
    fn watch_for_stall(&mut self, slot: usize) {
        let stall = self.config.stall_timeout;
        let Some(w) = self.worker(slot) else { return };
        if w.stall_armed || w.decoder.buffered() == 0 || w.failure.is_some() {
            return;
        }
        w.stall_armed = true;
        let (serial, left) = (w.serial, stall.saturating_sub(w.last_progress.elapsed()));
        self.timers.arm(left, slot, serial, Deadline::Stall);
    }

    /// The stall deadline fired: a frame that has not progressed for the
    /// whole timeout is a breach; one that has is watched again.
    pub(super) fn check_stall(&mut self, slot: usize) {
        let stall = self.config.stall_timeout;
        let Some(w) = self.worker(slot) else { return };
        w.stall_armed = false;
        let buffered = w.decoder.buffered();
        if buffered == 0 || w.results.is_none() {
            return;
        }
        if w.last_progress.elapsed() >= stall {
            return self.breach(
                slot,
                format!("it sent {buffered} bytes of a frame and then nothing for {stall:?}"),
            );
        }
        self.watch_for_stall(slot);
    }

    /// The worker in `slot` broke the protocol (or one of its deadlines):
    /// kill it; its job fails with a protocol error when it is reaped.
    pub(super) fn breach(&mut self, slot: usize, detail: String) {
        let Some(w) = self.worker(slot) else { return };
        if w.failure.is_some() {
            return;
        }
        let (pid, served, source) = (w.pid, w.served, w.source);
        let detail = match (w.launched, self.sources.get(source)) {
            (true, Some(state)) => format!("{} (on {})", detail, state.spec.name),
            _ => detail,
        };
        log::warn!("procpool: worker {pid} broke the protocol: {detail}");
        let description = format!("worker {pid} broke the protocol: {detail}");
        if let Some(w) = self.worker(slot) {
            w.condemn(Failure::Protocol { pid, detail });
        }
        self.sched.set_busy(slot);
        self.stop_reading(slot);
        if served == 0 {
            // Counted now, not when it is reaped, so that no start slips in
            // before the back-off.
            self.count_failure(source, description);
        }
    }
}
