//! Workers started through a launcher (`Launcher::command`), with local
//! wrappers that make the worker not the pool's child: the same promises as
//! for local workers (results, payloads, map, stopping a task and its
//! children, time limits, dead workers, no orphans), and failures that say
//! where. `tests/ssh.rs` runs the same checks over a real sshd.
//!
//! - the relay (`procpool-test-relay`) stands between pool and worker as
//!   ssh does: the worker is its child, the stream passes through it;
//! - the double fork (`sh -c '"$@" &'`) leaves the worker running on its
//!   own: the launcher exits at once, the worker lives on the stream alone.

mod util;

use procpool::{Error, Launcher, Pool, PoolBuilder};
use procpool_conformance::tasks::SQUARE;
use std::time::{Duration, Instant};
use util::launched::{self as check, adopt_orphans, assert_ended_within};
use util::{TempDir, HANG, SOON};

const RELAY: &str = env!("CARGO_BIN_EXE_procpool-test-relay");

fn relay() -> Launcher {
    Launcher::command([RELAY])
        .program(util::WORKER)
        .name("relay")
}

/// A launcher that starts the worker in the background, with the stream,
/// and exits: the worker is an orphan from the start. (A background job's
/// stdin is /dev/null before its redirections: the stream's end is kept on
/// fd 3 first.)
fn double_fork() -> Launcher {
    Launcher::command(["sh", "-c", r#"exec 3<&0; "$@" <&3 3<&- & exit 0"#, "sh"])
        .program(util::WORKER)
        .name("double fork")
}

fn pool_on(launcher: Launcher, slots: usize) -> PoolBuilder {
    Pool::builder()
        .workers_on(launcher, slots)
        .grace(Duration::from_millis(300))
}

#[test]
fn results_payloads_and_maps_through_a_relay_and_a_double_fork() {
    adopt_orphans();
    for launcher in [relay(), double_fork()] {
        let pool = pool_on(launcher, 2).build().unwrap();
        check::serves_results_payloads_and_maps(&pool);
        let workers = check::worker_pids(&pool, 4);
        drop(pool);
        assert_ended_within(&workers, SOON);
    }
}

#[test]
fn abort_stops_a_launched_task_and_its_child() {
    adopt_orphans();
    for launcher in [relay(), double_fork()] {
        let dir = TempDir::new("launched-abort");
        let pool = pool_on(launcher, 1).build().unwrap();
        check::abort_stops_a_task_and_its_child(&pool, &dir);
        let workers = check::worker_pids(&pool, 1);
        drop(pool);
        assert_ended_within(&workers, SOON);
    }
}

#[test]
fn a_time_limit_stops_a_launched_task() {
    adopt_orphans();
    for launcher in [relay(), double_fork()] {
        let pool = pool_on(launcher, 1).build().unwrap();
        check::a_time_limit_stops_a_task(&pool);
        let workers = check::worker_pids(&pool, 1);
        drop(pool);
        assert_ended_within(&workers, SOON);
    }
}

#[test]
fn a_launched_worker_killed_fails_only_its_task_and_says_where() {
    adopt_orphans();
    for (launcher, place) in [(relay(), "relay"), (double_fork(), "double fork")] {
        let dir = TempDir::new("launched-killed");
        let pool = pool_on(launcher, 2).build().unwrap();
        check::a_killed_worker_fails_only_its_task(&pool, &dir, place);
        let workers = check::worker_pids(&pool, 2);
        drop(pool);
        assert_ended_within(&workers, SOON);
    }
}

#[test]
fn killing_the_relay_under_a_task_ends_its_worker_within_seconds() {
    adopt_orphans();
    let dir = TempDir::new("launched-relay-killed");
    let pool = pool_on(relay(), 1).build().unwrap();
    check::killing_the_launcher_ends_the_worker(&pool, &dir, |worker| {
        procpool_testkit::stat(worker)
            .expect("the worker runs")
            .ppid
    });
    let workers = check::worker_pids(&pool, 1);
    drop(pool);
    assert_ended_within(&workers, SOON);
}

#[test]
fn the_pool_dying_ends_a_double_forked_worker() {
    // The worker is nobody's child but init's (here: ours, the subreaper):
    // only its stream ties it to the pool. Dropping the pool's ends of it
    // (what the pool's death does) ends the worker and its task.
    adopt_orphans();
    let dir = TempDir::new("launched-orphan");
    let pool = pool_on(double_fork(), 1).build().unwrap();
    let path = dir.file("pids");
    let _running = pool
        .submit(
            procpool_conformance::tasks::PIDS_FILE_WITH_CHILD,
            (path.clone(), 60_000),
        )
        .unwrap();
    util::wait_until(HANG, "the task's pids", || {
        std::fs::read_to_string(&path).is_ok_and(|s| s.split_whitespace().count() == 2)
    });
    let pids: Vec<u32> = std::fs::read_to_string(&path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    pool.kill_workers();
    assert_ended_within(&pids, SOON);
}

#[test]
fn a_launcher_that_fails_breaks_the_pool_with_its_words_and_no_storm() {
    adopt_orphans();
    let failing = Launcher::command([
        "sh",
        "-c",
        "echo 'ssh: no route to host gpu7' >&2; exit 255",
    ])
    .name("gpu7");
    let pool = pool_on(failing, 2)
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .max_failures_in_a_row(3)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = util::within(HANG, "a pool whose launcher fails", move || {
        let error = pool.submit(SQUARE, 2).unwrap().result(None).unwrap_err();
        (error, pool.stats())
    });
    let (error, stats) = error;
    match &error {
        Error::BrokenPool { cause, .. } => {
            assert!(cause.contains("no route to host gpu7"), "{cause}");
            assert!(cause.contains("3 worker failures in a row"), "{cause}");
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
    assert_eq!(stats.workers_started, 3, "no storm: {stats:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_launcher_that_does_not_exist_breaks_the_pool_at_once_naming_it() {
    let pool = pool_on(Launcher::command(["/nonexistent/launcher", "--x"]), 1)
        .build()
        .unwrap();
    let error = pool
        .submit(SQUARE, 2)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    match &error {
        Error::BrokenPool { cause, source } => {
            assert!(cause.contains("/nonexistent/launcher"), "{cause}");
            assert!(source.is_some(), "the OS error is the source");
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
}

#[test]
fn a_dead_place_is_given_up_while_the_others_serve() {
    // Local workers and a launcher that always fails: the failing place is
    // probed a few times with back-off, then given up; every task runs.
    adopt_orphans();
    let failing = Launcher::command(["sh", "-c", "exit 255"]).name("dead host");
    let pool = Pool::builder()
        .worker_program(util::WORKER)
        .workers_on(Launcher::local(), 1)
        .workers_on(failing, 2)
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .max_failures_in_a_row(3)
        .build()
        .unwrap();
    let results: Vec<_> = (0..20u64)
        .map(|x| pool.submit(SQUARE, x).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| f.result(Some(HANG)))
        .collect();
    assert_eq!(results, (0..20u64).map(|x| Ok(x * x)).collect::<Vec<_>>());
    let stats = pool.stats();
    assert!(stats.worker_failures <= 3, "{stats:?}");
}

#[test]
fn workers_on_and_max_workers_together_are_refused() {
    match Pool::builder()
        .max_workers(2)
        .workers_on(relay(), 2)
        .build()
    {
        Err(Error::InvalidArgument(what)) => assert!(what.contains("workers_on"), "{what}"),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

#[test]
fn a_launched_worker_that_ignores_a_stop_is_cut_off_after_the_grace() {
    // A worker that never reads again (the hostile program, `deaf`, behind
    // the relay): the stop frame is never read, so the pool kills the
    // launcher and ends the stream 2 s after the grace; the task ends
    // cancelled. (This worker has no watchdog of ours: the test kills it.)
    adopt_orphans();
    let hostile = env!("CARGO_BIN_EXE_procpool-hostile-worker");
    let launcher = Launcher::command([RELAY]).program(hostile).name("relay");
    let builder = util::tagged(pool_on(launcher, 1), "launched-deaf").worker_args(["deaf"]);
    let pool = builder.build().unwrap();
    let call = pool.submit(SQUARE, 3).unwrap();
    util::wait_until(SOON, "the deaf worker started", || {
        !util::tagged_processes("launched-deaf").is_empty()
    });
    let started = Instant::now();
    call.abort();
    assert_eq!(call.result(Some(HANG)), Err(Error::Cancelled));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cut off after {:?}",
        started.elapsed()
    );
    drop(pool);
    let lingering = util::tagged_processes("launched-deaf");
    for &pid in &lingering {
        util::kill_9(pid);
    }
    assert_ended_within(&lingering, SOON);
}

#[test]
fn a_launched_worker_of_another_protocol_version_is_refused_naming_both_and_the_place() {
    adopt_orphans();
    let hostile = env!("CARGO_BIN_EXE_procpool-hostile-worker");
    let launcher = Launcher::command([RELAY]).program(hostile).name("old host");
    let pool = pool_on(launcher, 1)
        .worker_args(["old-version"])
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .max_failures_in_a_row(2)
        .build()
        .unwrap();
    let error = pool
        .submit(SQUARE, 2)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    match &error {
        Error::BrokenPool { cause, .. } => {
            let versions = format!(
                "peer speaks protocol version 2, this side speaks {}",
                procpool_ipc::PROTOCOL_VERSION
            );
            assert!(cause.contains(&versions), "both versions: {cause}");
            assert!(cause.contains("on old host"), "the place: {cause}");
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
}
