//! The OS calls of the subreaper (Linux): `prctl`, `waitpid`, `kill`. The
//! one module where `unsafe` is allowed.

use crate::Ended;
use std::io;

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphans below this process become its
/// children (prctl(2)).
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and changes
    // only an attribute of this process.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `waitpid(pid, WNOHANG)`: how our child `pid` ended, reaping it, or `None`
/// while it runs.
pub(crate) fn try_reap(pid: libc::pid_t) -> io::Result<Option<Ended>> {
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, a valid c_int we own.
    let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if reaped < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((reaped == pid).then(|| {
        if libc::WIFSIGNALED(status) {
            Ended::Signal(libc::WTERMSIG(status))
        } else {
            Ended::Exit(libc::WEXITSTATUS(status))
        }
    }))
}

/// SIGKILLs our child `pid` and reaps it, waiting as long as that takes
/// (SIGKILL cannot be caught: not long).
pub(crate) fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: kill only sends a signal; `pid` is our child, not yet reaped,
    // so the number cannot have been reused by another process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, a valid c_int we own.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}
