//! procpool-worker: the main loop that runs inside every procpool worker
//! process.
//!
//! A program becomes a worker by building a [`Registry`] of its tasks and
//! calling [`serve_if_worker`] first thing in `main` (the pool re-executes the
//! current binary), or [`serve`] in a dedicated worker binary. This crate
//! depends on `procpool-ipc` (re-exported where a worker needs it) and libc,
//! never on the pool, the manager or mio: a library can embed a worker with
//! this crate alone.
//!
//! ```text
//!  parent                          this process
//!  ------                          ------------
//!  call pipe  ==> stdin  --dup-->  calls fd (cloexec)   fd 0 -> /dev/null
//!  result pipe <== stdout <-dup--  results fd (cloexec) fd 1 -> stderr
//!
//!  serve_channel:
//!    send Hello { version, pid, task names }
//!    run the initializer (if any)          -- fails: Exiting(InitializerFailed), exit 3
//!    loop:
//!      Call { id, task, payload }  -> Registry::call -> catch_unwind(task(args))
//!      Done { id, Output | RemoteError }   (written before the next call runs)
//!      after max_tasks calls: Exiting(MaxTasks), exit 0
//!      resident set over max_memory after a call: Exiting(MemoryCeiling), exit 0
//!    an allocation fails (abort, errno ENOMEM): Aborting(OutOfMemory), SIGABRT
//!    Shutdown or EOF: exit 0;  garbage: message on stderr, exit 2
//! ```
//!
//! Signals: SIGINT is ignored (the parent decides what a Ctrl-C means);
//! SIGTERM sets a flag that a long task can poll with [`stop_requested`] to
//! clean up and return during the pool's grace period, after which the
//! worker serves on. SIGURG is the worker's own (the liveness watch below):
//! a task must not take it over. It arrives when the pool drains a result
//! pipe that a large output filled, so it may interrupt a blocking call of
//! the next task that the kernel does not restart (`poll`, `epoll_wait`,
//! with `EINTR`), as any signal may; std's calls retry.
//!
//! Liveness: a worker leads its own process group and lives as long as its
//! pool reads its results. When nobody can (the pool's process died), it
//! kills its group at once, busy or idle, so what its task started dies too
//! (the kernel's signal-driven I/O on the result pipe tells it, no thread);
//! the parent-death signal (SIGHUP, `PR_SET_PDEATHSIG`) does the same. The
//! end of the call pipe means "no more calls": it answers what it has and
//! exits 0. The channel is the judge, not the parent pid, so a wrapper
//! program between pool and worker works.
//!
//! Hygiene: the settings arrive in environment variables, which the worker
//! takes out of its environment at once (a task's subprocess, even a
//! procpool program or one that builds its own pool, never takes itself for
//! a worker); a worker closes the fds it inherited above 2.
//!
//! Launched workers: a pool may start a worker through a launcher (`ssh
//! HOST`, `srun`, `kubectl exec -i POD --`, any wrapper) that does not pass
//! the environment on and that no signal of the pool crosses. Its settings
//! then come in its first argument (`--procpool-worker=v3:…`), its parent
//! means nothing (no parent-death signal), and it reads its call channel on
//! a thread of its own while a task runs, to obey `Stop` frames as the pool
//! would stop a local task (the stop flag and SIGTERM to its group, SIGKILL
//! after the grace). Liveness is the result channel's, as for every worker.
//!
//! The same entry points also serve as the pool's fork server (the
//! `forkserver` module): a copy of the program that has started and built
//! its registry, and forks a worker per request, so that replacing a worker
//! costs a fork rather than a spawn and exec. Each fork then runs exactly the
//! loop above on the pipes that came with the request.
//!
//! # Example
//!
//! ```no_run
//! use procpool_worker::{Registry, Task};
//!
//! pub const SQUARE: Task<u64, u64> = Task::new("square");
//!
//! fn tasks() -> Registry {
//!     Registry::new().with(SQUARE, |x| x * x)
//! }
//!
//! fn main() {
//!     // Serves and exits when the pool started this process; returns otherwise.
//!     procpool_worker::serve_if_worker(tasks);
//!     // ... the application proper ...
//! }
//! ```
//!
//! # Platforms
//!
//! Linux only (a `compile_error!` elsewhere): the worker uses
//! `PR_SET_PDEATHSIG`, process groups, `poll` on its result pipe, `/proc`
//! for its resident set and `RLIMIT_AS` for the hard memory cap. Without
//! `/proc` (some containers) `Settings::max_memory` reads nothing and never
//! ends a worker. [`serve_channel`] itself is plain `Read`/`Write`.
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "procpool-worker supports Linux only (pidfds, PR_SET_PDEATHSIG, /proc); \
     its OS calls sit in its `sys` module for another platform to follow"
);

mod forkserver;
mod liveness;
#[allow(unsafe_code)] // rusage, rlimit and the SIGABRT handler, each with its SAFETY note
mod memory;
mod panic_capture;
mod registry;
mod remote;
mod serve;
mod settings;
#[allow(unsafe_code)] // the OS calls, each with its SAFETY note
mod sys;

