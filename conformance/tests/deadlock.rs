//! The failure matrix: CPython's `Lib/test/test_concurrent_futures/test_deadlock.py`
//! (`ExecutorDeadlockTest`), Copyright Python Software Foundation, PSF
//! License Agreement; restated, not copied, with procpool's outcomes.
//!
//! Each case runs on a fresh 2-worker pool of the test worker program, and
//! every wait is bounded (`util::HANG`, or `util::within` around a call that
//! could block): a hang is a failure. Where CPython breaks the pool, procpool
//! fails only the task concerned and then shows that the pool goes on.

mod util;
use procpool::{wait, ByteBuf, CodecOp, Error, ExitInfo, Pool, ReturnWhen, Signal};
use procpool_conformance::tasks::*;
use procpool_conformance::Unencodable;
use std::sync::Arc;
use util::HANG;

/// A fresh pool of two test workers.
fn pool() -> Pool {
    util::pool(2)
}

/// The pool still serves: a task submitted now runs and returns.
fn assert_pool_goes_on(pool: &Pool) {
    let futures: Vec<_> = (0..4u64).map(|x| pool.submit(SQUARE, x).unwrap()).collect();
    for (x, f) in (0..4u64).zip(&futures) {
        assert_eq!(f.result(Some(HANG)).unwrap(), x * x);
    }
}

fn assert_worker_died(error: &Error, expected: ExitInfo, expected_task: &str) {
    match error {
        Error::WorkerDied {
            pid, exit, task, ..
        } => {
            assert!(*pid > 0);
            assert_eq!(*exit, expected, "{error}");
            assert_eq!(task, expected_task);
        }
        other => panic!("expected WorkerDied ({expected}), got {other:?}"),
    }
}

#[test]
fn args_that_cannot_be_encoded_make_submit_return_the_error_and_nothing_is_sent() {
    // test_error_at_task_pickle: CPython fails that future
    let pool = pool();
    let err = pool.submit(UNENCODABLE_ARGS, Unencodable).unwrap_err();
    util::assert_codec_failure(
        &err,
        "unencodable_args",
        CodecOp::EncodeArgs,
        Some("Unencodable refuses to be encoded"),
    );
    assert_eq!(pool.stats().workers_started, 0, "nothing was sent");
    assert_pool_goes_on(&pool);
}

#[test]
fn a_worker_exiting_while_decoding_args_fails_only_that_task() {
    // test_exit_at_task_unpickle: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(EXIT_DECODING_ARGS, procpool_conformance::ExitOnDecode)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(&err, ExitInfo::Code(1), "exit_decoding_args");
    assert_pool_goes_on(&pool);
}

