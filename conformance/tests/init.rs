//! The initializer: CPython's `Lib/test/test_concurrent_futures/test_init.py`
//! (`InitializerMixin`, `FailingInitializerMixin`), Copyright Python Software
//! Foundation, PSF License Agreement; restated, not copied.
//!
//! Covers: the initializer runs once in every worker before any task (with
//! recycling, so across several processes); an initializer that returns an
//! error or panics breaks the pool within a bounded time, pending futures and
//! later submits fail with a broken-pool error carrying the cause, and no
//! worker process is left (found by an environment tag, since a worker that
//! fails its initializer never runs a task that could tell its pid).

mod util;
use procpool::{Error, Pool};
use procpool_conformance::tasks::*;
use std::collections::HashSet;
use util::SOON;

#[test]
fn the_initializer_runs_once_in_every_worker_before_any_task() {
    // InitializerMixin.test_initializer
    let pool = util::builder(2)
        .initializer(INIT, &false)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let counts: Vec<_> = (0..12)
        .map(|_| pool.submit(INIT_COUNT, ()).unwrap())
        .collect();
    for f in &counts {
        assert_eq!(
            f.result(Some(SOON)).unwrap(),
            1,
            "INIT ran once, before the task"
        );
    }
    // Recycling after 3 tasks: several processes, each initialized.
    let pids: HashSet<u32> = (0..6)
        .map(|_| pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap())
        .collect();
    assert!(pids.len() >= 2, "{pids:?}");
    assert!(pool.stats().workers_started >= 4);
}

/// A pool whose initializer fails breaks, fails what was pending and what
/// comes later with the cause, and leaves no process.
fn assert_breaks(pool: Pool, tag: &str, cause_says: &str) {
    let pending: Vec<_> = (0..5u64).map(|x| pool.submit(SQUARE, x)).collect();
    for f in pending {
        // Perhaps the pool is already broken and submit refuses.
        let err = match f {
            Ok(f) => f.result(Some(SOON)).unwrap_err(),
            Err(e) => e,
        };
        match err {
            Error::BrokenPool { cause, .. } => assert!(cause.contains(cause_says), "{cause}"),
            other => panic!("expected BrokenPool, got {other:?}"),
        }
    }
    util::wait_until(SOON, "submit refused", || pool.submit(NOOP, ()).is_err());
    match pool.submit(SQUARE, 1) {
        Err(Error::BrokenPool { cause, .. }) => assert!(cause.contains(cause_says), "{cause}"),
        other => panic!("expected BrokenPool, got {other:?}"),
    }
    assert!(err_text(&pool).contains(cause_says));
    util::wait_until(SOON, "no worker alive", || pool.stats().workers_alive == 0);
    util::wait_until(SOON, "no tagged worker process", || {
        util::tagged_processes(tag).is_empty()
    });
    drop(pool);
    assert!(util::tagged_processes(tag).is_empty());
}

fn err_text(pool: &Pool) -> String {
    pool.submit(NOOP, ()).unwrap_err().to_string()
}

#[test]
fn an_initializer_returning_an_error_breaks_the_pool_with_its_cause() {
    // FailingInitializerMixin.test_initializer
    let tag = "init-err";
    let pool = util::tagged(util::builder(2), tag)
        .initializer(INIT, &true)
        .build()
        .unwrap();
    assert_breaks(pool, tag, "the initializer was told to fail");
}

#[test]
fn a_panicking_initializer_breaks_the_pool_with_its_message() {
    // FailingInitializerMixin.test_initializer, the error raised
    let tag = "init-panic";
    let pool = util::tagged(util::builder(2), tag)
        .initializer(INIT_PANIC, &())
        .build()
        .unwrap();
    assert_breaks(pool, tag, "the initializer panicked");
}

#[test]
fn a_failing_initializer_never_runs_a_task() {
    // FailingInitializerMixin: a task submitted to it never runs
    let dir = util::TempDir::new("init-never");
    let pool = util::builder(1).initializer(INIT, &true).build().unwrap();
    let f = pool.submit(PID_FILE_SLEEP, (dir.file("pid"), 0)).unwrap();
    assert!(matches!(
        f.result(Some(SOON)),
        Err(Error::BrokenPool { .. })
    ));
    assert!(
        !std::path::Path::new(&dir.file("pid")).exists(),
        "the task ran"
    );
}
