//! The fork server's manager side: starting it, asking it for workers,
//! stopping it. The server's side, and why it exists, are in
//! procpool-worker's `forkserver` module; the wire format is
//! `procpool_ipc::env::FORKSERVER`.
//!
//! It is an optimisation only: when it cannot start (a worker program of
//! another version, a registry that starts threads) or stops answering, the
//! pool goes back to spawning each worker.

use super::command::spawn_spec;
use super::process::Process;
use super::StartError;
use crate::config::Config;
use crate::sys;
use procpool_ipc::env;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long the server may take to start: an exec and the program's start,
/// on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to answer one request (a fork).
const FORK_TIMEOUT: Duration = Duration::from_secs(5);

/// A running fork server: its process and our end of its socket.
pub(crate) struct Forkserver {
    process: Process,
    socket: UnixStream,
    /// The greeting's bytes read so far; it is used once all have come.
    greeting: Vec<u8>,
    started: Instant,
}

impl Forkserver {
    /// Starts the worker program as a fork server. It is not waited for:
    /// [`ready`](Self::ready) says whether it has greeted, and the first
    /// [`fork`](Self::fork) waits.
    pub(crate) fn start(config: &Config) -> Result<Self, StartError> {
        let socket_error = |e| StartError::new("cannot make the fork server's socket", e);
        let (socket, theirs) = UnixStream::pair().map_err(socket_error)?;
        let (spec, program) = spawn_spec(config, true)
            .map_err(|e| StartError::new("cannot build the fork server's command", e))?;
        // The socket is its stdout too: a program that is no fork server (of
        // another procpool version) answers with a worker's Hello there, and
        // is found out at once rather than after the start timeout.
        let theirs = OwnedFd::from(theirs);
        let pid = sys::spawn(&spec, &theirs, &theirs)
            .map_err(|e| StartError::new(format!("{} (fork server)", program.display()), e))?;
        drop(theirs);
        // Dropped, and so killed and reaped, on any failure from here on.
        let server = Self {
            process: Process::new(pid),
            socket,
            greeting: Vec::with_capacity(env::FORKSERVER_GREETING.len()),
            started: Instant::now(),
        };
        server
            .socket
            .set_nonblocking(true)
            .map_err(|e| StartError::new("the fork server's socket", e))?;
        Ok(server)
    }

    /// Whether it has greeted, reading what has come of the greeting
    /// without waiting. An error when it said something else, ended, or has
    /// not greeted within [`START_TIMEOUT`]: it is no use then.
    pub(crate) fn ready(&mut self) -> io::Result<bool> {
        let expected = env::FORKSERVER_GREETING;
        while self.greeting.len() < expected.len() {
            let mut byte = [0u8; 8];
            let want = expected.len() - self.greeting.len();
            match self.socket.read(&mut byte[..want]) {
                Ok(0) => return Err(io::Error::other("it exited before greeting")),
                Ok(n) => self.greeting.extend_from_slice(&byte[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.started.elapsed() > START_TIMEOUT {
                        return Err(io::Error::other("it did not greet in time"));
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
            if self.greeting.len() == expected.len() {
                self.check_greeting()?;
            }
        }
        Ok(true)
    }

    /// Whether it has greeted within `within` from now: [`ready`](Self::ready),
    /// waiting for the socket meanwhile. `Ok(false)` when it has not (yet).
    pub(crate) fn ready_within(&mut self, within: Duration) -> io::Result<bool> {
        let end = Instant::now() + within;
        loop {
            if self.ready()? {
                return Ok(true);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || !sys::readable_within(&self.socket, left) {
                return Ok(false);
            }
        }
    }

    /// Once the greeting has come whole: refuses a wrong one, and sets the
    /// socket up for requests (blocking reads, bounded by [`FORK_TIMEOUT`]).
    fn check_greeting(&mut self) -> io::Result<()> {
        if self.greeting != env::FORKSERVER_GREETING {
            // InvalidData: the program will never be a fork server of ours.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it is no fork server of this version (it greeted {:?})",
                    self.greeting
                ),
            ));
        }
        self.socket.set_nonblocking(false)?;
        self.socket.set_read_timeout(Some(FORK_TIMEOUT))
    }

    /// Asks a server that has greeted ([`ready`](Self::ready)) for a worker
    /// on the given pipe ends (call read end, result write end); returns its
    /// pid. The worker is our child.
    pub(crate) fn fork(&mut self, serial: u64, fds: [&OwnedFd; 2]) -> io::Result<u32> {
        sys::send_fork_request(&self.socket, serial, fds)?;
        let mut answer = [0u8; 8];
        self.socket.read_exact(&mut answer)?;
        let [p0, p1, p2, p3, e0, e1, e2, e3] = answer;
        match (
            u32::from_le_bytes([p0, p1, p2, p3]),
            i32::from_le_bytes([e0, e1, e2, e3]),
        ) {
            (0, errno) => Err(io::Error::from_raw_os_error(errno)),
            (pid, _) => Ok(pid),
        }
    }

    /// The server's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Drop for Forkserver {
    fn drop(&mut self) {
        // It holds nothing worth a grace period; the workers it forked are in
        // groups of their own and are not touched.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.process.kill_and_reap();
    }
}

/// How long a fork whose answer never came may take to say `Hello`.
const UNANSWERED_HELLO: Duration = Duration::from_secs(1);

/// A fork request failed after it was sent (the server died, or did not
/// answer in time): the server may have forked a worker all the same, a
/// child of ours whose pid never came. It holds the other end of `results`
/// and says `Hello` there first thing; when it does, it is killed and
/// reaped, so that no zombie of ours is left behind. Bounded: when no
/// worker exists, the pipe ends at once (no writer is left).
pub(super) fn reap_unanswered_fork(results: &OwnedFd) {
    let Some(pid) = unanswered_fork_pid(results) else {
        return;
    };
    // Only a child of ours that holds this very pipe: a Hello that names
    // another process is not believed.
    if !sys::is_child(pid) || !sys::holds_same_pipe(pid, results) {
        log::warn!("procpool: an unanswered fork claims pid {pid}, which it is not");
        return;
    }
    log::debug!("procpool: reaping worker {pid}, forked but never announced");
    let mut process = Process::new(pid);
    process.kill_and_reap();
}

/// The pid in the `Hello` on `results`, if one comes in time.
fn unanswered_fork_pid(results: &OwnedFd) -> Option<u32> {
    let file = std::fs::File::from(results.try_clone().ok()?);
    let end = Instant::now() + UNANSWERED_HELLO;
    let mut decoder = procpool_ipc::Decoder::new();
    loop {
        if let Ok(Some(frame)) = decoder.next_frame() {
            return match procpool_ipc::FromWorker::decode(frame) {
                Ok(procpool_ipc::FromWorker::Hello(hello)) => Some(hello.pid),
                _ => None,
            };
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || !sys::readable_within(&file, left) {
            return None;
        }
        match decoder.read_from(&mut &file) {
            Ok(procpool_ipc::ReadStatus::Data(_)) => {}
            Ok(procpool_ipc::ReadStatus::Eof) | Err(_) => return None,
        }
    }
}
