//! `wait`: CPython's test_wait (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED, timeout,
//! duplicates), plus clones, the empty input and concurrent waits.

mod util;

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use procpool_futures::{wait, ReturnWhen};
use util::{cancelled, failed, finished, pair, Completer, Future, TestError, LONG, SHORT};

/// Completes `c` with `outcome` from another thread after `after`.
fn complete_later(
    c: Completer,
    after: Duration,
    outcome: Result<u32, TestError>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(after);
        match outcome {
            Ok(v) => c.set_result(v).unwrap(),
            Err(e) => c.set_error(e).unwrap(),
        }
    })
}

#[test]
fn first_completed_returns_as_soon_as_one_is_done() {
    let (a, ca) = pair::<u32>();
    let (b, _cb) = pair::<u32>();
    let setter = complete_later(ca, Duration::from_millis(50), Ok(1));
    let start = Instant::now();
    let r = wait([&a, &b], Some(LONG), ReturnWhen::FirstCompleted);
    assert!(start.elapsed() < LONG);
    assert_eq!(r.done, [a]);
    assert_eq!(r.not_done, [b]);
    setter.join().unwrap();
}

#[test]
fn first_completed_counts_futures_already_done() {
    let done = finished(1);
    let (pending, _c) = pair::<u32>();
    let r = wait([&pending, &done], None, ReturnWhen::FirstCompleted);
    assert_eq!(r.done, [done]);
    assert_eq!(r.not_done, [pending]);
}

#[test]
fn first_completed_counts_a_cancelled_future_as_done() {
    let c = cancelled();
    let (pending, _c) = pair::<u32>();
    let r = wait([&c, &pending], None, ReturnWhen::FirstCompleted);
    assert_eq!(r.done, [c]);
}

