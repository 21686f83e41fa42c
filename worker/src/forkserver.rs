//! The fork server: a worker-to-be that forks the pool's workers.
//!
//! Starting a worker costs a `spawn` and an `exec` of the program, a
//! millisecond or more, which a pool pays again each time a worker dies or
//! is killed. The manager can instead keep one process of the program that
//! has already started, built its registry and then waits; each request
//! forks it. The fork inherits everything but the socket and serves on the
//! two pipe ends that came with the request, exactly as a spawned worker
//! serves on its stdin and stdout (it runs the initializer itself, as every
//! worker does). The wire format is in `procpool_ipc::env::FORKSERVER`.
//!
//! ```text
//!   manager ──request (serial + 2 fds)──▶ fork server ──clone(CLONE_PARENT)──▶ worker
//!   manager ◀──────── pid, errno ─────── fork server       (manager's child)
//! ```

use crate::sys;
use procpool_ipc::env;
use std::io::Write;

/// Serves fork requests until the socket ends; returns in each forked child
/// with its channel, for the caller to serve as a worker (with the registry
/// and settings it had before this call, inherited by the fork).
pub(crate) fn serve_forks() -> Result<Child, String> {
    if sys::thread_count() > 1 {
        // A fork would copy locks held by threads it does not copy.
        return Err("a fork server must have one thread (the registry started others)".into());
    }
    let socket = sys::take_forkserver_socket()
        .map_err(|e| format!("cannot take the fork server's socket off stdin: {e}"))?;
    let mut writer = &socket;
    // The server has no task whose processes it must take along: a plain
    // SIGKILL when the pool's thread dies. Its socket's end (the pool's
    // process died) ends it too.
    sys::die_with_parent_plainly()
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    sys::ignore_sigint().map_err(|e| format!("cannot ignore SIGINT: {e}"))?;
    writer
        .write_all(&env::FORKSERVER_GREETING)
        .map_err(|e| format!("cannot greet the manager: {e}"))?;
    loop {
        let request = sys::receive_fork_request(&socket)
            .map_err(|e| format!("reading a fork request: {e}"))?;
        let Some((_serial, calls, results)) = request else {
            return Ok(Child::NotNeeded);
        };
        let (pid, errno) = match sys::fork_sibling() {
            Ok(None) => {
                // The new worker: the socket is the server's alone.
                drop(socket);
                sys::own_process_group(0)
                    .map_err(|e| format!("cannot start a process group: {e}"))?;
                return Ok(Child::Worker { calls, results });
            }
            Ok(Some(pid)) => {
                // Both sides set the group, so it holds before either goes on.
                let _ = sys::own_process_group(pid);
                (pid, 0)
            }
            Err(e) => (0, e.raw_os_error().unwrap_or(0)),
        };
        drop((calls, results));
        let mut answer = [0u8; 8];
        answer[..4].copy_from_slice(&pid.to_le_bytes());
        answer[4..].copy_from_slice(&errno.to_le_bytes());
        writer
            .write_all(&answer)
            .map_err(|e| format!("answering a fork request: {e}"))?;
    }
}

/// How [`serve_forks`] returned.
pub(crate) enum Child {
    /// The fork server's work is over (the manager closed the socket).
    NotNeeded,
    /// In a forked worker: its call and result channel.
    Worker {
        calls: std::fs::File,
        results: std::fs::File,
    },
}
