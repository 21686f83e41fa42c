//! Workers: CPython's `Lib/test/test_concurrent_futures/test_process_pool.py`
//! (`ProcessPoolExecutorTest`), Copyright Python Software Foundation, PSF
//! License Agreement; restated, not copied, as the behaviour procpool keeps.
//!
//! Covers: exactly `max_workers` processes under a backlog of blocked tasks
//! (saturation); idle workers reused; `max_tasks_per_child` recycling, its
//! limits, and its replacements: after `shutdown(wait = false)`, after the
//! pool is dropped, during `terminate_workers()`, and when the replacement
//! cannot start (its program gone; out of fds, in a host process), under
//! both failure policies; a worker killed while it runs a task, under
//! procpool's default policy (only that task fails) and under CPython's
//! (`FailurePolicy::BreakPool`); a worker exiting with code 99;
//! `terminate_workers()` / `kill_workers()`, the signal each sends, and on
//! pools idle, not started or with a dead worker. Tasks block on a gate file
//! (`util::Gate`), never on a sleep; pids come from the worker itself
//! (`GETPID`, the gate's markers), counts from `Pool::stats`.

mod util;
use procpool::{Error, ExitInfo, FailurePolicy, Signal};
use procpool_conformance::tasks::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn exactly_max_workers_processes_serve_15_times_as_many_blocked_tasks() {
    // test_saturation: 15 * max_workers tasks blocked on a semaphore;
    // len(_processes) == max_workers (CPython's worker_count, 5)
    let workers = 5;
    let gate = util::Gate::new("saturation");
    let pool = util::pool(workers);
    let futures: Vec<_> = (0..15 * workers)
        .map(|i| pool.submit(GATED, gate.task(i, i as u64)).unwrap())
        .collect();
    // Workers start on demand, on the manager's thread: wait until the
    // first `workers` tasks (FIFO) all run, each in its own process.
    let pids: HashSet<u32> = (0..workers).map(|i| gate.wait_started(i, SOON)).collect();
    assert_eq!(pids.len(), workers, "{pids:?}");
    // The manager publishes its gauges at the end of the turn that sent the
    // tasks: wait for that turn, then hold it to the exact counts.
    util::wait_until(SOON, "the gauges of that turn", || {
        let stats = pool.stats();
        stats.running == workers && stats.queued == 14 * workers
    });
    let stats = pool.stats();
    assert_eq!(stats.workers_alive, workers, "{stats:?}");
    assert_eq!(stats.workers_started, workers as u64, "{stats:?}");
    assert!(
        (workers..15 * workers).all(|i| !gate.started(i)),
        "a task beyond the workers started"
    );
    gate.open();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result(Some(util::HANG)).unwrap(), i as u64);
    }
    let all: HashSet<u32> = (0..15 * workers)
        .map(|i| gate.wait_started(i, SOON))
        .collect();
    assert_eq!(all, pids, "every task ran in one of the first processes");
    assert_eq!(pool.stats().workers_started, workers as u64);
}

#[test]
fn idle_workers_are_reused_so_sequential_tasks_run_in_one_process() {
    // test_idle_process_reuse_one: 5 workers (at least 4), three sequential
    // tasks, len(_processes) == 1
    let pool = util::pool(5);
    let pids: Vec<u32> = (0..3)
        .map(|_| pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap())
        .collect();
    assert!(pids.iter().all(|&p| p == pids[0]), "{pids:?}");
    assert_eq!(pool.stats().workers_alive, 1);
    assert_eq!(pool.stats().workers_started, 1);
}