pub use procpool_ipc::{ByteBuf, RemoteError, RemoteErrorKind, Task};
pub use registry::{DuplicateTask, InitOutput, Registry};
/// The serde this crate's tasks are encoded with, so that a worker can
/// implement `Serialize`/`Deserialize` for its own argument and output types
/// without a dependency of its own (derives need
/// `#[serde(crate = "procpool_worker::serde")]`).
pub use serde;
pub use serve::{serve_channel, Ending};
pub use settings::{Settings, SettingsError};

use std::sync::atomic::Ordering;

/// Whether the pool has asked the running task to stop (SIGTERM arrived).
///
/// A long task checks it between steps; when it turns true the task has the
/// pool's grace period to clean up and return, and the worker then serves the
/// next call with the flag cleared. A task that ignores it is killed when the
/// grace period ends.
pub fn stop_requested() -> bool {
    sys::STOP_REQUESTED.load(Ordering::Relaxed)
}

/// Serves as a worker and exits, if the pool started this process; returns at
/// once otherwise.
///
/// Call it first thing in `main`, while the process has one thread: it takes
/// the worker's settings out of the environment (so that what the tasks
/// start never takes itself for a worker), closes every fd above 2 that the
/// process inherited (a worker starts with its channel and fds 0-2 only),
/// and only then builds `registry`.
///
/// The pool may start the program as a fork server instead (see
/// `procpool_ipc::env::FORKSERVER`): `registry` is then built once, in that
/// process, and each worker forked from it inherits it, with whatever
/// building it opened (per-worker resources belong in the initializer, which
/// each worker runs itself). It must not start threads: a fork server with
/// more than one thread refuses to serve, and the pool spawns its workers
/// the slow way.
pub fn serve_if_worker<F: FnOnce() -> Registry>(registry: F) {
    let Some((role, settings)) = Settings::take_from_env().or_else(Settings::take_from_args) else {
        return;
    };
    sys::close_inherited_fds();
    let registry = registry();
    exit_with(match settings {
        Ok(settings) => serve_as(role, &registry, settings),
        Err(e) => Err(e.to_string()),
    })
}

/// Serves as a worker on stdin/stdout, then exits the process.
///
/// Settings come from the environment the pool sets (see [`Settings`]),
/// taken out of it; without them, the defaults. The process exits 0 after
/// an orderly end, 2 after a protocol violation (with a message on stderr),
/// 3 when the initializer failed, 1 when the result channel broke or a
/// worker setting does not parse.
///
/// Started as a fork server (see [`serve_if_worker`]), it serves fork
/// requests instead, and each forked worker serves with this registry.
pub fn serve(registry: Registry) -> ! {
    let (role, settings) = Settings::take_from_env()
        .or_else(Settings::take_from_args)
        .unwrap_or((settings::Role::Worker, Ok(Settings::default())));
    exit_with(match settings {
        Ok(settings) => serve_as(role, &registry, settings),
        Err(e) => Err(e.to_string()),
    })
}

/// Serves in `role`: as a worker on stdin/stdout, or as a fork server whose
/// forks serve as workers.
fn serve_as(
    role: settings::Role,
    registry: &Registry,
    settings: Settings,
) -> Result<Ending, String> {
    let (calls, results) = match role {
        settings::Role::Worker => sys::take_stdio_channel()
            .map_err(|e| format!("cannot take the channel off stdio: {e}"))?,
        settings::Role::ForkServer => match forkserver::serve_forks() {
            Ok(forkserver::Child::Worker { calls, results }) => (calls, results),
            Ok(forkserver::Child::NotNeeded) => return Ok(Ending::ChannelClosed),
            Err(message) => return Err(format!("fork server: {message}")),
        },
    };
    serve_on(registry, &settings, calls, results)
}

/// Exits with the code of `ended`, saying on stderr why when it is not 0.
fn exit_with(ended: Result<Ending, String>) -> ! {
    let code = match ended {
        Ok(ending) => {
            if ending.exit_code() != 0 {
                eprintln!("procpool worker {}: {ending}", std::process::id());
            }
            ending.exit_code()
        }
        Err(message) => {
            eprintln!("procpool worker {}: {message}", std::process::id());
            1
        }
    };
    std::process::exit(code)
}

/// Serves on a channel already taken off stdio (or received by a fork):
/// its own process group, the signal setup, the liveness watch on the
/// channel.
fn serve_on(
    registry: &Registry,
    settings: &Settings,
    calls: std::fs::File,
    results: std::fs::File,
) -> Result<Ending, String> {
    sys::lead_own_group();
    sys::install_signal_handlers().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    if !settings.launched {
        // A launched worker's parent means nothing (a wrapper may have left
        // it running on its own): its stream alone ties it to the pool.
        sys::die_with_parent().map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    }
    liveness::watch(&results).map_err(|e| format!("cannot watch the result channel: {e}"))?;
    memory::report_allocation_failures(&results)
        .map_err(|e| format!("cannot watch for allocation failures: {e}"))?;
    if let Some(bytes) = settings.memory_limit {
        // Last, once the threads and buffers serving needs are in place.
        memory::limit_address_space(bytes)
            .map_err(|e| format!("cannot limit the address space to {bytes} bytes: {e}"))?;
    }
    if settings.launched {
        let calls = remote::forward_calls(calls, settings.max_frame_len)
            .map_err(|e| format!("cannot start reading the call channel: {e}"))?;
        return Ok(serve_channel(registry, settings, calls, results));
    }
    let calls = sys::SpinningReader { file: calls };
    Ok(serve_channel(registry, settings, calls, results))
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
