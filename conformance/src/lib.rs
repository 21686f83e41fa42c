//! Tests only: CPython's executor behaviour (`shared/CPYTHON-CONTRACT.md`)
//! and procpool's failure matrix, run against real worker processes.
//!
//! ```text
//!  tests/*.rs  --Pool::builder().worker_program(procpool-test-worker)-->  procpool-test-worker
//!      |                                                                   (src/bin: serves
//!      +-- the `tasks` below, shared by both sides as typed Task consts      `registry()`)
//! ```
//!
//! The tasks are deliberately hostile where a test needs it: they panic,
//! exit, crash with a signal, fail to encode or decode, ignore SIGTERM, or
//! start processes of their own.

use procpool::{ByteBuf, Registry, Task};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The typed task handles both sides share.
pub mod tasks {
    use super::*;

    /// `x * x`.
    pub const SQUARE: Task<u64, u64> = Task::new("square");
    /// Does nothing.
    pub const NOOP: Task<(), ()> = Task::new("noop");
    /// The worker's pid.
    pub const GETPID: Task<(), u32> = Task::new("getpid");
    /// Sleeps this many milliseconds, then returns the worker's pid.
    pub const SLEEP_MS: Task<u64, u32> = Task::new("sleep_ms");
    /// Returns its bytes.
    pub const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
    /// That many bytes.
    pub const BIG_OUTPUT: Task<u64, ByteBuf> = Task::new("big_output");
    /// Panics with the message.
    pub const PANIC: Task<String, ()> = Task::new("panic");
    /// `Err` for multiples of 3, else `Ok(x)`: an error value is an output.
    pub const FAIL_EVERY_THIRD: Task<u64, Result<u64, String>> = Task::new("fail_every_third");
    /// Panics on multiples of 3, else `x * x`.
    pub const PANIC_EVERY_THIRD: Task<u64, u64> = Task::new("panic_every_third");
    /// Exits the worker process with this code.
    pub const EXIT: Task<i32, ()> = Task::new("exit");
    /// Crashes the worker with SIGSEGV.
    pub const SEGFAULT: Task<(), ()> = Task::new("segfault");
    /// SIGKILLs its own worker.
    pub const KILL_SELF: Task<(), ()> = Task::new("kill_self");
    /// Its output cannot be encoded.
    pub const UNENCODABLE_OUTPUT: Task<(), Unencodable> = Task::new("unencodable_output");
    /// Its arguments cannot be decoded in the worker.
    pub const UNDECODABLE_ARGS: Task<Undecodable, ()> = Task::new("undecodable_args");
    /// The worker exits (code 1) while decoding its arguments.
    pub const EXIT_DECODING_ARGS: Task<ExitOnDecode, ()> = Task::new("exit_decoding_args");
    /// The worker aborts while encoding its output.
    pub const ABORT_ENCODING_OUTPUT: Task<(), AbortOnEncode> = Task::new("abort_encoding_output");
    /// The worker sends a string; this side expects a `u64`: the parent
    /// cannot decode the output.
    pub const WRONG_OUTPUT_TYPE: Task<(), u64> = Task::new("wrong_output_type");
    /// No worker registers it.
    pub const UNKNOWN: Task<(), ()> = Task::new("no_such_task");
    /// Writes `<marker>.started`, then polls `stop_requested` every 5 ms for
    /// up to `max_ms`; when asked to stop, writes the marker file and returns
    /// `true`.
    pub const COOPERATIVE: Task<(String, u64), bool> = Task::new("cooperative");
    /// Sleeps `secs` seconds and ignores SIGTERM's flag.
    pub const STUBBORN: Task<u64, ()> = Task::new("stubborn");
    /// Starts `sleep <secs>` as a child, writes its pid to the file, then
    /// sleeps as long itself.
    pub const WITH_GRANDCHILD: Task<(String, u64), ()> = Task::new("with_grandchild");
    /// Writes its CLOCK_MONOTONIC start time (ns) to the file, then sleeps.
    pub const STAMPED_SLEEP: Task<(String, u64), ()> = Task::new("stamped_sleep");
    /// Prints a lot to stdout and returns its argument.
    pub const PRINT: Task<String, String> = Task::new("print");
    /// Initializer: counts its runs; `Err` when asked to fail.
    pub const INIT: Task<bool, Result<(), String>> = Task::new("init");
    /// Initializer that panics.
    pub const INIT_PANIC: Task<(), ()> = Task::new("init_panic");
    /// How often `INIT` ran in this worker.
    pub const INIT_COUNT: Task<(), u32> = Task::new("init_count");
    /// Writes the worker's pid to the file, sleeps this many milliseconds,
    /// returns the pid: lets a test find (and kill) the process running it.
    pub const PID_FILE_SLEEP: Task<(String, u64), u32> = Task::new("pid_file_sleep");
    /// Its arguments cannot be encoded in the parent: nothing is ever sent.
    pub const UNENCODABLE_ARGS: Task<Unencodable, ()> = Task::new("unencodable_args");
    /// Sleeps this many milliseconds, then crashes the worker with SIGSEGV
    /// (CPython's `_crash(delay)`).
    pub const CRASH_AFTER_MS: Task<u64, ()> = Task::new("crash_after_ms");
    /// SIGKILLs its worker, whatever the (large) arguments it was sent
    /// (CPython's `_crash_with_data`).
    pub const CRASH_WITH_DATA: Task<ByteBuf, ()> = Task::new("crash_with_data");
    /// Starts `sleep` as a child, writes "WORKER_PID CHILD_PID" to the file,
    /// then sleeps this many milliseconds.
    pub const PIDS_FILE_WITH_CHILD: Task<(String, u64), ()> = Task::new("pids_file_with_child");
    /// Runs the worker program as a plain subprocess in `--app` mode (an
    /// application whose `main` calls `serve_if_worker` first) and returns
    /// what it printed.
    pub const RUN_APP: Task<(), String> = Task::new("run_app");
    /// Builds a pool of its own (one worker of this program) and returns
    /// `square(x)` from it.
    pub const NESTED_POOL: Task<u64, u64> = Task::new("nested_pool");
    /// What the worker's open fds refer to (`/proc/self/fd` link targets).
    pub const OPEN_FDS: Task<(), Vec<String>> = Task::new("open_fds");
    /// The same for a subprocess the task starts (this program with
    /// `--list-fds`).
    pub const CHILD_OPEN_FDS: Task<(), Vec<String>> = Task::new("child_open_fds");
    /// Writes the worker's pid to `marker`, then waits until the file `gate`
    /// exists (120 s at most, then panics), and returns `value`: a task that
    /// blocks until the test lets it go (CPython's tasks blocked on a
    /// semaphore or an event).
    pub const GATED: Task<(String, String, u64), u64> = Task::new("gated");
    /// Sleeps `ms` milliseconds, then writes `text` to the file: a task still
    /// running when its program's `main` ends (CPython's `sleep_and_print`).
    pub const WRITE_AFTER_MS: Task<(String, u64, String), ()> = Task::new("write_after_ms");
    /// Sleeps `ms` milliseconds, then returns `value` (CPython's
    /// `_good_task_gh_132969`).
    pub const SLEEP_THEN_ECHO: Task<(u64, u64), u64> = Task::new("sleep_then_echo");
    /// `x + y`: a map over two inputs zipped (CPython's `map(add, a, b)`).
    pub const ADD: Task<(u64, u64), u64> = Task::new("add");
    /// The worker crashes with SIGSEGV while decoding its arguments
    /// (CPython's `CrashAtUnpickle` as an argument).
    pub const CRASH_DECODING_ARGS: Task<CrashOnDecode, ()> = Task::new("crash_decoding_args");
    /// The worker exits (code 1) while encoding its output (CPython's
    /// `ExitAtPickle` as a result).
    pub const EXIT_ENCODING_OUTPUT: Task<(), ExitOnEncode> = Task::new("exit_encoding_output");
    /// The worker sends `()`; this side's `Deserialize` of the output panics
    /// (the nearest Rust has to CPython's `ExitAtUnpickle` in the result
    /// handler: an `exit` there would end the test program itself).
    pub const PANIC_DECODING_OUTPUT: Task<(), PanicOnDecode> = Task::new("panic_decoding_output");
    /// Allocates `mib` MiB, touches every page and never frees them (a
    /// leak); returns the worker's pid.
    pub const LEAK_MIB: Task<u64, u32> = Task::new("leak_mib");
    /// Allocates `mib` MiB, touches them, frees them; returns how many
    /// bytes it had.
    pub const ALLOCATE_MIB: Task<u64, u64> = Task::new("allocate_mib");
    /// How many calls of this task the worker ran before this one: the
    /// order in which one worker ran them.
    pub const RUN_ORDER: Task<i32, u64> = Task::new("run_order");
    /// The worker's working directory, and the values of the variables
    /// named.
    pub const CWD_AND_ENV: Task<Vec<String>, (String, Vec<Option<String>>)> =
        Task::new("cwd_and_env");
}

