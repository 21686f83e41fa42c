//! Done callbacks: CPython's test_future callback tests (with the result, the error, on
//! cancel, added when already done, a raising callback contained), plus re-entrancy.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use util::{pair, TestError, LONG};

type Callback = Box<dyn FnOnce(&util::Future) + Send>;

/// Records what each callback saw: `make(name)` builds a callback that
/// pushes "name: outcome" into the returned list.
fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(&'static str) -> Callback) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let list = Arc::clone(&seen);
    let make = move |name: &'static str| -> Callback {
        let list = Arc::clone(&list);
        Box::new(move |f: &util::Future| {
            let outcome = format!("{name}: {:?}", f.result(Some(Duration::ZERO)));
            list.lock().unwrap().push(outcome);
        })
    };
    (seen, make)
}

#[test]
fn callback_runs_with_the_result() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    f.add_done_callback(make("a"));
    assert!(seen.lock().unwrap().is_empty(), "not before it is done");
    c.set_result(5).unwrap();
    assert_eq!(*seen.lock().unwrap(), ["a: Ok(5)"]);
}

#[test]
fn callback_runs_with_the_error() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    f.add_done_callback(make("a"));
    c.set_error(TestError::Task("boom".into())).unwrap();
    assert_eq!(*seen.lock().unwrap(), [r#"a: Err(Task("boom"))"#]);
}

#[test]
fn callback_runs_on_cancel() {
    let (seen, make) = recorder();
    let (f, _c) = pair::<u32>();
    f.add_done_callback(make("a"));
    assert!(f.cancel());
    assert_eq!(*seen.lock().unwrap(), ["a: Err(Cancelled)"]);
    assert!(f.cancel(), "cancelling again runs nothing again");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn callbacks_run_once_each_in_the_order_added() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    f.add_done_callback(make("first"));
    f.clone().add_done_callback(make("second"));
    f.add_done_callback(make("third"));
    c.set_result(1).unwrap();
    assert!(c.set_result(2).is_err(), "completing twice is refused");
    assert!(
        c.set_cancelled().is_err(),
        "and so is cancelling a finished one"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["first: Ok(1)", "second: Ok(1)", "third: Ok(1)"]
    );
}

#[test]
fn callback_added_to_a_finished_future_runs_at_once() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    c.set_result(3).unwrap();
    f.add_done_callback(make("late"));
    assert_eq!(*seen.lock().unwrap(), ["late: Ok(3)"]);
}

#[test]
fn callback_added_to_a_failed_future_runs_at_once() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("x".into())).unwrap();
    f.add_done_callback(make("late"));
    assert_eq!(*seen.lock().unwrap(), [r#"late: Err(Task("x"))"#]);
}

#[test]
fn callback_added_to_a_cancelled_future_runs_at_once() {
    let (seen, make) = recorder();
    let (f, _c) = pair::<u32>();
    f.cancel();
    f.add_done_callback(make("late"));
    assert_eq!(*seen.lock().unwrap(), ["late: Err(Cancelled)"]);
}

#[test]
fn panicking_callback_is_contained_and_the_next_one_still_runs() {
    let (seen, make) = recorder();
    let (f, c) = pair::<u32>();
    f.add_done_callback(make("before"));
    f.add_done_callback(|_| panic!("callback panic (expected by this test)"));
    f.add_done_callback(make("after"));
    c.set_result(1).unwrap();
    assert_eq!(*seen.lock().unwrap(), ["before: Ok(1)", "after: Ok(1)"]);
    // Also when added to a done future: the panic does not reach the caller.
    f.add_done_callback(|_| panic!("late callback panic (expected by this test)"));
    f.add_done_callback(make("last"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn callback_runs_on_the_completing_thread() {
    let (f, c) = pair::<u32>();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |_| tx.send(thread::current().id()).unwrap());
    let completer = thread::spawn(move || {
        c.set_result(1).unwrap();
        thread::current().id()
    });
    let completer_id = completer.join().unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), completer_id);
}

#[test]
fn callback_may_use_the_future_again_without_deadlock() {
    let (f, c) = pair::<u32>();
    let inner_ran = Arc::new(AtomicUsize::new(0));
    let ran = Arc::clone(&inner_ran);
    f.add_done_callback(move |f| {
        assert_eq!(f.result(None), Ok(8));
        assert!(!f.cancel());
        assert!(!f.abort());
        assert!(f.done());
        let _ = format!("{f:?}");
        let ran = Arc::clone(&ran);
        // Added from inside a callback: the future is done, so it runs at once.
        f.add_done_callback(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    });
    c.set_result(8).unwrap();
    assert_eq!(inner_ran.load(Ordering::SeqCst), 1);
}

#[test]
fn callback_on_cancel_may_use_the_future_again_without_deadlock() {
    let (f, _c) = pair::<u32>();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    f.add_done_callback(move |f| {
        assert!(f.cancel());
        assert_eq!(f.result(None), Err(TestError::Cancelled));
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert!(f.cancel());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_future_without_callbacks_completes_fine() {
    let (f, c) = pair::<u32>();
    drop(f);
    c.set_result(1).unwrap();
    assert!(c.is_done());
}
