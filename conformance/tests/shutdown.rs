//! Shutdown: CPython's `Lib/test/test_concurrent_futures/test_shutdown.py`
//! (`ExecutorShutdownTest`, `ProcessPoolShutdownTest`), Copyright Python
//! Software Foundation, PSF License Agreement; restated, not copied.
//!
//! Covers: submit after shutdown; `shutdown(wait)` with 50 short tasks, with
//! and without `cancel_futures`; submit, cancel, shutdown; workers started on
//! demand, and no worker process left after an explicit shutdown, the end of
//! a scope or a drop; a program that ends without shutting its pool down (a
//! subprocess: the test worker program as a host); `shutdown(wait = false)`
//! with running tasks (a test CPython skips for its process pool because it
//! hangs, gh-83386), and after a failed task with recycling (gh-132969); and
//! procpool's `shutdown_within`, which stops what still runs at a deadline.

mod util;
use procpool::Error;
use procpool_conformance::tasks::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn submit_after_shutdown_fails_at_once() {
    // test_run_after_shutdown
    let pool = util::pool(2);
    pool.submit(SQUARE, 2).unwrap().result(Some(SOON)).unwrap();
    pool.shutdown(true, false);
    assert_eq!(pool.submit(SQUARE, 2).unwrap_err(), Error::ShutDown);
    let mut mapped = pool.map(SQUARE, 0..3u64, 1).unwrap();
    assert_eq!(mapped.next(), Some(Err(Error::ShutDown)));

    let pool = util::pool(2);
    pool.shutdown(false, false);
    assert_eq!(pool.submit(SQUARE, 2).unwrap_err(), Error::ShutDown);
}

#[test]
fn fifty_100ms_tasks_then_shutdown_wait_all_results_arrive() {
    // test_hang_issue12364
    let pool = Arc::new(util::pool(2));
    let futures: Vec<_> = (0..50)
        .map(|_| pool.submit(SLEEP_MS, 100).unwrap())
        .collect();
    util::within(util::HANG, "shutdown(wait = true)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, false)
    });
    for f in &futures {
        assert!(f.result(Some(Duration::ZERO)).is_ok(), "{:?}", f.state());
    }
}

#[test]
fn fifty_100ms_tasks_then_shutdown_cancel_futures_cancels_most_and_finishes_the_rest() {
    // test_cancel_futures. procpool hands a worker one task at a time and
    // starts workers on demand, so only the tasks already running at the
    // shutdown are not cancelled: wait until one runs, as CPython's call
    // queue (which commits max_workers + 1 tasks early) makes sure of.
    let pool = Arc::new(util::pool(2));
    let futures: Vec<_> = (0..50)
        .map(|_| pool.submit(SLEEP_MS, 100).unwrap())
        .collect();
    util::wait_until(SOON, "a task running", || futures[0].running());
    util::within(util::HANG, "shutdown(wait, cancel_futures)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, true)
    });
    let cancelled = futures.iter().filter(|f| f.cancelled()).count();
    assert!(cancelled > 20, "only {cancelled} of 50 cancelled");
    let others: Vec<_> = futures.iter().filter(|f| !f.cancelled()).collect();
    assert!(!others.is_empty(), "at least the running one finished");
    for f in others {
        assert!(f.done(), "{:?}", f.state());
        assert_eq!(f.exception(Some(Duration::ZERO)).unwrap(), None);
    }
}

#[test]
fn shutdown_cancel_futures_without_wait_cancels_what_has_not_started() {
    // test_cancel_futures_wait_false
    let pool = util::pool(2);
    let futures: Vec<_> = (0..50)
        .map(|_| pool.submit(SLEEP_MS, 100).unwrap())
        .collect();
    util::wait_until(SOON, "a task running", || futures[0].running());
    pool.shutdown(false, true);
    for f in &futures {
        let outcome = f.result(Some(SOON));
        assert!(
            outcome.is_ok() || outcome == Err(Error::Cancelled),
            "{outcome:?}"
        );
    }
    assert!(futures.iter().filter(|f| f.cancelled()).count() > 20);
}

