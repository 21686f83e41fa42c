//! [`Process`]: a worker process (or fork server) of ours, by pid, reaped
//! once.

use crate::sys;
use std::io;
use std::process::ExitStatus;

/// A child process of this one (spawned, or forked by the fork server with
/// `CLONE_PARENT`), reaped by pid.
#[derive(Debug)]
pub(crate) struct Process {
    pid: u32,
    /// Kept once reaped: the pid is not ours to wait for again.
    status: Option<ExitStatus>,
}

impl Process {
    /// `pid` must be an unreaped child of this process.
    pub(crate) fn new(pid: u32) -> Self {
        Self { pid, status: None }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it has been reaped.
    pub(crate) fn reaped(&self) -> bool {
        self.status.is_some()
    }

    /// Waits for it to exit.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = sys::wait_child(self.pid, true)?
            .ok_or_else(|| io::Error::other("a blocking wait returned early"))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Its exit status if it has exited, without blocking.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = sys::wait_child(self.pid, false)?;
        }
        Ok(self.status)
    }

    /// SIGKILLs its group and reaps it, unless it was reaped already.
    pub(crate) fn kill_and_reap(&mut self) {
        if self.reaped() {
            return;
        }
        let _ = sys::signal_group(self.pid, libc::SIGKILL);
        if let Err(e) = self.wait() {
            log::warn!("procpool: reaping process {}: {e}", self.pid);
        }
    }
}
