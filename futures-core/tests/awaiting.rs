//! Awaiting a future: on tokio and on a hand-written `block_on`; several awaiters of one
//! future; one waker slot per awaiter however often it is polled; cancel wakes them all.

mod util;

use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use util::{block_on, pair, poll_once, CountingWaker, TestError, LONG};

#[test]
fn await_on_block_on_gets_the_output_set_by_another_thread() {
    let (f, c) = pair::<String>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        c.set_result("done".to_string()).unwrap();
    });
    assert_eq!(block_on(f), Ok("done".to_string()));
    setter.join().unwrap();
}

#[test]
fn await_yields_the_error_or_cancelled() {
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    assert_eq!(block_on(f), Err(TestError::Task("boom".into())));
    let (f, _c) = pair::<u32>();
    f.cancel();
    assert_eq!(block_on(f), Err(TestError::Cancelled));
}

#[test]
fn polling_a_done_future_again_yields_the_outcome_again() {
    let (mut f, c) = pair::<u32>();
    c.set_result(4).unwrap();
    let waker = Waker::noop();
    assert_eq!(poll_once(&mut f, waker), Poll::Ready(Ok(4)));
    assert_eq!(poll_once(&mut f, waker), Poll::Ready(Ok(4)));
}

#[test]
fn tokio_tasks_awaiting_clones_all_get_the_output() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (f, c) = pair::<u32>();
    let tasks: Vec<_> = (0..16).map(|_| rt.spawn(f.clone())).collect();
    thread::sleep(Duration::from_millis(20));
    c.set_result(11).unwrap();
    rt.block_on(async {
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(11));
        }
    });
}

#[test]
fn cancel_wakes_every_tokio_awaiter() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (f, _c) = pair::<u32>();
    let tasks: Vec<_> = (0..8).map(|_| rt.spawn(f.clone())).collect();
    thread::sleep(Duration::from_millis(20));
    assert!(f.cancel());
    rt.block_on(async {
        for task in tasks {
            let outcome = tokio::time::timeout(LONG, task)
                .await
                .expect("woken")
                .unwrap();
            assert_eq!(outcome, Err(TestError::Cancelled));
        }
    });
}

#[test]
fn completion_wakes_each_awaiting_handle_once() {
    let (f, c) = pair::<u32>();
    let (mut a, mut b) = (f.clone(), f.clone());
    let (wa, wb) = (CountingWaker::new(), CountingWaker::new());
    assert_eq!(
        poll_once(&mut a, &Waker::from(Arc::clone(&wa))),
        Poll::Pending
    );
    assert_eq!(
        poll_once(&mut b, &Waker::from(Arc::clone(&wb))),
        Poll::Pending
    );
    c.set_result(1).unwrap();
    assert_eq!((wa.count(), wb.count()), (1, 1));
    assert_eq!(poll_once(&mut a, Waker::noop()), Poll::Ready(Ok(1)));
}

#[test]
fn the_latest_waker_of_an_awaiter_is_the_one_woken() {
    let (mut f, c) = pair::<u32>();
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    assert!(poll_once(&mut f, &Waker::from(Arc::clone(&old))).is_pending());
    assert!(poll_once(&mut f, &Waker::from(Arc::clone(&new))).is_pending());
    c.set_result(1).unwrap();
    assert_eq!((old.count(), new.count()), (0, 1));
}

#[test]
fn repeated_polls_with_new_wakers_keep_one_waker_per_awaiter() {
    let (mut f, c) = pair::<u32>();
    let mut dropped: Vec<Weak<CountingWaker>> = Vec::new();
    for _ in 0..1000 {
        let w = CountingWaker::new();
        dropped.push(Arc::downgrade(&w));
        assert!(poll_once(&mut f, &Waker::from(w)).is_pending());
    }
    let alive = dropped.iter().filter(|w| w.strong_count() > 0).count();
    assert_eq!(alive, 1, "only the latest waker is kept");
    c.set_result(1).unwrap();
    assert_eq!(
        dropped.last().unwrap().strong_count(),
        0,
        "woken and released"
    );
}

#[test]
fn a_dropped_awaiter_releases_its_waker() {
    let (f, _c) = pair::<u32>();
    let mut awaiter = f.clone();
    let w = CountingWaker::new();
    assert!(poll_once(&mut awaiter, &Waker::from(Arc::clone(&w))).is_pending());
    assert_eq!(Arc::strong_count(&w), 2);
    drop(awaiter);
    assert_eq!(Arc::strong_count(&w), 1);
    f.cancel();
    assert_eq!(w.count(), 0);
}

#[test]
fn a_clone_of_an_awaiting_handle_gets_its_own_slot() {
    let (mut f, c) = pair::<u32>();
    let w1 = CountingWaker::new();
    assert!(poll_once(&mut f, &Waker::from(Arc::clone(&w1))).is_pending());
    let mut g = f.clone();
    let w2 = CountingWaker::new();
    assert!(poll_once(&mut g, &Waker::from(Arc::clone(&w2))).is_pending());
    c.set_result(1).unwrap();
    assert_eq!((w1.count(), w2.count()), (1, 1));
}

#[test]
fn awaiting_works_inside_tokio_select_with_a_timer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (f, c) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        c.set_result(3).unwrap();
    });
    let outcome = rt.block_on(async {
        let mut f = f;
        loop {
            tokio::select! {
                r = &mut f => break r,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        }
    });
    assert_eq!(outcome, Ok(3));
    setter.join().unwrap();
}
