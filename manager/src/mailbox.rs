//! The way in to the manager thread: the [`Command`]s callers send, queued
//! in a [`Mailbox`] that wakes the thread.

use crate::backlog::Backlog;
use crate::failure::{BreakCause, Refused, Signal};
use crate::job::Job;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What callers ask of the manager thread.
pub(crate) enum Command {
    Submit(Job),
    /// Stop the job with this id: cancel it if pending, stop its worker if
    /// running.
    Abort(u64),
    /// Take no more work; finish (or, with `cancel_futures`, cancel) what is
    /// queued; then stop the workers and the thread. What still runs at
    /// `stop_running_at` is stopped.
    Shutdown {
        cancel_futures: bool,
        stop_running_at: Option<Instant>,
    },
    /// Shut down, cancel what is pending and send `signal` to every worker
    /// (CPython 3.14's `terminate_workers` / `kill_workers`).
    SignalWorkers {
        signal: Signal,
    },
}

/// The commands in arrival order, and whether more may come.
struct Inbox {
    commands: VecDeque<Command>,
    shut_down: bool,
    broken: Option<BreakCause>,
}

/// Commands on their way to the manager thread, and its wake-up.
pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// The bounded backlog, if the pool has one: closed when submits stop
    /// being taken, so that no submitter waits for room for ever.
    backlog: Option<Arc<Backlog>>,
    waker: mio::Waker,
    /// Set by the first command since the manager last took them, so a burst
    /// of submits costs one wake-up.
    wake_pending: AtomicBool,
    next_id: AtomicU64,
}

impl Mailbox {
    pub(crate) fn new(waker: mio::Waker, backlog: Option<Arc<Backlog>>) -> Self {
        Self {
            inbox: Mutex::new(Inbox {
                commands: VecDeque::new(),
                shut_down: false,
                broken: None,
            }),
            backlog,
            waker,
            wake_pending: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh job id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues `command` and wakes the manager thread if it may be asleep.
    ///
    /// # Errors
    /// A submit the pool no longer takes is refused, and the job dropped
    /// unsent (its future ends cancelled when the completion drops).
    pub(crate) fn send(&self, command: Command) -> Result<(), Refused> {
        let stops_submits = matches!(
            command,
            Command::Shutdown { .. } | Command::SignalWorkers { .. }
        );
        {
            let mut inbox = self.inbox.lock();
            if let Command::Submit(_) = command {
                if let Some(cause) = &inbox.broken {
                    return Err(Refused::Broken(cause.clone()));
                }
                if inbox.shut_down {
                    return Err(Refused::ShutDown);
                }
            }
            if stops_submits {
                inbox.shut_down = true;
            }
            inbox.commands.push_back(command);
        }
        if stops_submits {
            self.close_backlog(Refused::ShutDown);
        }
        self.wake();
        Ok(())
    }

    /// The backlog, if the pool has one.
    pub(crate) fn backlog(&self) -> Option<&Arc<Backlog>> {
        self.backlog.as_ref()
    }

    /// Submitters waiting for room return `refused` (those of a pool that
    /// broke, the cause).
    fn close_backlog(&self, refused: Refused) {
        if let Some(backlog) = &self.backlog {
            backlog.close(refused);
        }
    }

    /// Wakes the manager thread, once per batch of commands.
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                // An eventfd write fails only if the counter would overflow,
                // which needs 2^64 unread wakes: the manager is awake anyway.
                log::warn!("procpool: waking the manager failed: {e}");
            }
        }
    }

    /// Whether a wake-up is due (a command or a started worker arrived
    /// since the manager last looked): a spinning manager stops spinning.
    pub(crate) fn wake_pending(&self) -> bool {
        self.wake_pending.load(Ordering::Acquire)
    }

    /// Moves the queued commands into `into` (a reused buffer).
    pub(crate) fn take(&self, into: &mut VecDeque<Command>) {
        self.wake_pending.store(false, Ordering::Release);
        std::mem::swap(&mut self.inbox.lock().commands, into);
    }

    /// From now on, submits are refused with `cause`.
    pub(crate) fn set_broken(&self, cause: BreakCause) {
        self.inbox.lock().broken = Some(cause.clone());
        self.close_backlog(Refused::Broken(cause));
    }

    /// The manager thread is gone (it panicked): refuse everything from now
    /// on, and drop what was queued, which ends those futures cancelled.
    pub(crate) fn abandon(&self, cause: BreakCause) {
        let queued = {
            let mut inbox = self.inbox.lock();
            inbox.broken = Some(cause.clone());
            std::mem::take(&mut inbox.commands)
        };
        self.close_backlog(Refused::Broken(cause));
        drop(queued);
    }

    /// Whether a shutdown (of any kind) was asked for.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.inbox.lock().shut_down
    }
}
