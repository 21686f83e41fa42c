//! The spawner thread: starts worker processes off the manager thread.
//!
//! Starting a process blocks its caller until the child has exec'd (std
//! waits, to report a failed exec), a millisecond or more for a large
//! program; on the manager thread that would hold up every other worker's
//! results. The spawner does it instead and hands each new worker back
//! through the manager's wake-up channel; with a fork server (which the
//! manager thread starts), a new worker is a fork away ([`start_worker`]).
//! It starts
//! with the first request (a thread start is a good part of a pool's
//! start-up) and then lives as long as the manager: a worker's parent-death
//! signal fires when the *thread* that spawned it (or the fork server it came
//! from) exits (`PR_SET_PDEATHSIG`, prctl(2)).

use crate::config::Config;
use crate::handle::Shared;
use crate::worker::Worker;
use crate::Error;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A request to start a worker with this serial number.
pub(crate) struct SpawnRequest(pub(crate) u64);

pub(crate) struct Spawner {
    /// What the thread needs, until it starts.
    unstarted: Option<(Config, Arc<Shared>)>,
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// A spawner whose thread starts with the first request.
    pub(crate) fn new(config: Config, shared: Arc<Shared>) -> Self {
        Self {
            unstarted: Some((config, shared)),
            requests: None,
            thread: None,
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        let Some((config, shared)) = self.unstarted.take() else {
            return Ok(());
        };
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("procpool-spawn".into())
            .spawn(move || {
                while let Ok(SpawnRequest(serial)) = inbox.recv() {
                    serve_worker_request(&shared, &config, serial);
                }
            })?;
        self.requests = Some(requests);
        self.thread = Some(thread);
        Ok(())
    }

    /// Asks for `request`; the worker arrives in `Shared::spawned`.
    ///
    /// # Errors
    /// When the spawner thread cannot start or is gone.
    pub(crate) fn request(&mut self, request: SpawnRequest) -> Result<(), Error> {
        self.start()
            .map_err(|e| Error::Spawn(format!("cannot start the spawner thread: {e}")))?;
        self.requests
            .as_ref()
            .and_then(|r| r.send(request).ok())
            .ok_or_else(|| Error::Spawn("the spawner thread has stopped".into()))
    }

    /// Stops the thread once the requests already made are served.
    pub(crate) fn stop(&mut self) {
        self.unstarted = None;
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_worker_request(shared: &Shared, config: &Config, serial: u64) {
    let started = start_worker(shared, config, serial);
    shared.spawned.lock().push(started);
    shared.wake();
}

/// Starts a worker: forked by the fork server when there is one, else
/// spawned. A fork server that fails is stopped and not used again.
pub(crate) fn start_worker(shared: &Shared, config: &Config, serial: u64) -> Result<Worker, Error> {
    let mut forkserver = shared.forkserver.lock();
    if let Some(server) = forkserver.as_mut() {
        let forked = match server.ready() {
            // Still starting: this worker is spawned, not waited for.
            Ok(false) => None,
            Ok(true) => Some(
                Worker::fork(server, config, serial)
                    .map_err(|e| format!("the fork server failed: {e}")),
            ),
            Err(e) => Some(Err(format!("the fork server did not start: {e}"))),
        };
        match forked {
            None => {}
            Some(Ok(worker)) => return Ok(worker),
            Some(Err(e)) => {
                log::warn!("procpool: {e}; workers will be spawned");
                // Dropping it kills and reaps it.
                *forkserver = None;
            }
        }
    }
    drop(forkserver);
    Worker::spawn(config, serial)
}
