//! The initializer the parent names in `PROCPOOL_INITIALIZER` (arguments in
//! `PROCPOOL_INITIALIZER_ARGS`), in a real worker process: it runs once, after
//! the `Hello` and before any task; when it fails (an `Err` from a task
//! registered with `register_initializer`, a panic, an unknown name,
//! undecodable arguments) the worker sends `Exiting(InitializerFailed)` and
//! exits 3.

mod util;

use procpool_ipc::{env, ExitReason, RemoteError, RemoteErrorKind, Task};
use util::{initializer_args, Message, Worker};

const INIT: Task<String, Result<(), String>> = Task::new("init");
const INIT_PANIC: Task<String, ()> = Task::new("init_panic");
const INIT_COUNT: Task<(), u32> = Task::new("init_count");

fn start_with_initializer(name: &str, args_hex: &str) -> Worker {
    let mut worker = Worker::start(&[(env::INITIALIZER, name), (env::INITIALIZER_ARGS, args_hex)]);
    worker.hello();
    worker
}

/// Reads `Exiting(InitializerFailed)`, checks the exit status 3 and the
/// stderr line, and returns the error.
fn initializer_failure(mut worker: Worker) -> RemoteError {
    let e = match worker.next_message() {
        Message::Exiting(ExitReason::InitializerFailed(e)) => e,
        other => panic!("expected Exiting(InitializerFailed), got {other:?}"),
    };
    assert_eq!(e.kind, RemoteErrorKind::Initializer);
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_eq!(status.code(), Some(3), "exit status; stderr:\n{stderr}");
    assert!(stderr.contains("initializer failed"), "{stderr}");
    e
}

#[test]
fn initializer_runs_once_before_the_first_task() {
    let mut worker = start_with_initializer("init", &initializer_args(INIT, &"ok".to_owned()));
    assert_eq!(
        worker.call(INIT_COUNT, &()),
        Ok(1),
        "ran before the first task"
    );
    assert_eq!(worker.call(INIT_COUNT, &()), Ok(1), "and only once");
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    util::assert_exit_code(status, 0, &stderr);
}

#[test]
fn without_an_initializer_nothing_runs_first() {
    let (mut worker, _) = Worker::start_hello(&[]);
    assert_eq!(worker.call(INIT_COUNT, &()), Ok(0));
}

#[test]
fn initializer_returning_err_exits_3_with_initializer_failed() {
    let worker = start_with_initializer("init", &initializer_args(INIT, &"fail".to_owned()));
    let e = initializer_failure(worker);
    assert!(
        e.message.contains("initializer `init` returned an error"),
        "{e}"
    );
    assert!(e.message.contains("init was told to fail"), "{e}");
}

#[test]
fn panicking_initializer_exits_3_with_its_message_and_backtrace() {
    let worker = start_with_initializer(
        "init_panic",
        &initializer_args(INIT_PANIC, &"boom".to_owned()),
    );
    let e = initializer_failure(worker);
    assert!(e.message.contains("init_panic: boom"), "{e}");
    assert!(e.backtrace.is_some(), "a panic carries a backtrace");
}

#[test]
fn unknown_initializer_exits_3_naming_it() {
    let worker = start_with_initializer("no_such_init", "");
    let e = initializer_failure(worker);
    assert!(e.message.contains("no_such_init"), "{e}");
}

#[test]
fn undecodable_initializer_args_exit_3() {
    // One byte that is no String.
    let worker = start_with_initializer("init", "ff");
    let e = initializer_failure(worker);
    assert!(
        e.message.contains("init") && e.message.contains("decode"),
        "{e}"
    );
}

#[test]
fn initializer_args_that_are_not_hex_are_refused_before_hello() {
    let mut worker = Worker::start(&[(env::INITIALIZER, "init"), (env::INITIALIZER_ARGS, "xyz")]);
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("PROCPOOL_INITIALIZER_ARGS"), "{stderr}");
}
