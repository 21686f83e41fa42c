//! No process of a pool outlives the process that made it, fork server and
//! tasks' own children included: a host process (`procpool-test-worker
//! --host-pool`) runs a pool of two busy workers, one of them forked by the
//! fork server, each task with a `sleep` child of its own, and is
//! SIGKILLed, so that nothing of the pool gets to shut down. The hang-up of
//! the workers' channels (and the parent-death signal) must then take down
//! the workers with their process groups, and the fork server, within
//! seconds.
//!
//! The test process makes itself a child subreaper (a process-global change,
//! hence this file of its own), so the orphans become its children: it can
//! reap them, leave no zombie behind, and check that SIGKILL ended them.

mod util;
use procpool_testkit::{become_child_subreaper, children_of, reap_within, Ended};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The host process, SIGKILLed and reaped if the test fails before it does
/// so itself.
struct Host(std::process::Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killing_a_pools_process_takes_its_workers_their_tasks_children_and_fork_server_along() {
    become_child_subreaper();
    let mut host = Host(
        Command::new(util::WORKER)
            .arg("--host-pool")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the host starts"),
    );
    let host_pid = host.0.id();
    let mut lines = BufReader::new(host.0.stdout.take().expect("piped")).lines();
    let mut next_line = || lines.next().expect("a line from the host").expect("text");
    let workers: Vec<u32> = next_line()
        .strip_prefix("workers ")
        .expect("the workers' pids")
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    let grandchildren: Vec<u32> = next_line()
        .strip_prefix("grandchildren ")
        .expect("the tasks' children's pids")
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    let forked: u64 = next_line()
        .strip_prefix("forked ")
        .and_then(|n| n.parse().ok())
        .expect("the forked count");
    assert_eq!(workers.len(), 2);
    assert!(forked >= 1, "a worker was forked by the fork server");
    let children = children_of(host_pid);
    for w in &workers {
        assert!(
            children.contains(w),
            "worker {w} is the host's child: {children:?}"
        );
    }
    let others: Vec<u32> = children
        .into_iter()
        .filter(|c| !workers.contains(c))
        .collect();
    assert_eq!(
        others.len(),
        1,
        "one more child, the fork server: {others:?}"
    );

    assert_eq!(grandchildren.len(), 2);
    host.0.kill().expect("SIGKILL to the host");
    host.0.wait().expect("the host reaped");
    // The tasks' children are orphans too, and ours as subreaper. Workers
    // and what their tasks started are killed with their process groups.
    for pid in workers.iter().chain(&grandchildren) {
        assert_eq!(
            reap_within(*pid, Duration::from_secs(10)),
            Some(Ended::Signal(libc::SIGKILL)),
            "process {pid} of the killed host's pool was not killed within 10 s"
        );
    }
    // The fork server is killed by its parent-death signal, or exits 0 when
    // it sees its socket end first (the host's fds close before that signal
    // is sent): gone either way.
    for pid in &others {
        let ended = reap_within(*pid, Duration::from_secs(10));
        assert!(
            matches!(ended, Some(Ended::Signal(libc::SIGKILL) | Ended::Exit(0))),
            "the fork server {pid} did not end within 10 s: {ended:?}"
        );
    }
}