#[test]
fn submit_cancel_then_shutdown_wait_returns_promptly() {
    // test_hang_gh94440
    let pool = Arc::new(util::pool(1));
    pool.submit(SQUARE, 1).unwrap().result(Some(SOON)).unwrap();
    let f = pool.submit(SQUARE, 2).unwrap();
    f.cancel();
    let t0 = Instant::now();
    util::within(Duration::from_secs(5), "shutdown(wait = true)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, false)
    });
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn workers_start_on_demand_and_after_an_explicit_shutdown_wait_none_remains() {
    // test_processes_terminate: 5 workers, 3 tasks blocked on a semaphore:
    // exactly 3 processes (started on demand); released, shutdown(), every
    // process joined
    let gate = util::Gate::new("processes-terminate");
    let pool = util::pool(5);
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(GATED, gate.task(i, i as u64)).unwrap())
        .collect();
    let pids: HashSet<u32> = (0..3).map(|i| gate.wait_started(i, SOON)).collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    util::wait_until(SOON, "the gauges of the turn that sent them", || {
        pool.stats().running == 3
    });
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, 3, "{stats:?}");
    assert_eq!(stats.workers_started, 3, "{stats:?}");
    gate.open();
    pool.shutdown(true, false);
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result(Some(Duration::ZERO)).unwrap(), i as u64);
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| util::exists(p)).collect();
    assert!(
        left.is_empty(),
        "shutdown(wait) returned with {left:?} unreaped"
    );
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn at_the_end_of_its_scope_a_pool_leaves_no_worker_process() {
    // test_context_manager_shutdown: 5 workers, a map inside the `with`
    // block equals the sequential one; after it every process is joined
    let tag = "scope";
    {
        let pool = util::tagged(util::builder(5), tag).build().unwrap();
        let out: Vec<u64> = pool
            .map(SQUARE, 0..10u64, 1)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
        assert!(!util::tagged_processes(tag).is_empty());
    }
    let left = util::tagged_processes(tag);
    assert!(left.is_empty(), "{left:?} outlived the pool");
}

#[test]
fn a_program_that_ends_without_shutting_its_pool_down_lets_the_running_task_finish() {
    // test_interpreter_shutdown: a program builds a pool of 5, submits a task
    // that prints "apple" after a while, and ends without shutdown(): the
    // task's output appears, nothing is on stderr. In Rust the end of `main`
    // drops the pool, which is its shutdown(wait = true).
    let dir = util::TempDir::new("interpreter-shutdown");
    let file = dir.file("out");
    let (ok, out, err) = util::run_host(&["--ends-without-shutdown", &file], util::HANG);
    assert!(ok, "the program failed: {out}{err}");
    assert_eq!(err, "", "nothing on stderr");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "apple");
}

#[test]
fn a_program_that_ends_right_after_shutdown_without_wait_still_finishes_its_task() {
    // test_hang_gh83386: submit, shutdown(wait = false), and the program
    // ends at once: the task still runs to its end (the manager thread is
    // joined when the process exits), and nothing is on stderr.
    let dir = util::TempDir::new("gh83386");
    let file = dir.file("out");
    let (ok, out, err) = util::run_host(&["--shutdown-no-wait-then-ends", &file], util::HANG);
    assert!(ok, "the program failed: {out}{err}");
    assert_eq!(err, "", "nothing on stderr");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "apple");
}

#[test]
fn dropping_a_pool_waits_for_running_tasks_and_leaves_no_worker_process() {
    // test_del_shutdown
    let dir = util::TempDir::new("drop");
    let pool = util::pool(2);
    let running = pool.submit(PID_FILE_SLEEP, (dir.file("pid"), 300)).unwrap();
    let pid = util::read_pid(&dir.file("pid"), SOON);
    util::within(util::HANG, "dropping the pool", move || drop(pool));
    assert_eq!(
        running.result(Some(Duration::ZERO)).unwrap(),
        pid,
        "it ran to its end"
    );
    assert!(!util::exists(pid));
}

