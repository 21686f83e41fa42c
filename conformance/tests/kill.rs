//! Stopping a running task for real: `abort()` with and without a grace
//! period, a task that cooperates, one that ignores SIGTERM, and the
//! processes a task started. Every case runs real workers and checks that the
//! neighbours are untouched and that nothing is left behind.

mod util;
use procpool::{Error, SubmitOptions};
use procpool_conformance::tasks::*;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn aborting_a_60s_task_stops_it_within_5s_and_spares_the_bystander() {
    let pool = util::builder(2).grace(Duration::ZERO).build().unwrap();
    let bystander = pool.submit(SLEEP_MS, 1500).unwrap();
    let victim = pool.submit(SLEEP_MS, 60_000).unwrap();
    util::wait_until(SOON, "both running", || {
        bystander.running() && victim.running()
    });
    assert!(
        !victim.cancel(),
        "cancel() keeps CPython's meaning: false once running"
    );
    let t0 = Instant::now();
    assert!(victim.abort());
    let err = victim.result(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err, Error::Cancelled);
    assert!(victim.cancelled());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    let bystander_pid = bystander.result(Some(SOON)).unwrap();
    // The replacement worker serves the next task.
    let next = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    assert!(next > 0);
    let pids = [bystander_pid, next];
    drop(pool);
    util::assert_gone_within(&pids, SOON);
}

#[test]
fn abort_with_grace_kills_a_task_that_ignores_sigterm() {
    let pool = util::builder(1)
        .grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let victim = pool.submit(STUBBORN, 60).unwrap();
    util::wait_until(SOON, "running", || victim.running());
    let t0 = Instant::now();
    assert!(victim.abort());
    assert_eq!(victim.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        pool.submit(SQUARE, 4).unwrap().result(Some(SOON)).unwrap(),
        16
    );
}

#[test]
fn a_cooperative_task_cleans_up_and_its_worker_is_reused() {
    let dir = util::TempDir::new("coop");
    let marker = dir.file("marker");
    let pool = util::builder(1)
        .grace(Duration::from_secs(10))
        .build()
        .unwrap();
    let before = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let task = pool.submit(COOPERATIVE, (marker.clone(), 60_000)).unwrap();
    // The task says when it runs: a SIGTERM that arrived before it started
    // polling would only fall back on the SIGKILL at the end of the grace.
    util::wait_until(SOON, "the task's start marker", || {
        std::path::Path::new(&format!("{marker}.started")).exists()
    });
    assert!(task.abort());
    assert_eq!(task.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "cleaned up");
    let after = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    assert_eq!(
        before, after,
        "the worker that returned within the grace is kept"
    );
    // And the stop flag does not leak into its next task.
    let next = pool.submit(COOPERATIVE, (dir.file("unused"), 50)).unwrap();
    assert!(!next.result(Some(SOON)).unwrap());
}

#[test]
fn the_processes_a_task_started_are_stopped_with_it() {
    let dir = util::TempDir::new("grandchild");
    let pid_file = dir.file("pid");
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let task = pool
        .submit(WITH_GRANDCHILD, (pid_file.clone(), 120))
        .unwrap();
    util::wait_until(SOON, "grandchild pid written", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.is_empty())
    });
    let grandchild: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(util::exists(grandchild));
    assert!(task.abort());
    assert_eq!(task.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    // The grandchild was reparented when its parent died; its new parent
    // (init or a subreaper) reaps it.
    util::assert_gone_within(&[grandchild], SOON);
}

#[test]
fn abort_on_a_pending_task_cancels_it_and_on_a_finished_one_does_nothing() {
    let pool = util::builder(1).build().unwrap();
    let blocker = pool.submit(SLEEP_MS, 500).unwrap();
    let pending = pool.submit(SQUARE, 2).unwrap();
    assert!(pending.abort());
    assert!(pending.cancelled());
    blocker.result(Some(SOON)).unwrap();
    let done = pool.submit(SQUARE, 3).unwrap();
    assert_eq!(done.result(Some(SOON)).unwrap(), 9);
    assert!(!done.abort());
    assert_eq!(done.result(None).unwrap(), 9);
}

#[test]
fn cancel_of_a_running_10s_task_after_half_a_second_then_abort() {
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let task = pool.submit(SLEEP_MS, 10_000).unwrap();
    util::wait_until(SOON, "running", || task.running());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!task.cancel(), "a running task cannot be cancelled");
    assert!(task.running());
    assert!(task.abort(), "but it can be aborted");
    assert_eq!(
        task.result(Some(Duration::from_secs(5))).unwrap_err(),
        Error::Cancelled
    );
}

#[test]
fn per_task_grace_overrides_the_pool_default() {
    let pool = util::builder(1)
        .grace(Duration::from_secs(60))
        .build()
        .unwrap();
    let task = pool
        .submit_with(STUBBORN, 60, SubmitOptions::new().grace(Duration::ZERO))
        .unwrap();
    util::wait_until(SOON, "running", || task.running());
    let t0 = Instant::now();
    task.abort();
    assert_eq!(task.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(5));
}
