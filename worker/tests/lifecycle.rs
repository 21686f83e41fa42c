//! How a real worker process ends: EOF on its call pipe and `Shutdown` (exit
//! 0, after answering every call before them), recycling after
//! `PROCPOOL_MAX_TASKS` calls (`Exiting(MaxTasks)`, exit 0), and a worker
//! behind a wrapper program that forks (it serves: its channel, not its
//! parent pid, says whether its pool is alive).

mod util;

use procpool_ipc::{env, CallKind, ExitReason, Task, ToWorker};
use util::{assert_exit_code, Message, Worker};

const SQUARE: Task<u64, u64> = Task::new("square");
const SLEEP_MS: Task<u64, ()> = Task::new("sleep_ms");

#[test]
fn eof_on_the_call_pipe_exits_0_without_a_frame() {
    let (mut worker, _) = Worker::start_hello(&[]);
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
    assert_eq!(stderr, "", "an orderly end is silent");
}

#[test]
fn eof_after_pipelined_calls_answers_them_all_then_exits_0() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let slow = worker.queue_call(SLEEP_MS, &50);
    let ids: Vec<u64> = (0..10).map(|x| worker.queue_call(SQUARE, &x)).collect();
    worker.flush();
    worker.close_calls();
    assert_eq!(worker.done_of(SLEEP_MS, slow), Ok(()));
    for (x, id) in (0..10u64).zip(ids) {
        assert_eq!(worker.done_of(SQUARE, id), Ok(x * x));
    }
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn shutdown_sends_exiting_shutdown_and_exits_0() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let id = worker.queue_call(SQUARE, &8);
    worker.queue(&ToWorker::Shutdown);
    // Anything after Shutdown is never read.
    worker.queue_call(SQUARE, &9);
    worker.flush();
    assert_eq!(worker.done_of(SQUARE, id), Ok(64));
    assert_eq!(
        worker.next_message(),
        Message::Exiting(ExitReason::Shutdown)
    );
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
    assert_eq!(stderr, "", "an orderly end is silent");
}

#[test]
fn recycles_after_max_tasks_calls_with_exiting_max_tasks_and_exit_0() {
    let (mut worker, _) = Worker::start_hello(&[(env::MAX_TASKS, "3")]);
    assert_eq!(worker.call(SQUARE, &1), Ok(1));
    // A failed call counts as a call.
    assert!(worker.call_raw("nope", CallKind::Single, &[]).is_err());
    // Calls queued past the limit are never answered: the parent re-queues
    // them on another worker.
    let third = worker.queue_call(SQUARE, &3);
    worker.queue_call(SQUARE, &4);
    worker.queue_call(SQUARE, &5);
    worker.flush();
    assert_eq!(worker.done_of(SQUARE, third), Ok(9));
    assert_eq!(
        worker.next_message(),
        Message::Exiting(ExitReason::MaxTasks)
    );
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn max_tasks_of_zero_or_absent_means_no_limit() {
    let (mut worker, _) = Worker::start_hello(&[(env::MAX_TASKS, "0")]);
    for x in 0..20 {
        assert_eq!(worker.call(SQUARE, &x), Ok(x * x));
    }
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn a_worker_behind_a_forking_wrapper_serves() {
    // `sh -c 'prog; exit $?'` forks: the worker's parent is the shell, not
    // the test. Liveness is judged by the channel, so it serves all the same.
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#""$0"; exit $?"#)
        .arg(util::worker_program());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROCPOOL_") {
            command.env_remove(key);
        }
    }
    util::pool_env(&mut command);
    let mut worker = Worker::spawn(command);
    let hello = worker.hello();
    assert_ne!(hello.pid, worker.pid(), "the worker is the shell's child");
    assert_eq!(worker.call(SQUARE, &7), Ok(49));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn a_bad_worker_setting_is_refused_with_a_message() {
    let mut worker = Worker::start(&[(env::MAX_TASKS, "many")]);
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PROCPOOL_MAX_TASKS") && stderr.contains("many"),
        "{stderr}"
    );
}
