//! A real worker process, started as a pool starts one: its `Hello`, calls and
//! their results (one at a time and pipelined), the two entry points, and the
//! stdio protection (a task that prints to stdout cannot corrupt the protocol).

mod util;

use procpool_ipc::{ByteBuf, Task, MAGIC, PROTOCOL_VERSION};
use std::process::Stdio;
use util::{assert_exit_code, worker_command, Message, Worker};

const SQUARE: Task<u64, u64> = Task::new("square");
const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
const GETPID: Task<(), u32> = Task::new("getpid");
const PRINT_STDOUT: Task<String, String> = Task::new("print_stdout");
const EXIT_CODE: Task<i32, ()> = Task::new("exit_code");

#[test]
fn hello_comes_first_with_version_pid_and_sorted_task_names() {
    let (worker, hello) = Worker::start_hello(&[]);
    assert_eq!(hello.magic, MAGIC);
    assert_eq!(hello.version, PROTOCOL_VERSION);
    assert_eq!(hello.pid, worker.pid());
    let expected = [
        "echo",
        "exit_code",
        "getpid",
        "half",
        "init",
        "init_count",
        "init_panic",
        "panic",
        "poll_stop",
        "print_stdout",
        "sleep_ms",
        "square",
        "unserializable",
        "zeros",
    ];
    assert_eq!(hello.tasks, expected);
}

#[test]
fn a_call_returns_its_output_and_the_worker_serves_the_next() {
    let (mut worker, _) = Worker::start_hello(&[]);
    assert_eq!(worker.call(SQUARE, &7), Ok(49));
    assert_eq!(
        worker.call(SQUARE, &u64::from(u32::MAX)),
        Ok(u64::from(u32::MAX).pow(2))
    );
    assert_eq!(worker.call(GETPID, &()), Ok(worker.pid()));
    let big = ByteBuf((0..3 << 20).map(|i: u32| i as u8).collect());
    assert_eq!(worker.call(ECHO, &big), Ok(big.clone()), "a 3 MiB echo");
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn pipelined_calls_are_answered_in_order() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let ids: Vec<u64> = (0..200).map(|x| worker.queue_call(SQUARE, &x)).collect();
    worker.flush();
    for (x, id) in (0..200u64).zip(ids) {
        assert_eq!(worker.done_of(SQUARE, id), Ok(x * x));
    }
}

#[test]
fn a_finished_result_is_sent_before_the_next_call_runs() {
    // Both calls arrive in one write; the second ends the process. The first
    // one's Done must already be out, or a finished task would be lost with
    // the worker that ran the next one.
    let (mut worker, _) = Worker::start_hello(&[]);
    let square = worker.queue_call(SQUARE, &5);
    worker.queue_call(EXIT_CODE, &7);
    worker.flush();
    assert_eq!(worker.done_of(SQUARE, square), Ok(25));
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 7, &stderr);
}

#[test]
fn a_task_printing_to_stdout_leaves_the_protocol_intact() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let text = "hello from a task".to_owned();
    assert_eq!(worker.call(PRINT_STDOUT, &text), Ok(text.clone()));
    assert_eq!(worker.call(SQUARE, &3), Ok(9));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
    assert!(
        stderr.contains("print_stdout line 1999: hello from a task"),
        "what the task printed went to stderr"
    );
}

#[test]
fn stdio_is_moved_off_the_channel_to_cloexec_fds() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let pid = worker.pid();
    let link = |fd: &str| {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .unwrap_or_else(|e| panic!("fd {fd} of {pid}: {e}"))
    };
    assert_eq!(link("0").to_str(), Some("/dev/null"), "fd 0");
    assert_eq!(link("1"), link("2"), "fd 1 is stderr");
    // The channel lives on on other fds, close-on-exec.
    let channel = worker.channel_pipes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the worker's fds") {
        let name = entry.expect("an fd entry").file_name();
        let fd = name.to_str().expect("a numeric name").to_owned();
        let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
            continue;
        };
        if !channel.contains(&target) {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).expect("fdinfo");
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).expect("octal flags"))
            .expect("a flags line");
        assert_ne!(
            flags & 0o2_000_000,
            0,
            "fd {fd} ({target:?}) is not O_CLOEXEC"
        );
        found.push(target);
    }
    found.sort();
    found.dedup();
    let mut expected = channel.to_vec();
    expected.sort();
    assert_eq!(found, expected, "each channel pipe on private fds");
    assert_eq!(worker.call(SQUARE, &2), Ok(4), "and the channel works");
}

#[test]
fn serve_if_worker_returns_when_not_started_by_a_pool() {
    let output = worker_command()
        .arg("--if-worker")
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "not a worker\n");
}

#[test]
fn serve_if_worker_serves_when_started_by_a_pool() {
    let mut command = worker_command();
    util::pool_env(&mut command).arg("--if-worker");
    let mut worker = Worker::spawn(command);
    worker.hello();
    assert_eq!(worker.call(SQUARE, &12), Ok(144));
    worker.close_calls();
    let (status, stderr) = worker.expect_eof_and_exit();
    assert_exit_code(status, 0, &stderr);
}

#[test]
fn serve_serves_without_any_pool_variable() {
    let mut worker = Worker::spawn(worker_command());
    let hello = worker.hello();
    assert_eq!(hello.pid, worker.pid());
    assert_eq!(worker.call(SQUARE, &4), Ok(16));
    worker.close_calls();
    assert_eq!(worker.next_message(), Message::Eof);
    let (status, stderr) = worker.wait();
    assert_exit_code(status, 0, &stderr);
}
