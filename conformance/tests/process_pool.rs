//! Workers: CPython's `Lib/test/test_concurrent_futures/test_process_pool.py`
//! (`ProcessPoolExecutorTest`), Copyright Python Software Foundation, PSF
//! License Agreement; restated, not copied, as the behaviour procpool keeps.
//!
//! Covers: never more than `max_workers` processes (saturation); idle workers
//! reused; `max_tasks_per_child` recycling and its limits; a worker killed
//! while it runs a task, under procpool's default policy (only that task
//! fails) and under CPython's (`FailurePolicy::BreakPool`); a worker exiting
//! with code 99; `terminate_workers()` / `kill_workers()`. Pids come from the
//! worker itself (`GETPID`, `PID_FILE_SLEEP`), counts from `Pool::stats`.

mod util;
use procpool::{Error, ExitInfo, FailurePolicy, Signal};
use procpool_conformance::tasks::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn never_more_than_max_workers_processes_even_with_15_times_as_many_blocked_tasks() {
    // test_saturation: 15 * max_workers blocked tasks, len(_processes) stays
    // max_workers
    let workers = 2;
    let pool = util::pool(workers);
    let futures: Vec<_> = (0..15 * workers)
        .map(|_| pool.submit(SLEEP_MS, 50).unwrap())
        .collect();
    let mut most_alive = 0;
    while !futures.iter().all(|f| f.done()) {
        most_alive = most_alive.max(pool.stats().workers_alive);
        std::thread::sleep(Duration::from_millis(2));
    }
    let pids: HashSet<u32> = futures
        .iter()
        .map(|f| f.result(Some(SOON)).unwrap())
        .collect();
    assert!(most_alive <= workers, "{most_alive} workers alive at once");
    assert!(pids.len() <= workers, "{} distinct worker pids", pids.len());
    assert!(pool.stats().workers_started <= workers as u64);
}

#[test]
fn idle_workers_are_reused_so_sequential_tasks_run_in_one_process() {
    // test_idle_process_reuse_one
    let pool = util::pool(2);
    let pids: Vec<u32> = (0..3)
        .map(|_| pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap())
        .collect();
    assert!(pids.iter().all(|&p| p == pids[0]), "{pids:?}");
    assert_eq!(pool.stats().workers_alive, 1);
    assert_eq!(pool.stats().workers_started, 1);
}

#[test]
fn idle_workers_are_reused_with_waited_and_unwaited_tasks_mixed() {
    // test_idle_process_reuse_multiple: at most max_workers processes
    let pool = util::pool(3);
    let mut futures = Vec::new();
    for x in 0..6u64 {
        let f = pool.submit(SQUARE, x).unwrap();
        if x % 2 == 0 {
            f.result(Some(SOON)).unwrap();
        }
        futures.push(f);
    }
    for (x, f) in (0..6u64).zip(&futures) {
        assert_eq!(f.result(Some(SOON)).unwrap(), x * x);
    }
    assert!(pool.stats().workers_started <= 3);
}

#[test]
fn max_tasks_per_child_3_tasks_1_to_3_share_a_pid_and_task_4_gets_a_new_one() {
    // test_max_tasks_per_child
    let pool = util::builder(1).max_tasks_per_child(3).build().unwrap();
    let getpid = || pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let original = getpid();
    assert_eq!(getpid(), original);
    assert_eq!(pool.stats().workers_alive, 1);
    assert_eq!(getpid(), original);
    let new = getpid();
    assert_ne!(new, original, "the fourth task runs in a new worker");
    assert_eq!(pool.stats().workers_alive, 1);
    util::assert_gone_within(&[original], SOON);
}

#[test]
fn max_tasks_per_child_keeps_the_worker_count_at_the_limit() {
    // test_max_tasks_per_child: len(_processes) stays at the limit
    let pool = util::builder(2).max_tasks_per_child(1).build().unwrap();
    let futures: Vec<_> = (0..12)
        .map(|_| pool.submit(SLEEP_MS, 20).unwrap())
        .collect();
    let mut most_alive = 0;
    while !futures.iter().all(|f| f.done()) {
        most_alive = most_alive.max(pool.stats().workers_alive);
        std::thread::sleep(Duration::from_millis(1));
    }
    let pids: HashSet<u32> = futures
        .iter()
        .map(|f| f.result(Some(SOON)).unwrap())
        .collect();
    assert_eq!(pids.len(), 12, "one task per worker");
    assert!(most_alive <= 2, "{most_alive} workers alive at once");
    let pids: Vec<u32> = pids.into_iter().collect();
    drop(pool);
    util::assert_gone_within(&pids, SOON);
}