#[test]
fn idle_workers_are_reused_with_waited_and_unwaited_tasks_mixed() {
    // test_idle_process_reuse_multiple: 5 workers (at most 5), three waited
    // tasks each followed by one not waited for: len(_processes) <= 3
    let pool = util::pool(5);
    let mut futures = Vec::new();
    for x in 0..6u64 {
        let f = pool.submit(SQUARE, x).unwrap();
        if x % 2 == 0 {
            f.result(Some(SOON)).unwrap();
        }
        futures.push(f);
    }
    let started = pool.stats().workers_started;
    assert!(started <= 3, "{started} workers started for 6 tasks");
    for (x, f) in (0..6u64).zip(&futures) {
        assert_eq!(f.result(Some(SOON)).unwrap(), x * x);
    }
    pool.shutdown(true, false);
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
fn recycling_with_more_pending_tasks_than_workers_never_deadlocks() {
    // test_max_tasks_per_child_pending_tasks_gh115634: (max_workers,
    // max_tasks_per_child, tasks) = (1, 2, 6) and (2, 2, 8); every result
    // arrives, then shutdown(wait, cancel_futures)
    for (workers, limit, tasks) in [(1, 2, 6u64), (2, 2, 8u64)] {
        let pool = Arc::new(
            util::builder(workers)
                .max_tasks_per_child(limit)
                .build()
                .unwrap(),
        );
        let futures: Vec<_> = (0..tasks)
            .map(|i| pool.submit(ADD, (i, i)).unwrap())
            .collect();
        let results: Vec<u64> = futures
            .iter()
            .map(|f| f.result(Some(util::HANG)).unwrap())
            .collect();
        assert_eq!(results, (0..tasks).map(|i| i * 2).collect::<Vec<_>>());
        util::within(util::HANG, "shutdown(wait, cancel_futures)", {
            let pool = Arc::clone(&pool);
            move || pool.shutdown(true, true)
        });
    }
    // And a larger backlog, submitted and mapped.
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

/// CPython's `_run_stranded_worker_exit_test`: one worker, recycled after
/// each task, three gated tasks; once the first runs, `shutdown(wait =
/// false)` and/or the pool dropped; then the gate opens. The results.
fn stranded_worker_exit(shutdown: bool, drop_pool: bool) -> Vec<Result<u64, Error>> {
    let gate = util::Gate::new("stranded");
    let pool = util::builder(1).max_tasks_per_child(1).build().unwrap();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(GATED, gate.task(i, i as u64)).unwrap())
        .collect();
    gate.wait_started(0, SOON);
    if shutdown {
        pool.shutdown(false, false);
    }
    // Dropping a pool not shut down waits for its tasks, which wait for the
    // gate: drop it on a thread of its own.
    let dropped = drop_pool.then(|| std::thread::spawn(move || drop(pool)));
    gate.open();
    let results = futures.iter().map(|f| f.result(Some(util::HANG))).collect();
    if let Some(dropped) = dropped {
        util::within(util::HANG, "dropping the pool", move || {
            dropped.join().unwrap()
        });
    }
    results
}

#[test]
fn after_shutdown_without_wait_a_recycled_worker_is_replaced_and_the_queued_tasks_run() {
    // test_shutdown_no_wait_max_tasks_gh119592, drop_reference=False
    assert_eq!(stranded_worker_exit(true, false), [Ok(0), Ok(1), Ok(2)]);
}

#[test]
fn a_pool_dropped_after_shutdown_without_wait_still_runs_its_queued_tasks() {
    // test_shutdown_no_wait_max_tasks_gh119592, drop_reference=True: CPython
    // fails tasks 1 and 2 with BrokenProcessPool ("garbage collected");
    // procpool's manager thread finishes the work it was given.
    assert_eq!(stranded_worker_exit(true, true), [Ok(0), Ok(1), Ok(2)]);
}

#[test]
fn a_pool_dropped_without_shutdown_while_its_recycled_worker_exits_runs_every_task() {
    // test_gc_during_max_tasks_worker_exit_gh152967: CPython fails tasks 1
    // and 2 ("garbage collected"); dropping a pool is its `with` block's
    // end here, shutdown(wait = true), which replaces the worker and runs
    // them.
    assert_eq!(stranded_worker_exit(false, true), [Ok(0), Ok(1), Ok(2)]);
}

#[test]
fn a_worker_exiting_at_its_limit_during_terminate_workers_is_not_replaced() {
    // test_force_shutdown_during_max_tasks_worker_exit: the worker's last
    // task returns on SIGTERM (within the grace), so the worker exits at its
    // max_tasks_per_child limit while terminate_workers() runs; the queued
    // tasks end (cancelled here, BrokenProcessPool "forcefully shut down" in
    // CPython) and no replacement starts.
    let tag = "force-during-recycling";
    let dir = util::TempDir::new(tag);
    let pool = util::tagged(util::builder(1), tag)
        .max_tasks_per_child(1)
        .grace(Duration::from_secs(30))
        .build()
        .unwrap();
    let markers: Vec<String> = (0..3).map(|i| dir.file(&format!("task-{i}"))).collect();
    let futures: Vec<_> = markers
        .iter()
        .map(|m| pool.submit(COOPERATIVE, (m.clone(), 60_000)).unwrap())
        .collect();
    util::wait_until(SOON, "the first task's start marker", || {
        std::path::Path::new(&format!("{}.started", markers[0])).exists()
    });
    let pool = Arc::new(pool);
    util::within(util::HANG, "terminate_workers", {
        let pool = Arc::clone(&pool);
        move || pool.terminate_workers()
    });
    assert_eq!(
        std::fs::read_to_string(&markers[0]).unwrap(),
        "cleaned up",
        "the task saw SIGTERM and returned"
    );
    for f in &futures {
        assert_eq!(
            f.result(Some(Duration::ZERO)).unwrap_err(),
            Error::Cancelled
        );
    }
    for m in &markers[1..] {
        assert!(!std::path::Path::new(&format!("{m}.started")).exists());
    }
    assert_eq!(pool.stats().workers_started, 1, "no replacement started");
    assert!(util::tagged_processes(tag).is_empty());
    assert_eq!(pool.submit(NOOP, ()).unwrap_err(), Error::ShutDown);
}

/// A copy of the test worker program in `dir`, which a test may delete.
fn program_copy(dir: &util::TempDir) -> String {
    let copy = dir.file("procpool-test-worker-copy");
    std::fs::copy(util::WORKER, &copy).expect("a copy of the worker program");
    copy
}

fn a_replacement_that_cannot_start_breaks_the_pool(policy: FailurePolicy) {
    let gate = util::Gate::new("unreplaceable");
    let dir = util::TempDir::new("unreplaceable-program");
    let program = program_copy(&dir);
    let pool = util::builder(1)
        .worker_program(&program)
        .fork_server(false)
        .max_tasks_per_child(1)
        .failure_policy(policy)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..3)
        .map(|i| pool.submit(GATED, gate.task(i, i as u64)).unwrap())
        .collect();
    gate.wait_started(0, SOON);
    // The running worker keeps its program; its replacement finds none.
    std::fs::remove_file(&program).unwrap();
    gate.open();
    assert_eq!(futures[0].result(Some(util::HANG)), Ok(0));
    for f in &futures[1..] {
        match f.result(Some(util::HANG)) {
            Err(Error::BrokenPool { cause, source }) => {
                assert!(cause.contains(&program), "{cause}");
                assert_eq!(
                    source.map(|os| os.0.kind()),
                    Some(std::io::ErrorKind::NotFound),
                    "{cause}"
                );
            }
            other => panic!("{policy:?}: expected a broken pool, got {other:?}"),
        }
    }
    assert!(matches!(
        pool.submit(NOOP, ()),
        Err(Error::BrokenPool { .. })
    ));
    util::wait_until(SOON, "no worker alive", || pool.stats().workers_alive == 0);
}

