//! `Completer::set_deferred`: an outcome produced by the first reader, on
//! the reader's thread, once.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use procpool_futures::{wait, ReturnWhen, State};
use util::{block_on, pair, TestError};

/// A completer whose deferred outcome counts how often it was produced and
/// records the thread that produced it.
fn deferred(
    outcome: Result<u32, TestError>,
) -> (
    util::Future,
    Arc<AtomicUsize>,
    Arc<parking_lot::Mutex<Option<thread::ThreadId>>>,
) {
    let (future, completer) = pair::<u32>();
    let runs = Arc::new(AtomicUsize::new(0));
    let thread = Arc::new(parking_lot::Mutex::new(None));
    let (r, t) = (Arc::clone(&runs), Arc::clone(&thread));
    completer
        .set_deferred(move || {
            r.fetch_add(1, Ordering::SeqCst);
            *t.lock() = Some(thread::current().id());
            outcome
        })
        .unwrap();
    (future, runs, thread)
}

#[test]
fn the_first_reader_produces_the_outcome_on_its_own_thread_once() {
    let (future, runs, producer) = deferred(Ok(7));
    assert_eq!(future.state(), State::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing runs before a read");
    let reader = {
        let future = future.clone();
        thread::spawn(move || (future.result(None), thread::current().id()))
    };
    let (value, reader_id) = reader.join().unwrap();
    assert_eq!(value, Ok(7));
    assert_eq!(*producer.lock(), Some(reader_id));
    assert_eq!(future.result(None), Ok(7));
    assert_eq!(future.exception(None), Ok(None));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "produced once for every reader"
    );
}

#[test]
fn a_deferred_error_is_the_futures_error() {
    let (future, runs, _) = deferred(Err(TestError::Task("bad bytes".into())));
    assert_eq!(
        future.exception(None),
        Ok(Some(TestError::Task("bad bytes".into())))
    );
    assert_eq!(
        future.result(None),
        Err(TestError::Task("bad bytes".into()))
    );
    assert_eq!(
        future.clone().into_result(None),
        Err(TestError::Task("bad bytes".into()))
    );
    assert_eq!(future.result(None), Err(TestError::Taken));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn into_result_and_await_produce_it_too() {
    let (future, _, _) = deferred(Ok(1));
    assert_eq!(future.into_result(None), Ok(1));
    let (future, runs, _) = deferred(Ok(2));
    assert_eq!(block_on(future.clone()), Ok(2));
    assert_eq!(future.with_result(None, |r| r.ok().copied()), Ok(Some(2)));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_producer_is_contained_and_reads_as_cancelled() {
    let (future, completer) = pair::<u32>();
    completer
        .set_deferred(|| panic!("the producer must not panic"))
        .unwrap();
    assert_eq!(future.result(None), Err(TestError::Cancelled));
    assert_eq!(future.result(None), Err(TestError::Cancelled));
}

#[test]
fn waiters_are_told_at_once_and_first_exception_does_not_count_it_unread() {
    let (future, completer) = pair::<u32>();
    let waiting = {
        let future = future.clone();
        thread::spawn(move || {
            wait(
                [&future],
                Some(Duration::from_secs(60)),
                ReturnWhen::FirstCompleted,
            )
        })
    };
    completer
        .set_deferred(|| Err(TestError::Task("late".into())))
        .unwrap();
    assert_eq!(waiting.join().unwrap().done.len(), 1);
    // Unread, it is not known to be an error: FirstException keeps waiting
    // for the other future, here until the timeout.
    let (never, _never_completer) = pair::<u32>();
    let timeout = Duration::from_millis(100);
    let started = std::time::Instant::now();
    let result = wait([&future, &never], Some(timeout), ReturnWhen::FirstException);
    assert!(started.elapsed() >= timeout, "returned before its timeout");
    assert_eq!((result.done.len(), result.not_done.len()), (1, 1));
    assert_eq!(
        future.exception(None),
        Ok(Some(TestError::Task("late".into())))
    );
}

#[test]
fn setting_a_deferred_outcome_twice_is_invalid() {
    let (_future, completer) = pair::<u32>();
    completer.set_deferred(|| Ok(1)).unwrap();
    assert!(completer.set_deferred(|| Ok(2)).is_err());
    assert!(completer.set_result(3).is_err());
}

#[test]
fn a_slow_producer_holds_up_only_the_readers_not_the_completer_or_state() {
    use std::sync::mpsc;
    let (future, completer) = pair::<u32>();
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    completer
        .set_deferred(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(5)
        })
        .unwrap();
    let first = {
        let future = future.clone();
        thread::spawn(move || future.result(None))
    };
    started.recv().unwrap();
    // While it is produced: the completer drops, state() answers, and a
    // second reader waits for the same outcome.
    drop(completer);
    assert_eq!(future.state(), State::Finished);
    let second = {
        let future = future.clone();
        thread::spawn(move || future.result(None))
    };
    release.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Ok(5));
    assert_eq!(second.join().unwrap(), Ok(5));
}