#[test]
fn args_undecodable_in_the_worker_fail_that_task_with_a_decode_error() {
    // test_error_at_task_unpickle: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(UNDECODABLE_ARGS, procpool_conformance::Undecodable)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    util::assert_codec_failure(
        &err,
        "undecodable_args",
        CodecOp::DecodeArgs,
        Some("Undecodable refuses to be decoded"),
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn a_worker_crashing_while_decoding_args_fails_that_task_with_signal_11() {
    // test_crash_at_task_unpickle: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(CRASH_DECODING_ARGS, procpool_conformance::CrashOnDecode)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGSEGV)),
        "crash_decoding_args",
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn a_segfault_fails_that_task_with_signal_11_and_the_pool_goes_on() {
    // test_crash_during_func_exec_on_worker: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(SEGFAULT, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGSEGV)),
        "segfault",
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn exit_1_in_a_task_fails_that_task_with_code_1_and_the_pool_goes_on() {
    // test_exit_during_func_exec_on_worker: CPython raises SystemExit there
    let pool = pool();
    let err = pool
        .submit(EXIT, 1)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(&err, ExitInfo::Code(1), "exit");
    assert_pool_goes_on(&pool);
}

#[test]
fn a_task_returning_an_error_value_gives_that_value() {
    // test_error_during_func_exec_on_worker: that error
    let pool = pool();
    let out = pool
        .submit(FAIL_EVERY_THIRD, 6)
        .unwrap()
        .result(Some(HANG))
        .unwrap();
    assert_eq!(out, Err("6 is a multiple of 3".to_owned()));
    let err = pool
        .submit(PANIC, "raised in the task".to_owned())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert!(
        matches!(err, Error::TaskPanicked { ref message, .. } if message.contains("raised in the task")),
        "{err:?}"
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn a_worker_aborting_while_encoding_the_result_fails_that_task_with_signal_6() {
    // test_crash_during_result_pickle_on_worker: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(ABORT_ENCODING_OUTPUT, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGABRT)),
        "abort_encoding_output",
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn a_worker_exiting_while_encoding_the_result_fails_that_task_with_code_1() {
    // test_exit_during_result_pickle_on_worker: CPython raises SystemExit on
    // that task (sys.exit is an exception); a Rust exit ends the process
    let pool = pool();
    let err = pool
        .submit(EXIT_ENCODING_OUTPUT, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    assert_worker_died(&err, ExitInfo::Code(1), "exit_encoding_output");
    assert_pool_goes_on(&pool);
}

#[test]
fn a_result_that_cannot_be_encoded_fails_that_task_with_an_encode_error() {
    // test_error_during_result_pickle_on_worker: the same
    let pool = pool();
    let err = pool
        .submit(UNENCODABLE_OUTPUT, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    util::assert_codec_failure(
        &err,
        "unencodable_output",
        CodecOp::EncodeOutput,
        Some("Unencodable refuses to be encoded"),
    );
    assert_pool_goes_on(&pool);
}

#[test]
fn a_result_undecodable_in_the_parent_fails_that_task_and_the_pool_goes_on() {
    // test_error_during_result_unpickle_in_result_handler: CPython breaks the pool
    let pool = pool();
    let err = pool
        .submit(WRONG_OUTPUT_TYPE, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    util::assert_codec_failure(&err, "wrong_output_type", CodecOp::DecodeOutput, None);
    assert_pool_goes_on(&pool);
}

#[test]
fn a_result_whose_decoding_panics_in_the_parent_fails_that_task_and_the_pool_goes_on() {
    // test_exit_during_result_unpickle_in_result_handler: CPython's result
    // handler meets sys.exit while unpickling and breaks the pool. A Rust
    // exit cannot be caught (it would end this test program); the nearest is
    // a Deserialize that panics, on the thread that reads the result.
    let pool = pool();
    let future = pool.submit(PANIC_DECODING_OUTPUT, ()).unwrap();
    let err = future.result(Some(HANG)).unwrap_err();
    util::assert_codec_failure(
        &err,
        "panic_decoding_output",
        CodecOp::DecodeOutput,
        Some("PanicOnDecode refuses to be decoded"),
    );
    assert_eq!(future.exception(Some(HANG)).unwrap(), Some(err));
    assert_pool_goes_on(&pool);
}

#[test]
fn a_crash_shortly_after_shutdown_wait_does_not_hang_and_is_reported() {
    // test_shutdown_deadlock: submit(_crash, delay=.1); shutdown(wait=True)
    let pool = Arc::new(pool());
    let crash = pool.submit(CRASH_AFTER_MS, 100).unwrap();
    let fine = pool.submit(SLEEP_MS, 300).unwrap();
    util::within(HANG, "shutdown(wait = true)", {
        let pool = Arc::clone(&pool);
        move || pool.shutdown(true, false)
    });
    let err = crash.result(Some(std::time::Duration::ZERO)).unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGSEGV)),
        "crash_after_ms",
    );
    assert!(fine.result(Some(std::time::Duration::ZERO)).is_ok());
    assert_eq!(pool.stats().workers_alive, 0);
}

#[test]
fn a_crash_shortly_after_shutdown_without_wait_does_not_hang_and_is_reported() {
    // procpool's own, beside test_shutdown_deadlock: the same crash with
    // shutdown(wait = false). (test_shutdown_deadlock_pickle has no
    // counterpart: submit encodes the arguments itself and returns the error.)
    let pool = pool();
    let crash = pool.submit(CRASH_AFTER_MS, 100).unwrap();
    pool.shutdown(false, false);
    let err = crash.result(Some(HANG)).unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGSEGV)),
        "crash_after_ms",
    );
    util::within(HANG, "dropping the pool", move || drop(pool));
}

#[test]
fn a_map_whose_workers_crash_with_big_arguments_in_flight_reports_each_failure() {
    // test_crash_big_data: map(_crash_with_data, [data] * 10) with data of
    // PIPE_MAX_SIZE; CPython raises BrokenProcessPool from the map
    let pool = Arc::new(pool());
    let data = ByteBuf(vec![b'a'; 4 << 20]);
    let results: Vec<Result<(), Error>> = util::within(HANG, "the map", {
        let pool = Arc::clone(&pool);
        move || {
            pool.map(CRASH_WITH_DATA, vec![data; 6], 1)
                .unwrap()
                .collect()
        }
    });
    assert_eq!(results.len(), 6);
    for result in &results {
        assert_worker_died(
            result.as_ref().unwrap_err(),
            ExitInfo::Signal(Signal::from_number(libc::SIGKILL)),
            "crash_with_data",
        );
    }
    assert_pool_goes_on(&pool);
}

#[test]
fn a_crash_while_big_results_are_in_flight_is_reported_and_the_rest_arrive() {
    // test_crash_big_data, the result direction: 8 MiB echoes on both
    // workers while one of them is killed
    let pool = pool();
    let data = ByteBuf((0..8 << 20).map(|i: u32| i as u8).collect());
    let mut echoes = Vec::new();
    for _ in 0..2 {
        echoes.push(pool.submit(ECHO, &data).unwrap());
    }
    let crash = pool.submit(KILL_SELF, ()).unwrap();
    for _ in 0..2 {
        echoes.push(pool.submit(ECHO, &data).unwrap());
    }
    let err = crash.result(Some(HANG)).unwrap_err();
    assert_worker_died(
        &err,
        ExitInfo::Signal(Signal::from_number(libc::SIGKILL)),
        "kill_self",
    );
    for echo in &echoes {
        let out = echo.result(Some(HANG)).unwrap();
        assert!(out == data, "an echo came back changed");
    }
    assert_pool_goes_on(&pool);
}

#[test]
fn an_unknown_task_fails_with_a_message_naming_it() {
    let pool = pool();
    let err = pool
        .submit(UNKNOWN, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    match &err {
        Error::UnknownTask { task, message } => {
            assert_eq!(task, "no_such_task");
            assert!(message.contains("no_such_task"), "{message}");
        }
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    assert!(err.to_string().contains("no_such_task"), "{err}");
    assert_pool_goes_on(&pool);
}

#[test]
fn a_flood_of_submits_while_no_worker_can_serve_finishes() {
    // test_gh105829_should_not_deadlock_if_wakeup_pipe_full: CPython delays
    // its manager thread by 3 s and makes its wake-up block when full, then
    // maps 100 inputs. procpool's wake-up is an eventfd written once per
    // batch of commands, which cannot fill, and its manager cannot be held
    // up from outside (the pool's first start waits for the fork server
    // 100 ms at most). What can be forced is forced: 10 000 submits go in
    // while no worker can serve (the worker program waits for a gate before
    // it serves); then every one completes.
    let gate = util::Gate::new("gh105829");
    let pool = util::builder(2)
        .worker_env("PROCPOOL_TEST_START_GATE", gate.file("gate"))
        .build()
        .unwrap();
    let futures: Vec<_> = (0..10_000u64)
        .map(|x| pool.submit(SQUARE, x).unwrap())
        .collect();
    let stats = pool.stats();
    assert_eq!(
        stats.finished, 0,
        "every submit returned while no worker could serve: {stats:?}"
    );
    gate.open();
    let outcome = wait(&futures, Some(HANG), ReturnWhen::AllCompleted);
    assert!(
        outcome.not_done.is_empty(),
        "{} of 10000 not done",
        outcome.not_done.len()
    );
    for (x, f) in (0..10_000u64).zip(&futures) {
        assert_eq!(f.result(None).unwrap(), x * x);
    }
}