#[test]
fn a_replacement_whose_program_is_gone_breaks_the_pool_under_either_policy() {
    // test_failed_worker_replacement_breaks_pool: the worker exits at its
    // limit and its replacement cannot start (here its program was deleted,
    // a lasting cause): the queued tasks fail with a broken pool naming the
    // cause, whatever the failure policy
    a_replacement_that_cannot_start_breaks_the_pool(FailurePolicy::ReplaceWorker);
    a_replacement_that_cannot_start_breaks_the_pool(FailurePolicy::BreakPool);
}

/// Runs the `--emfile-replacement-host` and returns its lines.
fn emfile_replacement_host(passing: &str, policy: &str) -> Vec<String> {
    let dir = util::TempDir::new("emfile-replacement");
    let dir_path = dir.0.to_string_lossy().into_owned();
    let (ok, out, err) = util::run_host(
        &["--emfile-replacement-host", &dir_path, passing, policy],
        Duration::from_secs(120),
    );
    assert!(ok, "the host failed: {out}{err}");
    out.lines().map(str::to_owned).collect()
}

#[test]
fn a_replacement_that_cannot_start_for_want_of_fds_breaks_the_pool_after_the_retries() {
    // test_failed_worker_replacement_breaks_pool, with a passing cause (out of
    // fds: EMFILE) that does not pass: after max_failures_in_a_row starts
    // (4 here) the queued tasks fail, "could not be started", under either
    // policy
    for policy in ["replace", "break"] {
        let lines = emfile_replacement_host("forever", policy);
        assert_eq!(lines.len(), 3, "{policy}: {lines:?}");
        assert_eq!(lines[0], "0: Ok(0)", "{policy}");
        for line in &lines[1..] {
            assert!(line.contains("Err(BrokenPool"), "{policy}: {line}");
            assert!(
                line.contains("4 worker failures in a row"),
                "{policy}: {line}"
            );
            assert!(line.contains("could not be started"), "{policy}: {line}");
            assert!(line.contains("Too many open files"), "{policy}: {line}");
        }
    }
}

