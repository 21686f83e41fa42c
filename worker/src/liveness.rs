//! A worker lives as long as its pool listens: when nobody can read its
//! results any more (the pool's process died, or the pool gave up on this
//! worker and closed the pipe), it kills its process group at once, busy or
//! idle, so that nothing its task started outlives the pool.
//!
//! The channel, not the parent pid, is the judge: a wrapper program between
//! the pool and the worker (a shell script, `env`, `strace -f`) changes the
//! parent but not the channel. The end of the *call* pipe is not a sign of
//! death: it means "no more calls", and the worker answers what it has and
//! exits 0 (the pool's way to retire a worker). The parent-death signal
//! (SIGHUP, see `sys::die_with_parent`) backs the watchdog up.
//!
//! A watchdog thread blocks in `poll` on the result pipe's write end, which
//! reports an error once the pipe has no reader left (pipe(7)).

use crate::sys;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

/// Starts the watchdog on the result pipe `results`.
///
/// # Errors
/// When the fd cannot be duplicated or the thread cannot start.
pub(crate) fn watch(results: &File) -> std::io::Result<()> {
    // Its own copy: the serve loop drops `results` when it ends, while the
    // watchdog may still poll. A second writer changes nothing for readers.
    let fd = results.as_fd().try_clone_to_owned()?;
    std::thread::Builder::new()
        .name("procpool-watchdog".into())
        .stack_size(64 << 10)
        .spawn(move || match sys::wait_for_no_reader(fd.as_raw_fd()) {
            Ok(()) => sys::kill_own_group(),
            Err(e) => eprintln!("procpool worker: watching the result channel failed: {e}"),
        })?;
    Ok(())
}
