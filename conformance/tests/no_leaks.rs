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

/// Open fds of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Threads of this process that are a pool's: the manager
/// (`procpool-manager`, truncated by the kernel to 15 bytes) and its
/// spawner (`procpool-spawn`).
fn manager_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|name| {
                let name = name.trim_end();
                name.starts_with("procpool-manage") || name == "procpool-spawn"
            })
        })
        .count()
}

/// Children of this process, zombies included: `/proc/*/stat` entries whose
/// parent pid is ours, with their state.
fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            let state = fields.next()?.chars().next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == me).then_some((pid, state))
        })
        .collect()
}

/// Waits up to `limit` for the process to be back to `baseline` fds, with
/// no manager thread and no child.
fn assert_clean(scenario: &str, baseline: usize, limit: Duration) {
    util::wait_until(limit, &format!("{scenario}: no manager thread"), || {
        manager_threads() == 0
    });
    util::wait_until(limit, &format!("{scenario}: no child process"), || {
        children().is_empty()
    });
    let end = std::time::Instant::now() + limit;
    loop {
        let fds = open_fds();
        if fds == baseline {
            return;
        }
        if std::time::Instant::now() >= end {
            let open: Vec<_> = std::fs::read_dir("/proc/self/fd")
                .expect("/proc/self/fd")
                .flatten()
                .map(|e| std::fs::read_link(e.path()).unwrap_or_default())
                .collect();
            panic!("{scenario}: {fds} fds open, {baseline} before: {open:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn no_fd_thread_or_process_outlives_a_pool_in_any_scenario() {
    let baseline = open_fds();
    assert_eq!(manager_threads(), 0);
    assert!(children().is_empty(), "{:?}", children());

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
            manager_threads() >= 1,
            "the manager thread is found by name"
        );
        assert!(!children().is_empty(), "the workers are found as children");
    }
    assert_clean("normal work", baseline, SOON);

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
    assert_clean("crashes", baseline, SOON);

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
    assert_clean("forked replacements", baseline, SOON);

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
    assert_clean("shutdown(wait = false)", baseline, Duration::from_secs(30));

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
    assert_clean("kill_workers", baseline, SOON);

    // A failing initializer: a broken pool.
    {
        let pool = util::builder(2).initializer(INIT, &true).build().unwrap();
        let f = pool.submit(SQUARE, 2).unwrap();
        assert!(matches!(
            f.result(Some(SOON)),
            Err(Error::BrokenPool { .. })
        ));
    }
    assert_clean("failing initializer", baseline, SOON);

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
    assert_clean("maps stopped early", baseline, SOON);

    // Prestarted workers of a pool never used, dropped at once (some may
    // still be booting).
    {
        let pool = util::builder(2).prestart(2).build().unwrap();
        drop(pool);
    }
    assert_clean("prestarted, never used", baseline, SOON);
}
