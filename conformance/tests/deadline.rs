//! Per-task time limits: counted from the task's start, enforced by the
//! manager's poll timeout, reported as `TimedOut`, which is a different
//! error from a `result(timeout)` wait expiring (that never touches the task).

mod util;
use procpool::{Error, SubmitOptions};
use procpool_conformance::tasks::*;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn a_half_second_limit_stops_a_10s_task() {
    let pool = util::builder(2).grace(Duration::ZERO).build().unwrap();
    let t0 = Instant::now();
    let task = pool
        .submit_with(
            SLEEP_MS,
            10_000,
            SubmitOptions::new().time_limit(Duration::from_millis(500)),
        )
        .unwrap();
    let err = task.result(Some(SOON)).unwrap_err();
    assert!(
        matches!(err, Error::TimedOut { ref task, limit } if task == "sleep_ms" && limit == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(err.to_string().contains("time limit"), "{err}");
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped late: {elapsed:?}"
    );
    assert_eq!(
        pool.submit(SQUARE, 5).unwrap().result(Some(SOON)).unwrap(),
        25
    );
}

#[test]
fn a_wait_timeout_never_touches_the_task() {
    let pool = util::pool(1);
    let task = pool.submit(SLEEP_MS, 300).unwrap();
    assert_eq!(
        task.result(Some(Duration::ZERO)).unwrap_err(),
        Error::WaitTimeout
    );
    assert!(task.result(Some(SOON)).is_ok(), "the task ran to its end");
}

#[test]
fn the_pool_default_limit_applies_and_a_task_within_it_is_untouched() {
    let pool = util::builder(1)
        .time_limit(Duration::from_millis(300))
        .grace(Duration::ZERO)
        .build()
        .unwrap();
    assert!(pool
        .submit(SLEEP_MS, 10)
        .unwrap()
        .result(Some(SOON))
        .is_ok());
    let slow = pool.submit(SLEEP_MS, 30_000).unwrap();
    assert!(matches!(
        slow.result(Some(SOON)),
        Err(Error::TimedOut { .. })
    ));
    let stats = pool.stats();
    assert_eq!(stats.timed_out, 1);
}

#[test]
fn the_limit_counts_from_the_start_not_the_submit() {
    // One worker: the second task waits ~400 ms in the queue, then runs
    // 400 ms under a 1 s limit: it must finish.
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let first = pool.submit(SLEEP_MS, 400).unwrap();
    let second = pool
        .submit_with(
            SLEEP_MS,
            400,
            SubmitOptions::new().time_limit(Duration::from_secs(1)),
        )
        .unwrap();
    first.result(Some(SOON)).unwrap();
    second.result(Some(SOON)).unwrap();
}
