//! The worker's OS calls (Linux): taking the channel off stdio, parent-death
//! signal, SIGINT and SIGTERM. The one module where `unsafe` is allowed.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The spin budget the parent gave with the call being served, in
/// microseconds: how long [`SpinningReader`] waits for the next call
/// before it blocks.
pub(crate) static NEXT_SPIN_US: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Set by the SIGTERM handler; read by [`crate::stop_requested`].
pub(crate) static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A close-on-exec duplicate of `fd`, numbered 3 or above.
fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads its integer arguments; an
    // invalid fd is reported as EBADF.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by fcntl, so it is open and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Moves the channel off fds 0 and 1: returns (calls in, results out) as
/// private close-on-exec files, then points fd 0 at `/dev/null` and fd 1 at
/// stderr, so that nothing a task prints or reads can touch the protocol.
pub(crate) fn take_stdio_channel() -> io::Result<(File, File)> {
    let calls = dup_cloexec(libc::STDIN_FILENO)?;
    let results = dup_cloexec(libc::STDOUT_FILENO)?;
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 on fds this process owns (std's `null`, and 0, 1, 2, which
    // std never closes); the old 0 and 1 are still reachable through the
    // duplicates above, so no Rust object loses its fd.
    unsafe {
        check(libc::dup2(
            std::os::fd::AsRawFd::as_raw_fd(&null),
            libc::STDIN_FILENO,
        ))?;
        check(libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO))?;
    }
    Ok((File::from(calls), File::from(results)))
}

/// Asks the kernel to SIGKILL this process when its parent thread exits,
/// then checks that the parent is still `expected_parent` (it may have died
/// before the request). Returns `false` when the parent is already gone.
pub(crate) fn die_with_parent(expected_parent: Option<u32>) -> io::Result<bool> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only
    // this process's own attribute.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    Ok(expected_parent.is_none_or(|p| i64::from(p) == i64::from(parent)))
}

/// Async-signal-safe: one atomic store.
extern "C" fn on_sigterm(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::Relaxed);
}

/// SIGINT ignored (a terminal's Ctrl-C is the parent's to judge), SIGTERM
/// turned into the stop flag. No other handler is installed.
pub(crate) fn install_signal_handlers() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value, and
    // the handler stored in it only performs an atomic store, which is
    // async-signal-safe.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        check(libc::sigaction(libc::SIGINT, &ignore, std::ptr::null_mut()))?;
        let mut term: libc::sigaction = std::mem::zeroed();
        term.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        term.sa_flags = libc::SA_RESTART;
        check(libc::sigemptyset(&mut term.sa_mask))?;
        check(libc::sigaction(libc::SIGTERM, &term, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// A reader over the call channel that, before each blocking `read`, spins
/// for up to the budget of the last call ([`NEXT_SPIN_US`]) waiting for bytes: `poll` with a zero timeout and a
/// `sched_yield` per round. A call that follows its predecessor within the
/// budget is then picked up without the cost of a sleep and a cross-CPU
/// wake-up; yielding keeps the spin from taking the CPU the parent needs.
pub(crate) struct SpinningReader {
    pub(crate) file: File,
}

impl SpinningReader {
    fn readable_now(&self) -> bool {
        let mut fds = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.file),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes exactly the one pollfd we pass, which
        // lives on this stack frame for the call.
        let ready = unsafe { libc::poll(&mut fds, 1, 0) };
        ready != 0
    }
}

impl io::Read for SpinningReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let spin_us = NEXT_SPIN_US.swap(0, Ordering::Relaxed);
        if spin_us > 0 {
            let end =
                std::time::Instant::now() + std::time::Duration::from_micros(u64::from(spin_us));
            while !self.readable_now() && std::time::Instant::now() < end {
                std::thread::yield_now();
            }
        }
        self.file.read(buf)
    }
}
