//! Submit and map: CPython's `Lib/test/test_concurrent_futures/executor.py`
//! (`ExecutorTest`) and the argument checks of `test_process_pool.py`,
//! Copyright Python Software Foundation, PSF License Agreement; restated, not
//! copied, as the behaviour procpool keeps.
//!
//! Covers: `submit` returns the output; a task's panic is its future's error,
//! with message and backtrace text, and a returned `Err` is just an output;
//! `map` equals the sequential map for chunksize 1 and larger; an error in
//! `map` surfaces at its element, in order; `map` with a timeout (here 2 s
//! against a 60 s element, CPython uses 5 s against 6 s); the bounded
//! lookahead (`buffersize`) and an endless input; the invalid arguments.
//! Every case runs the test worker program, never a mock.

mod util;
use procpool::{Error, MapOptions, Pool};
use procpool_conformance::tasks::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::SOON;

/// `inputs`, counting in `pulled` how many the consumer took.
fn counted<I: Iterator>(inputs: I, pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = I::Item> {
    let pulled = Arc::clone(pulled);
    inputs.inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

// ------------------------------------------------------------------ submit

#[test]
fn submit_returns_the_output() {
    // test_submit: submit(pow, 2, 8).result() == 256
    let pool = util::pool(2);
    let future = pool.submit(SQUARE, 16).unwrap();
    assert_eq!(future.result(Some(SOON)).unwrap(), 256);
    assert!(future.done());
    assert_eq!(future.exception(None).unwrap(), None);
}

#[test]
fn a_panicking_task_fails_its_future_with_the_message_and_the_backtrace_text() {
    let pool = util::pool(1);
    let future = pool.submit(PANIC, "boom: 42".to_owned()).unwrap();
    let err = future.result(Some(SOON)).unwrap_err();
    match &err {
        Error::TaskPanicked {
            task,
            message,
            backtrace,
        } => {
            assert_eq!(task, "panic");
            assert!(message.contains("boom: 42"), "{message}");
            let backtrace = backtrace.as_deref().expect("the worker's backtrace");
            assert!(!backtrace.trim().is_empty());
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    assert!(err.to_string().contains("boom: 42"), "{err}");
    assert_eq!(future.exception(Some(SOON)).unwrap(), Some(err));
    // The worker caught the panic and serves on.
    assert_eq!(
        pool.submit(SQUARE, 3).unwrap().result(Some(SOON)).unwrap(),
        9
    );
}

#[test]
fn a_task_returning_err_is_just_an_output() {
    let pool = util::pool(1);
    let future = pool.submit(FAIL_EVERY_THIRD, 9).unwrap();
    assert_eq!(
        future.result(Some(SOON)).unwrap(),
        Err("9 is a multiple of 3".to_owned())
    );
    assert_eq!(future.exception(None).unwrap(), None, "not a failure");
    assert_eq!(
        pool.submit(FAIL_EVERY_THIRD, 10)
            .unwrap()
            .result(Some(SOON))
            .unwrap(),
        Ok(10)
    );
}

// --------------------------------------------------------------------- map

fn sequential(inputs: impl Iterator<Item = u64>) -> Vec<u64> {
    inputs.map(|x| x * x).collect()
}

#[test]
fn map_equals_the_sequential_map_with_chunksize_1() {
    // test_map
    let pool = util::pool(2);
    let out: Vec<u64> = pool
        .map(SQUARE, 0..100u64, 1)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, sequential(0..100));
}

#[test]
fn map_equals_the_sequential_map_with_larger_chunksizes() {
    // test_process_pool: test_map_chunksize (chunksize 2, 3, ... and one
    // larger than the input)
    let pool = util::pool(2);
    for chunksize in [2, 3, 5, 7, 64, 1000] {
        let out: Vec<u64> = pool
            .map(SQUARE, 0..500u64, chunksize)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, sequential(0..500), "chunksize {chunksize}");
    }
}

#[test]
fn map_of_an_empty_input_yields_nothing() {
    let pool = util::pool(1);
    assert_eq!(pool.map(SQUARE, Vec::<u64>::new(), 1).unwrap().count(), 0);
    assert_eq!(
        pool.map_with(SQUARE, 0..0u64, MapOptions::new().buffersize(2))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        pool.stats().workers_started,
        0,
        "nothing to run, nothing started"
    );
}

#[test]
fn chunksize_0_is_an_invalid_argument() {
    // test_map_chunksize: chunksize -1 and 0 raise ValueError
    let pool = util::pool(1);
    assert!(matches!(
        pool.map(SQUARE, 0..10u64, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        pool.map_with(SQUARE, 0..10u64, MapOptions::new().chunksize(0)),
        Err(Error::InvalidArgument(_))
    ));
}

fn assert_every_third_fails_in_order(pool: &Pool, chunksize: usize) {
    let results: Vec<Result<u64, Error>> = pool
        .map(PANIC_EVERY_THIRD, 1..=20u64, chunksize)
        .unwrap()
        .collect();
    assert_eq!(results.len(), 20, "chunksize {chunksize}");
    for (x, result) in (1..=20u64).zip(results) {
        if x % 3 == 0 {
            match result {
                Err(Error::TaskPanicked { message, .. }) => {
                    assert!(
                        message.contains(&format!("{x} is a multiple of 3")),
                        "{message}"
                    )
                }
                other => panic!("element {x} (chunksize {chunksize}): {other:?}"),
            }
        } else {
            assert_eq!(
                result.unwrap(),
                x * x,
                "element {x} (chunksize {chunksize})"
            );
        }
    }
}

#[test]
fn an_error_in_map_surfaces_at_the_failing_element_in_order_with_chunksize_1() {
    // test_map_exception: the elements before the failing one come first
    let pool = util::pool(2);
    assert_every_third_fails_in_order(&pool, 1);
}

#[test]
fn an_error_in_map_surfaces_at_the_failing_element_in_order_with_chunksize_5() {
    // A failing element does not take the rest of its chunk with it.
    let pool = util::pool(2);
    assert_every_third_fails_in_order(&pool, 5);
}

#[test]
fn map_timeout_yields_the_earlier_results_then_stops_the_slow_call_and_the_pool_still_serves() {
    // test_map_timeout: map(sleep, [0, 0, 6], timeout=5) gives two results,
    // then TimeoutError. One worker, so the slow element runs in the process
    // that served the first two; two more elements wait behind it.
    let pool = util::builder(1).grace(Duration::ZERO).build().unwrap();
    let timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let mut results = pool
        .map_with(
            SLEEP_MS,
            [0, 0, 60_000, 0, 0],
            MapOptions::new().timeout(timeout),
        )
        .unwrap();
    let first = results.next().unwrap().unwrap();
    let second = results.next().unwrap().unwrap();
    assert_eq!(first, second, "one worker served both");
    let err = results.next().unwrap().unwrap_err();
    assert_eq!(err, Error::MapTimedOut { timeout });
    assert!(
        t0.elapsed() >= timeout,
        "timed out early: {:?}",
        t0.elapsed()
    );
    assert!(results.next().is_none(), "the map ends at its timeout");
    drop(results);
    // The worker running the 60 s element was stopped, not left to finish.
    util::assert_gone_within(&[first], SOON);
    util::wait_until(SOON, "the stopped calls counted", || {
        pool.stats().cancelled >= 3
    });
    let next = pool.submit(GETPID, ()).unwrap().result(Some(SOON)).unwrap();
    assert_ne!(next, first, "a fresh worker serves");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn map_takes_only_a_bounded_number_of_inputs_ahead_of_the_consumer() {
    // test_map_buffersize_*: with buffersize b, only b calls are submitted
    // ahead of the consumer.
    let pool = util::pool(2);
    let (chunksize, buffersize) = (2, 3);
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut results = pool
        .map_with(
            SQUARE,
            counted(0..1000u64, &pulled),
            MapOptions::new()
                .chunksize(chunksize)
                .buffersize(buffersize),
        )
        .unwrap();
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "map takes nothing until asked"
    );
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let ahead = pulled.load(Ordering::SeqCst);
    assert!(
        (1..=chunksize * (buffersize + 1)).contains(&ahead),
        "{ahead} inputs taken after one result"
    );
    // Consuming slowly keeps it bounded.
    for x in 1..20u64 {
        assert_eq!(results.next().unwrap().unwrap(), x * x);
        let taken = pulled.load(Ordering::SeqCst);
        let bound = usize::try_from(x).unwrap() + 1 + chunksize * (buffersize + 1);
        assert!(
            taken <= bound,
            "{taken} inputs taken after {} results",
            x + 1
        );
    }
    let rest: Vec<u64> = results.collect::<Result<_, _>>().unwrap();
    assert_eq!(rest, (20..1000u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(pulled.load(Ordering::SeqCst), 1000);
}

#[test]
fn map_over_an_endless_iterator_works_lazily() {
    // test_map_buffersize_on_infinite_iterable
    let pool = util::pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let out: Vec<u64> = pool
        .map_with(
            SQUARE,
            counted(0u64.., &pulled),
            MapOptions::new().chunksize(3).buffersize(2),
        )
        .unwrap()
        .take(25)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, sequential(0..25));
    let taken = pulled.load(Ordering::SeqCst);
    assert!(taken <= 25 + 3 * 3, "{taken} inputs taken for 25 results");
    // The default lookahead is bounded too.
    let out: Vec<u64> = pool
        .map(SQUARE, 0u64.., 1)
        .unwrap()
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, sequential(0..10));
}

#[test]
fn buffersize_0_is_an_invalid_argument() {
    // test_map_buffersize_validation: buffersize 0 and -1 raise ValueError
    let pool = util::pool(1);
    assert!(matches!(
        pool.map_with(SQUARE, 0..10u64, MapOptions::new().buffersize(0)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn max_workers_0_is_an_invalid_argument() {
    // test_process_pool / test_thread_pool: max_workers 0 or -1 raise
    // ValueError (negative numbers cannot be expressed in a usize)
    assert!(matches!(
        util::builder(0).build(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        util::builder(1).max_tasks_per_child(0).build(),
        Err(Error::InvalidArgument(_))
    ));
}
