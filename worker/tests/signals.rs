//! Signals a real worker process receives: SIGTERM sets the flag that
//! `stop_requested()` reads, so a task that polls it returns during the grace
//! period and the worker serves on with the flag cleared; SIGINT (a
//! terminal's Ctrl-C) is ignored. The signals go to the child, so these tests
//! change nothing in the test process.

mod util;

use procpool_ipc::Task;
use std::path::PathBuf;
use util::Worker;

const SQUARE: Task<u64, u64> = Task::new("square");
const SLEEP_MS: Task<u64, ()> = Task::new("sleep_ms");
const POLL_STOP: Task<(u64, String), bool> = Task::new("poll_stop");

/// A path in the temporary directory that no other test uses.
fn marker(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("procpool-worker-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn sigterm_lets_a_polling_task_return_and_the_worker_serves_on_with_the_flag_cleared() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let stopped = marker("sigterm-stopped");
    let not_stopped = marker("sigterm-not-stopped");
    // The handler is in place before the Hello is sent, and the flag is only
    // cleared when a call ends, so the signal may arrive before or after the
    // task starts: either way this call sees it.
    let id = worker.queue_call(POLL_STOP, &(60_000, stopped.display().to_string()));
    worker.flush();
    worker.signal(libc::SIGTERM);
    assert_eq!(
        worker.done_of(POLL_STOP, id),
        Ok(true),
        "the task saw the stop request"
    );
    assert!(stopped.exists(), "the task cleaned up before returning");
    // Same process, flag cleared: the next poll runs out its time.
    let again = worker.call(POLL_STOP, &(200, not_stopped.display().to_string()));
    assert_eq!(
        again,
        Ok(false),
        "the flag was cleared after the stopped call"
    );
    assert!(!not_stopped.exists());
    assert_eq!(worker.call(SQUARE, &11), Ok(121));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    util::assert_exit_code(status, 0, &stderr);
    let _ = std::fs::remove_file(&stopped);
}

#[test]
fn sigint_is_ignored_while_idle_and_during_a_task() {
    let (mut worker, _) = Worker::start_hello(&[]);
    worker.signal(libc::SIGINT);
    assert_eq!(worker.call(SQUARE, &2), Ok(4), "alive after an idle SIGINT");
    let id = worker.queue_call(SLEEP_MS, &200);
    worker.flush();
    worker.signal(libc::SIGINT);
    assert_eq!(
        worker.done_of(SLEEP_MS, id),
        Ok(()),
        "the task ran to its end"
    );
    assert_eq!(worker.call(SQUARE, &3), Ok(9));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    util::assert_exit_code(status, 0, &stderr);
}
