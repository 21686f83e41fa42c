//! The worker's OS calls (Linux): taking the channel off stdio, parent-death
//! signal, SIGINT and SIGTERM. The one module where `unsafe` is allowed.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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

/// Whether this process leads its own process group, so that killing the
/// group takes exactly this worker and what its tasks started.
static LEADS_GROUP: AtomicBool = AtomicBool::new(false);

/// Makes this process the leader of a process group of its own, unless it
/// is already (a pool starts it so; a wrapper program between the pool and
/// the worker may not have). Afterwards, [`kill_own_group`] kills only what
/// belongs to this worker.
pub(crate) fn lead_own_group() {
    // SAFETY: getpid and getpgid(0) have no preconditions and touch no
    // memory; setpgid(0, 0) changes only this process's own group.
    let leads = unsafe { libc::getpgid(0) == libc::getpid() || libc::setpgid(0, 0) == 0 };
    LEADS_GROUP.store(leads, Ordering::Relaxed);
}

/// SIGTERMs this worker's process group (this process, whose handler sets
/// the stop flag, and what its task started), or only this process where
/// it could not lead a group of its own.
pub(crate) fn terminate_own_group() {
    // SAFETY: kill takes two integers and touches no memory; getpid cannot
    // fail. kill(0, ..) reaches this process's group, which it leads.
    unsafe {
        if LEADS_GROUP.load(Ordering::Relaxed) {
            libc::kill(0, libc::SIGTERM);
        } else {
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
    }
}

/// SIGKILLs this worker's process group (this process and what its tasks
/// started), or only this process where it could not lead a group of its
/// own. Async-signal-safe: an atomic load and `kill`.
pub(crate) fn kill_own_group() {
    // SAFETY: kill takes two integers and touches no memory; getpid cannot
    // fail. kill(0, ..) reaches this process's group, which it leads.
    unsafe {
        if LEADS_GROUP.load(Ordering::Relaxed) {
            libc::kill(0, libc::SIGKILL);
        }
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// Asks the kernel to send SIGHUP to this process when its parent thread
/// exits; the handler ([`install_signal_handlers`]) kills the worker's
/// process group, so that a dead pool takes its tasks' processes too, not
/// only the worker (a SIGKILL here would kill the worker alone).
pub(crate) fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only
    // this process's own attribute.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGHUP as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// The fork server's parent-death signal: SIGKILL, for it alone.
pub(crate) fn die_with_parent_plainly() -> io::Result<()> {
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
    })
    .map(drop)
}

/// The signal the result pipe raises (see `liveness`). SIGURG: ignored by
/// default, so that if a task resets its handler, a drained pipe is not a
/// death sentence; and nothing else in a worker asks for it (it comes from
/// sockets whose owner was set, out-of-band data).
pub(crate) const LIVENESS_SIGNAL: libc::c_int = libc::SIGURG;

/// `fcntl`'s command that picks the signal of signal-driven I/O (Linux's
/// `asm-generic/fcntl.h`; the libc crate does not export it).
const F_SETSIG: libc::c_int = 10;

/// The result pipe's write end, for [`on_result_pipe_event`]; -1 before the
/// watch starts.
static WATCHED_RESULTS: AtomicI32 = AtomicI32::new(-1);

/// Whether the write end `fd` of the result channel has no reader left:
/// `poll` asked for no event reports POLLERR then for a pipe (pipe(7)),
/// POLLHUP for a socket or a terminal whose other end closed (a launcher's
/// channel may be either), and nothing while a reader is there. POLLNVAL (a
/// closed fd, whose number may be reused) is not taken for an end.
/// Async-signal-safe.
fn no_reader_left(fd: RawFd) -> bool {
    let mut fds = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: poll reads and writes exactly the one pollfd we pass, which
    // lives on this stack frame for the call; a zero timeout never blocks.
    let ready = unsafe { libc::poll(&mut fds, 1, 0) };
    ready > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// [`LIVENESS_SIGNAL`]: the result pipe lost its last reader, or was
/// drained after it was full. Async-signal-safe: an atomic load, `poll`,
/// `kill`; `errno` is kept for the code it interrupted.
extern "C" fn on_result_pipe_event(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: __errno_location returns this thread's errno, valid for the
    // thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above; read here and written back below on this thread.
    let saved = unsafe { *errno };
    let fd = WATCHED_RESULTS.load(Ordering::Relaxed);
    if fd >= 0 && no_reader_left(fd) {
        kill_own_group();
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// Kills this process's group as soon as the write end `fd` of a pipe has
/// no reader left, busy or idle, through signal-driven I/O on `fd` (see
/// `liveness`); at once if it has none already. `fd` must stay open for the
/// rest of the process's life.
pub(crate) fn kill_group_when_no_reader(fd: RawFd) -> io::Result<()> {
    WATCHED_RESULTS.store(fd, Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value and
    // the handler stored in it is async-signal-safe; the fcntl calls take
    // integers only and change flags of an fd this process owns.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_result_pipe_event
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        check(libc::sigemptyset(&mut action.sa_mask))?;
        check(libc::sigaction(
            LIVENESS_SIGNAL,
            &action,
            std::ptr::null_mut(),
        ))?;
        check(libc::fcntl(fd, libc::F_SETOWN, libc::getpid()))?;
        check(libc::fcntl(fd, F_SETSIG, LIVENESS_SIGNAL))?;
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_ASYNC))?;
    }
    // A reader that left before the watch began raises no signal.
    if no_reader_left(fd) {
        kill_own_group();
    }
    Ok(())
}

/// Closes every fd above 2, whatever it is: what a wrapper program or an
/// old C library leaked into this worker without close-on-exec. Best
/// effort; only for a process that owns no fd above 2 yet (a worker before
/// it builds its registry).
pub(crate) fn close_inherited_fds() {
    // SAFETY: close_range closes fds and touches no memory of ours; the
    // caller owns nothing above fd 2, so no Rust object loses its fd.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if ret == 0 {
        return;
    }
    // Before Linux 5.9: the fds this process has, one by one.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: as above; the directory's own fd is closed already (the
        // iterator was dropped), so a failing close is only EBADF.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Async-signal-safe: one atomic store.
extern "C" fn on_sigterm(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::Relaxed);
}

/// The parent-death signal: the pool is gone. Async-signal-safe (see
/// [`kill_own_group`]).
extern "C" fn on_parent_death(_signal: libc::c_int) {
    kill_own_group();
}

/// SIGINT ignored (a terminal's Ctrl-C is the parent's to judge), SIGTERM
/// turned into the stop flag, SIGHUP (the parent-death signal) kills the
/// worker's group. No other handler is installed.
pub(crate) fn install_signal_handlers() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value, and
    // the handlers stored in it are async-signal-safe (an atomic store; an
    // atomic load and kill).
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        check(libc::sigaction(libc::SIGINT, &ignore, std::ptr::null_mut()))?;
        let mut term: libc::sigaction = std::mem::zeroed();
        term.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        term.sa_flags = libc::SA_RESTART;
        check(libc::sigemptyset(&mut term.sa_mask))?;
        check(libc::sigaction(libc::SIGTERM, &term, std::ptr::null_mut()))?;
        let mut hup: libc::sigaction = std::mem::zeroed();
        hup.sa_sigaction = on_parent_death as extern "C" fn(libc::c_int) as libc::sighandler_t;
        check(libc::sigemptyset(&mut hup.sa_mask))?;
        check(libc::sigaction(libc::SIGHUP, &hup, std::ptr::null_mut()))?;
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

// ------------------------------------------------------------ fork server

/// The fork server's socket, taken off stdin like the worker's channel
/// (fd 0 then reads `/dev/null`, fd 1 writes to stderr).
pub(crate) fn take_forkserver_socket() -> io::Result<File> {
    let (socket, _stdout) = take_stdio_channel()?;
    Ok(socket)
}

/// One fork request: its serial number and the new worker's channel (call
/// pipe read end, result pipe write end). `None` at the end of the socket.
pub(crate) fn receive_fork_request(socket: &File) -> io::Result<Option<(u64, File, File)>> {
    use std::os::fd::AsRawFd;
    let mut serial = [0u8; 8];
    // Room for two fds' control message, 8-byte aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: serial.as_mut_ptr().cast(),
        iov_len: serial.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message; the pointers set
    // below point at `iov`, `serial` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let received = loop {
        // SAFETY: recvmsg writes at most iov_len bytes into `serial` and at
        // most msg_controllen bytes into `control`, both valid for writes.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    // Take ownership of every fd that arrived before judging the message, so
    // that none leaks whatever it holds.
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: msg was filled in by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR walk
    // the control buffer within msg_controllen, and each SCM_RIGHTS payload
    // holds (cmsg_len - CMSG_LEN(0)) / 4 fds that the kernel just installed
    // in this process, owned by nobody else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if received == 0 && fds.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    if received != 8 || msg.msg_flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0 {
        return Err(bad("a fork request that is not 8 bytes"));
    }
    let mut fds = fds.into_iter();
    let (Some(calls), Some(results), None) = (fds.next(), fds.next(), fds.next()) else {
        return Err(bad("a fork request without exactly two fds"));
    };
    Ok(Some((
        u64::from_le_bytes(serial),
        File::from(calls),
        File::from(results),
    )))
}