#[test]
fn shutdown_without_wait_returns_at_once_with_running_tasks_which_still_finish() {
    // test_shutdown_no_wait; test_hang_gh83386 (skipped in CPython for the
    // process pool: "Hangs")
    let pool = util::pool(2);
    let futures: Vec<_> = (0..4)
        .map(|_| pool.submit(SLEEP_MS, 1500).unwrap())
        .collect();
    util::wait_until(SOON, "two running", || pool.stats().running == 2);
    let t0 = Instant::now();
    pool.shutdown(false, false);
    let returned_after = t0.elapsed();
    assert!(
        returned_after < Duration::from_millis(1000),
        "shutdown(wait = false) took {returned_after:?}"
    );
    util::within(Duration::from_secs(2), "dropping the pool", move || {
        drop(pool)
    });
    let pids: Vec<u32> = futures
        .iter()
        .map(|f| {
            f.result(Some(SOON))
                .expect("the queued and running tasks finish")
        })
        .collect();
    util::assert_gone_within(&pids, SOON);
}

#[test]
fn shutdown_within_a_deadline_stops_a_stubborn_task_after_the_deadline() {
    let pool = util::builder(1)
        .grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let pid = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let stubborn = pool.submit(STUBBORN, 60).unwrap();
    let queued = pool.submit(SQUARE, 3).unwrap();
    util::wait_until(SOON, "running", || stubborn.running());
    let deadline = Duration::from_millis(500);
    let t0 = Instant::now();
    let pool = Arc::new(pool);
    util::within(util::HANG, "shutdown_within", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown_within(deadline, false)
    });
    let took = t0.elapsed();
    assert!(took >= deadline, "stopped before the deadline: {took:?}");
    assert!(took < SOON, "took {took:?}");
    assert_eq!(
        stubborn.result(Some(Duration::ZERO)).unwrap_err(),
        Error::Cancelled
    );
    // Not started by the deadline, and not cancelled on request: CPython's
    // shutdown would have run it; past the deadline nothing more runs.
    assert!(queued.done());
    assert!(!util::exists(pid));
}

/// CPython's `_run_test_issue_gh_132969`: `max_workers` workers recycled
/// after each task; a good task, a failing one and another good one; the
/// results summed until the first error; then `shutdown(wait = false)` and
/// the manager thread joined. The sum.
fn shutdown_without_wait_after_a_failed_recycled_task(max_workers: usize) -> u64 {
    let tag = format!("gh132969-{max_workers}");
    let pool = Arc::new(
        util::tagged(util::builder(max_workers), &tag)
            .max_tasks_per_child(1)
            .build()
            .unwrap(),
    );
    let f1 = pool.submit(SLEEP_THEN_ECHO, (100, 1)).unwrap();
    let f2 = pool.submit(PANIC, "failing task".to_owned()).unwrap();
    let f3 = pool.submit(SLEEP_THEN_ECHO, (300, 3)).unwrap();
    let mut result = 0;
    let sum = (|| {
        result += f1.result(Some(util::HANG))?;
        f2.result(Some(util::HANG))?;
        result += f3.result(Some(util::HANG))?;
        Ok::<_, Error>(())
    })();
    assert!(
        matches!(sum, Err(Error::TaskPanicked { ref message, .. }) if message.contains("failing task")),
        "{sum:?}"
    );
    pool.shutdown(false, false);
    // Joining the manager thread: a second shutdown, with wait.
    util::within(util::HANG, "the manager thread's end", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, false)
    });
    assert_eq!(
        f3.result(Some(Duration::ZERO)).unwrap(),
        3,
        "it ran to its end"
    );
    assert!(util::tagged_processes(&tag).is_empty());
    result
}

#[test]
fn shutdown_without_wait_after_a_failed_task_with_recycling_on_2_workers_ends_cleanly() {
    // test_shutdown_gh_132969_case_1
    assert_eq!(shutdown_without_wait_after_a_failed_recycled_task(2), 1);
}

#[test]
fn shutdown_without_wait_after_a_failed_task_with_recycling_on_4_workers_ends_cleanly() {
    // test_shutdown_gh_132969_case_2: no hang either
    assert_eq!(shutdown_without_wait_after_a_failed_recycled_task(4), 1);
}
