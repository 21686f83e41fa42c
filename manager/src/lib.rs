//! procpool-manager: the parent's event loop, which spawns, feeds, watches,
//! stops and reaps a pool's worker processes.
//!
//! It sits between the facade (`procpool`, which turns typed calls into
//! [`Job`]s and hands futures to users) and the worker processes, which it
//! reaches only through the protocol of `procpool-ipc`: it never depends on
//! `procpool-worker`, so it can drive any program that speaks the protocol.
//! It depends on ipc, futures-core (for the error conversions), mio, libc,
//! parking_lot and log.
//!
//! ```text
//!  caller threads                 manager thread (EventLoop, mio)               worker processes
//!  --------------                 -------------------------------               ----------------
//!  Manager::submit(Job) --inbox--> drain_inbox: pending (FIFO)
//!    (wake via mio::Waker)         dispatch: idle worker (LIFO), else the window ---Call frames--->
//!                                    of a busy one (known-short jobs only);        stdin of worker N
//!                                    Completion::set_running; CallFrame sealed,    (its own pipe,
//!                                    written by writev from the job's buffer)       many per write)
//!                                  read_results <--------------------------------Done frames----
//!                                     Completion::finish(bytes | Error)            stdout of worker N
//!  future.result() <-------------  (the facade's Completion completes the future)
//!  Manager::abort(id) --inbox-->   stop_head: SIGTERM to the group, SIGKILL after grace
//!                                  timers (BinaryHeap + timerfd): time limits, grace ends
//!                                  pidfd readable: drain results, reap, settle the job,
//!                                     requeue its window, replace the worker
//!                                  fork server (started with the first worker): each
//!                                     worker is a fork of it (SCM_RIGHTS pipes in,
//!                                     pid out), else a spawn + exec; the spawner
//!                                     thread starts workers while jobs are in flight
//! ```
//!
//! Waiting: each role (manager, worker, caller) spins for a short budget,
//! yielding the CPU, before it sleeps, but only while calls are dense and a
//! CPU is free; sparse calls sleep at once (`Config::spin`).
//!
//! Every worker has its own pair of pipes, so a worker that dies can only
//! lose its own frames, and the manager always knows which process runs which
//! job. The thread blocks only in `Poll::poll`; every pipe is non-blocking and
//! read and written incrementally.
#![deny(unsafe_code)]

mod config;
mod error;
mod event_loop;
mod forkserver;
mod handle;
mod job;
mod spawner;
#[allow(unsafe_code)] // the OS calls, each with its SAFETY note
mod sys;
mod worker;

pub use config::{Config, FailurePolicy};
pub use error::{Error, ExitInfo};
pub use handle::{Aborter, Manager, Stats};
pub use job::{Completion, Job};

/// The CPUs this process may use (`available_parallelism`: affinity and
/// cgroup quota), read once per process: std reads several cgroup files for
/// it each time, which a pool's start would otherwise pay three times.
pub(crate) fn cpus_available() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}
