//! procpool-manager: the parent's event loop, which starts, feeds, watches,
//! stops and reaps a pool's worker processes.
//!
//! It sits between the facade (`procpool`, which turns typed calls into
//! [`Job`]s and hands futures to users) and the worker processes, which it
//! reaches only through the protocol of `procpool-ipc`: it never depends on
//! `procpool-worker`, so it can drive any program that speaks the protocol.
//! It depends on ipc, mio, libc, parking_lot, rustc-hash and log; it runs no
//! user code (outputs leave it as bytes, for the reader to decode).
//!
//! ```text
//!  caller threads              manager thread (EventLoop, mio)                   worker processes
//!  --------------              -------------------------------                   ----------------
//!  Manager::submit(Job) ─Mailbox─▶ take_commands: Scheduler (pending by priority, FIFO within)
//!    (mio::Waker)                dispatch: idle WorkerSlot (LIFO), else the ──Call frames──▶
//!                                  window of a busy one (known-short jobs);     stdin of worker N
//!                                  Completion::set_running; CallFrame sealed,   (its own pipe,
//!                                  WorkerSlot::write_calls (writev)              many per write)
//!                                read_results (≤ 1 MiB per worker per turn) ◀─Done frames──
//!                                  Decoder::take_payload: the output's bytes,   stdout of worker N
//!  future.result() ◀──────────── settle: Completion::finish(Payload | Failure)
//!    (decodes the Payload)
//!  Aborter::abort(id) ─Mailbox─▶ stop_head: SIGTERM to the group, SIGKILL after grace
//!                                Timers (heap + timerfd): time limits, grace ends, Hello,
//!                                  stalled frames, exits that do not come
//!                                pidfd readable: drain results, reap, settle the job,
//!                                  requeue its window; start workers while there is work,
//!                                  backing off after failures (a crash loop breaks the pool)
//!                                Launcher: fork from the fork server (restarted when it
//!                                  dies), else spawn (posix_spawn); the Spawner thread
//!                                  starts workers while jobs are in flight
//! ```
//!
//! Waiting: each role (manager, worker, caller) spins for a short budget,
//! yielding the CPU, before it sleeps, but only while calls are dense and a
//! CPU is free; sparse calls sleep at once (`Config::spin`).
//!
//! Workers start on *sources*: this machine (children of the pool, forked
//! or spawned), or a launcher (ssh, srun, `kubectl exec`), whose workers
//! are not the pool's children: their settings go in their first argument,
//! a running task is stopped by a `Stop` frame (backed by killing the
//! launcher and ending the stream), and the end of their stream is their
//! end. Each source has its own crash-loop guard (`event_loop::sources`).
//!
//! Every worker has its own pair of pipes, so a worker that dies can only
//! lose its own frames, and the manager always knows which process runs which
//! job. Every wait on a worker has a deadline (its Hello, a frame it began,
//! its exit); every pipe is non-blocking and read and written incrementally.
//!
//! Modules: `event_loop` (the turn, and its parts: see there), `slot` (one
//! worker: its pipes, frames and window), `launch` (starting processes: the
//! fork server, the spawner thread, `posix_spawn`), `mailbox` (commands in),
//! `backlog` (the bounded backlog's places, which submitters wait for),
//! `stats` (counters out), `job`, `failure`, `config`, `handle` (the
//! caller's [`Manager`]), `sys` (the OS calls).
//!
//! # Platforms
//!
//! Linux only (a `compile_error!` elsewhere). A worker's exit is seen
//! through its pidfd (Linux 5.3); where pidfds are missing or refused, as
//! the end of its result pipe, with the same guarantees (CI runs the
//! conformance suite both ways). Workers start by `posix_spawn`, closing
//! inherited fds with `posix_spawn_file_actions_addclosefrom_np` where glibc
//! has it (2.34), or as forks of a fork server. The OS calls sit in the `sys`
//! module, for another platform to follow.
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "procpool-manager supports Linux only (pidfds, PR_SET_PDEATHSIG, /proc); \
     its OS calls sit in its `sys` module for another platform to follow"
);

mod backlog;
mod config;
mod event_loop;
mod failure;
mod handle;
mod job;
mod launch;
mod mailbox;
mod slot;
mod stats;
#[allow(unsafe_code)] // the OS calls, each with its SAFETY note
mod sys;

pub use backlog::{Acquire, Backlog, Permit, TryAcquireError};
pub use config::{Config, FailurePolicy, Launch, Source};
pub use failure::{BreakCause, ExitInfo, Failure, Refused, Signal};
pub use handle::{Aborter, Manager};
pub use job::{Completion, Job};
pub use stats::Stats;

/// The CPUs this process may use (`available_parallelism`: affinity and
/// cgroup quota), read once per process: std reads several cgroup files for
/// it each time, which a pool's start would otherwise pay three times.
pub(crate) fn cpus_available() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Whether workers started by this process get only fds 0-2 and their
/// channel, whatever the host leaked without close-on-exec (glibc 2.34 and
/// later; elsewhere the worker closes them itself where it can).
pub fn closes_inherited_fds() -> bool {
    sys::closes_inherited_fds()
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