/// What this process's open fds refer to, by fd number order.
pub fn open_fds() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<(u32, String)> = dir
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, format!("{fd} -> {}", target.display())))
        })
        .collect();
    fds.sort();
    fds.into_iter().map(|(_, link)| link).collect()
}

/// Runs this program as a plain subprocess with `mode` and returns what it
/// printed.
fn run_self(mode: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg(mode)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the program starts");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the worker program prints in `--app` mode, where `main` goes on.
pub const APP_RAN: &str = "the application's main ran";

static INIT_RUNS: AtomicU32 = AtomicU32::new(0);

/// Calls of `RUN_ORDER` this worker ran.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `mib` MiB allocated and written (so resident), kept from the optimiser.
fn touched(mib: u64) -> Vec<u8> {
    let len = usize::try_from(mib << 20).unwrap_or(usize::MAX);
    let mut bytes = std::hint::black_box(vec![0u8; len]);
    for page in bytes.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(bytes)
}

/// An output whose `Serialize` always fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "Unencodable refuses to be encoded",
        ))
    }
}

impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Self)
    }
}

/// Arguments that encode but whose `Deserialize` always fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable;

impl Serialize for Undecodable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Undecodable {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "Undecodable refuses to be decoded",
        ))
    }
}

/// Arguments whose decoding exits the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitOnDecode;

