//! The future's states and transitions: CPython's test_future cancel/cancelled/running/done
//! tests, the completer's invalid-state errors, identity, `Debug` and auto traits.

mod util;

use std::collections::HashSet;

use procpool_futures::{InvalidState, State};
use util::{pair, TestError};

#[test]
fn new_future_is_pending_and_not_done() {
    let (f, _c) = pair::<u32>();
    assert_eq!(f.state(), State::Pending);
    assert!(!f.cancelled() && !f.running() && !f.done());
}

#[test]
fn cancel_pending_returns_true_and_future_is_cancelled_and_done() {
    let (f, c) = pair::<u32>();
    assert!(f.cancel());
    assert_eq!(f.state(), State::Cancelled);
    assert!(f.cancelled() && f.done() && !f.running());
    assert!(c.is_cancelled());
}

#[test]
fn cancel_already_cancelled_returns_true() {
    let (f, _c) = pair::<u32>();
    assert!(f.cancel());
    assert!(f.cancel());
    assert!(f.cancelled());
}

#[test]
fn cancel_running_returns_false_and_it_stays_running() {
    let (f, c) = pair::<u32>();
    assert!(c.set_running_or_notify_cancel());
    assert!(!f.cancel());
    assert!(f.running() && !f.cancelled() && !f.done());
    c.set_result(1).unwrap();
    assert_eq!(f.result(None), Ok(1));
}

#[test]
fn cancel_finished_returns_false() {
    let (f, c) = pair::<u32>();
    c.set_result(1).unwrap();
    assert!(!f.cancel());
    assert_eq!(f.state(), State::Finished);
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    assert!(!f.cancel());
    assert!(!f.cancelled());
}

#[test]
fn running_and_finished_report_their_state() {
    let (f, c) = pair::<u32>();
    assert!(c.set_running_or_notify_cancel());
    assert_eq!(f.state(), State::Running);
    assert!(f.running() && !f.done());
    c.set_result(3).unwrap();
    assert_eq!(f.state(), State::Finished);
    assert!(!f.running() && f.done() && !f.cancelled());
}

#[test]
fn set_running_or_notify_cancel_is_false_on_a_cancelled_future() {
    let (f, c) = pair::<u32>();
    f.cancel();
    assert!(!c.set_running_or_notify_cancel());
    assert!(f.cancelled());
}

#[test]
fn set_running_or_notify_cancel_is_true_once() {
    let (f, c) = pair::<u32>();
    assert!(c.set_running_or_notify_cancel());
    assert!(!c.set_running_or_notify_cancel());
    assert!(f.running());
    c.set_result(1).unwrap();
    assert!(!c.set_running_or_notify_cancel());
    assert_eq!(f.state(), State::Finished);
}

#[test]
fn setting_a_result_twice_is_an_invalid_state_error() {
    let (f, c) = pair::<u32>();
    c.set_result(1).unwrap();
    let err = c.set_result(2).unwrap_err();
    assert_eq!(err.state(), State::Finished);
    assert_eq!(
        err.to_string(),
        "invalid state: the future is already finished"
    );
    assert!(c.set_error(TestError::Task("late".into())).is_err());
    assert!(c.set_cancelled().is_err());
    assert_eq!(f.result(None), Ok(1));
}

#[test]
fn setting_an_error_twice_is_an_invalid_state_error() {
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("first".into())).unwrap();
    let err: InvalidState = c.set_error(TestError::Task("second".into())).unwrap_err();
    assert_eq!(err.state(), State::Finished);
    assert!(c.set_result(1).is_err());
    assert_eq!(f.result(None), Err(TestError::Task("first".into())));
}

#[test]
fn completing_a_cancelled_future_is_an_invalid_state_error() {
    let (f, c) = pair::<u32>();
    f.cancel();
    assert_eq!(c.set_result(1).unwrap_err().state(), State::Cancelled);
    assert_eq!(c.set_cancelled().unwrap_err().state(), State::Cancelled);
    assert!(f.cancelled());
}

#[test]
fn set_result_from_pending_without_running_finishes() {
    let (f, c) = pair::<u32>();
    c.set_result(5).unwrap();
    assert_eq!(f.result(None), Ok(5));
}

#[test]
fn executor_can_cancel_a_running_future() {
    let (f, c) = pair::<u32>();
    assert!(c.set_running_or_notify_cancel());
    c.set_cancelled().unwrap();
    assert!(f.cancelled() && f.done());
    assert_eq!(f.result(None), Err(TestError::Cancelled));
}

#[test]
fn dropping_the_completer_of_an_unfinished_future_cancels_it() {
    let (pending, c) = pair::<u32>();
    drop(c);
    assert!(pending.cancelled());
    let (running, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    drop(c);
    assert!(running.cancelled());
    let (finished, c) = pair::<u32>();
    c.set_result(1).unwrap();
    drop(c);
    assert_eq!(finished.result(None), Ok(1));
}

#[test]
fn completer_new_and_future_give_handles_of_one_future() {
    let c = util::Completer::<u32>::new();
    let a = c.future();
    let b = c.future();
    assert_eq!(a, b);
    c.set_result(1).unwrap();
    assert!(a.done() && b.done());
    assert!(c.is_done() && !c.is_cancelled());
    assert_eq!(c.state(), State::Finished);
}

#[test]
// `Future` hashes by identity, which its interior mutability cannot change.
#[allow(clippy::mutable_key_type)]
fn clones_are_equal_and_hash_alike_distinct_futures_are_not() {
    let (a, _ca) = pair::<u32>();
    let (b, _cb) = pair::<u32>();
    let a2 = a.clone();
    assert_eq!(a, a2);
    assert_ne!(a, b);
    let set: HashSet<_> = [a.clone(), a2, b.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
}

#[test]
fn debug_shows_the_state_but_not_the_payload() {
    let (f, c) = pair::<String>();
    assert_eq!(format!("{f:?}"), "Future { state: Pending, .. }");
    c.set_result("secret payload".to_string()).unwrap();
    let shown = format!("{f:?} {c:?}");
    assert!(shown.contains("Finished"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn future_and_completer_are_send_and_sync() {
    fn send_sync<X: Send + Sync>() {}
    send_sync::<procpool_futures::Future<String, TestError>>();
    send_sync::<procpool_futures::Completer<String, TestError>>();
    send_sync::<procpool_futures::AbortOnDrop<String, TestError>>();
    send_sync::<procpool_futures::AsCompleted<String, TestError>>();
    // Not Sync payloads are fine: every access to them is under the lock.
    send_sync::<procpool_futures::Future<std::cell::Cell<u8>, TestError>>();
}
