//! Linux: pidfd_open / pidfd_send_signal, kill(-pgid), F_SETPIPE_SZ.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `pidfd_open` has failed with ENOSYS, so later spawns skip it.
/// Under the `procpool_force_no_pidfd` cfg it starts set, which lets CI run
/// the EOF-sentinel path on a kernel that has pidfds.
static NO_PIDFD: AtomicBool = AtomicBool::new(cfg!(procpool_force_no_pidfd));

/// An fd that refers to one process: readable once it has exited.
#[derive(Debug)]
pub(crate) struct Pidfd(OwnedFd);

impl Pidfd {
    /// A pidfd for `pid`, or `None` where the kernel has none (before 5.3).
    ///
    /// `pid` must be an unreaped child of this process, so that it cannot
    /// have been recycled.
    pub(crate) fn open(pid: u32) -> io::Result<Option<Self>> {
        if NO_PIDFD.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let pid = libc::pid_t::try_from(pid)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
        // it touches no memory of ours. PIDFD_NONBLOCK is not needed: the fd
        // is only polled, never read.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOSYS) {
                NO_PIDFD.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            return Err(err);
        }
        let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: the kernel just returned this fd (with O_CLOEXEC, which
        // pidfd_open always sets), and nothing else owns it.
        Ok(Some(Self(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Sends `signal` to the process, never to a recycled pid.
    pub(crate) fn send_signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal reads no memory when `info` is null; the
        // fd is valid for the life of `self`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Sends `signal` to every process in the group led by `leader`.
///
/// Safe from pid recycling as long as the leader has not been reaped: a
/// process group id stays taken while its leader, zombie or not, exists.
pub(crate) fn signal_group(leader: u32, signal: i32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(leader)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(-pgid, signal) } == -1 {
        let err = io::Error::last_os_error();
        // ESRCH: the whole group is gone already, which is what we wanted.
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

/// Asks for a pipe buffer of `bytes` (best effort: the kernel caps it at
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default, for unprivileged users).
/// A big buffer halves the wake-ups per megabyte of payload.
pub(crate) fn grow_pipe(fd: &impl AsRawFd, bytes: usize) {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl(F_SETPIPE_SZ) takes an integer; on failure (EPERM over
    // the cap, EBUSY) the pipe keeps its size, which is fine.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes);
    }
}

/// A timerfd: an fd that turns readable when its deadline passes, so the
/// poll wakes at the deadline to the microsecond rather than at the next
/// whole millisecond (what an epoll timeout can express).
#[derive(Debug)]
pub(crate) struct TimerFd(OwnedFd);

impl TimerFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes a clock id and flags and returns a new
        // fd or -1; it touches no memory of ours.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Arms the timer to fire once after `after` (disarms it for `None`).
    pub(crate) fn set(&self, after: Option<std::time::Duration>) -> io::Result<()> {
        let value = match after {
            // A zero it_value disarms: fire after a nanosecond instead.
            Some(d) => libc::timespec {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(d.subsec_nanos().max(u32::from(d.is_zero()))),
            },
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: timerfd_settime reads the itimerspec we pass, which lives on
        // this stack frame, and writes nothing (old value pointer is null).
        let ret =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Clears a fired timer's readiness.
    pub(crate) fn drain(&self) {
        let mut expirations = [0u8; 8];
        // SAFETY: read writes at most 8 bytes into the 8-byte buffer; a
        // non-blocking timerfd that has not fired returns EAGAIN, ignored.
        unsafe {
            libc::read(
                self.0.as_raw_fd(),
                expirations.as_mut_ptr().cast::<libc::c_void>(),
                expirations.len(),
            );
        }
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Waits for `pid`, a child of this process (blocking, or not with
/// `block == false`: `Ok(None)` while it runs).
pub(crate) fn wait_child(pid: u32, block: bool) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let flags = if block { 0 } else { libc::WNOHANG };
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid writes one int into `status`, which lives on this
        // frame; `pid` is a child of ours, not yet reaped.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        match ret {
            0 => return Ok(None),
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            _ => return Ok(Some(std::process::ExitStatus::from_raw(status))),
        }
    }
}

/// Whether `pid` is a child of this process (running or exited, not yet
/// reaped), without reaping it.
pub(crate) fn is_child(pid: u32) -> bool {
    let pid: libc::id_t = pid;
    // SAFETY: waitid writes one siginfo_t into `info`, which lives on this
    // frame; WNOWAIT leaves the child waitable, WNOHANG never blocks.
    let ret = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    ret == 0
}

/// Whether process `pid` is exiting (or has exited): the kernel sets
/// `PF_EXITING` in its flags before it closes the process's fds, so a pipe
/// end that closed because its process is dying shows it. `None` when
/// `/proc` cannot tell. One field of `/proc/PID/stat` is all it needs: a
/// crate for the whole of `/proc` would not earn its place in the library.
pub(crate) fn is_exiting(pid: u32) -> Option<bool> {
    /// `PF_EXITING`, from the kernel's `include/linux/sched.h`.
    const PF_EXITING: u64 = 0x4;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": the name
    // may hold anything, so fields are counted from its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let flags: u64 = fields.nth(5)?.parse().ok()?;
    Some(flags & PF_EXITING != 0 || matches!(state, "Z" | "X" | "x"))
}

/// Whether process `pid` has an fd on the same pipe as our `fd` (their
/// `/proc` links name the same pipe inode).
pub(crate) fn holds_same_pipe(pid: u32, fd: &OwnedFd) -> bool {
    let Ok(ours) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return false;
    };
    let Ok(theirs) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    theirs
        .flatten()
        .any(|entry| std::fs::read_link(entry.path()).is_ok_and(|link| link == ours))
}

/// Waits up to `timeout` for `fd` to be readable (or at its end).
pub(crate) fn readable_within(fd: &impl AsRawFd, timeout: std::time::Duration) -> bool {
    let mut fds = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes exactly the one pollfd we pass, which
    // lives on this stack frame for the call.
    unsafe { libc::poll(&mut fds, 1, ms) > 0 }
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we pass, valid for writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just opened both fds; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends a fork server one request: `serial` and the two fds (see
/// `procpool_ipc::env::FORKSERVER`).
pub(crate) fn send_fork_request(
    socket: &impl AsRawFd,
    serial: u64,
    fds: [&OwnedFd; 2],
) -> io::Result<()> {
    let serial = serial.to_le_bytes();
    let raw = [fds[0].as_raw_fd(), fds[1].as_raw_fd()];
    // Room for two fds' control message, 8-byte aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: serial.as_ptr().cast_mut().cast(),
        iov_len: serial.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message. The pointers set
    // below point at `iov`, `serial` and `control`, which outlive the call;
    // CMSG_SPACE(8) (two fds) is 24 bytes, within `control`'s 64, so the
    // header and data written through CMSG_FIRSTHDR/CMSG_DATA stay inside it.
    // sendmsg only reads the message.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of_val(&raw) as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&raw) as u32) as usize;
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of_val(&raw),
        );
        libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    match sent {
        -1 => Err(io::Error::last_os_error()),
        8 => Ok(()),
        _ => Err(io::Error::other("a fork request was cut short")),
    }
}