#[test]
fn a_replacement_that_cannot_start_for_a_while_is_retried_and_the_tasks_run() {
    // procpool's own, beside test_failed_worker_replacement_breaks_pool: when
    // the fds come back after two failed starts, the replacement starts and
    // the queued tasks run
    for policy in ["replace", "break"] {
        let lines = emfile_replacement_host("passing", policy);
        assert_eq!(lines, ["0: Ok(0)", "1: Ok(1)", "2: Ok(2)"], "{policy}");
    }
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
        Error::WorkerDied {
            pid, exit, task, ..
        } => {
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
            task: "pid_file_sleep".to_owned(),
            place: None,
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
    assert!(
        text.contains("terminated abruptly (exit code 99)"),
        "{text}"
    );
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
    // test_force_shutdown_workers(terminate_workers)
    stop_a_blocked_task(procpool::Pool::terminate_workers);
}

#[test]
fn kill_workers_stops_a_blocked_task_and_later_submit_fails() {
    // test_force_shutdown_workers(kill_workers)
    stop_a_blocked_task(procpool::Pool::kill_workers);
}

#[test]
fn terminate_workers_sends_sigterm_which_the_running_task_sees() {
    // test_force_shutdown_workers(terminate_workers): worker_process.terminate
    // was called. SIGTERM is what sets `stop_requested`: the task sees it,
    // cleans up and returns long before the 30 s grace would end in a SIGKILL.
    let dir = util::TempDir::new("sigterm");
    let marker = dir.file("marker");
    let pool = util::builder(1)
        .grace(Duration::from_secs(30))
        .build()
        .unwrap();
    let task = pool.submit(COOPERATIVE, (marker.clone(), 60_000)).unwrap();
    util::wait_until(SOON, "the task's start marker", || {
        std::path::Path::new(&format!("{marker}.started")).exists()
    });
    let t0 = Instant::now();
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "terminate_workers", {
        let pool = std::sync::Arc::clone(&pool);
        move || pool.terminate_workers()
    });
    assert!(t0.elapsed() < SOON, "took {:?}", t0.elapsed());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "cleaned up");
    assert_eq!(
        task.result(Some(Duration::ZERO)).unwrap_err(),
        Error::Cancelled
    );
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
}

#[test]
fn kill_workers_sends_sigkill_which_no_task_can_outlast() {
    // test_force_shutdown_workers(kill_workers): worker_process.kill was
    // called. The task ignores SIGTERM and the grace is 60 s, so only a
    // SIGKILL ends its worker at once.
    let dir = util::TempDir::new("sigkill");
    let pool = util::builder(1)
        .grace(Duration::from_secs(60))
        .build()
        .unwrap();
    let pid = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let task = pool
        .submit(PID_FILE_SLEEP, (dir.file("pid"), 60_000))
        .unwrap();
    assert_eq!(util::read_pid(&dir.file("pid"), SOON), pid);
    let t0 = Instant::now();
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "kill_workers", {
        let pool = std::sync::Arc::clone(&pool);
        move || pool.kill_workers()
    });
    assert!(t0.elapsed() < SOON, "took {:?}", t0.elapsed());
    assert!(!util::exists(pid), "the worker is dead and reaped");
    assert_eq!(
        task.result(Some(Duration::ZERO)).unwrap_err(),
        Error::Cancelled
    );
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
}

fn force_shutdown_of_a_pool_not_started(stop: fn(&procpool::Pool), tag: &str) {
    let pool = util::tagged(util::builder(1), tag).build().unwrap();
    stop(&pool);
    assert_eq!(pool.stats().workers_started, 0, "no worker was started");
    assert!(util::tagged_processes(tag).is_empty());
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
    util::within(util::HANG, "dropping the pool", move || drop(pool));
}

