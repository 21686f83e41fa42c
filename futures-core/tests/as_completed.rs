//! `as_completed`: CPython's test_as_completed (finished first then as they finish, zero and
//! short timeouts with the "2 (of 4) futures unfinished" message, duplicates, yielded futures
//! not kept alive).

mod util;

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use procpool_futures::as_completed;
use util::{cancelled, failed, finished, pair, Future, TestError, LONG};

#[test]
fn yields_every_future_once_finished_ones_first_then_as_they_finish() {
    let done1 = finished(1);
    let (slow, c_slow) = pair::<u32>();
    let (fast, c_fast) = pair::<u32>();
    let done2 = failed();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        c_fast.set_result(3).unwrap();
        thread::sleep(Duration::from_millis(100));
        c_slow.set_result(4).unwrap();
    });
    let order: Vec<Future> = as_completed([&slow, &done1, &fast, &done2], Some(LONG))
        .map(Result::unwrap)
        .collect();
    assert_eq!(order, [done1, done2, fast, slow]);
    setter.join().unwrap();
}

#[test]
fn zero_timeout_yields_the_finished_then_a_timeout_error() {
    let (pending, _c1) = pair::<u32>();
    let (running, c2) = pair::<u32>();
    c2.set_running_or_notify_cancel();
    let (cancelled, done) = (cancelled(), finished(1));
    let mut it = as_completed(
        [&pending, &running, &cancelled, &done],
        Some(Duration::ZERO),
    );
    let yielded: Vec<Future> = it.by_ref().take(2).map(Result::unwrap).collect();
    assert_eq!(yielded, [cancelled, done]);
    let err = it.next().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "2 (of 4) futures unfinished");
    assert_eq!((err.unfinished(), err.total()), (2, 4));
    assert!(it.next().is_none(), "nothing after the timeout error");
    assert!(it.next().is_none());
    assert!(
        running.running() && !pending.done(),
        "the timeout touched no future"
    );
}

#[test]
fn short_timeout_with_one_future_running_for_one_second() {
    let done = [finished(1), failed(), cancelled()];
    let (slow, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        c.set_result(9).unwrap();
    });
    let start = Instant::now();
    let items: Vec<_> = as_completed(
        [&done[0], &slow, &done[1], &done[2]],
        Some(Duration::from_millis(100)),
    )
    .collect();
    let waited = start.elapsed();
    assert_eq!(items.len(), 4);
    for (item, want) in items[..3].iter().zip(&done) {
        assert_eq!(item.as_ref().unwrap(), want);
    }
    let err = items[3].as_ref().unwrap_err();
    assert_eq!(err.to_string(), "1 (of 4) futures unfinished");
    assert!(waited >= Duration::from_millis(100), "waited {waited:?}");
    assert_eq!(
        slow.result(Some(LONG)),
        Ok(9),
        "the slow one still finishes"
    );
    setter.join().unwrap();
}

#[test]
fn timeout_counts_from_the_call_not_from_each_wait() {
    let (a, ca) = pair::<u32>();
    let (b, _cb) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        ca.set_result(1).unwrap();
    });
    let start = Instant::now();
    let mut it = as_completed([&a, &b], Some(Duration::from_millis(300)));
    assert_eq!(it.next().unwrap().unwrap(), a);
    assert_eq!(
        it.next().unwrap().unwrap_err().to_string(),
        "1 (of 2) futures unfinished"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < LONG,
        "waited {waited:?}"
    );
    setter.join().unwrap();
}

#[test]
fn duplicates_are_yielded_once() {
    let done = finished(1);
    let (pending, c) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        c.set_result(2).unwrap();
    });
    let clone = pending.clone();
    let items: Vec<Future> = as_completed([&done, &pending, &done, &clone, &done], None)
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, [done, pending]);
    setter.join().unwrap();
}

#[test]
fn no_timeout_waits_for_all() {
    let pairs: Vec<_> = (0..5).map(|_| pair::<u32>()).collect();
    let futures: Vec<Future> = pairs.iter().map(|(f, _)| f.clone()).collect();
    let setter = thread::spawn(move || {
        for (i, (_, c)) in pairs.into_iter().enumerate().rev() {
            thread::sleep(Duration::from_millis(5));
            c.set_result(i as u32).unwrap();
        }
    });
    let outputs: Vec<u32> = as_completed(&futures, None)
        .map(|f| f.unwrap().result(None).unwrap())
        .collect();
    assert_eq!(outputs, [4, 3, 2, 1, 0]);
    setter.join().unwrap();
}

#[test]
fn empty_input_yields_nothing() {
    let none: [&Future; 0] = [];
    assert_eq!(as_completed(none, Some(Duration::ZERO)).count(), 0);
}

#[test]
fn a_yielded_future_is_not_kept_alive_by_the_iterator() {
    // The output holds a marker: it is dropped when the future's state is freed,
    // which happens once no handle is left (the completers are gone too).
    let markers: Vec<Arc<()>> = (0..3).map(|_| Arc::new(())).collect();
    let watch: Vec<Weak<()>> = markers.iter().map(Arc::downgrade).collect();
    let futures: Vec<procpool_futures::Future<Arc<()>, TestError>> = markers
        .into_iter()
        .map(|m| {
            let (f, c) = procpool_futures::pair();
            c.set_result(m).unwrap();
            f
        })
        .collect();
    let mut it = as_completed(&futures, None);
    drop(futures);
    for (i, marker) in watch.iter().enumerate() {
        let f = it.next().unwrap().unwrap();
        assert!(marker.upgrade().is_some());
        drop(f);
        assert!(
            marker.upgrade().is_none(),
            "future {i} freed while the iterator lives"
        );
    }
    assert!(it.next().is_none());
}

#[test]
fn dropping_the_iterator_early_leaves_the_futures_usable() {
    let (a, ca) = pair::<u32>();
    let (b, cb) = pair::<u32>();
    let mut it = as_completed([&a, &b], None);
    ca.set_result(1).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), a);
    drop(it);
    cb.set_result(2).unwrap();
    assert_eq!(b.result(Some(LONG)), Ok(2));
}

#[test]
fn cancel_during_iteration_yields_the_cancelled_future() {
    let (a, _ca) = pair::<u32>();
    let a2 = a.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        a2.cancel();
    });
    let items: Vec<Future> = as_completed([&a], Some(LONG)).map(Result::unwrap).collect();
    assert_eq!(items, std::slice::from_ref(&a));
    assert!(a.cancelled());
    canceller.join().unwrap();
}