#[test]
fn a_pool_with_limit_1_and_6_tasks_shut_down_at_once_still_returns_all_6_results() {
    // test_max_tasks_early_shutdown
    let pool = util::builder(3).max_tasks_per_child(1).build().unwrap();
    let futures: Vec<_> = (0..6u64).map(|x| pool.submit(SQUARE, x).unwrap()).collect();
    util::within(util::HANG, "shutdown(wait)", {
        let pool = std::sync::Arc::new(pool);
        move || pool.shutdown(true, false)
    });
    for (x, f) in (0..6u64).zip(&futures) {
        assert_eq!(f.result(Some(Duration::ZERO)).unwrap(), x * x);
    }
}

#[test]
fn limits_with_more_pending_tasks_than_workers_never_deadlock() {
    // gh-115634: max_tasks_per_child with more pending tasks than workers
    let pool = util::builder(2).max_tasks_per_child(2).build().unwrap();
    let futures: Vec<_> = (0..40u64)
        .map(|x| pool.submit(SQUARE, x).unwrap())
        .collect();
    for (x, f) in (0..40u64).zip(&futures) {
        assert_eq!(f.result(Some(util::HANG)).unwrap(), x * x);
    }
    assert!(pool.stats().workers_started >= 20);
    let mapped: Vec<u64> = pool
        .map(SQUARE, 0..40u64, 3)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(mapped, (0..40u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn a_worker_killing_itself_fails_only_its_task_and_the_pool_goes_on() {
    // test_killed_child, procpool's default: CPython breaks the pool
    let dir = util::TempDir::new("killself");
    let pool = util::pool(2);
    let bystander = pool
        .submit(PID_FILE_SLEEP, (dir.file("pid"), 1000))
        .unwrap();
    util::read_pid(&dir.file("pid"), SOON);
    let victim = pool.submit(KILL_SELF, ()).unwrap();
    let queued: Vec<_> = (0..4u64).map(|x| pool.submit(SQUARE, x).unwrap()).collect();
    match victim.result(Some(SOON)).unwrap_err() {
        Error::WorkerDied { pid, exit, task } => {
            assert!(pid > 0);
            assert_eq!(exit, ExitInfo::Signal(Signal::from_number(libc::SIGKILL)));
            assert_eq!(task, "kill_self");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert!(
        bystander.result(Some(SOON)).is_ok(),
        "the other worker's task is untouched"
    );
    for (x, f) in (0..4u64).zip(&queued) {
        assert_eq!(f.result(Some(SOON)).unwrap(), x * x);
    }
    assert_eq!(
        pool.submit(SQUARE, 5).unwrap().result(Some(SOON)).unwrap(),
        25
    );
    assert!(pool.stats().workers_replaced >= 1);
}

#[test]
fn a_worker_killed_with_sigkill_from_outside_fails_only_its_task() {
    // test_killed_child: p.terminate() from the test
    let dir = util::TempDir::new("kill9");
    let pool = util::pool(2);
    let victim = pool
        .submit(PID_FILE_SLEEP, (dir.file("pid"), 60_000))
        .unwrap();
    let pid = util::read_pid(&dir.file("pid"), SOON);
    let others: Vec<_> = (0..4).map(|_| pool.submit(SLEEP_MS, 50).unwrap()).collect();
    util::kill_9(pid);
    assert_eq!(
        victim.result(Some(SOON)).unwrap_err(),
        Error::WorkerDied {
            pid,
            exit: ExitInfo::Signal(Signal::from_number(libc::SIGKILL)),
            task: "pid_file_sleep".to_owned()
        }
    );
    for f in &others {
        assert!(f.result(Some(SOON)).is_ok());
    }
    util::assert_gone_within(&[pid], SOON);
    assert_eq!(
        pool.submit(SQUARE, 6).unwrap().result(Some(SOON)).unwrap(),
        36
    );
}

#[test]
fn with_the_break_pool_policy_a_killed_worker_fails_every_pending_future_and_later_submit() {
    // test_killed_child as CPython has it: BrokenProcessPool everywhere
    let dir = util::TempDir::new("breakpool");
    let pool = util::builder(2)
        .failure_policy(FailurePolicy::BreakPool)
        .build()
        .unwrap();
    let victim = pool
        .submit(PID_FILE_SLEEP, (dir.file("pid"), 60_000))
        .unwrap();
    let pid = util::read_pid(&dir.file("pid"), SOON);
    let others: Vec<_> = (0..20)
        .map(|_| pool.submit(SLEEP_MS, 30_000).unwrap())
        .collect();
    util::wait_until(SOON, "the second worker running", || others[0].running());
    util::kill_9(pid);
    // The task whose worker died says so; everything else is broken-pool.
    assert!(
        matches!(
            victim.result(Some(SOON)),
            Err(Error::WorkerDied {
                exit: ExitInfo::Signal(Signal::KILL),
                ..
            })
        ),
        "{:?}",
        victim.result(Some(Duration::ZERO))
    );
    for f in &others {
        match f.result(Some(SOON)) {
            Err(Error::BrokenPool { cause, .. }) => assert!(cause.contains("died"), "{cause}"),
            other => panic!("expected BrokenPool, got {other:?}"),
        }
    }
    assert!(matches!(
        pool.submit(SQUARE, 2),
        Err(Error::BrokenPool { .. })
    ));
    util::wait_until(SOON, "the workers reaped", || {
        pool.stats().workers_alive == 0
    });
}

#[test]
fn a_worker_exiting_with_code_99_mid_task_is_reported_as_terminated_abruptly_with_the_code() {
    // test_traceback_when_child_process_terminates_abruptly (gh-139462)
    let pool = util::pool(1);
    let err = pool
        .submit(EXIT, 99)
        .unwrap()
        .result(Some(SOON))
        .unwrap_err();
    assert!(
        matches!(err, Error::WorkerDied { exit: ExitInfo::Code(99), ref task, .. } if task == "exit"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("terminated abruptly"), "{text}");
    assert!(text.contains("99"), "{text}");
    assert_eq!(
        pool.submit(SQUARE, 7).unwrap().result(Some(SOON)).unwrap(),
        49
    );
}

fn stop_a_blocked_task(stop: fn(&procpool::Pool)) {
    let pool = util::pool(1);
    let pid = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let blocked = pool.submit(STUBBORN, 60).unwrap();
    util::wait_until(SOON, "running", || blocked.running());
    let queued = pool.submit(SQUARE, 2).unwrap();
    let t0 = Instant::now();
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "stopping the workers", {
        let pool = std::sync::Arc::clone(&pool);
        move || stop(&pool)
    });
    assert!(t0.elapsed() < SOON, "took {:?}", t0.elapsed());
    assert_eq!(blocked.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    assert!(queued.cancelled());
    assert!(
        !util::exists(pid),
        "stopping returns once the worker is reaped"
    );
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn terminate_workers_stops_a_blocked_task_and_later_submit_fails() {
    // test_force_shutdown_workers(terminate_workers), test_terminate_workers_stops_pool
    stop_a_blocked_task(procpool::Pool::terminate_workers);
}

#[test]
fn kill_workers_stops_a_blocked_task_and_later_submit_fails() {
    // test_force_shutdown_workers(kill_workers)
    stop_a_blocked_task(procpool::Pool::kill_workers);
}

#[test]
fn terminate_and_kill_workers_on_a_pool_not_started_do_nothing_harmful() {
    // test_terminate_workers_not_started_yet
    let pool = util::pool(1);
    pool.terminate_workers();
    pool.kill_workers();
    assert_eq!(pool.stats().workers_started, 0);
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
    util::within(util::HANG, "dropping the pool", move || drop(pool));
}

#[test]
fn prestarted_workers_start_before_any_submit_and_serve_it() {
    // procpool's own: `prestart` starts workers with the pool (clamped to
    // max_workers) instead of on demand.
    let pool = util::builder(2).prestart(5).build().unwrap();
    util::wait_until(SOON, "two workers started with no submit", || {
        pool.stats().workers_started == 2
    });
    let pids: std::collections::BTreeSet<u32> = (0..20)
        .map(|_| pool.submit(GETPID, ()).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| f.result(Some(SOON)).unwrap())
        .collect();
    assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
    assert_eq!(
        pool.stats().workers_started,
        2,
        "no worker beyond the limit"
    );
}

#[test]
fn a_prestarted_pool_whose_worker_cannot_start_is_broken_before_a_submit() {
    let pool = util::builder(1)
        .worker_program("/nonexistent/procpool-worker")
        .prestart(1)
        .build()
        .unwrap();
    util::wait_until(SOON, "the pool broken", || {
        matches!(pool.submit(NOOP, ()), Err(Error::BrokenPool { .. }))
    });
    match pool.submit(NOOP, ()) {
        Err(Error::BrokenPool { cause, .. }) => {
            assert!(cause.contains("/nonexistent/procpool-worker"), "{cause}")
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
}

#[test]
fn terminate_and_kill_workers_on_a_broken_pool_do_nothing_harmful() {
    // test_terminate_workers_dead_workers
    let pool = util::builder(1)
        .failure_policy(FailurePolicy::BreakPool)
        .build()
        .unwrap();
    let _ = pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON));
    util::wait_until(SOON, "the pool broken", || {
        matches!(pool.submit(NOOP, ()), Err(Error::BrokenPool { .. }))
    });
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "terminate and kill on a broken pool", {
        let pool = std::sync::Arc::clone(&pool);
        move || {
            pool.terminate_workers();
            pool.kill_workers();
        }
    });
    assert!(pool.submit(NOOP, ()).is_err());
}