/// Forks this (single-threaded) process as a sibling: the child's parent is
/// this process's parent (`CLONE_PARENT`), which can then reap it and watch
/// it with a pidfd as if it had spawned it. `Ok(None)` in the child,
/// `Ok(Some(pid))` here.
pub(crate) fn fork_sibling() -> io::Result<Option<u32>> {
    // SAFETY: a raw clone without CLONE_VM is a fork: the child gets a copy
    // of the address space and continues on a copy of this stack. Only the
    // fork server calls it, which has a single thread, so no lock can be held
    // by a thread that does not exist in the child. glibc's raise() asks the
    // kernel for the caller's tid, so abort() in the child signals the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PARENT | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => u32::try_from(pid)
            .map(Some)
            .map_err(|_| io::Error::other("clone returned a pid out of range")),
    }
}

/// Puts `pid` (0: this process) in a process group of its own. The fork
/// server and the child both call it, so that it holds before either goes
/// on, as a shell does for its jobs.
pub(crate) fn own_process_group(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: setpgid only reads its two integer arguments.
    check(unsafe { libc::setpgid(pid, pid) }).map(drop)
}

/// The threads of this process (from `/proc/self/task`): a fork server must
/// have only one.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// SIGINT ignored, as in a worker; the fork server keeps SIGTERM's default.
pub(crate) fn ignore_sigint() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with SIG_IGN is a valid disposition.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        check(libc::sigaction(libc::SIGINT, &ignore, std::ptr::null_mut()))?;
    }
    Ok(())
}
