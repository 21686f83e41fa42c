//! The scenarios people wrote about when Python's executor would not let go
//! of a running task, played against procpool: each must end promptly, with
//! every future settled and no process left.

mod util;
use procpool::{as_completed, Error};
use procpool_conformance::tasks::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::SOON;

#[test]
fn five_100s_tasks_on_two_workers_stop_promptly_after_as_completed_times_out() {
    let pool = util::builder(2)
        .grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..5)
        .map(|_| pool.submit(SLEEP_MS, 100_000).unwrap())
        .collect();
    util::wait_until(SOON, "two running", || pool.stats().running == 2);
    let mut finished = 0;
    let mut timed_out = None;
    for item in as_completed(&futures, Some(Duration::from_millis(200))) {
        match item {
            Ok(_) => finished += 1,
            Err(e) => timed_out = Some(e),
        }
    }
    assert_eq!(finished, 0);
    assert_eq!(
        timed_out.unwrap().to_string(),
        "5 (of 5) futures unfinished"
    );
    let t0 = Instant::now();
    pool.terminate_workers();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    for f in &futures {
        assert_eq!(
            f.result(Some(Duration::ZERO)).unwrap_err(),
            Error::Cancelled
        );
    }
    assert_eq!(pool.stats().workers_alive, 0);
    assert!(matches!(pool.submit(NOOP, ()), Err(Error::ShutDown)));
}

#[test]
fn every_third_fails_collected_with_as_completed_and_callbacks() {
    let pool = util::pool(2);
    let callbacks = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (1..=30u64)
        .map(|x| {
            let f = pool.submit(PANIC_EVERY_THIRD, x).unwrap();
            let seen = Arc::clone(&callbacks);
            f.add_done_callback(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            });
            f
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for f in as_completed(&futures, Some(Duration::from_secs(60))) {
        match f.unwrap().result(None) {
            Ok(_) => ok += 1,
            Err(Error::TaskPanicked { message, .. }) => {
                assert!(message.contains("multiple of 3"), "{message}");
                failed += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, failed), (20, 10));
    util::wait_until(SOON, "callbacks", || callbacks.load(Ordering::SeqCst) == 30);
}

#[test]
fn every_third_fails_awaited_from_tokio() {
    let pool = util::pool(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let futures: Vec<_> = (1..=12u64)
        .map(|x| pool.submit(FAIL_EVERY_THIRD, x).unwrap())
        .collect();
    let outputs = runtime.block_on(async {
        let mut outputs = Vec::new();
        for f in futures {
            outputs.push(f.await.expect("the task ran"));
        }
        outputs
    });
    let errors = outputs.iter().filter(|o| o.is_err()).count();
    assert_eq!(errors, 4, "an Err value is an output: {outputs:?}");
}

#[test]
fn a_tokio_timeout_around_an_awaited_10s_task_stops_its_process() {
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let task = pool.submit(SLEEP_MS, 10_000).unwrap();
    let watch = task.clone();
    let t0 = Instant::now();
    let outcome = runtime.block_on(async {
        tokio::time::timeout(Duration::from_millis(300), task.abort_on_drop()).await
    });
    assert!(outcome.is_err(), "the timeout fired");
    assert_eq!(watch.result(Some(SOON)).unwrap_err(), Error::Cancelled);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    // The worker was replaced: the next task runs at once.
    assert_eq!(
        pool.submit(SQUARE, 6).unwrap().result(Some(SOON)).unwrap(),
        36
    );
}
