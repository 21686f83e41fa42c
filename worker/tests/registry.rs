//! The task registry on its own: a name registered twice is refused at
//! registration (and leaves the registry as it was), and `Registry::call` /
//! `Registry::initialize` report each failure as its own `RemoteError` kind.

use procpool_ipc::{CallKind, RemoteErrorKind, Task};
use procpool_worker::{DuplicateTask, Registry};

const SQUARE: Task<u64, u64> = Task::new("square");
const ALSO_SQUARE: Task<String, String> = Task::new("square");
const INIT_SQUARE: Task<u64, Result<(), String>> = Task::new("square");
const INIT: Task<bool, Result<(), String>> = Task::new("init");
const PLAIN_RESULT: Task<bool, Result<(), String>> = Task::new("plain_result");
const BOOM: Task<(), ()> = Task::new("boom");

fn encoded<A: serde::Serialize, O>(task: Task<A, O>, args: &A) -> Vec<u8> {
    let mut payload = Vec::new();
    task.encode_args(args, &mut payload).expect("encodable");
    payload
}

#[test]
fn registering_a_name_twice_is_an_error_and_keeps_the_first() {
    let mut registry = Registry::new();
    registry.register(SQUARE, |x| x * x).expect("a new name");
    let e = registry
        .register(ALSO_SQUARE, |s| s)
        .expect_err("the name is taken");
    assert_eq!(e, DuplicateTask { name: "square" });
    assert_eq!(e.to_string(), "task `square` is registered twice");
    let e = registry
        .register_initializer(INIT_SQUARE, |_| Ok(()))
        .map(|_| ())
        .expect_err("the name is taken, for initializers too");
    assert_eq!(e.name, "square");
    let mut out = Vec::new();
    registry
        .call("square", CallKind::Single, &encoded(SQUARE, &5), &mut out)
        .expect("the first registration still answers");
    assert_eq!(SQUARE.decode_output(&out), Ok(25));
    assert_eq!(registry.names().collect::<Vec<_>>(), ["square"]);
}

#[test]
#[should_panic(expected = "task `square` is registered twice")]
fn with_panics_on_a_duplicate_name() {
    let _ = Registry::new()
        .with(SQUARE, |x| x * x)
        .with(ALSO_SQUARE, |s| s);
}

#[test]
fn call_appends_output_and_leaves_out_untouched_on_error() {
    let registry = Registry::new()
        .with(SQUARE, |x| x * x)
        .with(BOOM, |()| panic!("boom goes the task"));
    let mut out = vec![0xAA];
    registry
        .call("square", CallKind::Single, &encoded(SQUARE, &3), &mut out)
        .expect("runs");
    assert_eq!(out, [0xAA, 9]);
    let e = registry
        .call("square", CallKind::Single, &[], &mut out)
        .expect_err("no arguments");
    assert_eq!(e.kind, RemoteErrorKind::ArgsDecode);
    let e = registry
        .call("boom", CallKind::Single, &[], &mut out)
        .expect_err("panics");
    assert_eq!(e.kind, RemoteErrorKind::Panicked);
    assert!(e.message.contains("boom goes the task"), "{e}");
    assert!(e.backtrace.is_some(), "captured without the serve loop");
    let e = registry
        .call("nope", CallKind::Single, &[], &mut out)
        .expect_err("unknown");
    assert_eq!(e.kind, RemoteErrorKind::UnknownTask);
    assert_eq!(out, [0xAA, 9], "failed calls append nothing");
}

#[test]
fn only_register_initializer_treats_an_err_output_as_failure() {
    let mut registry = Registry::new();
    registry
        .register_initializer(INIT, |ok| if ok { Ok(()) } else { Err("nope".to_owned()) })
        .expect("a new name")
        .register(PLAIN_RESULT, |_| {
            Err::<(), String>("just a value".to_owned())
        })
        .expect("a new name");
    registry
        .initialize("init", &encoded(INIT, &true))
        .expect("Ok is success");
    let e = registry
        .initialize("init", &encoded(INIT, &false))
        .expect_err("Err is failure");
    assert_eq!(e.kind, RemoteErrorKind::Initializer);
    assert_eq!(e.message, "initializer `init` returned an error: nope");
    registry
        .initialize("plain_result", &encoded(PLAIN_RESULT, &false))
        .expect("a plain task's Err output is just its output");
    let e = registry.initialize("nope", &[]).expect_err("unknown");
    assert_eq!(e.kind, RemoteErrorKind::UnknownTask);
}
