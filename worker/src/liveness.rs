//! A worker lives as long as its channel: when the pool hangs up its call
//! pipe (it shut the worker down, or its process died), an idle worker reads
//! the end and exits, and a busy one is killed at once with its process
//! group, so that nothing its task started outlives the pool.
//!
//! The channel, not the parent pid, is the judge: a wrapper program between
//! the pool and the worker (a shell script, `env`, `strace -f`) changes the
//! parent but not the channel. The parent-death signal (SIGHUP, see
//! `sys::die_with_parent`) backs it up for a pool whose write end leaked
//! into another process.
//!
//! A watchdog thread blocks in `poll` for the call pipe's hang-up. The serve
//! loop marks each call busy; the two meet Dekker-style on two flags (each
//! writes its own, then reads the other's, all `SeqCst`), so that either the
//! loop sees the hang-up before it starts a call, or the watchdog sees the
//! call and kills.

use crate::sys;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A call is running.
static BUSY: AtomicBool = AtomicBool::new(false);
/// The call pipe was hung up.
static HUNG_UP: AtomicBool = AtomicBool::new(false);

/// Marks a call as started; `false` (and nothing started) when the pool has
/// hung up already.
pub(crate) fn begin_call() -> bool {
    BUSY.store(true, Ordering::SeqCst);
    if HUNG_UP.load(Ordering::SeqCst) {
        BUSY.store(false, Ordering::SeqCst);
        return false;
    }
    true
}

/// Marks the running call as returned.
pub(crate) fn end_call() {
    BUSY.store(false, Ordering::SeqCst);
}

/// Starts the watchdog on the call pipe `calls`.
///
/// # Errors
/// When the fd cannot be duplicated or the thread cannot start.
pub(crate) fn watch(calls: &File) -> std::io::Result<()> {
    // Its own copy: the serve loop may drop `calls` while the watchdog polls.
    // A read end does not keep the pipe from hanging up.
    let fd = calls.as_fd().try_clone_to_owned()?;
    std::thread::Builder::new()
        .name("procpool-watchdog".into())
        .stack_size(64 << 10)
        .spawn(move || {
            if let Err(e) = sys::wait_for_hangup(fd.as_raw_fd()) {
                eprintln!("procpool worker: watching the call channel failed: {e}");
                return;
            }
            HUNG_UP.store(true, Ordering::SeqCst);
            if BUSY.load(Ordering::SeqCst) {
                sys::kill_own_group();
            }
        })?;
    Ok(())
}
