//! A worker that cannot be started for a passing reason (the host is out of
//! fds: EMFILE) is started again after a back-off, and the pool goes on once
//! the reason has passed; when it persists, the pool breaks with the cause
//! after `max_failures_in_a_row` starts, never at the first one.
//!
//! The fd limit is process-wide, so a host process (`procpool-test-worker
//! --emfile-host`) plays the pool's parent.

mod util;

use std::process::Command;
use std::time::Duration;

/// Runs the host with `args` (bounded) and returns what it printed.
fn host(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    util::within(Duration::from_secs(120), "the EMFILE host", move || {
        let out = Command::new(util::WORKER)
            .arg("--emfile-host")
            .args(&args)
            .output()
            .expect("the host runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

#[test]
fn out_of_fds_for_a_while_the_pool_retries_and_goes_on() {
    let printed = host(&[]);
    let failures: u64 = printed
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the task did not complete: {printed}"));
    assert!(failures >= 2, "{printed}");
}

#[test]
fn out_of_fds_for_good_the_pool_breaks_with_the_cause() {
    let printed = host(&["forever"]);
    assert!(printed.starts_with("error Err(BrokenPool"), "{printed}");
    assert!(printed.contains("6 worker failures in a row"), "{printed}");
    assert!(printed.contains("Too many open files"), "{printed}");
}
