//! Starting a program with `posix_spawnp`: a new process group, the signal
//! mask and dispositions reset, the channel on fds 0 and 1, and every other
//! fd above 2 closed in the child, whether or not the host process left it
//! without close-on-exec (CPython's spawn closes them too).
//!
//! std's `Command` keeps the `posix_spawn` fast path only without a
//! `pre_exec` closure, and then cannot close inherited fds; glibc's
//! `posix_spawn_file_actions_addclosefrom_np` (2.34) can, without a `fork`.
//! It is looked up at run time, so that a binary built here still starts on
//! an older glibc: there, the worker closes them itself where it can
//! (`procpool_worker::serve_if_worker`).

use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

/// What to start: the program (looked up in `PATH` when it has no slash),
/// its arguments (the first is its name) and its whole environment.
pub(crate) struct SpawnSpec {
    pub(crate) program: CString,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    /// The directory it starts in; `None`: this process's.
    pub(crate) cwd: Option<CString>,
}

type AddClosefrom = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, c_int) -> c_int;
type AddChdir = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const c_char) -> c_int;

/// The address of the C function `name` in the loaded objects, if any.
fn lookup(name: &CStr) -> Option<*mut libc::c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT looks a name up in the loaded objects;
    // `name` is a NUL-terminated string that lives for the call.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!symbol.is_null()).then_some(symbol)
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34), if this glibc
/// has it.
fn addclosefrom() -> Option<AddClosefrom> {
    static FOUND: OnceLock<Option<AddClosefrom>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let symbol = lookup(c"posix_spawn_file_actions_addclosefrom_np")?;
        // SAFETY: the symbol is glibc's function of that name, whose C
        // signature is `int (posix_spawn_file_actions_t *, int)`, the type
        // transmuted to; a non-null data pointer from dlsym is its address.
        Some(unsafe { std::mem::transmute::<*mut libc::c_void, AddClosefrom>(symbol) })
    })
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29), if this glibc has
/// it.
fn addchdir() -> Option<AddChdir> {
    static FOUND: OnceLock<Option<AddChdir>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let symbol = lookup(c"posix_spawn_file_actions_addchdir_np")?;
        // SAFETY: the symbol is glibc's function of that name, whose C
        // signature is `int (posix_spawn_file_actions_t *, const char *)`,
        // the type transmuted to; a non-null pointer from dlsym is its
        // address.
        Some(unsafe { std::mem::transmute::<*mut libc::c_void, AddChdir>(symbol) })
    })
}

/// Whether children started here get only fds 0-2 and their channel.
pub(crate) fn closes_inherited_fds() -> bool {
    addclosefrom().is_some()
}

fn check(ret: c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The spawn attributes and file actions, destroyed on drop.
struct Recipe {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl Drop for Recipe {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `spawn` before the Recipe was
        // made, and are destroyed once, here.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

/// Starts `spec` with `stdin` on its fd 0 and `stdout` on its fd 1, in a
/// process group of its own; returns its pid. The child is ours to reap.
///
/// An exec that fails (no such program, not executable) is reported here:
/// glibc's `posix_spawn` waits for the exec.
pub(crate) fn spawn(spec: &SpawnSpec, stdin: &OwnedFd, stdout: &OwnedFd) -> io::Result<u32> {
    spawn_with_stderr(spec, stdin, stdout, None)
}

/// [`spawn`], with `stderr` (when given) on the child's fd 2 instead of
/// this process's.
pub(crate) fn spawn_with_stderr(
    spec: &SpawnSpec,
    stdin: &OwnedFd,
    stdout: &OwnedFd,
    stderr: Option<&OwnedFd>,
) -> io::Result<u32> {
    let mut argv: Vec<*mut c_char> = spec.argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut c_char> = spec.envp.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    // SAFETY: zeroed values are only storage for the init calls just below,
    // which fully initialise them; a failed init leaves nothing to destroy,
    // and the Recipe (which destroys them) is made only after both succeed.
    let mut recipe = unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check(libc::posix_spawnattr_init(&mut attr))?;
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut actions)) {
            libc::posix_spawnattr_destroy(&mut attr);
            return Err(e);
        }
        Recipe { attr, actions }
    };
    let flags =
        libc::POSIX_SPAWN_SETPGROUP | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
    // SAFETY: `recipe` holds initialised attributes and actions; the sigset
    // values live on this frame for the calls, which copy them. dup2 onto 0,
    // 1 (and 2) clears close-on-exec on the copies, so the child keeps exactly
    // its channel; closefrom(3) then drops every other inherited fd. The
    // directory is a CString of `spec` (copied by addchdir). The argv and
    // envp arrays are NULL-terminated and point into CStrings of
    // `spec`, which outlive the posix_spawnp call.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        check(libc::sigemptyset(&mut empty))?;
        let mut all: libc::sigset_t = std::mem::zeroed();
        check(libc::sigfillset(&mut all))?;
        check(libc::posix_spawnattr_setflags(
            &mut recipe.attr,
            flags as libc::c_short,
        ))?;
        check(libc::posix_spawnattr_setpgroup(&mut recipe.attr, 0))?;
        check(libc::posix_spawnattr_setsigmask(&mut recipe.attr, &empty))?;
        // Dispositions the host set to "ignore" (SIGPIPE, by Rust's runtime)
        // would survive the exec: every signal starts at its default.
        check(libc::posix_spawnattr_setsigdefault(&mut recipe.attr, &all))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut recipe.actions,
            stdin.as_raw_fd(),
            libc::STDIN_FILENO,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut recipe.actions,
            stdout.as_raw_fd(),
            libc::STDOUT_FILENO,
        ))?;
        if let Some(stderr) = stderr {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut recipe.actions,
                stderr.as_raw_fd(),
                libc::STDERR_FILENO,
            ))?;
        }
        if let Some(addclosefrom) = addclosefrom() {
            check(addclosefrom(&mut recipe.actions, 3))?;
        }
        if let Some(dir) = &spec.cwd {
            let addchdir = addchdir().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a working directory for workers needs glibc 2.29 \
                     (posix_spawn_file_actions_addchdir_np)",
                )
            })?;
            // The chdir runs in the child before the exec; a failure there
            // (no such directory) fails the spawn with its errno.
            check(addchdir(&mut recipe.actions, dir.as_ptr()))?;
        }
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawnp(
            &mut pid,
            spec.program.as_ptr(),
            &recipe.actions,
            &recipe.attr,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        u32::try_from(pid).map_err(|_| io::Error::other("posix_spawnp returned a negative pid"))
    }
}
