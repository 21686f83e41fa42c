//! A worker never outlives its parent: the test starts a shell that starts
//! the worker as its own child and then execs `sleep`. The worker's call
//! pipe is held open by the test, so its hang-up cannot end it; when the
//! parent is SIGKILLed, the parent-death signal (SIGHUP, whose handler kills
//! the worker's process group) must take the worker down within seconds.
//!
//! The test process makes itself a child subreaper (a process-global change,
//! hence this file of its own), so the orphaned worker becomes its child: it
//! can then reap the worker, leave no zombie behind, and check that SIGKILL
//! is what ended it.

mod util;

use procpool_ipc::{env, Task};
use procpool_testkit::{become_child_subreaper, reap_within, Ended};
use std::time::Duration;
use util::{worker_command, worker_program, Worker};

const SQUARE: Task<u64, u64> = Task::new("square");

#[test]
fn worker_dies_within_seconds_when_its_parent_is_killed() {
    become_child_subreaper();
    let mut command = std::process::Command::new("sh");
    // fd 3 keeps the shell's stdin (the test's call pipe) for the worker: a
    // background job's stdin would otherwise be /dev/null.
    command
        .arg("-c")
        .arg(r#"exec 3<&0; "$0" <&3 3<&- & exec sleep 3600"#)
        .arg(worker_program())
        .env(env::WORKER, env::WORKER_MODE);
    // The PROCPOOL_* cleanup of worker_command, on the shell.
    for (key, _) in worker_command().get_envs() {
        command.env_remove(key);
    }
    command.env(env::WORKER, env::WORKER_MODE);
    let mut parent = Worker::spawn(command);
    let hello = parent.hello();
    let worker_pid = hello.pid;
    assert_ne!(worker_pid, parent.pid(), "the worker is the shell's child");
    // It serves, through the shell's pipes.
    assert_eq!(parent.call(SQUARE, &6), Ok(36));

    parent.signal(libc::SIGKILL);
    // Reaped, but the call pipe stays open: only the parent's death can end
    // the worker now.
    let status = parent.reap();
    assert_eq!(status.code(), None, "the parent was killed");

    assert_eq!(
        reap_within(worker_pid, Duration::from_secs(10)),
        Some(Ended::Signal(libc::SIGKILL)),
        "worker {worker_pid} was not killed by SIGKILL within 10 s of its parent's death"
    );
}