impl Serialize for ExitOnDecode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for ExitOnDecode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        std::process::exit(1)
    }
}

/// Arguments whose decoding crashes the process with SIGSEGV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashOnDecode;

impl Serialize for CrashOnDecode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for CrashOnDecode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        segfault()
    }
}

/// An output whose encoding exits the process with code 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitOnEncode;

impl Serialize for ExitOnEncode {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        std::process::exit(1)
    }
}

impl<'de> Deserialize<'de> for ExitOnEncode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Self)
    }
}

/// An output whose `Deserialize` panics (on the thread that reads the
/// result, in the pool's process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicOnDecode;

impl Serialize for PanicOnDecode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for PanicOnDecode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("PanicOnDecode refuses to be decoded")
    }
}

/// Crashes this process with SIGSEGV.
fn segfault() -> ! {
    // Rust's own SIGSEGV handler (stack-overflow detection) would swallow a
    // raised signal: restore the default first.
    // SAFETY: resetting a disposition and raising a signal at ourselves is
    // what the hostile tasks are for.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    unreachable!("SIGSEGV with its default action ends the process")
}

/// Waits until the file `path` exists, polling every 2 ms; panics after
/// 120 s (a test that never opens its gate must not leave a worker behind
/// for ever).
pub fn wait_for_file(path: &str) {
    let end = Instant::now() + Duration::from_secs(120);
    while !std::path::Path::new(path).exists() {
        assert!(Instant::now() < end, "the gate {path} never opened");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An output whose encoding aborts the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortOnEncode;

impl Serialize for AbortOnEncode {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        std::process::abort()
    }
}

impl<'de> Deserialize<'de> for AbortOnEncode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Self)
    }
}

fn pid() -> u32 {
    std::process::id()
}

