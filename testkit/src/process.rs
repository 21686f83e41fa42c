//! Processes as `/proc` shows them, read through procfs: who is whose child,
//! in what state, with what environment, and this process's own fds and
//! threads.

use procfs::process::{all_processes, Process};
use std::ffi::{OsStr, OsString};

/// The fields of `/proc/PID/stat` that tests check (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// One letter: `R` running, `S` sleeping, `Z` zombie (exited, not yet
    /// reaped), ...
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
    /// The process group's id.
    pub pgrp: u32,
}

impl Stat {
    fn of(process: &Process) -> Option<Self> {
        let stat = process.stat().ok()?;
        Some(Self {
            state: stat.state,
            ppid: u32::try_from(stat.ppid).ok()?,
            pgrp: u32::try_from(stat.pgrp).ok()?,
        })
    }
}

/// `/proc/PID/stat` of process `pid`; `None` once it is gone (reaped). A
/// zombie still has one, in state `Z`.
pub fn stat(pid: u32) -> Option<Stat> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    Stat::of(&process)
}

/// Every process, as one pass over `/proc` finds them (one that ends during
/// the pass may or may not be in it).
///
/// # Panics
///
/// If `/proc` cannot be listed.
pub fn pids() -> Vec<u32> {
    processes().map(|p| pid_of(&p)).collect()
}

/// The children of process `parent`, zombies included.
///
/// # Panics
///
/// If `/proc` cannot be listed.
pub fn children_of(parent: u32) -> Vec<u32> {
    children_with_state(parent)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// The children of this process with their state (`Z` for a zombie: exited,
/// not yet reaped), zombies included.
///
/// # Panics
///
/// If `/proc` cannot be listed.
pub fn children() -> Vec<(u32, char)> {
    children_with_state(std::process::id())
}

fn children_with_state(parent: u32) -> Vec<(u32, char)> {
    processes()
        .filter_map(|p| {
            let stat = Stat::of(&p)?;
            (stat.ppid == parent).then(|| (pid_of(&p), stat.state))
        })
        .collect()
}

/// The value of variable `name` in the environment of process `pid`, as
/// `/proc/PID/environ` has it (the environment the process started with);
/// `None` when it has no such variable, or it cannot be read (gone, a
/// zombie, another user's).
pub fn env_var(pid: u32, name: &str) -> Option<OsString> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    process.environ().ok()?.remove(OsStr::new(name))
}

/// The open fds of this process, each as `fd -> target`.
///
/// The reading holds two fds of its own while it lists (`/proc/self` and its
/// `fd` folder), which are in the list: compare counts taken this same way.
///
/// # Panics
///
/// If `/proc/self/fd` cannot be listed.
pub fn open_fds() -> Vec<String> {
    Process::myself()
        .and_then(|me| me.fd())
        .expect("/proc/self/fd")
        .flatten()
        .map(|fd| format!("{} -> {:?}", fd.fd, fd.target))
        .collect()
}

/// The names of this process's threads (`comm`: truncated by the kernel to
/// 15 bytes), one per thread.
///
/// # Panics
///
/// If `/proc/self/task` cannot be listed.
pub fn thread_names() -> Vec<String> {
    Process::myself()
        .and_then(|me| me.tasks())
        .expect("/proc/self/task")
        .flatten()
        .filter_map(|task| Some(task.stat().ok()?.comm))
        .collect()
}

fn processes() -> impl Iterator<Item = Process> {
    all_processes().expect("/proc").flatten()
}

fn pid_of(process: &Process) -> u32 {
    u32::try_from(process.pid()).expect("a pid is positive")
}
