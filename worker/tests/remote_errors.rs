//! Every way a call can fail inside a real worker process comes back as a
//! `Done` with a `RemoteError` of its own kind and a message that names the
//! cause, and the worker serves the next call: an unknown task, arguments
//! that do not decode, an output that does not encode (or does not fit in a
//! frame), and a panic (with its message, location and backtrace text).

mod util;

use procpool_ipc::{env, ByteBuf, CallKind, RemoteErrorKind, Task};
use util::Worker;

const SQUARE: Task<u64, u64> = Task::new("square");
const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
const ZEROS: Task<u64, ByteBuf> = Task::new("zeros");
const PANIC: Task<String, ()> = Task::new("panic");
const UNSERIALIZABLE: Task<(), ()> = Task::new("unserializable");

#[test]
fn unknown_task_fails_with_unknown_task_naming_it_and_the_known_ones() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let e = worker
        .call_raw("no_such_task", CallKind::Single, &[])
        .expect_err("no such task");
    assert_eq!(e.kind, RemoteErrorKind::UnknownTask);
    assert!(e.message.contains("no_such_task"), "{e}");
    assert!(e.message.contains("square"), "lists the known tasks: {e}");
    assert_eq!(worker.call(SQUARE, &3), Ok(9), "the worker goes on");
}

#[test]
fn undecodable_args_fail_with_args_decode_naming_task_and_type() {
    let (mut worker, _) = Worker::start_hello(&[]);
    // A u64 followed by a byte too many.
    let e = worker
        .call_raw("square", CallKind::Single, &[7, 0])
        .expect_err("trailing bytes");
    assert_eq!(e.kind, RemoteErrorKind::ArgsDecode);
    assert!(
        e.message.contains("square") && e.message.contains("u64"),
        "{e}"
    );
    assert!(e.message.contains("1 byte is left over"), "{e}");
    // A varint that claims more bytes than there are.
    let e = worker
        .call_raw("square", CallKind::Single, &[0xFF])
        .expect_err("truncated");
    assert_eq!(e.kind, RemoteErrorKind::ArgsDecode);
    assert_eq!(worker.call(SQUARE, &4), Ok(16), "the worker goes on");
}

#[test]
fn output_that_fails_to_serialize_fails_with_output_encode() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let e = worker
        .call(UNSERIALIZABLE, &())
        .expect_err("the output refuses to encode");
    assert_eq!(e.kind, RemoteErrorKind::OutputEncode);
    assert!(e.message.contains("unserializable"), "{e}");
    assert!(
        e.message
            .contains("Unserializable refuses to be serialized"),
        "{e}"
    );
    assert_eq!(worker.call(SQUARE, &5), Ok(25), "the worker goes on");
}

#[test]
fn output_over_the_frame_limit_fails_with_output_encode() {
    let (mut worker, _) = Worker::start_hello(&[(env::MAX_FRAME_LEN, "4096")]);
    let small = ByteBuf(vec![1; 1000]);
    assert_eq!(worker.call(ECHO, &small), Ok(small));
    let e = worker.call(ZEROS, &5000).expect_err("too big to send back");
    assert_eq!(e.kind, RemoteErrorKind::OutputEncode);
    assert!(
        e.message.contains("zeros") && e.message.contains("frame limit"),
        "{e}"
    );
    assert_eq!(worker.call(SQUARE, &6), Ok(36), "the worker goes on");
}

#[test]
fn panic_fails_with_its_message_location_and_backtrace() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let e = worker
        .call(PANIC, &"the sky is falling".to_owned())
        .expect_err("the task panics");
    assert_eq!(e.kind, RemoteErrorKind::Panicked);
    assert!(e.message.contains("the sky is falling"), "{e}");
    assert!(e.message.contains("task `panic` panicked at"), "{e}");
    assert!(
        e.message.contains("standalone_worker.rs"),
        "the location: {e}"
    );
    let backtrace = e.backtrace.as_deref().expect("a backtrace");
    assert!(!backtrace.trim().is_empty(), "a backtrace with text");
    assert_eq!(worker.call(SQUARE, &7), Ok(49), "the worker goes on");
    // A second panic reports its own message, not the first one's.
    let e = worker.call(PANIC, &"again".to_owned()).expect_err("panics");
    assert!(
        e.message.contains("again") && !e.message.contains("sky"),
        "{e}"
    );
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    util::assert_exit_code(status, 0, &stderr);
    assert!(
        !stderr.contains("the sky is falling"),
        "a task's panic is reported to the parent, not printed:\n{stderr}"
    );
}
