//! Chaos: thousands of short tasks (single calls and `map` chunks) while a
//! killer thread SIGKILLs the pool's processes (workers and fork server)
//! every few milliseconds, under both failure policies. Every future must
//! end exactly once, with its output or a failure the policy allows; with
//! `ReplaceWorker` the pool serves afterwards; and the process is back to
//! its fds, threads and children once the pool is gone.
//!
//! One test, alone in its process (the baseline of fds and children is the
//! whole process's). The crash-loop guard is set high: externally killed
//! starts look like a crash loop, which `hostile.rs` covers; here the kills
//! are the point.

mod util;

use procpool::{Error, FailurePolicy, Future};
use procpool_conformance::tasks::SQUARE;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use util::HANG;

/// Tasks are submitted in batches of this many until [`KILLS`] processes
/// were killed (or [`MAX_TASKS`] were submitted).
const BATCH: u64 = 500;
const KILLS: u64 = 300;
const MAX_TASKS: u64 = 200_000;
/// Inputs of the `map` that runs under fire too.
const MAPPED: u64 = 2000;

/// SIGKILLs a process of the pool tagged `tag` every `every`, until `stop`;
/// returns how many it killed. Each kill goes through a pidfd opened while
/// the process still carries the tag, so that a recycled pid is never hit.
fn killer(
    tag: String,
    every: Duration,
    stop: Arc<AtomicBool>,
    kills: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut turn = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let pids = util::tagged_processes(&tag);
            if !pids.is_empty() {
                turn += 1;
                let pid = pids[turn % pids.len()];
                // SAFETY: pidfd_open takes a pid and flags and returns an fd
                // or -1; it touches no memory of ours.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
                if let Ok(fd) = libc::c_int::try_from(fd) {
                    if fd >= 0 && util::tagged_processes(&tag).contains(&pid) {
                        // SAFETY: `fd` is the pidfd just opened; a null info
                        // pointer is allowed; close releases it once.
                        unsafe {
                            if libc::syscall(
                                libc::SYS_pidfd_send_signal,
                                fd,
                                libc::SIGKILL,
                                std::ptr::null::<libc::siginfo_t>(),
                                0,
                            ) == 0
                            {
                                kills.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    if fd >= 0 {
                        // SAFETY: as above.
                        unsafe { libc::close(fd) };
                    }
                }
            }
            std::thread::sleep(every);
        }
    })
}

/// Whether `outcome` of `square(x)` is one the policy allows.
fn allowed(x: u64, outcome: &Result<u64, Error>, policy: FailurePolicy) -> bool {
    match outcome {
        Ok(v) => *v == x * x,
        Err(Error::WorkerDied { .. }) => true,
        Err(Error::BrokenPool { .. }) => policy == FailurePolicy::BreakPool,
        Err(_) => false,
    }
}

fn play(policy: FailurePolicy) {
    let tag = format!("chaos-{policy:?}");
    let pool = util::tagged(util::builder(2), &tag)
        .failure_policy(policy)
        .max_failures_in_a_row(100_000)
        .restart_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killing = killer(
        tag.clone(),
        Duration::from_millis(3),
        Arc::clone(&stop),
        Arc::clone(&kills),
    );

    // Every future counts its done callbacks: each must run exactly once.
    let mut ends: Vec<Arc<AtomicU32>> = Vec::new();
    let mut futures: Vec<Future<u64>> = Vec::new();
    let mut refused = 0;
    let mut x = 0;
    while (kills.load(Ordering::SeqCst) < KILLS || futures.is_empty()) && x < MAX_TASKS {
        for _ in 0..BATCH {
            match pool.submit(SQUARE, x) {
                Ok(f) => {
                    let end = Arc::new(AtomicU32::new(0));
                    let counted = Arc::clone(&end);
                    f.add_done_callback(move |_| {
                        counted.fetch_add(1, Ordering::SeqCst);
                    });
                    ends.push(end);
                    futures.push(f);
                }
                // Only a broken pool refuses, and only under its policy.
                Err(Error::BrokenPool { .. }) if policy == FailurePolicy::BreakPool => refused += 1,
                Err(e) => panic!("submit {x}: {e}"),
            }
            x += 1;
        }
        // Let the workers catch up, so that kills land on running tasks.
        if let Some(last) = futures.last() {
            let _ = last.result(Some(HANG));
        }
        if refused > 0 {
            break;
        }
    }
    let tasks = x;
    let outcomes: Vec<_> = futures.iter().map(|f| f.result(Some(HANG))).collect();
    let mut failed = 0;
    for (x, outcome) in (0..).zip(&outcomes) {
        assert_ne!(outcome, &Err(Error::WaitTimeout), "task {x} hangs");
        assert!(allowed(x, outcome, policy), "task {x}: {outcome:?}");
        failed += u64::from(outcome.is_err());
    }
    let mapped: Vec<_> = match pool.map(SQUARE, 0..MAPPED, 50) {
        Ok(results) => results.collect(),
        Err(e) => vec![Err(e)],
    };
    for (x, outcome) in (0..).zip(&mapped) {
        assert!(allowed(x, outcome, policy), "mapped {x}: {outcome:?}");
    }
    stop.store(true, Ordering::SeqCst);
    killing.join().unwrap();
    let kills = kills.load(Ordering::SeqCst);
    // Callbacks run on the manager thread right after completion: all have
    // by the time every result was read, once each.
    util::wait_until(util::SOON, "every done callback", || {
        ends.iter().all(|n| n.load(Ordering::SeqCst) >= 1)
    });
    for (x, n) in ends.iter().enumerate() {
        assert_eq!(n.load(Ordering::SeqCst), 1, "task {x} ended more than once");
    }
    if policy == FailurePolicy::ReplaceWorker {
        let after: Vec<_> = (0..50)
            .map(|x| pool.submit(SQUARE, x).unwrap().result(Some(HANG)))
            .collect();
        assert_eq!(after, (0..50).map(|x| Ok(x * x)).collect::<Vec<_>>());
    }
    let stats = pool.stats();
    eprintln!(
        "chaos ({policy:?}): {tasks} tasks and {MAPPED} mapped inputs, {kills} processes \
         SIGKILLed, {failed} tasks failed, {refused} refused; {stats:?}"
    );
    assert!(kills > 0, "nothing was killed");
    RUNS.fetch_add(1, Ordering::SeqCst);
    drop(pool);
    assert!(util::tagged_processes(&tag).is_empty());
}

static RUNS: AtomicU64 = AtomicU64::new(0);

#[test]
fn every_future_ends_once_while_workers_are_killed_every_few_milliseconds() {
    let baseline = util::Baseline::now();
    for policy in [FailurePolicy::ReplaceWorker, FailurePolicy::BreakPool] {
        play(policy);
        baseline.assert_back(&format!("chaos {policy:?}"), util::SOON);
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
}
