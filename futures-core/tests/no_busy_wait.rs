//! No busy waiting: a thread blocked about 1 s in `result`, `exception`, `wait`,
//! `as_completed` or `.await` uses almost no CPU (measured with getrusage(RUSAGE_THREAD)).
#![cfg(target_os = "linux")]

mod util;

use std::thread;
use std::time::{Duration, Instant};

use procpool_futures::{as_completed, wait, ReturnWhen};
use util::{block_on, pair, thread_cpu_time, Completer, TestError, LONG};

/// Generous: a blocked thread costs well under a millisecond; a spinning one a full second.
const CPU_BUDGET: Duration = Duration::from_millis(50);
const BLOCKED: Duration = Duration::from_secs(1);

fn complete_after_a_second(c: Completer) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(BLOCKED);
        c.set_result(1).unwrap();
    })
}

/// Runs `block` on a fresh thread and returns the CPU time and wall time it used.
fn measure(block: impl FnOnce() + Send + 'static) -> (Duration, Duration) {
    thread::spawn(move || {
        let (cpu, wall) = (thread_cpu_time(), Instant::now());
        block();
        (thread_cpu_time() - cpu, wall.elapsed())
    })
    .join()
    .unwrap()
}

fn assert_idle(what: &str, (cpu, wall): (Duration, Duration)) {
    assert!(
        wall >= Duration::from_millis(900),
        "{what}: returned early after {wall:?}"
    );
    assert!(
        cpu < CPU_BUDGET,
        "{what}: used {cpu:?} CPU while blocked {wall:?}"
    );
}

#[test]
fn a_thread_blocked_in_result_uses_almost_no_cpu() {
    let (f, c) = pair::<u32>();
    let setter = complete_after_a_second(c);
    assert_idle(
        "result(None)",
        measure(move || assert_eq!(f.result(None), Ok(1))),
    );
    setter.join().unwrap();
}

#[test]
fn a_thread_timing_out_in_result_uses_almost_no_cpu() {
    let (f, _c) = pair::<u32>();
    assert_idle(
        "result(1 s)",
        measure(move || assert_eq!(f.result(Some(BLOCKED)), Err(TestError::Timeout))),
    );
}

#[test]
fn a_thread_blocked_in_exception_uses_almost_no_cpu() {
    let (f, c) = pair::<u32>();
    let setter = complete_after_a_second(c);
    assert_idle(
        "exception(None)",
        measure(move || assert_eq!(f.exception(Some(LONG)), Ok(None))),
    );
    setter.join().unwrap();
}

#[test]
fn a_thread_blocked_in_wait_uses_almost_no_cpu() {
    let (f, c) = pair::<u32>();
    let (g, _cg) = pair::<u32>();
    let setter = complete_after_a_second(c);
    assert_idle(
        "wait",
        measure(move || {
            assert_eq!(
                wait([&f, &g], None, ReturnWhen::FirstCompleted).done.len(),
                1
            )
        }),
    );
    setter.join().unwrap();
}

#[test]
fn a_thread_blocked_in_as_completed_uses_almost_no_cpu() {
    let (f, c) = pair::<u32>();
    let setter = complete_after_a_second(c);
    assert_idle(
        "as_completed",
        measure(move || assert_eq!(as_completed([&f], None).count(), 1)),
    );
    setter.join().unwrap();
}

#[test]
fn a_thread_blocked_awaiting_uses_almost_no_cpu() {
    let (f, c) = pair::<u32>();
    let setter = complete_after_a_second(c);
    assert_idle(
        "block_on(.await)",
        measure(move || assert_eq!(block_on(f), Ok(1))),
    );
    setter.join().unwrap();
}
