//! `abort()` and `AbortOnDrop`: stopping a task whether or not it has started, through the
//! executor's abort hook, including `tokio::time::timeout(d, fut.abort_on_drop())`.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use procpool_futures::State;
use util::{pair, TestError, LONG};

fn counting_hook() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    (calls, move || {
        c.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn abort_on_pending_cancels_like_cancel() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    c.set_abort_hook(hook);
    assert!(f.abort());
    assert!(f.cancelled());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a pending task needs no hook"
    );
    assert!(!c.set_running_or_notify_cancel());
}

#[test]
fn abort_on_running_runs_the_hook_once_and_the_future_stays_running() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    assert!(c.set_running_or_notify_cancel());
    c.set_abort_hook(hook);
    assert!(f.abort());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(f.state(), State::Running);
    assert!(c.is_abort_requested());
    assert!(f.abort(), "still running: true");
    assert!(f.clone().abort());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "later calls do not call it again"
    );
    c.set_cancelled().unwrap();
    assert!(f.cancelled());
    assert_eq!(f.result(None), Err(TestError::Cancelled));
}

#[test]
fn abort_on_running_without_a_hook_returns_true_and_a_later_hook_runs_at_once() {
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    assert!(f.abort());
    let (calls, hook) = counting_hook();
    c.set_abort_hook(hook);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(f.abort());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn executor_may_end_an_aborted_future_with_an_error_or_its_output() {
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    f.abort();
    c.set_error(TestError::Task("killed".into())).unwrap();
    assert_eq!(f.result(None), Err(TestError::Task("killed".into())));
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    f.abort();
    c.set_result(1).unwrap();
    assert_eq!(f.result(None), Ok(1));
}

#[test]
fn abort_on_done_returns_false_and_runs_no_hook() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    c.set_running_or_notify_cancel();
    c.set_abort_hook(hook);
    c.set_result(1).unwrap();
    assert!(!f.abort());
    let (g, _c2) = pair::<u32>();
    g.cancel();
    assert!(!g.abort());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_hook_is_dropped_unrun_when_the_future_completes() {
    let (f, c) = pair::<u32>();
    let owned = Arc::new(());
    let held = Arc::clone(&owned);
    c.set_running_or_notify_cancel();
    c.set_abort_hook(move || drop(held));
    assert_eq!(Arc::strong_count(&owned), 2);
    c.set_result(1).unwrap();
    assert_eq!(Arc::strong_count(&owned), 1);
    assert!(!f.abort());
}

#[test]
fn a_replaced_hook_is_not_run() {
    let (f, c) = pair::<u32>();
    let (first, hook1) = counting_hook();
    let (second, hook2) = counting_hook();
    c.set_running_or_notify_cancel();
    c.set_abort_hook(hook1);
    c.set_abort_hook(hook2);
    f.abort();
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (0, 1)
    );
}

#[test]
fn a_panicking_hook_is_contained() {
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    c.set_abort_hook(|| panic!("hook panic (expected by this test)"));
    assert!(f.abort());
    assert!(f.running());
}

#[test]
fn a_hook_may_complete_the_future_without_deadlock() {
    let (f, c) = pair::<u32>();
    let c = Arc::new(c);
    c.set_running_or_notify_cancel();
    let completer = Arc::clone(&c);
    c.set_abort_hook(move || completer.set_cancelled().unwrap());
    assert!(f.abort());
    assert!(f.cancelled());
}

#[test]
fn abort_from_another_thread_stops_a_waiting_result_via_the_executor() {
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    let (tx, rx) = std::sync::mpsc::channel();
    c.set_abort_hook(move || tx.send(()).unwrap());
    let executor = thread::spawn(move || {
        // The executor "kills the worker" when asked, then reports the future cancelled.
        rx.recv_timeout(LONG).expect("abort hook ran");
        c.set_cancelled().unwrap();
    });
    let aborter = {
        let f = f.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            assert!(f.abort());
        })
    };
    assert_eq!(f.result(Some(LONG)), Err(TestError::Cancelled));
    aborter.join().unwrap();
    executor.join().unwrap();
}

