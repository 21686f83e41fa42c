//! Reading the outcome: CPython's test_future result/exception tests (timeouts, cancelled,
//! set from another thread), plus `into_result` and `with_result` for outputs that are not `Clone`.

mod util;

use std::thread;
use std::time::{Duration, Instant};

use util::{pair, TestError, LONG, SHORT};

#[test]
fn result_with_zero_timeout_on_pending_is_a_timeout_error() {
    let (f, _c) = pair::<u32>();
    assert_eq!(f.result(Some(Duration::ZERO)), Err(TestError::Timeout));
    assert_eq!(f.exception(Some(Duration::ZERO)), Err(TestError::Timeout));
    assert!(!f.done(), "a timeout does not touch the future");
}

#[test]
fn result_with_zero_timeout_on_running_is_a_timeout_error() {
    let (f, c) = pair::<u32>();
    c.set_running_or_notify_cancel();
    assert_eq!(f.result(Some(Duration::ZERO)), Err(TestError::Timeout));
    assert_eq!(f.exception(Some(Duration::ZERO)), Err(TestError::Timeout));
    assert!(f.running());
}

#[test]
fn result_with_zero_timeout_on_cancelled_is_a_cancelled_error() {
    let (f, _c) = pair::<u32>();
    f.cancel();
    assert_eq!(f.result(Some(Duration::ZERO)), Err(TestError::Cancelled));
    assert_eq!(f.exception(Some(Duration::ZERO)), Err(TestError::Cancelled));
}

#[test]
fn result_with_short_timeout_waits_then_times_out() {
    let (f, _c) = pair::<u32>();
    let start = Instant::now();
    assert_eq!(f.result(Some(SHORT)), Err(TestError::Timeout));
    let waited = start.elapsed();
    assert!(waited >= SHORT && waited < LONG, "waited {waited:?}");
}

#[test]
fn result_and_exception_of_a_finished_future() {
    let (f, c) = pair::<u32>();
    c.set_result(42).unwrap();
    assert_eq!(f.result(Some(Duration::ZERO)), Ok(42));
    assert_eq!(f.exception(Some(Duration::ZERO)), Ok(None));
}

#[test]
fn result_and_exception_of_a_failed_future() {
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    assert_eq!(
        f.result(Some(Duration::ZERO)),
        Err(TestError::Task("boom".into()))
    );
    assert_eq!(
        f.exception(Some(Duration::ZERO)),
        Ok(Some(TestError::Task("boom".into())))
    );
}

#[test]
fn result_set_from_another_thread_after_one_second_reaches_a_waiting_result() {
    let (f, c) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        c.set_result(7).unwrap();
    });
    let start = Instant::now();
    assert_eq!(f.result(Some(LONG)), Ok(7));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < LONG,
        "waited {waited:?}"
    );
    setter.join().unwrap();
}

#[test]
fn error_set_from_another_thread_after_one_second_reaches_a_waiting_exception() {
    let (f, c) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        c.set_error(TestError::Task("late".into())).unwrap();
    });
    assert_eq!(f.exception(None), Ok(Some(TestError::Task("late".into()))));
    setter.join().unwrap();
}

#[test]
fn cancel_from_another_thread_wakes_a_waiting_result_with_cancelled() {
    let (f, _c) = pair::<u32>();
    let f2 = f.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        assert!(f2.cancel());
    });
    assert_eq!(f.result(Some(LONG)), Err(TestError::Cancelled));
    canceller.join().unwrap();
}

#[test]
fn many_threads_blocked_in_result_all_get_the_output() {
    let (f, c) = pair::<u32>();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            thread::spawn(move || f.result(Some(LONG)))
        })
        .collect();
    c.set_result(9).unwrap();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), Ok(9));
    }
}

#[test]
fn timeout_display_says_the_task_was_not_touched() {
    let message = procpool_futures::Timeout.to_string();
    assert!(
        message.contains("timed out") && message.contains("not touched"),
        "{message}"
    );
    assert_eq!(
        procpool_futures::Cancelled.to_string(),
        "the future was cancelled"
    );
}

/// An output that is not `Clone`.
#[derive(Debug, PartialEq)]
struct Big(Vec<u8>);

#[test]
fn into_result_moves_an_output_that_is_not_clone() {
    let (f, c) = pair::<Big>();
    c.set_result(Big(vec![1, 2, 3])).unwrap();
    assert_eq!(f.into_result(None), Ok(Big(vec![1, 2, 3])));
}

#[test]
fn into_result_waits_and_times_out_like_result() {
    let (f, c) = pair::<Big>();
    assert_eq!(
        f.clone().into_result(Some(Duration::ZERO)),
        Err(TestError::Timeout)
    );
    let setter = thread::spawn(move || c.set_result(Big(vec![4])).unwrap());
    assert_eq!(f.into_result(Some(LONG)), Ok(Big(vec![4])));
    setter.join().unwrap();
}

#[test]
fn after_into_result_other_handles_read_a_taken_error() {
    let (f, c) = pair::<u32>();
    c.set_result(5).unwrap();
    let other = f.clone();
    assert_eq!(f.into_result(None), Ok(5));
    assert_eq!(other.result(None), Err(TestError::Taken));
    assert_eq!(
        other.exception(None),
        Ok(None),
        "it did finish with an output"
    );
    assert_eq!(
        other.with_result(None, |r| r.copied().map_err(Clone::clone)),
        Ok(Err(TestError::Taken))
    );
    assert!(other.done() && !other.cancelled());
    assert_eq!(other.clone().into_result(None), Err(TestError::Taken));
}

#[test]
fn into_result_moves_an_error_out_and_leaves_taken() {
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    let other = f.clone();
    assert_eq!(f.into_result(None), Err(TestError::Task("boom".into())));
    assert_eq!(other.exception(None), Err(TestError::Taken));
    assert_eq!(other.result(None), Err(TestError::Taken));
}

#[test]
fn into_result_of_a_cancelled_future_is_cancelled() {
    let (f, _c) = pair::<Big>();
    f.cancel();
    assert_eq!(f.into_result(None), Err(TestError::Cancelled));
}

#[test]
fn with_result_lends_the_output_without_clone() {
    let (f, c) = pair::<Big>();
    c.set_result(Big(vec![1, 2, 3])).unwrap();
    assert_eq!(
        f.with_result(None, |r| r.map(|big| big.0.len()).map_err(Clone::clone)),
        Ok(Ok(3))
    );
}

#[test]
fn with_result_lends_the_error() {
    let (f, c) = pair::<Big>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    assert_eq!(
        f.with_result(None, |r| r.unwrap_err().clone()),
        Ok(TestError::Task("boom".into()))
    );
}

#[test]
fn with_result_times_out_or_reports_cancelled_without_calling_f() {
    let (f, _c) = pair::<Big>();
    assert_eq!(
        f.with_result(Some(Duration::ZERO), |_| panic!("not done")),
        Err(TestError::Timeout)
    );
    f.cancel();
    assert_eq!(
        f.with_result(Some(Duration::ZERO), |_| panic!("cancelled")),
        Err(TestError::Cancelled)
    );
}

#[test]
fn a_huge_timeout_means_wait_for_ever() {
    let (f, c) = pair::<u32>();
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        c.set_result(1).unwrap();
    });
    assert_eq!(f.result(Some(Duration::MAX)), Ok(1));
    setter.join().unwrap();
}
