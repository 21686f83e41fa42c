//! The manager's OS calls, behind one small interface so that another
//! platform can provide its own file. Linux is the one provided: pidfds for
//! exit notification and race-free signals, process groups for stopping a
//! task's own children, `F_SETPIPE_SZ` for large payloads.
//!
//! What a backend provides:
//! - [`Pidfd`]: an fd that turns readable when a process exits, and sends it
//!   signals without the risk of a recycled pid; `Pidfd::open` returns `None`
//!   where the kernel has none (the caller then watches for EOF on the
//!   worker's result pipe, CPython's way);
//! - [`signal_group`]: a signal to every process of a worker's group;
//! - [`grow_pipe`]: a larger pipe buffer, best effort;
//! - [`TimerFd`]: a deadline the poll can wait on to the microsecond;
//! - [`pipe`], [`send_fork_request`], [`wait_child`]: what the fork server
//!   (`crate::forkserver`) needs: pipes to hand over, fds sent over a Unix
//!   socket, and reaping a child std did not spawn.

#[path = "linux.rs"]
mod imp;

pub(crate) use imp::{
    grow_pipe, pipe, send_fork_request, signal_group, wait_child, Pidfd, TimerFd,
};
