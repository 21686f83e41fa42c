//! A call channel that does not carry the protocol makes a real worker
//! process exit 2 with a message on stderr that says what was wrong: garbage
//! that is no message, a frame over the limit, a stream that ends inside a
//! frame. Calls answered before the violation still reach the parent.

mod util;

use procpool_ipc::{env, Task};
use util::Worker;

const SQUARE: Task<u64, u64> = Task::new("square");

fn assert_protocol_exit(mut worker: Worker, what: &str) {
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_eq!(status.code(), Some(2), "exit status; stderr:\n{stderr}");
    assert!(
        stderr.contains("protocol violation on the call channel"),
        "{stderr}"
    );
    assert!(stderr.contains(what), "expected {what:?} in:\n{stderr}");
}

#[test]
fn garbage_frame_exits_2_saying_no_valid_message() {
    let (mut worker, _) = Worker::start_hello(&[]);
    assert_eq!(worker.call(SQUARE, &2), Ok(4));
    worker.send_raw(&[5, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x99]);
    assert_protocol_exit(worker, "frame holds no valid message");
}

#[test]
fn oversize_frame_exits_2_saying_over_the_limit() {
    let (mut worker, _) = Worker::start_hello(&[]);
    worker.send_raw(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    assert_protocol_exit(worker, "over the limit");
}

#[test]
fn frame_over_a_configured_limit_exits_2() {
    let (mut worker, _) = Worker::start_hello(&[(env::MAX_FRAME_LEN, "1024")]);
    assert_eq!(worker.call(SQUARE, &3), Ok(9));
    worker.send_raw(&1025u32.to_le_bytes());
    assert_protocol_exit(
        worker,
        "frame of 1025 bytes is over the limit of 1024 bytes",
    );
}

#[test]
fn stream_ending_inside_a_frame_exits_2_saying_truncated() {
    let (mut worker, _) = Worker::start_hello(&[]);
    worker.send_raw(&[10, 0, 0, 0, 1, 2]);
    worker.close_calls();
    assert_protocol_exit(worker, "stream ended inside a frame");
}

#[test]
fn calls_before_the_garbage_are_answered_first() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let ids: Vec<u64> = (0..5).map(|x| worker.queue_call(SQUARE, &x)).collect();
    worker.flush();
    worker.send_raw(b"\x03\x00\x00\x00xyz");
    for (x, id) in (0..5u64).zip(ids) {
        assert_eq!(worker.done_of(SQUARE, id), Ok(x * x));
    }
    assert_protocol_exit(worker, "frame holds no valid message");
}
