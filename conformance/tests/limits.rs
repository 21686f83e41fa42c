//! procpool's own production limits, with real workers: the bounded backlog
//! (`submit` blocks, `try_submit` says full, `submit_async` waits without a
//! thread), priorities, the memory ceiling and the hard cap per worker,
//! idle workers and `min_workers`, and the workers' directory and
//! environment.
//!
//! Tasks that must still be waiting when the test looks are held by a gate
//! (`GATED` blocks until a file exists), never by a sleep.

mod util;

use procpool::{Error, FailurePolicy, Pool, SubmitOptions};
use procpool_conformance::tasks::{ALLOCATE_MIB, CWD_AND_ENV, GATED, LEAK_MIB, RUN_ORDER, SQUARE};
use std::sync::Arc;
use std::time::Duration;
use util::{TempDir, HANG, SOON};

const MIB: u64 = 1 << 20;

/// Submits a `GATED` task and waits until it runs: its worker is busy until
/// `gate` exists. Returns its future.
fn occupy(pool: &Pool, dir: &TempDir, name: &str, gate: &str) -> procpool::Future<u64> {
    let marker = dir.file(name);
    let future = pool
        .submit(GATED, (marker.clone(), gate.to_owned(), 7))
        .unwrap();
    util::read_pid(&marker, SOON);
    future
}

#[test]
fn a_full_backlog_blocks_submit_until_room_frees_and_try_submit_says_full() {
    let dir = TempDir::new("backlog");
    let gate = dir.file("gate");
    let pool = Arc::new(util::builder(1).max_pending(2).build().unwrap());
    let running = occupy(&pool, &dir, "running", &gate);
    let waiting: Vec<_> = (1..=2).map(|x| pool.submit(SQUARE, x).unwrap()).collect();
    util::wait_until(SOON, "two tasks queued", || pool.stats().queued == 2);
    match pool.try_submit(SQUARE, 3) {
        Err(Error::Full { capacity: 2 }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    let producer = std::thread::spawn({
        let pool = Arc::clone(&pool);
        move || pool.submit(SQUARE, 4).map(|f| f.result(Some(SOON)))
    });
    util::wait_until(SOON, "the producer blocked in submit", || {
        pool.stats().blocked_submitters == 1
    });
    assert!(
        !producer.is_finished(),
        "it waits while the backlog is full"
    );
    std::fs::write(&gate, b"").unwrap();
    let produced = util::within(HANG, "the blocked producer", move || {
        producer.join().unwrap()
    });
    assert_eq!(produced.unwrap(), Ok(16));
    assert_eq!(running.result(Some(SOON)), Ok(7));
    let results: Vec<_> = waiting.iter().map(|f| f.result(Some(SOON))).collect();
    assert_eq!(results, vec![Ok(1), Ok(4)]);
    let stats = pool.stats();
    assert_eq!((stats.blocked_submitters, stats.submits_waited), (0, 1));
    assert!(pool.try_submit(SQUARE, 5).is_ok(), "room again");
}

#[test]
fn a_submit_blocked_on_a_full_backlog_returns_shut_down_when_the_pool_shuts_down() {
    let dir = TempDir::new("backlog-shutdown");
    let gate = dir.file("gate");
    let pool = Arc::new(util::builder(1).max_pending(1).build().unwrap());
    let running = occupy(&pool, &dir, "running", &gate);
    let queued = pool.submit(SQUARE, 2).unwrap();
    let producer = std::thread::spawn({
        let pool = Arc::clone(&pool);
        move || pool.submit(SQUARE, 3).map(drop)
    });
    util::wait_until(SOON, "the producer blocked in submit", || {
        pool.stats().blocked_submitters == 1
    });
    pool.shutdown(false, false);
    let refused = util::within(HANG, "the blocked producer", move || {
        producer.join().unwrap()
    });
    assert_eq!(refused, Err(Error::ShutDown));
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(running.result(Some(SOON)), Ok(7));
    assert_eq!(queued.result(Some(SOON)), Ok(4), "what was in still runs");
}

#[test]
fn async_submitters_wait_for_room_without_a_thread_each() {
    // 200 submitters on a current-thread runtime, with room for one task:
    // all of them wait at once on the one thread, then all are served.
    let dir = TempDir::new("backlog-async");
    let gate = dir.file("gate");
    let pool = Arc::new(util::builder(1).max_pending(1).build().unwrap());
    let running = occupy(&pool, &dir, "running", &gate);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async {
        let submitters: Vec<_> = (0..200u64)
            .map(|x| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.submit_async(SQUARE, x).await?.await })
            })
            .collect();
        let deadline = tokio::time::Instant::now() + SOON;
        while pool.stats().blocked_submitters < 199 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "199 submitters waiting at once: {:?}",
                pool.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::fs::write(&gate, b"").unwrap();
        let mut results = Vec::new();
        for submitter in submitters {
            results.push(submitter.await.unwrap());
        }
        results
    });
    assert_eq!(running.result(Some(SOON)), Ok(7));
    let expected: Vec<Result<u64, Error>> = (0..200u64).map(|x| Ok(x * x)).collect();
    assert_eq!(results, expected);
    assert_eq!(pool.stats().submits_waited, 199);
}