#[test]
fn dropping_abort_on_drop_before_done_aborts() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    c.set_running_or_notify_cancel();
    c.set_abort_hook(hook);
    drop(f.clone().abort_on_drop());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (pending, _c) = pair::<u32>();
    drop(pending.clone().abort_on_drop());
    assert!(pending.cancelled());
}

#[test]
fn dropping_abort_on_drop_after_done_does_nothing() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    c.set_running_or_notify_cancel();
    c.set_abort_hook(hook);
    let guarded = f.clone().abort_on_drop();
    c.set_result(2).unwrap();
    assert_eq!(util::block_on(guarded), Ok(2));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn into_inner_disarms_abort_on_drop() {
    let (f, _c) = pair::<u32>();
    let guarded = f.clone().abort_on_drop();
    assert_eq!(guarded.future(), &f);
    let back = guarded.into_inner();
    assert_eq!(back, f);
    assert!(!f.done(), "disarmed: not cancelled");
}

#[test]
fn tokio_timeout_on_abort_on_drop_stops_the_task() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (f, c) = pair::<u32>();
    let c = Arc::new(c);
    c.set_running_or_notify_cancel();
    let executor = Arc::clone(&c);
    let (calls, count) = counting_hook();
    c.set_abort_hook(move || {
        count();
        executor.set_cancelled().unwrap();
    });
    let outcome = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), f.clone().abort_on_drop()).await
    });
    assert!(outcome.is_err(), "the timeout fired");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "and stopped the task");
    assert!(f.cancelled());
}

#[test]
fn tokio_timeout_on_a_plain_future_does_not_touch_the_task() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    let (calls, hook) = counting_hook();
    c.set_abort_hook(hook);
    let outcome =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), f.clone()).await });
    assert!(outcome.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(f.running());
}

#[test]
fn a_boxed_hook_is_accepted() {
    let (f, c) = pair::<u32>();
    let (calls, hook) = counting_hook();
    let boxed: Box<dyn FnOnce() + Send> = Box::new(hook);
    c.set_running_or_notify_cancel();
    c.set_abort_hook(boxed);
    assert!(f.abort());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An executor's shared abort target: records the tasks it was asked to stop.
#[derive(Default)]
struct Target(parking_lot::Mutex<Vec<u64>>);

impl procpool_futures::AbortTarget for Target {
    fn abort(&self, task: u64) {
        self.0.lock().push(task);
    }
}

#[test]
fn a_shared_abort_target_is_called_once_with_each_futures_own_number() {
    let target = Arc::new(Target::default());
    let futures: Vec<_> = (10..13u64)
        .map(|task| {
            let (future, completer) = pair::<u32>();
            assert!(completer.set_running_or_notify_cancel());
            completer.set_abort_target(
                Arc::clone(&target) as Arc<dyn procpool_futures::AbortTarget>,
                task,
            );
            (future, completer)
        })
        .collect();
    assert!(futures[2].0.abort());
    assert!(futures[0].0.abort());
    assert!(
        futures[0].0.abort(),
        "true again, but the target is not called twice"
    );
    assert_eq!(*target.0.lock(), vec![12, 10]);
    // A target set after the abort was asked for runs at once.
    let (late, late_completer) = pair::<u32>();
    assert!(late_completer.set_running_or_notify_cancel());
    assert!(late.abort());
    late_completer.set_abort_target(
        Arc::clone(&target) as Arc<dyn procpool_futures::AbortTarget>,
        99,
    );
    assert_eq!(*target.0.lock(), vec![12, 10, 99]);
    // Done futures drop it unused.
    futures[1].1.set_result(1).unwrap();
    assert!(!futures[1].0.abort());
    assert_eq!(target.0.lock().len(), 3);
}
