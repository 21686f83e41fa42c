//! What every launcher must keep (`tests/launched.rs` with local wrappers,
//! `tests/ssh.rs` over a real sshd): results, a large payload and `map`;
//! a running task stopped with its grandchild; a time limit; a worker
//! SIGKILLed; the launcher killed under a running task. Each check ends
//! with the processes it saw gone.
//!
//! Launched workers are not the pool's children, so a test file using this
//! makes itself a child subreaper ([`adopt_orphans`]): workers and their
//! tasks' children orphaned by a kill become its children, and
//! [`assert_ended_within`] reaps them, so no zombie is left.

use super::{kill_9, read_pid, TempDir, HANG, SOON};
use procpool::{ByteBuf, Error, Pool, SubmitOptions};
use procpool_conformance::tasks::{
    ECHO, GETPID, PIDS_FILE_WITH_CHILD, PID_FILE_SLEEP, SLEEP_MS, SQUARE,
};
use std::time::{Duration, Instant};

/// Makes this test process a child subreaper (once per process).
pub(crate) fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(procpool_testkit::become_child_subreaper);
}

/// Waits up to `limit` for every pid to be gone; one that became this
/// process's child (an orphan) is reaped once it has ended.
#[track_caller]
pub(crate) fn assert_ended_within(pids: &[u32], limit: Duration) {
    let me = std::process::id();
    super::assert_none_left_within(pids, limit, |pid| match procpool_testkit::stat(pid) {
        None => false,
        Some(stat) if stat.ppid == me && stat.state == 'Z' => {
            // An orphan of ours that has ended: reap it.
            procpool_testkit::reap_within(pid, Duration::ZERO);
            false
        }
        Some(_) => true,
    });
}

/// The pids of the workers that answer `n` calls of `GETPID` (at most one
/// per worker when the calls overlap).
pub(crate) fn worker_pids(pool: &Pool, n: usize) -> Vec<u32> {
    let futures: Vec<_> = (0..n).map(|_| pool.submit(GETPID, ()).unwrap()).collect();
    let mut pids: Vec<u32> = futures
        .iter()
        .map(|f| f.result(Some(HANG)).expect("a worker answers"))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Results, a 16 MiB payload both ways, and a `map`.
pub(crate) fn serves_results_payloads_and_maps(pool: &Pool) {
    assert_eq!(pool.submit(SQUARE, 12).unwrap().result(Some(HANG)), Ok(144));
    let payload = ByteBuf((0..16u32 << 20).map(|i| (i % 251) as u8).collect());
    let echoed = pool.submit(ECHO, &payload).unwrap().result(Some(HANG));
    assert!(
        echoed == Ok(payload.clone()),
        "the 16 MiB payload came back whole"
    );
    let sum: u64 = pool
        .map(SQUARE, 0..1000u64, 50)
        .unwrap()
        .map(|r| r.expect("every element"))
        .sum();
    assert_eq!(sum, (0..1000u64).map(|x| x * x).sum());
}

/// `abort()` stops a running task that ignores the stop flag, and the
/// process it started: the future ends cancelled and both processes are
/// gone within seconds (the grace, then SIGKILL from the worker itself).
pub(crate) fn abort_stops_a_task_and_its_child(pool: &Pool, dir: &TempDir) {
    let path = dir.file("abort-pids");
    let running = pool
        .submit(PIDS_FILE_WITH_CHILD, (path.clone(), 60_000))
        .unwrap();
    let pids = read_pids(&path);
    let started = Instant::now();
    running.abort();
    assert_eq!(running.result(Some(HANG)), Err(Error::Cancelled));
    assert_ended_within(&pids, SOON);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a 60 s task stopped in {:?}",
        started.elapsed()
    );
    assert_eq!(pool.submit(SQUARE, 3).unwrap().result(Some(HANG)), Ok(9));
}

/// A time limit stops a task that runs past it.
pub(crate) fn a_time_limit_stops_a_task(pool: &Pool) {
    let options = SubmitOptions::new().time_limit(Duration::from_millis(500));
    let started = Instant::now();
    let limited = pool.submit_with(SLEEP_MS, 60_000, options).unwrap();
    match limited.result(Some(HANG)) {
        Err(Error::TimedOut { limit, .. }) => assert_eq!(limit, Duration::from_millis(500)),
        other => panic!("expected a time-out, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(pool.submit(SQUARE, 4).unwrap().result(Some(HANG)), Ok(16));
}

/// A worker SIGKILLed from outside fails its task with `WorkerDied`, which
/// names where it ran; the pool goes on.
pub(crate) fn a_killed_worker_fails_only_its_task(pool: &Pool, dir: &TempDir, place: &str) {
    let path = dir.file("killed-pid");
    let victim = pool.submit(PID_FILE_SLEEP, (path.clone(), 60_000)).unwrap();
    let pid = read_pid(&path, HANG);
    kill_9(pid);
    match victim.result(Some(HANG)) {
        Err(Error::WorkerDied {
            place: Some(at), ..
        }) => assert_eq!(at, place),
        other => panic!("expected the worker's death on {place}, got {other:?}"),
    }
    assert_ended_within(&[pid], SOON);
    assert_eq!(pool.submit(SQUARE, 5).unwrap().result(Some(HANG)), Ok(25));
}

/// The launcher killed under a running task (the connection gone): the
/// worker and its task's child are gone within seconds, the task fails, the
/// pool goes on. `launcher_of` finds the launcher's pid from the worker's.
pub(crate) fn killing_the_launcher_ends_the_worker(
    pool: &Pool,
    dir: &TempDir,
    launcher_of: impl Fn(u32) -> u32,
) {
    let path = dir.file("launcher-pids");
    let running = pool
        .submit(PIDS_FILE_WITH_CHILD, (path.clone(), 60_000))
        .unwrap();
    let pids = read_pids(&path);
    let launcher = launcher_of(pids[0]);
    kill_9(launcher);
    let started = Instant::now();
    assert!(matches!(
        running.result(Some(HANG)),
        Err(Error::WorkerDied { .. })
    ));
    assert_ended_within(&pids, SOON);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the worker outlived its launcher by {:?}",
        started.elapsed()
    );
    assert_eq!(pool.submit(SQUARE, 6).unwrap().result(Some(HANG)), Ok(36));
}

/// The two pids (worker, its child) `PIDS_FILE_WITH_CHILD` writes.
fn read_pids(path: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    super::wait_until(HANG, "the pids file", || {
        pids = std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        pids.len() == 2
    });
    pids
}