#[test]
fn a_dropped_async_submit_gives_its_place_in_line_to_the_next() {
    let dir = TempDir::new("backlog-async-drop");
    let gate = dir.file("gate");
    let pool = util::builder(1).max_pending(1).build().unwrap();
    let running = occupy(&pool, &dir, "running", &gate);
    let queued = pool.submit(SQUARE, 2).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let later = runtime.block_on(async {
        // Gives up while in line: nothing was sent.
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), pool.submit_async(SQUARE, 3)).await;
        assert!(gave_up.is_err(), "it waited: the backlog is full");
        assert_eq!(pool.stats().blocked_submitters, 0, "out of line");
        let later = pool.submit_async(SQUARE, 4);
        std::fs::write(&gate, b"").unwrap();
        later.await.unwrap().await
    });
    assert_eq!(later, Ok(16));
    assert_eq!(queued.result(Some(SOON)), Ok(4));
    assert_eq!(running.result(Some(SOON)), Ok(7));
    assert_eq!(pool.stats().finished, 3, "the dropped submit never ran");
}

#[test]
fn pending_tasks_run_highest_priority_first_and_in_order_within_one() {
    let dir = TempDir::new("priority");
    let gate = dir.file("gate");
    let pool = util::builder(1).build().unwrap();
    let running = occupy(&pool, &dir, "running", &gate);
    let priorities = [0, 5, -3, 5, 10, 0, -3];
    let futures: Vec<_> = priorities
        .iter()
        .map(|&p| {
            let options = SubmitOptions::new().priority(p);
            pool.submit_with(RUN_ORDER, p, options).unwrap()
        })
        .collect();
    let levels = vec![(10, 1), (5, 2), (0, 2), (-3, 2)];
    util::wait_until(SOON, "the tasks queued by priority", || {
        pool.stats().queued_by_priority == levels
    });
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(running.result(Some(SOON)), Ok(7));
    let mut ran: Vec<(u64, usize)> = futures
        .iter()
        .enumerate()
        .map(|(at, f)| (f.result(Some(SOON)).unwrap(), at))
        .collect();
    ran.sort_unstable();
    let order: Vec<usize> = ran.into_iter().map(|(_, at)| at).collect();
    // 10; the two 5s in submit order; the two 0s; the two -3s.
    assert_eq!(order, vec![4, 1, 3, 0, 5, 2, 6]);
    assert_eq!(pool.stats().queued_by_priority, vec![]);
}

