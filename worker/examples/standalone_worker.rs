//! A standalone worker binary that depends on `procpool-worker` alone: the
//! program the crate's integration tests (`worker/tests/`) start as a real
//! child process and speak the protocol to by hand.
//!
//! `standalone_worker` serves whatever its environment says (the pool's
//! variables, `procpool_ipc::env`); `standalone_worker --if-worker` serves only
//! when `PROCPOOL_WORKER` is set and otherwise prints `not a worker` and exits
//! 0, which shows what `serve_if_worker` does in an application's `main`.

use procpool_worker::serde::ser::{Error as _, Serialize, Serializer};
use procpool_worker::{ByteBuf, Registry, Task};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `x * x`.
pub const SQUARE: Task<u64, u64> = Task::new("square");
/// Its argument back.
pub const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
/// This many zero bytes.
pub const ZEROS: Task<u64, ByteBuf> = Task::new("zeros");
/// The worker's pid.
pub const GETPID: Task<(), u32> = Task::new("getpid");
/// `x / 2`; panics when `x` is odd (so a batch can fail one element).
pub const HALF: Task<u64, u64> = Task::new("half");
/// Panics with the given message.
pub const PANIC: Task<String, ()> = Task::new("panic");
/// Prints many lines to stdout, then returns its argument.
pub const PRINT_STDOUT: Task<String, String> = Task::new("print_stdout");
/// Sleeps this many milliseconds.
pub const SLEEP_MS: Task<u64, ()> = Task::new("sleep_ms");
/// `(max_ms, marker_path)`: polls `stop_requested()` every 5 ms for up to
/// `max_ms`; when asked to stop, writes the marker file and returns true;
/// returns false when the time is up.
pub const POLL_STOP: Task<(u64, String), bool> = Task::new("poll_stop");
/// Exits the process with this status, in the middle of a call.
pub const EXIT_CODE: Task<i32, ()> = Task::new("exit_code");
/// Returns a value whose `Serialize` always fails.
pub const UNSERIALIZABLE: Task<(), Unserializable> = Task::new("unserializable");
/// An initializer: counts its runs, and returns `Err` when its argument is
/// `"fail"`.
pub const INIT: Task<String, Result<(), String>> = Task::new("init");
/// An initializer that panics with its argument.
pub const INIT_PANIC: Task<String, ()> = Task::new("init_panic");
/// How many times `init` ran in this process.
pub const INIT_COUNT: Task<(), u32> = Task::new("init_count");

static INIT_RUNS: AtomicU32 = AtomicU32::new(0);

/// An output that cannot be encoded.
pub struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("Unserializable refuses to be serialized"))
    }
}

fn poll_stop((max_ms, marker): (u64, String)) -> bool {
    let deadline = Instant::now() + Duration::from_millis(max_ms);
    while Instant::now() < deadline {
        if procpool_worker::stop_requested() {
            std::fs::write(&marker, b"stopped").expect("the marker file can be written");
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn tasks() -> Registry {
    let mut registry = Registry::new()
        .with(SQUARE, |x| x * x)
        .with(ECHO, |bytes| bytes)
        .with(ZEROS, |n| {
            ByteBuf(vec![0; usize::try_from(n).expect("n fits usize")])
        })
        .with(GETPID, |()| std::process::id())
        .with(HALF, |x: u64| {
            assert!(x.is_multiple_of(2), "half: {x} is odd");
            x / 2
        })
        .with(PANIC, |message: String| panic!("{message}"))
        .with(PRINT_STDOUT, |text: String| {
            for i in 0..2000 {
                println!("print_stdout line {i}: {text}");
            }
            text
        })
        .with(SLEEP_MS, |ms| std::thread::sleep(Duration::from_millis(ms)))
        .with(POLL_STOP, poll_stop)
        .with(EXIT_CODE, |code| std::process::exit(code))
        .with(UNSERIALIZABLE, |()| Unserializable)
        .with(INIT_COUNT, |()| INIT_RUNS.load(Ordering::SeqCst));
    registry
        .register_initializer(INIT, |arg: String| {
            INIT_RUNS.fetch_add(1, Ordering::SeqCst);
            if arg == "fail" {
                Err(format!("init was told to fail (arg {arg:?})"))
            } else {
                Ok(())
            }
        })
        .expect("`init` is registered once")
        .register_initializer(INIT_PANIC, |arg: String| panic!("init_panic: {arg}"))
        .expect("`init_panic` is registered once");
    registry
}

fn main() {
    if std::env::args().any(|a| a == "--if-worker") {
        procpool_worker::serve_if_worker(tasks);
        println!("not a worker");
        return;
    }
    procpool_worker::serve(tasks())
}
