//! procpool's own: the fork server. A worker that dies is replaced by a fork
//! of a started copy of the program rather than a spawn and exec; the fork
//! must be indistinguishable from a spawned worker (our child, a process
//! group of its own, its own initializer run, stoppable with what it
//! started), and the pool must work the same with the fork server off.

mod util;
use procpool::{Error, Pool};
use procpool_conformance::tasks::*;
use procpool_testkit::{env_var, stat, Stat};
use std::time::Duration;
use util::{HANG, SOON};

/// Kills the pool's only worker until its replacement is a fork (the fork
/// server starts after the pool's first result and may still be starting),
/// and returns the forked worker's pid.
fn forked_worker(pool: &Pool) -> u32 {
    assert!(pool.submit(GETPID, ()).unwrap().result(Some(SOON)).is_ok());
    let mut pid = 0;
    util::wait_until(SOON, "a worker forked by the fork server", || {
        let died = pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON));
        assert!(matches!(died, Err(Error::WorkerDied { .. })), "{died:?}");
        pid = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
        pool.stats().workers_forked >= 1
    });
    pid
}

#[test]
fn a_forked_replacement_is_our_child_in_its_own_group_with_its_own_initializer() {
    let pool = util::builder(1).initializer(INIT, &false).build().unwrap();
    let pid = forked_worker(&pool);
    let Stat { ppid, pgrp, .. } = stat(pid).expect("/proc/PID/stat");
    assert_eq!(
        ppid,
        std::process::id(),
        "the manager's process is its parent"
    );
    assert_eq!(pgrp, pid, "it leads a process group of its own");
    // The initializer ran once in it, not in the fork server it came from.
    assert_eq!(
        pool.submit(INIT_COUNT, ()).unwrap().result(Some(SOON)),
        Ok(1)
    );
    assert_eq!(pool.submit(SQUARE, 12).unwrap().result(Some(SOON)), Ok(144));
    let blob: procpool::ByteBuf = (0..3_000_000u32)
        .map(|i| i as u8)
        .collect::<Vec<u8>>()
        .into();
    let back = pool
        .submit(ECHO, &blob)
        .unwrap()
        .result(Some(SOON))
        .unwrap();
    assert!(back == blob, "a 3 MB echo through a forked worker");
    drop(pool);
    util::assert_gone_within(&[pid], SOON);
}

#[test]
fn a_forked_worker_is_stopped_with_what_it_started() {
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let pid = forked_worker(&pool);
    let dir = util::TempDir::new("forked-grandchild");
    let marker = dir.file("grandchild");
    let task = pool.submit(WITH_GRANDCHILD, (marker.clone(), 60)).unwrap();
    let grandchild = util::read_pid(&marker, SOON);
    assert!(task.abort());
    assert_eq!(task.result(Some(SOON)), Err(Error::Cancelled));
    util::assert_gone_within(&[pid, grandchild], SOON);
    assert_eq!(pool.submit(SQUARE, 3).unwrap().result(Some(SOON)), Ok(9));
}

#[test]
fn a_forked_worker_that_dies_is_reported_with_its_signal_and_replaced() {
    let pool = util::pool(1);
    let pid = forked_worker(&pool);
    match pool.submit(SEGFAULT, ()).unwrap().result(Some(SOON)) {
        Err(Error::WorkerDied { pid: died, .. }) => assert_eq!(died, pid),
        other => panic!("expected the forked worker's death, got {other:?}"),
    }
    let next = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    assert_ne!(next, pid);
    util::assert_gone_within(&[pid], SOON);
}

#[test]
fn with_the_fork_server_off_every_worker_is_spawned() {
    let pool = util::builder(1).fork_server(false).build().unwrap();
    for _ in 0..3 {
        assert!(matches!(
            pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON)),
            Err(Error::WorkerDied { .. })
        ));
        assert_eq!(pool.submit(SQUARE, 5).unwrap().result(Some(SOON)), Ok(25));
    }
    let stats = pool.stats();
    assert_eq!(stats.workers_forked, 0);
    assert!(stats.workers_started >= 4, "{stats:?}");
}

/// The processes of the pool tagged `tag` that carry the fork server's
/// variable in their environment, but for `workers`: its fork server (the
/// workers it forked carry the variable too, in the environment block they
/// inherited).
fn forkserver_pids(tag: &str, workers: &[u32]) -> Vec<u32> {
    util::tagged_processes(tag)
        .into_iter()
        .filter(|pid| !workers.contains(pid))
        .filter(|&pid| env_var(pid, "PROCPOOL_FORKSERVER").is_some())
        .collect()
}

#[test]
fn a_fork_server_killed_from_outside_comes_back() {
    let pool = util::tagged(util::builder(1), "killed-server")
        .build()
        .unwrap();
    let worker = forked_worker(&pool);
    let servers = forkserver_pids("killed-server", &[worker]);
    assert_eq!(servers.len(), 1, "one fork server: {servers:?}");
    util::kill_9(servers[0]);
    let forked = pool.stats().workers_forked;
    // Each KILL_SELF ends a worker. Its replacement finds the server dead
    // and is spawned, and a new server starts (not waited for); a later
    // replacement is forked by it.
    util::wait_until(HANG, "a worker forked by a new fork server", || {
        let died = pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON));
        assert!(
            matches!(died, Err(procpool::Error::WorkerDied { .. })),
            "{died:?}"
        );
        assert_eq!(pool.submit(SQUARE, 4).unwrap().result(Some(SOON)), Ok(16));
        pool.stats().workers_forked > forked
    });
    util::assert_gone_within(&servers, SOON);
    drop(pool);
    assert!(util::tagged_processes("killed-server").is_empty());
}

#[test]
fn a_program_that_is_no_fork_server_gets_its_workers_spawned() {
    // The program runs the test worker without the fork server variable, as
    // a build of another procpool version would ignore it: what answers on
    // the socket is a worker's Hello, not the greeting.
    let pool = util::tagged(Pool::builder(), "no-server")
        .max_workers(1)
        .worker_program("/bin/sh")
        .worker_args([
            "-c".to_owned(),
            format!("exec env -u PROCPOOL_FORKSERVER {}", util::WORKER),
        ])
        .build()
        .unwrap();
    for _ in 0..4 {
        assert_eq!(pool.submit(SQUARE, 6).unwrap().result(Some(SOON)), Ok(36));
        let died = pool.submit(KILL_SELF, ()).unwrap().result(Some(SOON));
        assert!(
            matches!(died, Err(procpool::Error::WorkerDied { .. })),
            "{died:?}"
        );
    }
    assert_eq!(pool.submit(SQUARE, 7).unwrap().result(Some(SOON)), Ok(49));
    assert_eq!(pool.stats().workers_forked, 0);
    let worker = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    // The would-be server was stopped and reaped: only the worker is left.
    util::wait_until(SOON, "the would-be fork server gone", || {
        util::tagged_processes("no-server") == [worker]
    });
}