#[test]
fn a_leaking_task_under_a_memory_ceiling_runs_on_fresh_workers_and_every_result_arrives() {
    let pool = util::builder(2)
        .max_memory_per_child(64 * MIB)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..6)
        .map(|_| pool.submit(LEAK_MIB, 100).unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|f| f.result(Some(HANG)).expect("every result arrives"))
        .collect();
    let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "each call on a fresh worker: {pids:?}");
    util::assert_gone_within(&pids, SOON);
    let stats = pool.stats();
    assert_eq!(stats.recycled_for_memory, 6, "{stats:?}");
    // A task that stays under the ceiling keeps its worker.
    let small: Vec<u32> = (0..20)
        .map(|_| {
            pool.submit(procpool_conformance::tasks::GETPID, ())
                .unwrap()
        })
        .collect::<Vec<_>>()
        .iter()
        .map(|f| f.result(Some(SOON)).unwrap())
        .collect();
    let workers: std::collections::BTreeSet<u32> = small.into_iter().collect();
    assert!(workers.len() <= 2, "{workers:?}");
    assert_eq!(pool.stats().recycled_for_memory, 6);
}

#[test]
fn an_allocation_past_the_memory_limit_fails_that_task_with_out_of_memory_and_the_pool_goes_on() {
    for policy in [FailurePolicy::ReplaceWorker, FailurePolicy::BreakPool] {
        let pool = util::builder(1)
            .memory_limit(512 * MIB)
            .failure_policy(policy)
            .build()
            .unwrap();
        let error = pool
            .submit(ALLOCATE_MIB, 4096)
            .unwrap()
            .result(Some(HANG))
            .unwrap_err();
        match &error {
            Error::OutOfMemory { task, limit, .. } => {
                assert_eq!(task, "allocate_mib");
                assert_eq!(*limit, Some(512 * MIB));
            }
            other => panic!("{policy:?}: expected out of memory, got {other:?}"),
        }
        assert!(error.to_string().contains("ran out of memory"), "{error}");
        assert_eq!(
            pool.submit(ALLOCATE_MIB, 16).unwrap().result(Some(SOON)),
            Ok(16 * MIB),
            "{policy:?}: the pool goes on; an allocation within the limit works"
        );
        let stats = pool.stats();
        assert_eq!((stats.out_of_memory, stats.failed), (1, 1), "{stats:?}");
    }
}

#[test]
fn idle_workers_exit_after_the_idle_timeout_and_come_back_on_demand() {
    let dir = TempDir::new("idle");
    let pool = util::builder(3)
        .min_workers(1)
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(
        pool.stats().workers_alive,
        1,
        "min_workers before any submit"
    );
    let busy = |round: &str| {
        let gate = dir.file(&format!("gate-{round}"));
        let futures: Vec<_> = (0..3)
            .map(|i| occupy(&pool, &dir, &format!("{round}-{i}"), &gate))
            .collect();
        let pids: Vec<u32> = (0..3)
            .map(|i| util::read_pid(&dir.file(&format!("{round}-{i}")), SOON))
            .collect();
        std::fs::write(&gate, b"").unwrap();
        for f in futures {
            assert_eq!(f.result(Some(SOON)), Ok(7));
        }
        pids
    };
    let first = busy("first");
    util::wait_until(SOON, "two idle workers retired", || {
        pool.stats().workers_alive == 1
    });
    let stats = pool.stats();
    assert_eq!(stats.idle_exits, 2, "{stats:?}");
    assert_eq!(stats.workers_replaced, 0, "an idle exit is no replacement");
    let kept: Vec<u32> = first.iter().copied().filter(|&p| util::exists(p)).collect();
    assert_eq!(kept.len(), 1, "the min_workers one stays: {first:?}");
    let second = busy("second");
    assert!(second.contains(&kept[0]), "the kept worker serves again");
    assert_eq!(pool.stats().workers_started, 5, "two came back on demand");
}

