//! A worker lives as long as its pool listens: when nobody can read its
//! results any more (the pool's process died, or the pool gave up on this
//! worker and closed the pipe), it kills its process group at once, busy or
//! idle, so that nothing its task started outlives the pool.
//!
//! The channel, not the parent pid, is the judge: a wrapper program between
//! the pool and the worker (a shell script, `env`, `strace -f`) changes the
//! parent but not the channel. The end of the *call* pipe is not a sign of
//! death: it means "no more calls", and the worker answers what it has and
//! exits 0 (the pool's way to retire a worker). The parent-death signal
//! (SIGHUP, see `sys::die_with_parent`) backs the watch up.
//!
//! The watch is a signal, not a thread: the result pipe's write end is set
//! to signal-driven I/O (`O_ASYNC`, owned by this process, with
//! [`sys::LIVENESS_SIGNAL`]), and the kernel signals the owner when the last
//! reader closes the pipe (`pipe_release` in `fs/pipe.c`), as well as when a
//! full pipe is drained. The handler tells the two apart with a `poll`,
//! which reports `POLLERR` only when no reader is left (pipe(7)). A
//! launcher may hand the worker a socket instead of a pipe: its peer's close
//! raises the same signal (`POLL_HUP`), and `poll` reports `POLLHUP`.
//!
//! A thread blocked in `poll` did this before. It cost a thread per worker,
//! and every stop paid for it: a SIGKILL ends a process only once each of
//! its threads has been scheduled to exit, and on 2 vCPUs that made the
//! victim of an abort take about 0.2 ms longer to die (`procpool-bench`
//! cancel_running, interleaved runs).

use crate::sys;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Watches the result pipe `results` for the end of its last reader, for
/// the rest of the process's life (`results` must stay open as long: the
/// serve loop holds it until the process exits).
///
/// # Errors
/// When the signal handler cannot be installed or the fd set up.
pub(crate) fn watch(results: &File) -> std::io::Result<()> {
    sys::kill_group_when_no_reader(results.as_raw_fd())
}
