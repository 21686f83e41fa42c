//! A worker's memory: the resident-set check after each call (the pool's
//! `max_memory_per_child`), the address-space limit (`RLIMIT_AS`, the
//! pool's hard cap), and the report of an allocation that failed.
//!
//! When an allocation fails, Rust's allocation-error handler prints
//! "memory allocation of N bytes failed" and aborts: to the pool that is a
//! SIGABRT like any other. A SIGABRT handler tells it apart, and writes a
//! pre-encoded `Aborting(OutOfMemory)` frame to the result channel before
//! the process dies, so that the call it ran fails with "out of memory".
//! The frame is written only between frames (see [`FrameInProgress`]):
//! never inside another one.
//!
//! Telling it apart: `errno` is `ENOMEM` after the failed `mmap`, but the
//! handler may print a backtrace first (`RUST_BACKTRACE`), whose look for
//! debug files leaves `ENOENT`. So on the main thread, where tasks run and
//! whose stack bounds are known, the handler looks for what is certain: a
//! return address into `std::alloc::handle_alloc_error` on the stack
//! between itself and the stack's top (the abort came from inside it).
//! Elsewhere, `errno` decides.

use procpool_ipc::{AbortCause, FrameWriter, FromWorker};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The `Aborting(OutOfMemory)` frame, encoded once before any call runs.
static OOM_FRAME: OnceLock<Vec<u8>> = OnceLock::new();
/// The result channel's fd, for the SIGABRT handler; -1 until installed.
static RESULT_FD: AtomicI32 = AtomicI32::new(-1);
/// Set while the serve loop writes a frame: a report written then would
/// land inside it.
static WRITING_FRAME: AtomicBool = AtomicBool::new(false);
/// The top of the main thread's stack (its highest address), 0 if unknown.
static MAIN_STACK_TOP: AtomicUsize = AtomicUsize::new(0);
/// Where `std::alloc::handle_alloc_error`'s code starts.
static ALLOC_ERROR_FN: AtomicUsize = AtomicUsize::new(0);

/// A return address this far past `handle_alloc_error`'s start lies in
/// it (its body is a call or two: 19 bytes in, seen in debug and release
/// builds of Rust 1.95).
const ALLOC_ERROR_FN_LEN: usize = 256;
/// How much of the stack above the handler is searched (the abort's frames
/// and the signal frame take a few KiB).
const STACK_SEARCHED: usize = 256 << 10;

/// Marks the result channel as mid-frame while it lives.
pub(crate) struct FrameInProgress(());

impl FrameInProgress {
    pub(crate) fn start() -> Self {
        WRITING_FRAME.store(true, Ordering::Release);
        Self(())
    }
}

impl Drop for FrameInProgress {
    fn drop(&mut self) {
        WRITING_FRAME.store(false, Ordering::Release);
    }
}

/// This process's resident set, in bytes, when it is over `ceiling`;
/// `None` when it is not (or cannot be read).
///
/// The peak resident set (`getrusage`, a cheap call) is asked first: while
/// even the peak is under the ceiling, so is the current one, and
/// `/proc/self/statm` is not read.
pub(crate) fn resident_over(ceiling: u64) -> Option<u64> {
    // SAFETY: a zeroed rusage is valid storage that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
        let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
        if peak <= ceiling {
            return None;
        }
    }
    let resident = resident_bytes()?;
    (resident > ceiling).then_some(resident)
}

/// The current resident set from `/proc/self/statm` (its second field, in
/// pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf takes an integer and touches no memory.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

/// Limits this process's address space to `bytes` (`RLIMIT_AS`, soft and
/// hard): an allocation past it fails, where without it the kernel's OOM
/// killer would SIGKILL some process later.
pub(crate) fn limit_address_space(bytes: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the rlimit value, which lives for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this thread is aborting from inside Rust's allocation-error
/// path: a return address into `handle_alloc_error` between this frame and
/// the top of the stack. Only on the main thread (the only one whose stack
/// bounds are known); async-signal-safe (loads and reads of the stack).
fn aborting_from_alloc_error() -> bool {
    let (top, function) = (
        MAIN_STACK_TOP.load(Ordering::Acquire),
        ALLOC_ERROR_FN.load(Ordering::Acquire),
    );
    // SAFETY: getpid and gettid take no arguments and touch no memory.
    let main_thread = unsafe { libc::getpid() == libc::gettid() };
    if top == 0 || function == 0 || !main_thread {
        return false;
    }
    let here = 0usize;
    let mut at = (std::ptr::addr_of!(here) as usize + 7) & !7;
    let end = top.min(at.saturating_add(STACK_SEARCHED));
    while at + 8 <= end {
        // SAFETY: [here, top) is this thread's stack in use (it grows down
        // from `top`, and `here` is in the current frame), so every aligned
        // word in it is mapped and readable.
        let word = unsafe { std::ptr::read_volatile(at as *const usize) };
        if word > function && word - function < ALLOC_ERROR_FN_LEN {
            return true;
        }
        at += 8;
    }
    false
}

extern "C" fn on_abort(_signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, readable from a
    // handler (which runs on the thread that called abort).
    let errno = unsafe { *libc::__errno_location() };
    if WRITING_FRAME.load(Ordering::Acquire)
        || !(errno == libc::ENOMEM || aborting_from_alloc_error())
    {
        return;
    }
    let fd = RESULT_FD.load(Ordering::Acquire);
    if let (Some(frame), true) = (OOM_FRAME.get(), fd >= 0) {
        // SAFETY: write(2) is async-signal-safe; the frame is a Vec that
        // lives in a static for the rest of the process. A short write
        // (a full pipe) leaves half a frame, which the pool reports as a
        // cut-off frame of a worker that died: what it was anyway.
        unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    }
    // Returning lets abort(3) go on: it restores the default action and
    // raises SIGABRT again, so the process still dies by it.
}

/// The top of this thread's stack (its highest address).
fn stack_top() -> Option<usize> {
    // SAFETY: a zeroed pthread_attr_t is storage that pthread_getattr_np
    // initialises; it is destroyed below once read. The out-pointers are
    // live locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let (mut base, mut size) = (std::ptr::null_mut(), 0usize);
        let found = libc::pthread_attr_getstack(&attr, &mut base, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        found.then(|| base as usize + size)
    }
}

/// Reports an allocation failure on `results` before the process aborts.
/// Called on the thread that runs the tasks (the main thread).
pub(crate) fn report_allocation_failures(results: &impl AsRawFd) -> io::Result<()> {
    let mut writer = FrameWriter::new(Vec::new());
    writer.send(&FromWorker::Aborting(AbortCause::OutOfMemory))?;
    let _ = OOM_FRAME.set(writer.get_ref().clone());
    RESULT_FD.store(results.as_raw_fd(), Ordering::Release);
    MAIN_STACK_TOP.store(stack_top().unwrap_or(0), Ordering::Release);
    let handle_alloc_error: fn(std::alloc::Layout) -> ! = std::alloc::handle_alloc_error;
    ALLOC_ERROR_FN.store(handle_alloc_error as usize, Ordering::Release);
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler is an extern "C" fn that only reads atomics and errno and
    // calls write(2), all async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_abort as extern "C" fn(libc::c_int) as libc::sighandler_t;
        if libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_and_compared() {
        assert_eq!(resident_over(u64::MAX), None);
        let resident = resident_over(1).expect("any process has more than a byte resident");
        assert!(resident > 4096, "{resident}");
    }
}
