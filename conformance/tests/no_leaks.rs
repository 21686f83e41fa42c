//! Nothing of a pool outlives it: CPython's
//! `Lib/test/test_concurrent_futures/test_shutdown.py` (`test_processes_terminate`,
//! `test_del_shutdown`, `test_shutdown_no_wait`: the manager thread, the
//! processes and the queues are all joined), Copyright Python Software
//! Foundation, PSF License Agreement; restated, not copied.
//!
//! One test, so that it is alone in its process (cargo runs each test file as
//! a process of its own): it plays several scenarios in sequence and, after
//! each pool is dropped, checks the whole process: the count of open fds is
//! back to its baseline, no `procpool-manager` thread is left, and no child
//! process is left (zombies included).

mod util;
use procpool::Error;
use procpool_conformance::tasks::*;
use std::time::Duration;
use util::SOON;

#[test]
fn no_fd_thread_or_process_outlives_a_pool_in_any_scenario() {
    let baseline = util::Baseline::now();

    // Normal work: submit and map on two workers.
    {
        let pool = util::pool(2);
        assert_eq!(
            pool.submit(SQUARE, 3).unwrap().result(Some(SOON)).unwrap(),
            9
        );
        let sum: u64 = pool
            .map(SQUARE, 0..200u64, 7)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(sum, (0..200u64).map(|x| x * x).sum());
        // The manager, and the spawner if it has started.
        assert!(
            util::manager_threads() >= 1,
            "the manager thread is found by name"
        );
        assert!(
            !util::children().is_empty(),
            "the workers are found as children"
        );
    }
    baseline.assert_back("normal work", SOON);

    // Crashes: a killed worker, a segfault, a protocol-level decode error,
    // each replaced, and recycling.
    {
        let pool = util::builder(2).max_tasks_per_child(2).build().unwrap();
        let killed = pool.submit(KILL_SELF, ()).unwrap();
        let crashed = pool.submit(SEGFAULT, ()).unwrap();
        let wrong = pool.submit(WRONG_OUTPUT_TYPE, ()).unwrap();
        assert!(matches!(
            killed.result(Some(SOON)),
            Err(Error::WorkerDied { .. })
        ));
        assert!(matches!(
            crashed.result(Some(SOON)),
            Err(Error::WorkerDied { .. })
        ));
        assert!(matches!(wrong.result(Some(SOON)), Err(Error::Codec(_))));
        for x in 0..10u64 {
            assert_eq!(
                pool.submit(SQUARE, x).unwrap().result(Some(SOON)).unwrap(),
                x * x
            );
        }
    }
    baseline.assert_back("crashes", SOON);

    // Replacements forked by the fork server: it and its forks go too.
    {
        let pool = util::pool(1);
        assert_eq!(pool.submit(SQUARE, 2).unwrap().result(Some(SOON)), Ok(4));
        util::wait_until(SOON, "a forked worker", || {
            let _ = pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON));
            assert_eq!(pool.submit(SQUARE, 2).unwrap().result(Some(SOON)), Ok(4));
            pool.stats().workers_forked >= 1
        });
    }
    baseline.assert_back("forked replacements", SOON);

    // shutdown(wait = false) with running tasks, then the futures, then drop:
    // the manager thread finishes on its own.
    {
        let pool = util::pool(2);
        let futures: Vec<_> = (0..3)
            .map(|_| pool.submit(SLEEP_MS, 300).unwrap())
            .collect();
        util::wait_until(SOON, "running", || pool.stats().running > 0);
        pool.shutdown(false, false);
        for f in &futures {
            f.result(Some(SOON)).unwrap();
        }
        drop(pool);
    }
    baseline.assert_back("shutdown(wait = false)", Duration::from_secs(30));

    // kill_workers with blocked tasks.
    {
        let pool = util::pool(2);
        let futures: Vec<_> = (0..2).map(|_| pool.submit(STUBBORN, 60).unwrap()).collect();
        util::wait_until(SOON, "both running", || futures.iter().all(|f| f.running()));
        pool.kill_workers();
        for f in &futures {
            assert_eq!(f.result(Some(SOON)).unwrap_err(), Error::Cancelled);
        }
    }
    baseline.assert_back("kill_workers", SOON);

    // A failing initializer: a broken pool.
    {
        let pool = util::builder(2).initializer(INIT, &true).build().unwrap();
        let f = pool.submit(SQUARE, 2).unwrap();
        assert!(matches!(
            f.result(Some(SOON)),
            Err(Error::BrokenPool { .. })
        ));
    }
    baseline.assert_back("failing initializer", SOON);

    // A map dropped half way, and one that timed out.
    {
        let pool = util::builder(2).grace(Duration::ZERO).build().unwrap();
        let mut results = pool.map(SLEEP_MS, [0, 0, 60_000, 60_000, 0], 1).unwrap();
        results.next().unwrap().unwrap();
        drop(results);
        let timed_out: Vec<_> = pool
            .map_with(
                SLEEP_MS,
                [0, 60_000],
                procpool::MapOptions::new().timeout(Duration::from_millis(500)),
            )
            .unwrap()
            .collect();
        assert!(matches!(
            timed_out.last(),
            Some(Err(Error::MapTimedOut { .. }))
        ));
    }
    baseline.assert_back("maps stopped early", SOON);

    // Workers kept warm of a pool never used, dropped at once (some may
    // still be booting).
    {
        let pool = util::builder(2).min_workers(2).build().unwrap();
        drop(pool);
    }
    baseline.assert_back("min_workers, never used", SOON);

    // The production limits: workers recycled for memory, one aborted by
    // an allocation past its limit, idle workers retired, a backlog whose
    // blocked submitter is refused at shutdown.
    {
        let pool = util::builder(1)
            .max_memory_per_child(32 << 20)
            .memory_limit(512 << 20)
            .idle_timeout(Duration::from_millis(100))
            .max_pending(1)
            .build()
            .unwrap();
        let leaked = pool.submit(LEAK_MIB, 64).unwrap();
        let oom = pool.submit(ALLOCATE_MIB, 4096).unwrap();
        assert!(leaked.result(Some(SOON)).is_ok());
        assert!(matches!(
            oom.result(Some(SOON)),
            Err(Error::OutOfMemory { .. })
        ));
        util::wait_until(SOON, "every worker retired for idleness", || {
            pool.stats().workers_alive == 0
        });
        let pool = std::sync::Arc::new(pool);
        let dir = util::TempDir::new("no-leaks-backlog");
        let gate = dir.file("gate");
        let running = pool
            .submit(GATED, (dir.file("running"), gate.clone(), 1))
            .unwrap();
        util::read_pid(&dir.file("running"), SOON);
        let queued = pool.submit(SQUARE, 2).unwrap();
        let blocked = std::thread::spawn({
            let pool = std::sync::Arc::clone(&pool);
            move || pool.submit(SQUARE, 3).map(drop)
        });
        util::wait_until(SOON, "a blocked submitter", || {
            pool.stats().blocked_submitters == 1
        });
        pool.shutdown(false, true);
        assert_eq!(blocked.join().unwrap(), Err(Error::ShutDown));
        assert_eq!(queued.result(Some(SOON)), Err(Error::Cancelled));
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(running.result(Some(SOON)), Ok(1));
    }
    baseline.assert_back("production limits", SOON);
}
