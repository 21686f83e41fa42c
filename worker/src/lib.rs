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
//!    Shutdown or EOF: exit 0;  garbage: message on stderr, exit 2
//! ```
//!
//! Signals: SIGINT is ignored (the parent decides what a Ctrl-C means);
//! SIGTERM sets a flag that a long task can poll with [`stop_requested`] to
//! clean up and return during the pool's grace period, after which the
//! worker serves on. The worker asks for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`), and exits when its call channel closes.
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
#![deny(unsafe_code)]

mod forkserver;
mod panic_capture;
mod registry;
mod serve;
#[allow(unsafe_code)] // the OS calls, each with its SAFETY note
mod sys;

pub use procpool_ipc::{ByteBuf, RemoteError, RemoteErrorKind, Task};
pub use registry::{DuplicateTask, InitOutput, Registry};
/// The serde this crate's tasks are encoded with, so that a worker can
/// implement `Serialize`/`Deserialize` for its own argument and output types
/// without a dependency of its own (derives need
/// `#[serde(crate = "procpool_worker::serde")]`).
pub use serde;
pub use serve::{serve_channel, Config, ConfigError, Ending};

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
/// Call it first thing in `main`: `registry` is only built in a worker.
///
/// The pool may start the program as a fork server instead (see
/// `procpool_ipc::env::FORKSERVER`): `registry` is then built once, in that
/// process, and each worker forked from it inherits it, with whatever
/// building it opened (per-worker resources belong in the initializer, which
/// each worker runs itself). It must not start threads: a fork server with
/// more than one thread refuses to serve, and the pool spawns its workers
/// the slow way.
pub fn serve_if_worker<F: FnOnce() -> Registry>(registry: F) {
    if Config::is_worker() {
        serve(registry());
    }
}

/// Serves as a worker on stdin/stdout, then exits the process.
///
/// Settings come from the environment the pool sets ([`Config::from_env`]).
/// The process exits 0 after an orderly end, 2 after a protocol violation
/// (with a message on stderr), 3 when the initializer failed, 1 when the
/// result channel broke or a `PROCPOOL_*` setting does not parse.
///
/// Started as a fork server (see [`serve_if_worker`]), it serves fork
/// requests instead, and each forked worker serves with this registry.
pub fn serve(registry: Registry) -> ! {
    if forkserver::is_forkserver() {
        exit_with(match forkserver::serve_forks() {
            Ok(forkserver::Child::Worker {
                config,
                calls,
                results,
            }) => serve_on(&registry, &config, calls, results),
            Ok(forkserver::Child::NotNeeded) => Ok(Ending::ChannelClosed),
            Err(message) => Err(format!("fork server: {message}")),
        });
    }
    exit_with(setup_and_serve(&registry))
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

fn setup_and_serve(registry: &Registry) -> Result<Ending, String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let (calls, results) =
        sys::take_stdio_channel().map_err(|e| format!("cannot take the channel off stdio: {e}"))?;
    serve_on(registry, &config, calls, results)
}

/// Serves on a channel already taken off stdio (or received by a fork).
fn serve_on(
    registry: &Registry,
    config: &Config,
    calls: std::fs::File,
    results: std::fs::File,
) -> Result<Ending, String> {
    let parent_alive = sys::die_with_parent(config.parent_pid)
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    if !parent_alive {
        // The pool is gone already: nobody will read our results.
        return Ok(Ending::ChannelClosed);
    }
    sys::install_signal_handlers().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let calls = sys::SpinningReader { file: calls };
    Ok(serve_channel(registry, config, calls, results))
}
