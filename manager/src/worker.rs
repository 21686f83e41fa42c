//! One worker process as the manager holds it: the child, its pipes, its
//! sentinel, its frames in both directions and the job it runs.
//!
//! | `phase`    | meaning                                   | next                          |
//! |------------|-------------------------------------------|-------------------------------|
//! | `Starting` | spawned, no `Hello` yet; not idle         | `Ready` on Hello; dead        |
//! | `Ready`    | serving; idle when `running` is `None`    | `Retiring`; dead              |
//! | `Retiring` | will get no more calls (recycling, shut-  | dead (reaped)                 |
//! |            | down, protocol breach, stop); may still   |                               |
//! |            | run its last job                          |                               |

use crate::config::Config;
use crate::job::Completion;
use crate::sys::{self, Pidfd};
use crate::Error;
use procpool_ipc::{env, Decoder, FrameBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where a worker is in its life; see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Ready,
    Retiring,
}

/// Why a running job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `abort()`, or the pool's terminate/kill: the future ends cancelled.
    Aborted,
    /// The job's time limit passed: the future fails with `TimedOut`.
    TimedOut(Duration),
}

/// The job a worker is running.
pub(crate) struct Running {
    pub(crate) id: u64,
    pub(crate) task: &'static str,
    pub(crate) completion: Box<dyn Completion>,
    pub(crate) grace: Duration,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) stop: Option<StopReason>,
}

pub(crate) struct Worker {
    /// Distinguishes this process from an earlier one in the same slot, for
    /// timers that outlive it.
    pub(crate) serial: u64,
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<Pidfd>,
    pub(crate) calls: Option<mio::unix::pipe::Sender>,
    pub(crate) calls_registered: bool,
    pub(crate) results: Option<mio::unix::pipe::Receiver>,
    pub(crate) decoder: Decoder,
    pub(crate) out: FrameBuf,
    pub(crate) phase: Phase,
    pub(crate) running: Option<Running>,
    pub(crate) served: u64,
    /// Set when the worker must die (protocol breach, stopped task): the
    /// error its job fails with, if the job is not stopped for another reason.
    pub(crate) failure: Option<Error>,
    /// Whether its process group was sent SIGKILL.
    pub(crate) killed: bool,
    /// The worker said `Exiting` or was told to: its end is expected.
    pub(crate) orderly_exit: bool,
}

impl Worker {
    /// Starts a worker process: call pipe on its stdin, result pipe on its
    /// stdout, its own process group, the settings in its environment.
    ///
    /// Must run on the manager thread: the worker's parent-death signal fires
    /// when the thread that spawned it exits.
    pub(crate) fn spawn(config: &Config, serial: u64) -> Result<Self, Error> {
        let program = match &config.program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::Spawn(format!("cannot find the current executable: {e}")))?,
        };
        let mut command = Command::new(&program);
        command
            .args(&config.args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .env(env::WORKER, env::WORKER_MODE)
            .env(env::PARENT_PID, std::process::id().to_string())
            .env(env::MAX_FRAME_LEN, config.max_frame_len.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // std keeps its posix_spawn fast path for a process group (no
        // pre_exec closure here on purpose).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        match config.max_tasks_per_child {
            Some(n) => command.env(env::MAX_TASKS, n.to_string()),
            None => command.env_remove(env::MAX_TASKS),
        };
        match &config.initializer {
            Some((name, args)) => command
                .env(env::INITIALIZER, name)
                .env(env::INITIALIZER_ARGS, env::hex_encode(args)),
            None => command
                .env_remove(env::INITIALIZER)
                .env_remove(env::INITIALIZER_ARGS),
        };
        let mut child = command
            .spawn()
            .map_err(|e| Error::Spawn(format!("{}: {e}", program.display())))?;
        let pid = child.id();
        let setup = (|| {
            let calls = mio::unix::pipe::Sender::from(child.stdin.take().expect("stdin was piped"));
            let results =
                mio::unix::pipe::Receiver::from(child.stdout.take().expect("stdout was piped"));
            calls.set_nonblocking(true)?;
            results.set_nonblocking(true)?;
            sys::grow_pipe(&calls, config.pipe_buffer);
            sys::grow_pipe(&results, config.pipe_buffer);
            let pidfd = Pidfd::open(pid)?;
            Ok::<_, std::io::Error>((calls, results, pidfd))
        })();
        let (calls, results, pidfd) = match setup {
            Ok(parts) => parts,
            Err(e) => {
                // Hand nothing half-made back: kill and reap the child here.
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Spawn(format!("setting up worker {pid}: {e}")));
            }
        };
        Ok(Self {
            serial,
            child,
            pid,
            pidfd,
            calls: Some(calls),
            calls_registered: false,
            results: Some(results),
            decoder: Decoder::with_max_frame_len(config.max_frame_len),
            out: FrameBuf::with_max_frame_len(config.max_frame_len),
            phase: Phase::Starting,
            running: None,
            served: 0,
            failure: None,
            killed: false,
            orderly_exit: false,
        })
    }

    /// Sends `signal` to the worker's whole process group (the task's own
    /// children too). Only valid before the worker is reaped.
    pub(crate) fn signal(&mut self, signal: i32) {
        if signal == libc::SIGKILL {
            if self.killed {
                return;
            }
            self.killed = true;
        }
        if let Err(e) = sys::signal_group(self.pid, signal) {
            log::warn!("procpool: signal {signal} to worker {}: {e}", self.pid);
            // The group call failed; at least reach the worker itself.
            if let Some(pidfd) = &self.pidfd {
                let _ = pidfd.send_signal(signal);
            }
        }
    }
}
