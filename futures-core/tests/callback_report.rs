//! A done callback that panics, when the future finishes and when added to a
//! future already finished: CPython's `test_future.FutureTests.test_done_callback_raises`
//! and `test_done_callback_raises_already_succeeded`
//! (`Lib/test/test_concurrent_futures/test_future.py`, Copyright Python
//! Software Foundation, PSF License Agreement; restated, not copied). The
//! panic is contained, and reported on stderr.
//!
//! The report goes to this process's stderr, which the test harness
//! captures: the test runs itself again as a child (this test binary, this
//! one test, `--nocapture`) and reads the child's stderr.

mod util;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use util::pair;

/// Set in the child: run the scenario instead of the check.
const CHILD: &str = "PROCPOOL_FUTURES_CALLBACK_REPORT_CHILD";

/// The scenarios: a callback that panics when the future finishes
/// (`test_done_callback_raises`), and one added to a future already
/// finished; the callback added after each still runs.
fn scenario() {
    let (f, c) = pair::<u32>();
    f.add_done_callback(|_| panic!("doh! on completion"));
    let after = Arc::new(AtomicBool::new(false));
    let ran = Arc::clone(&after);
    f.add_done_callback(move |_| ran.store(true, Ordering::SeqCst));
    c.set_result(5).unwrap();
    assert!(after.load(Ordering::SeqCst), "the next callback ran");

    let (f, c) = pair::<u32>();
    c.set_result(5).unwrap();
    f.add_done_callback(|_| panic!("doh!"));
    let next_ran = Arc::new(AtomicBool::new(false));
    let ran = Arc::clone(&next_ran);
    f.add_done_callback(move |_| ran.store(true, Ordering::SeqCst));
    assert!(next_ran.load(Ordering::SeqCst), "the next callback ran");
    assert_eq!(f.result(None), Ok(5), "the future keeps its result");
    println!("scenario done");
}

#[test]
fn a_panicking_callback_added_to_a_finished_future_is_contained_and_reported_on_stderr() {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "a_panicking_callback_added_to_a_finished_future_is_contained_and_reported_on_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("scenario done"), "{stdout}");
    // CPython: "exception calling callback for <Future ...>" and "doh!".
    assert!(
        stderr.contains("a done callback panicked (contained)"),
        "{stderr}"
    );
    assert!(stderr.contains("doh! on completion"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("(contained): doh!") && !l.contains("completion")),
        "{stderr}"
    );
}
