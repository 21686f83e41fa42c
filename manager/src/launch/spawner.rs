//! The spawner thread: starts worker processes off the manager thread.
//!
//! A spawn blocks its caller until the child has exec'd (glibc waits, to
//! report a failed exec), a millisecond or more for a large program; on the
//! manager thread that would hold up every other worker's results. The
//! spawner does it instead and hands each new worker back through its own
//! mailbox, waking the manager. It starts with the first request (a thread
//! start is a good part of a pool's start-up) and then lives as long as the
//! manager: a worker's parent-death signal fires when the *thread* that
//! spawned it (or the fork server it came from) exits (`PR_SET_PDEATHSIG`,
//! prctl(2)).

use super::{Launcher, StartError, Started};
use crate::mailbox::Mailbox;
use parking_lot::Mutex;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the thread has started (or failed to), for the manager to take in.
type Delivered = Mutex<Vec<(usize, Result<Started, StartError>)>>;

pub(crate) struct Spawner {
    launcher: Arc<Launcher>,
    mailbox: Arc<Mailbox>,
    delivered: Arc<Delivered>,
    requests: Option<mpsc::Sender<usize>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// A spawner whose thread starts with the first request.
    pub(crate) fn new(launcher: Arc<Launcher>, mailbox: Arc<Mailbox>) -> Self {
        Self {
            launcher,
            mailbox,
            delivered: Arc::new(Mutex::new(Vec::new())),
            requests: None,
            thread: None,
        }
    }

    fn start_thread(&mut self) -> std::io::Result<&mpsc::Sender<usize>> {
        if self.requests.is_none() {
            let (requests, inbox) = mpsc::channel::<usize>();
            let launcher = Arc::clone(&self.launcher);
            let mailbox = Arc::clone(&self.mailbox);
            let delivered = Arc::clone(&self.delivered);
            let thread = std::thread::Builder::new()
                .name("procpool-spawn".into())
                .spawn(move || {
                    while let Ok(source) = inbox.recv() {
                        let started = launcher.start(source, false);
                        delivered.lock().push((source, started));
                        mailbox.wake();
                    }
                })?;
            self.requests = Some(requests);
            self.thread = Some(thread);
        }
        Ok(self.requests.as_ref().expect("set just above"))
    }

    /// Starts the thread now, ahead of a request known to come (a stopped
    /// worker's replacement), so that the request does not wait for the
    /// thread's creation. A failure is left for that request to report.
    pub(crate) fn warm(&mut self) {
        let _ = self.start_thread();
    }

    /// Asks for a worker; it arrives in [`take_started`](Self::take_started)
    /// (and the manager is woken).
    ///
    /// # Errors
    /// When the thread cannot start or is gone.
    pub(crate) fn request(&mut self, source: usize) -> Result<(), StartError> {
        let requests = self
            .start_thread()
            .map_err(|e| StartError::new("cannot start the spawner thread", e))?;
        requests.send(source).map_err(|_| {
            StartError::new(
                "the spawner thread has stopped",
                std::io::Error::other("channel closed"),
            )
        })
    }

    /// The workers started since the last call.
    pub(crate) fn take_started(&self) -> Vec<(usize, Result<Started, StartError>)> {
        std::mem::take(&mut *self.delivered.lock())
    }

    /// Stops the thread once the requests already made are served, and
    /// returns what it started that nobody took.
    pub(crate) fn stop(&mut self) -> Vec<(usize, Result<Started, StartError>)> {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.take_started()
    }
}