#[test]
fn workers_start_in_the_given_directory_with_the_given_environment() {
    let dir = TempDir::new("cwd");
    let names = vec!["PATH".to_owned(), "PROCPOOL_LIMITS_SET".to_owned()];
    for fork_server in [true, false] {
        let pool = util::builder(1)
            .fork_server(fork_server)
            .worker_cwd(&dir.0)
            .worker_env("PROCPOOL_LIMITS_SET", "yes")
            .worker_env_remove("PATH")
            .build()
            .unwrap();
        let (cwd, vars) = pool
            .submit(CWD_AND_ENV, names.clone())
            .unwrap()
            .result(Some(SOON))
            .unwrap();
        assert_eq!(
            std::fs::canonicalize(&cwd).unwrap(),
            std::fs::canonicalize(&dir.0).unwrap(),
            "fork server {fork_server}"
        );
        assert_eq!(vars, vec![None, Some("yes".to_owned())]);
    }
    let cleared = util::builder(1)
        .worker_env("PROCPOOL_LIMITS_DROPPED", "1")
        .worker_env_clear()
        .worker_env("PROCPOOL_LIMITS_SET", "only this")
        .build()
        .unwrap();
    let names = vec![
        "PATH".to_owned(),
        "PROCPOOL_LIMITS_DROPPED".to_owned(),
        "PROCPOOL_LIMITS_SET".to_owned(),
    ];
    let (_, vars) = cleared
        .submit(CWD_AND_ENV, names)
        .unwrap()
        .result(Some(SOON))
        .unwrap();
    assert_eq!(vars, vec![None, None, Some("only this".to_owned())]);
}

#[test]
fn limits_that_make_no_sense_are_refused_when_the_pool_is_built() {
    let refused = |builder: procpool::PoolBuilder, says: &str| match builder.build() {
        Err(Error::InvalidArgument(what)) => assert!(what.contains(says), "{what}"),
        other => panic!("expected an invalid argument about {says}, got {other:?}"),
    };
    refused(util::builder(1).max_pending(0), "max_pending");
    refused(util::builder(1).memory_limit(MIB), "memory_limit");
    refused(
        util::builder(1).max_memory_per_child(0),
        "max_memory_per_child",
    );
    refused(
        util::builder(1).idle_timeout(Duration::ZERO),
        "idle_timeout",
    );
    refused(
        util::builder(1).worker_cwd("/nonexistent/procpool-dir"),
        "worker_cwd",
    );
}

#[test]
fn a_done_callback_that_submits_to_a_full_backlog_is_let_in_rather_than_deadlock() {
    // Done callbacks run on the pool's manager thread, the thread that frees
    // places in the backlog: a submit there must not wait for one.
    let dir = TempDir::new("backlog-callback");
    let gate = dir.file("gate");
    let pool = Arc::new(util::builder(1).max_pending(1).build().unwrap());
    let running = occupy(&pool, &dir, "running", &gate);
    let queued = pool.submit(SQUARE, 2).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    running.add_done_callback({
        let pool = Arc::clone(&pool);
        move |_| {
            let _ = tx.send(pool.submit(SQUARE, 3));
        }
    });
    let blocked = std::thread::spawn({
        let pool = Arc::clone(&pool);
        move || pool.submit(SQUARE, 4).map(|f| f.result(Some(SOON)))
    });
    util::wait_until(SOON, "a submitter blocked", || {
        pool.stats().blocked_submitters == 1
    });
    std::fs::write(&gate, b"").unwrap();
    let chained = util::within(HANG, "the callback's submit", move || {
        rx.recv().expect("the callback ran")
    });
    assert_eq!(chained.unwrap().result(Some(SOON)), Ok(9));
    assert_eq!(queued.result(Some(SOON)), Ok(4));
    let blocked = util::within(HANG, "the blocked submitter", move || {
        blocked.join().unwrap()
    });
    assert_eq!(blocked.unwrap(), Ok(16));
}