/// CLOCK_MONOTONIC in nanoseconds, comparable across processes.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Every task above.
pub fn registry() -> Registry {
    use tasks::*;
    Registry::new()
        .with(SQUARE, |x| x * x)
        .with(NOOP, |()| ())
        .with(GETPID, |()| pid())
        .with(SLEEP_MS, |ms| {
            std::thread::sleep(Duration::from_millis(ms));
            pid()
        })
        .with(ECHO, |b| b)
        .with(BIG_OUTPUT, |n| {
            ByteBuf(vec![7; usize::try_from(n).unwrap_or(0)])
        })
        .with(PANIC, |message: String| panic!("{message}"))
        .with(FAIL_EVERY_THIRD, |x| {
            if x % 3 == 0 {
                Err(format!("{x} is a multiple of 3"))
            } else {
                Ok(x)
            }
        })
        .with(PANIC_EVERY_THIRD, |x| {
            assert!(x % 3 != 0, "{x} is a multiple of 3");
            x * x
        })
        .with(EXIT, |code| std::process::exit(code))
        .with(SEGFAULT, |()| {
            // Rust's own SIGSEGV handler (stack-overflow detection) would
            // swallow a raised signal: restore the default first.
            // SAFETY: resetting a disposition and raising a signal at
            // ourselves is what this task is for.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
        })
        .with(KILL_SELF, |()| {
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGKILL) };
        })
        .with(UNENCODABLE_OUTPUT, |()| Unencodable)
        .with(UNDECODABLE_ARGS, |Undecodable| ())
        .with(EXIT_DECODING_ARGS, |ExitOnDecode| ())
        .with(ABORT_ENCODING_OUTPUT, |()| AbortOnEncode)
        .with(Task::<(), String>::new("wrong_output_type"), |()| {
            "not a list of numbers".to_owned()
        })
        .with(COOPERATIVE, |(marker, max_ms): (String, u64)| {
            std::fs::write(format!("{marker}.started"), b"").expect("marker is writable");
            let end = Instant::now() + Duration::from_millis(max_ms);
            while Instant::now() < end {
                if procpool::stop_requested() {
                    std::fs::write(&marker, b"cleaned up").expect("marker is writable");
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        })
        .with(STUBBORN, |secs| {
            std::thread::sleep(Duration::from_secs(secs))
        })
        .with(WITH_GRANDCHILD, |(path, secs): (String, u64)| {
            let mut child = std::process::Command::new("sleep")
                .arg(secs.to_string())
                .spawn()
                .expect("sleep starts");
            std::fs::write(&path, child.id().to_string()).expect("pid file is writable");
            std::thread::sleep(Duration::from_secs(secs));
            let _ = child.wait();
        })
        .with(STAMPED_SLEEP, |(path, ms): (String, u64)| {
            std::fs::write(&path, monotonic_ns().to_string()).expect("stamp file is writable");
            std::thread::sleep(Duration::from_millis(ms));
        })
        .with(PRINT, |text: String| {
            for i in 0..1000 {
                println!("{i}: {text}");
            }
            text
        })
        .with_initializer(INIT, |fail| {
            INIT_RUNS.fetch_add(1, Ordering::SeqCst);
            if fail {
                Err("the initializer was told to fail".to_owned())
            } else {
                Ok(())
            }
        })
        .with(INIT_PANIC, |()| panic!("the initializer panicked"))
        .with(INIT_COUNT, |()| INIT_RUNS.load(Ordering::SeqCst))
        .with(PID_FILE_SLEEP, |(path, ms): (String, u64)| {
            std::fs::write(&path, pid().to_string()).expect("pid file is writable");
            std::thread::sleep(Duration::from_millis(ms));
            pid()
        })
        .with(UNENCODABLE_ARGS, |Unencodable| ())
        .with(CRASH_AFTER_MS, |ms| {
            std::thread::sleep(Duration::from_millis(ms));
            // SAFETY: as for SEGFAULT.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
        })
        .with(CRASH_WITH_DATA, |_data| {
            // SAFETY: as for KILL_SELF.
            unsafe { libc::raise(libc::SIGKILL) };
        })
        .with(PIDS_FILE_WITH_CHILD, |(path, ms): (String, u64)| {
            let mut child = std::process::Command::new("sleep")
                .arg((ms / 1000 + 1).to_string())
                .spawn()
                .expect("sleep starts");
            let pids = format!("{} {}", pid(), child.id());
            std::fs::write(&path, pids).expect("pid file is writable");
            std::thread::sleep(Duration::from_millis(ms));
            let _ = child.wait();
        })
        .with(RUN_APP, |()| run_self("--app"))
        .with(NESTED_POOL, |x| {
            let pool = procpool::Pool::builder()
                .max_workers(1)
                .worker_program(std::env::current_exe().expect("own path"))
                .build()
                .expect("a nested pool starts");
            let result = pool
                .submit(SQUARE, x)
                .and_then(|f| f.result(Some(Duration::from_secs(60))));
            result.expect("the nested pool answers")
        })
        .with(GATED, |(marker, gate, value): (String, String, u64)| {
            std::fs::write(&marker, pid().to_string()).expect("marker is writable");
            wait_for_file(&gate);
            value
        })
        .with(WRITE_AFTER_MS, |(path, ms, text): (String, u64, String)| {
            std::thread::sleep(Duration::from_millis(ms));
            std::fs::write(&path, text).expect("the file is writable");
        })
        .with(SLEEP_THEN_ECHO, |(ms, value): (u64, u64)| {
            std::thread::sleep(Duration::from_millis(ms));
            value
        })
        .with(ADD, |(x, y): (u64, u64)| x + y)
        .with(CRASH_DECODING_ARGS, |CrashOnDecode| ())
        .with(EXIT_ENCODING_OUTPUT, |()| ExitOnEncode)
        .with(Task::<(), ()>::new("panic_decoding_output"), |()| ())
        .with(LEAK_MIB, |mib| {
            std::mem::forget(touched(mib));
            pid()
        })
        .with(ALLOCATE_MIB, |mib| touched(mib).len() as u64)
        .with(RUN_ORDER, |_priority| RUNS.fetch_add(1, Ordering::SeqCst))
        .with(CWD_AND_ENV, |names: Vec<String>| {
            let cwd =
                std::env::current_dir().map_or_else(|e| e.to_string(), |d| d.display().to_string());
            (cwd, names.iter().map(|n| std::env::var(n).ok()).collect())
        })
        .with(OPEN_FDS, |()| open_fds())
        .with(CHILD_OPEN_FDS, |()| {
            run_self("--list-fds").lines().map(str::to_owned).collect()
        })
}
