//! Submit and map: CPython's `Lib/test/test_concurrent_futures/executor.py`
//! (`ExecutorTest`) and the argument checks of `test_process_pool.py`,
//! Copyright Python Software Foundation, PSF License Agreement; restated, not
//! copied, as the behaviour procpool keeps.
//!
//! Covers: `submit` returns the output; a task's panic is its future's error,
//! with message and backtrace text, and a returned `Err` is just an output;
//! `map` equals the sequential map for chunksize 1 and larger; an error in
//! `map` surfaces at its element, in order, and the map goes on; an
//! element's own timeout is not the map's; `map` with a timeout (here 2 s
//! against a 60 s element, CPython uses 5 s against 6 s); dropping a map (its
//! `close()`); the bounded lookahead (`buffersize`), exactly as many inputs
//! taken as CPython takes, zipped and endless inputs; a shutdown with a
//! map's calls queued; the invalid arguments.
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
            // CPython: the child's traceback names the raising line. The
            // message names the panic's place; the backtrace, the task.
            assert!(message.contains("conformance/src/lib.rs"), "{message}");
            let backtrace = backtrace.as_deref().expect("the worker's backtrace");
            assert!(backtrace.contains("procpool_conformance"), "{backtrace}");
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
    // CPython's: 40 inputs in chunks of 6, 50 and 40.
    for chunksize in [6, 50, 40] {
        let out: Vec<u64> = pool
            .map(SQUARE, 0..40u64, chunksize)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, sequential(0..40), "chunksize {chunksize}");
    }
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

/// The next item of a map of `PANIC_EVERY_THIRD`: the square, or the
/// panic's message.
fn next_of<I: Iterator<Item = Result<u64, Error>>>(map: &mut I) -> Option<Result<u64, String>> {
    map.next().map(|item| {
        item.map_err(|e| match e {
            Error::TaskPanicked { message, .. } => message,
            other => panic!("expected a panic, got {other:?}"),
        })
    })
}

#[test]
fn an_error_in_map_comes_at_its_element_then_the_map_goes_on_and_ends_for_good() {
    // test_map_exception (gh-108518: the map goes on after an error):
    // divmod by [2, 3, 0, 5], then by [2, 0, 3, 5] in chunks of 3; after
    // the last element, StopIteration twice
    let pool = util::pool(2);
    let mut map = pool.map(PANIC_EVERY_THIRD, [1, 2, 3, 4u64], 1).unwrap();
    assert_eq!(next_of(&mut map), Some(Ok(1)));
    assert_eq!(next_of(&mut map), Some(Ok(4)));
    let failed = next_of(&mut map);
    assert!(
        failed.as_ref().is_some_and(|f| f
            .as_ref()
            .is_err_and(|m| m.contains("3 is a multiple of 3"))),
        "{failed:?}"
    );
    assert_eq!(next_of(&mut map), Some(Ok(16)));
    assert_eq!(next_of(&mut map), None);
    assert_eq!(next_of(&mut map), None);

    let mut map = pool.map(PANIC_EVERY_THIRD, [1, 3, 2, 4u64], 3).unwrap();
    assert_eq!(next_of(&mut map), Some(Ok(1)));
    let failed = next_of(&mut map);
    assert!(
        failed.as_ref().is_some_and(|f| f
            .as_ref()
            .is_err_and(|m| m.contains("3 is a multiple of 3"))),
        "{failed:?}"
    );
    assert_eq!(next_of(&mut map), Some(Ok(4)));
    assert_eq!(next_of(&mut map), Some(Ok(16)));
    assert_eq!(next_of(&mut map), None);
    assert_eq!(next_of(&mut map), None);
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
    assert!(results.next().is_none(), "and stays ended");
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
fn a_time_limit_failing_an_element_is_not_the_maps_timeout_and_the_map_goes_on() {
    // test_map_timeout_from_callable: an element that fails with a timeout
    // of its own (here the pool's per-task time limit, Error::TimedOut) is
    // that element's error, not the map's timeout, with or without one:
    // the later elements follow, then the end
    let limit = Duration::from_secs(2);
    let pool = util::builder(2)
        .time_limit(limit)
        .grace(Duration::ZERO)
        .build()
        .unwrap();
    for timeout in [None, Some(util::HANG)] {
        let mut options = MapOptions::new();
        if let Some(timeout) = timeout {
            options = options.timeout(timeout);
        }
        let mut map = pool
            .map_with(SLEEP_MS, [0, 600_000, 0, 0], options)
            .unwrap();
        assert!(map.next().unwrap().is_ok(), "{timeout:?}");
        assert_eq!(
            map.next().unwrap().unwrap_err(),
            Error::TimedOut {
                task: "sleep_ms".to_owned(),
                limit
            },
            "{timeout:?}"
        );
        assert!(map.next().unwrap().is_ok(), "{timeout:?}");
        assert!(map.next().unwrap().is_ok(), "{timeout:?}");
        assert!(map.next().is_none(), "{timeout:?}");
    }
}

fn dropping_a_map_stops_its_remaining_calls(chunksize: usize, inputs: Vec<u64>, stopped: u64) {
    let pool = util::builder(2).grace(Duration::ZERO).build().unwrap();
    let before = pool.stats().cancelled;
    let mut map = pool.map(SLEEP_MS, inputs, chunksize).unwrap();
    assert!(map.next().unwrap().is_ok());
    drop(map);
    util::wait_until(SOON, "the remaining calls stopped", || {
        pool.stats().cancelled - before == stopped
    });
    // Their workers were stopped and replaced: the pool serves at once.
    assert_eq!(
        pool.submit(SQUARE, 3).unwrap().result(Some(SOON)).unwrap(),
        9
    );
}

#[test]
fn dropping_a_map_after_its_first_result_stops_the_calls_still_in_flight() {
    // test_map_close: CPython's generator has close(), after which next()
    // raises StopIteration. A Rust iterator is closed by dropping it, after
    // which no next() can be written; what closing does here: the calls
    // still in flight (10-minute sleeps) are stopped, in chunks of 1 and 3
    dropping_a_map_stops_its_remaining_calls(1, vec![0, 600_000, 600_000, 600_000], 3);
    dropping_a_map_stops_its_remaining_calls(3, vec![0, 0, 0, 600_000, 600_000, 600_000], 1);
}

#[test]
fn map_with_each_buffersize_equals_the_sequential_map() {
    // test_map_buffersize: buffersize 1, 2, len and 2 * len over 4 inputs
    let pool = util::pool(2);
    for buffersize in [1, 2, 4, 8] {
        let out: Vec<u64> = pool
            .map_with(SQUARE, 0..4u64, MapOptions::new().buffersize(buffersize))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, sequential(0..4), "buffersize {buffersize}");
    }
}