#[test]
fn first_completed_with_a_cancelled_future_returns_it_in_done() {
    // test_first_completed: [CANCELLED_FUTURE, finished, pending]. CPython
    // leaves the future cancelled but not yet notified in not_done; here
    // cancel() notifies at once, so it is done.
    let c = cancelled();
    let (f1, c1) = pair::<u32>();
    let (f2, _c2) = pair::<u32>();
    c1.set_result(42).unwrap();
    let r = wait([&c, &f1, &f2], Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(r.done, [c, f1]);
    assert_eq!(r.not_done, [f2]);
}

#[test]
fn first_exception_with_some_already_complete_returns_at_the_failure() {
    // test_first_exception_some_already_complete: [SUCCESSFUL,
    // CANCELLED, CANCELLED_AND_NOTIFIED, failing, pending]. CPython's done:
    // the successful, the notified cancelled one and the failure, and
    // the cancelled one not yet notified in not_done; here both cancelled
    // futures are done.
    let ok = finished(42);
    let c1 = cancelled();
    let c2 = cancelled();
    let (fails, c_fail) = pair::<u32>();
    let (pending, _c_pending) = pair::<u32>();
    let setter = thread::spawn(move || c_fail.set_error(TestError::Task("zero".into())).unwrap());
    let r = wait(
        [&ok, &c1, &c2, &fails, &pending],
        Some(LONG),
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done, [ok, c1, c2, fails]);
    assert_eq!(r.not_done, [pending]);
    setter.join().unwrap();
}

#[test]
fn first_exception_returns_at_the_first_failure() {
    let ok = finished(1);
    let (slow_ok, c_slow) = pair::<u32>();
    let (fails, c_fail) = pair::<u32>();
    let (never, _c_never) = pair::<u32>();
    c_slow.set_running_or_notify_cancel();
    let setter = complete_later(
        c_fail,
        Duration::from_millis(50),
        Err(TestError::Task("x".into())),
    );
    let r = wait(
        [&ok, &slow_ok, &fails, &never],
        Some(LONG),
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done, [ok, fails]);
    assert_eq!(r.not_done, [slow_ok, never]);
    setter.join().unwrap();
}

#[test]
fn first_exception_returns_at_once_if_one_had_already_failed() {
    let bad = failed();
    let (pending, _c) = pair::<u32>();
    let start = Instant::now();
    let r = wait([&pending, &bad], None, ReturnWhen::FirstException);
    assert!(start.elapsed() < LONG);
    assert_eq!(r.done, [bad]);
    assert_eq!(r.not_done, [pending]);
}

#[test]
fn first_exception_waits_for_all_when_none_fails() {
    let (a, ca) = pair::<u32>();
    let (b, cb) = pair::<u32>();
    let c = cancelled();
    let sa = complete_later(ca, Duration::from_millis(20), Ok(1));
    let sb = complete_later(cb, Duration::from_millis(60), Ok(2));
    let r = wait([&a, &b, &c], Some(LONG), ReturnWhen::FirstException);
    assert_eq!(r.done.len(), 3, "a cancelled future is not an exception");
    assert!(r.not_done.is_empty());
    sa.join().unwrap();
    sb.join().unwrap();
}

#[test]
fn all_completed_waits_for_all() {
    let done = finished(0);
    let bad = failed();
    let (a, ca) = pair::<u32>();
    let (b, cb) = pair::<u32>();
    let sa = complete_later(ca, Duration::from_millis(20), Ok(1));
    let sb = complete_later(
        cb,
        Duration::from_millis(60),
        Err(TestError::Task("y".into())),
    );
    let r = wait([&done, &a, &bad, &b], None, ReturnWhen::AllCompleted);
    assert_eq!(r.done, [done, a, bad, b]);
    assert!(r.not_done.is_empty());
    sa.join().unwrap();
    sb.join().unwrap();
}

#[test]
fn all_completed_is_the_default() {
    assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
}

#[test]
fn timeout_leaves_the_running_future_in_not_done() {
    let done = finished(1);
    let (running, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    let start = Instant::now();
    let r = wait([&done, &running], Some(SHORT), ReturnWhen::AllCompleted);
    let waited = start.elapsed();
    assert!(waited >= SHORT && waited < LONG, "waited {waited:?}");
    assert_eq!(r.done, [done]);
    assert_eq!(r.not_done, std::slice::from_ref(&running));
    assert!(running.running(), "the timeout did not touch it");
}

#[test]
fn zero_timeout_returns_at_once() {
    let (a, _c) = pair::<u32>();
    let r = wait([&a], Some(Duration::ZERO), ReturnWhen::FirstCompleted);
    assert_eq!(r.not_done, [a]);
}

#[test]
fn the_same_future_passed_twice_appears_once() {
    let done = finished(1);
    let (pending, _c) = pair::<u32>();
    let r = wait(
        [&done, &done, &pending, &pending, &done],
        Some(SHORT),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(r.done, [done]);
    assert_eq!(r.not_done, [pending]);
}

#[test]
fn clones_count_as_the_same_future() {
    let (pending, c) = pair::<u32>();
    let clone = pending.clone();
    let setter = complete_later(c, Duration::from_millis(20), Ok(1));
    let r = wait([&pending, &clone], None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 1);
    setter.join().unwrap();
}

#[test]
fn empty_input_returns_at_once() {
    let none: [&Future; 0] = [];
    for return_when in [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ] {
        let r = wait(none, None, return_when);
        assert!(r.done.is_empty() && r.not_done.is_empty());
    }
}

#[test]
fn cancel_from_another_thread_ends_a_first_completed_wait() {
    let (a, _c) = pair::<u32>();
    let a2 = a.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        a2.cancel();
    });
    let r = wait([&a], Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!(r.done, [a]);
    canceller.join().unwrap();
}

#[test]
fn many_waits_on_overlapping_futures_from_many_threads() {
    let pairs: Vec<_> = (0..8).map(|_| pair::<u32>()).collect();
    let futures: Vec<Future> = pairs.iter().map(|(f, _)| f.clone()).collect();
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let fs = futures.clone();
            thread::spawn(move || {
                let mode = [
                    ReturnWhen::FirstCompleted,
                    ReturnWhen::AllCompleted,
                    ReturnWhen::FirstException,
                ][i % 3];
                let r = wait(&fs, Some(LONG), mode);
                (mode, r.done.len())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    for (i, (_, c)) in pairs.iter().enumerate() {
        c.set_result(i as u32).unwrap();
    }
    for w in waiters {
        let (mode, done) = w.join().unwrap();
        match mode {
            ReturnWhen::FirstCompleted => assert!(done >= 1),
            _ => assert_eq!(done, 8),
        }
    }
}
