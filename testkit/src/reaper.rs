//! The test process as a child subreaper: orphans of a process it killed
//! become its children, so it can check how they ended and leave no zombie.

use crate::sys;
use std::time::{Duration, Instant};

/// How a process ended, as `waitpid(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Killed by this signal (`WTERMSIG`).
    Signal(libc::c_int),
    /// Exited with this status (`WEXITSTATUS`).
    Exit(libc::c_int),
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`, see
/// prctl(2)): a process orphaned below it becomes its child instead of
/// init's, for [`reap_within`] to reap.
///
/// # Caveats
///
/// The change is process-global and lasts until the process ends: a test
/// that calls this lives in a test file of its own (its own process).
///
/// # Panics
///
/// If `prctl` fails.
pub fn become_child_subreaper() {
    if let Err(e) = sys::set_child_subreaper() {
        panic!("prctl(PR_SET_CHILD_SUBREAPER): {e}");
    }
}

/// Waits up to `within` for `pid`, a child of this process (an orphan once
/// [`become_child_subreaper`] was called), to end, and reaps it: how it
/// ended, or `None` when it still ran at the deadline, in which case it is
/// SIGKILLed and reaped, so no test leaves it behind. Polls every 10 ms.
///
/// # Panics
///
/// If `pid` is no child of this process (`waitpid` fails).
pub fn reap_within(pid: u32, within: Duration) -> Option<Ended> {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    let deadline = Instant::now() + within;
    loop {
        match sys::try_reap(pid) {
            Ok(Some(ended)) => return Some(ended),
            Ok(None) => {}
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
        if Instant::now() > deadline {
            sys::kill_and_reap(pid);
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
