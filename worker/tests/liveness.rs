//! A worker lives as long as somebody reads its results: with its parent
//! (this test) alive, so that no parent-death signal plays a part, the end
//! of the result pipe's last reader kills the worker, idle or running a
//! long task, and so does the close of its peer when a launcher gave it a
//! socket; a large result, whose pipe fills and drains many times (each
//! drain raises the same signal), disturbs nothing.

mod util;

use procpool_ipc::{ByteBuf, Task};
use std::os::unix::process::ExitStatusExt;
use util::{assert_exit_code, Worker};

const SQUARE: Task<u64, u64> = Task::new("square");
const SLEEP_MS: Task<u64, ()> = Task::new("sleep_ms");
const ZEROS: Task<u64, ByteBuf> = Task::new("zeros");

#[test]
fn an_idle_worker_whose_results_nobody_reads_kills_itself() {
    let (mut worker, _) = Worker::start_hello(&[]);
    assert_eq!(worker.call(SQUARE, &3), Ok(9));
    worker.hang_up_results();
    // `reap` fails the test if the worker is not gone within its deadline.
    let status = worker.reap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn a_worker_given_a_ten_minute_task_whose_results_nobody_reads_kills_itself() {
    let (mut worker, _) = Worker::start_hello(&[]);
    assert_eq!(worker.call(SQUARE, &3), Ok(9));
    worker.queue_call(SLEEP_MS, &600_000);
    worker.flush();
    // It has taken the call: it is running it, not waiting for one.
    worker.wait_until_calls_taken();
    worker.hang_up_results();
    let status = worker.reap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn a_large_result_through_a_small_pipe_disturbs_nothing() {
    let (mut worker, _) = Worker::start_hello(&[]);
    // 16 MiB through the test's 64 KiB pipe: hundreds of fills and drains.
    let zeros = worker.call(ZEROS, &(16 << 20)).expect("the zeros arrive");
    assert_eq!(zeros.0.len(), 16 << 20);
    assert!(zeros.0.iter().all(|&b| b == 0));
    // A task that sleeps after it (a signal mid-sleep would cut it short
    // or fail it) and a plain call still work.
    assert_eq!(worker.call(SLEEP_MS, &50), Ok(()));
    assert_eq!(worker.call(SQUARE, &4), Ok(16));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn a_worker_whose_results_go_to_a_socket_kills_itself_when_the_peer_closes() {
    // A launcher (ssh, srun, kubectl) may give the worker a socket for its
    // stdout: the peer's close is the end of the reader there.
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;
    let (ours, theirs) = UnixStream::pair().expect("a socket pair");
    let mut command = util::worker_command();
    util::pool_env(&mut command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker program starts");
    let calls = child.stdin.take();
    let mut reader = procpool_ipc::FrameReader::new(&ours);
    ours.set_read_timeout(Some(util::DEADLINE))
        .expect("a read timeout");
    let hello = reader.next_frame().expect("a frame").expect("the Hello");
    assert!(matches!(
        procpool_ipc::FromWorker::decode(hello),
        Ok(procpool_ipc::FromWorker::Hello(_))
    ));
    drop(reader);
    drop(ours);
    let status = util::reap_within(&mut child, util::DEADLINE);
    drop(calls);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}