#[test]
fn terminate_workers_on_a_pool_not_started_does_nothing_harmful() {
    // test_force_shutdown_workers_not_started_yet(terminate_workers)
    force_shutdown_of_a_pool_not_started(procpool::Pool::terminate_workers, "not-started-term");
}

#[test]
fn kill_workers_on_a_pool_not_started_does_nothing_harmful() {
    // test_force_shutdown_workers_not_started_yet(kill_workers)
    force_shutdown_of_a_pool_not_started(procpool::Pool::kill_workers, "not-started-kill");
}

fn force_shutdown_stops_an_idle_pool(stop: fn(&procpool::Pool)) {
    let pool = util::pool(1);
    let pid = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "stopping the workers", {
        let pool = std::sync::Arc::clone(&pool);
        move || stop(&pool)
    });
    assert_eq!(pool.submit(SQUARE, 3).unwrap_err(), Error::ShutDown);
    assert!(
        !util::exists(pid),
        "the worker is reaped when the call returns"
    );
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn terminate_workers_stops_the_pool() {
    // test_force_shutdown_workers_stops_pool(terminate_workers)
    force_shutdown_stops_an_idle_pool(procpool::Pool::terminate_workers);
}

#[test]
fn kill_workers_stops_the_pool() {
    // test_force_shutdown_workers_stops_pool(kill_workers)
    force_shutdown_stops_an_idle_pool(procpool::Pool::kill_workers);
}

#[test]
fn min_workers_are_started_before_any_submit_and_serve_it() {
    // procpool's own: `min_workers` are started with the pool (clamped to
    // max_workers) instead of on demand: there when `build` returns.
    let pool = util::builder(2).min_workers(5).build().unwrap();
    let stats = pool.stats();
    assert_eq!(
        (stats.workers_started, stats.workers_alive),
        (2, 2),
        "two workers started before any submit"
    );
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
fn a_pool_whose_min_workers_cannot_start_is_broken_before_a_submit() {
    let pool = util::builder(1)
        .worker_program("/nonexistent/procpool-worker")
        .min_workers(1)
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

fn force_shutdown_after_a_worker_died(stop: fn(&procpool::Pool), policy: FailurePolicy) {
    let pool = util::builder(1).failure_policy(policy).build().unwrap();
    let err = pool
        .submit(EXIT, 1)
        .unwrap()
        .result(Some(SOON))
        .unwrap_err();
    assert!(
        matches!(err, Error::WorkerDied { exit: ExitInfo::Code(1), ref task, .. } if task == "exit"),
        "{err:?}"
    );
    match policy {
        FailurePolicy::BreakPool => util::wait_until(SOON, "the pool broken", || {
            matches!(pool.submit(NOOP, ()), Err(Error::BrokenPool { .. }))
        }),
        _ => assert_eq!(
            pool.submit(SQUARE, 2).unwrap().result(Some(SOON)).unwrap(),
            4
        ),
    }
    let pool = std::sync::Arc::new(pool);
    util::within(util::HANG, "stopping the workers after a death", {
        let pool = std::sync::Arc::clone(&pool);
        move || stop(&pool)
    });
    assert!(pool.submit(NOOP, ()).is_err());
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn terminate_workers_after_a_worker_died_does_nothing_harmful() {
    // test_force_shutdown_workers_dead_workers(terminate_workers): os._exit(1)
    // in a task, BrokenProcessPool, then terminate_workers() does not raise
    force_shutdown_after_a_worker_died(procpool::Pool::terminate_workers, FailurePolicy::BreakPool);
    force_shutdown_after_a_worker_died(
        procpool::Pool::terminate_workers,
        FailurePolicy::ReplaceWorker,
    );
}

#[test]
fn kill_workers_after_a_worker_died_does_nothing_harmful() {
    // test_force_shutdown_workers_dead_workers(kill_workers)
    force_shutdown_after_a_worker_died(procpool::Pool::kill_workers, FailurePolicy::BreakPool);
    force_shutdown_after_a_worker_died(procpool::Pool::kill_workers, FailurePolicy::ReplaceWorker);
}