#[test]
fn map_over_inputs_zipped_from_two_sequences_with_each_buffersize() {
    // test_map_buffersize_on_multiple_iterables: map(add, ints, ints); Rust
    // maps one iterator, of the pairs zipped
    let pool = util::pool(2);
    for buffersize in [1, 2, 4, 8] {
        let out: Vec<u64> = pool
            .map_with(
                ADD,
                (0..4u64).zip(0..4u64),
                MapOptions::new().buffersize(buffersize),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out, [0, 2, 4, 6], "buffersize {buffersize}");
    }
}

#[test]
fn map_over_two_endless_sequences_zipped_works_lazily() {
    // test_map_buffersize_on_multiple_infinite_iterables
    let pool = util::pool(2);
    let mut map = pool
        .map_with(ADD, (0u64..).zip(0u64..), MapOptions::new().buffersize(2))
        .unwrap();
    assert_eq!(map.next(), Some(Ok(0)));
    assert_eq!(map.next(), Some(Ok(2)));
    assert_eq!(map.next(), Some(Ok(4)));
}

#[test]
fn shutdown_with_a_maps_calls_queued_beyond_the_workers_returns() {
    // test_shutdown_race_issue12456: map over max_workers + 1 inputs, then
    // shutdown() must not hang. procpool's map is lazy: its first next()
    // puts all six calls in flight (the default lookahead is 8 chunks)
    let workers = 5;
    let pool = Arc::new(util::pool(workers));
    let mut map = pool.map(SQUARE, vec![2u64; workers + 1], 1).unwrap();
    assert_eq!(map.next(), Some(Ok(4)));
    util::within(util::HANG, "shutdown(wait = true)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, false)
    });
    let rest: Vec<Result<u64, Error>> = map.collect();
    assert_eq!(rest, vec![Ok(4); workers]);
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
    // test_map_buffersize_when_buffer_is_full: the call itself takes
    // buffersize chunks. After k results, one more chunk at each next() that
    // needs a new chunk: chunksize * (buffersize + ceil(k / chunksize))
    // inputs, as CPython.
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        chunksize * buffersize,
        "inputs taken by the call"
    );
    for k in 1..=20usize {
        let x = u64::try_from(k - 1).unwrap();
        assert_eq!(results.next().unwrap().unwrap(), x * x);
        let expected = chunksize * (buffersize + k.div_ceil(chunksize));
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            expected,
            "inputs taken after {k} results"
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
    // chunksize * (buffersize + ceil(25 / chunksize)), as CPython takes them.
    assert_eq!(pulled.load(Ordering::SeqCst), 3 * (2 + 9));
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
