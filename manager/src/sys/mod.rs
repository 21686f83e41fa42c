//! The manager's OS calls, behind one small interface so that another
//! platform can provide its own files. Linux is the one provided: pidfds for
//! exit notification and race-free signals, process groups for stopping a
//! task's own children, `F_SETPIPE_SZ` for large payloads, `posix_spawn`
//! with inherited fds closed.
//!
//! What a backend provides:
//! - [`Pidfd`]: an fd that turns readable when a process exits, and sends it
//!   signals without the risk of a recycled pid; `Pidfd::open` returns `None`
//!   where the kernel has none (the caller then watches for EOF on the
//!   worker's result pipe, CPython's way);
//! - [`signal_group`]: a signal to every process of a worker's group;
//! - [`grow_pipe`], [`pipe`]: pipes, larger ones for large payloads;
//! - [`TimerFd`]: a deadline the poll can wait on to the microsecond;
//! - [`spawn`]: a program started in a group of its own with only its
//!   channel and fds 0-2;
//! - [`send_fork_request`], [`wait_child`]: what the fork server needs: fds
//!   sent over a Unix socket, and reaping a child by pid;
//! - [`join_at_exit`]: a thread the process waits for when it exits.

mod exit;
#[path = "linux.rs"]
mod imp;
mod spawn;

pub(crate) use exit::join_at_exit;
pub(crate) use imp::{
    grow_pipe, holds_same_pipe, is_child, is_exiting, pipe, readable_within, send_fork_request,
    signal_group, wait_child, Pidfd, TimerFd,
};
pub(crate) use spawn::{closes_inherited_fds, spawn, spawn_with_stderr, SpawnSpec};
