//! The pool against workers that misbehave (`procpool-hostile-worker`, which
//! speaks the protocol itself and breaks it as its mode says) and against
//! user types that misbehave while decoding. Every wait on a worker has a
//! deadline; a worker that misses one is killed and its task fails with a
//! cause; a crash loop backs off and breaks the pool rather than storming.
//!
//! Each test bounds the whole of what it waits for (`util::within`), so a
//! regression fails instead of hanging the suite, and ends with its
//! processes gone.

mod util;

use procpool::{CodecOp, Error, PayloadError, Pool, PoolBuilder, Task};
use procpool_conformance::tasks::{NOOP, SQUARE};
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use util::{HANG, SOON};

const HOSTILE: &str = env!("CARGO_BIN_EXE_procpool-hostile-worker");

/// A pool of `n` hostile workers in `mode`, with short deadlines so that the
/// tests are quick (the defaults are seconds, not minutes, too).
fn hostile(mode: &str, n: usize) -> PoolBuilder {
    Pool::builder()
        .max_workers(n)
        .worker_program(HOSTILE)
        .worker_args([mode])
        .start_timeout(Duration::from_secs(2))
        .stall_timeout(Duration::from_secs(2))
        .exit_timeout(Duration::from_secs(2))
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .max_failures_in_a_row(3)
}

fn protocol_detail(error: &Error) -> &str {
    match error {
        Error::Protocol { detail, .. } => detail,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn broken_cause(error: &Error) -> &str {
    match error {
        Error::BrokenPool { cause, .. } => cause,
        other => panic!("expected a broken pool, got {other:?}"),
    }
}

#[test]
fn a_worker_that_never_says_hello_is_killed_and_the_pool_breaks_after_three() {
    let pool = util::tagged(hostile("silent", 1), "silent")
        .build()
        .unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let outcome = util::within(HANG, "a task for silent workers", move || {
        future.result(None)
    });
    let error = outcome.unwrap_err();
    let cause = broken_cause(&error);
    assert!(cause.contains("did not say Hello"), "{cause}");
    assert!(cause.contains("3 worker failures in a row"), "{cause}");
    let stats = pool.stats();
    assert_eq!(
        (stats.workers_started, stats.worker_failures),
        (3, 3),
        "{stats:?}"
    );
    assert!(matches!(
        pool.submit(SQUARE, 1),
        Err(Error::BrokenPool { .. })
    ));
    drop(pool);
    assert!(util::tagged_processes("silent").is_empty());
}

#[test]
fn a_worker_that_stalls_in_the_middle_of_a_frame_fails_its_task() {
    let pool = util::tagged(hostile("half-frame", 1), "half-frame")
        .build()
        .unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let error = util::within(HANG, "a stalled frame", move || future.result(None)).unwrap_err();
    let detail = protocol_detail(&error);
    assert!(detail.contains("and then nothing for"), "{detail}");
    drop(pool);
    assert!(util::tagged_processes("half-frame").is_empty());
}

#[test]
fn a_worker_that_closes_its_output_but_lives_on_is_killed_at_once() {
    // The stall deadline is far off: only the end of the pipe can say it.
    let pool = util::tagged(hostile("close-output", 1), "close-output")
        .stall_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let error = util::within(HANG, "a closed output", move || future.result(None)).unwrap_err();
    let detail = protocol_detail(&error);
    assert!(detail.contains("closed its result pipe"), "{detail}");
    drop(pool);
    assert!(util::tagged_processes("close-output").is_empty());
}

#[test]
fn a_worker_that_says_exiting_and_lingers_is_killed_and_the_next_task_runs() {
    // Each worker answers one call, says it exits (max_tasks_per_child 1)
    // and then does not: it is killed after the exit timeout, and the one
    // worker slot goes to its replacement.
    let pool = util::tagged(hostile("exiting-linger", 1), "exiting-linger")
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let results = util::within(HANG, "three tasks on lingering workers", move || {
        let results: Vec<_> = (1..=3)
            .map(|x| pool.submit(SQUARE, x).unwrap().result(None))
            .collect();
        (results, pool.stats())
    });
    let (results, stats) = results;
    assert_eq!(results, vec![Ok(1), Ok(4), Ok(9)]);
    assert_eq!(stats.workers_started, 3, "{stats:?}");
    assert!(util::tagged_processes("exiting-linger").is_empty());
}

#[test]
fn a_worker_that_says_exiting_without_reason_breaks_the_protocol() {
    let pool = hostile("lying-exit", 1).build().unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let error = util::within(HANG, "a lying Exiting", move || future.result(None)).unwrap_err();
    let detail = protocol_detail(&error);
    assert!(detail.contains("exiting"), "{detail}");
}

#[test]
fn workers_that_exit_after_hello_are_not_replaced_while_the_pool_is_idle() {
    let pool = util::tagged(hostile("exit-after-hello", 2), "exit-after-hello")
        .build()
        .unwrap();
    // Either the task is sent to a worker as it says Hello and dies with it
    // (worker-died), or the workers die before it is sent, each an idle
    // death, and after three the pool breaks: which, depends on whether the
    // worker's end is seen in the same read as its Hello.
    let future = pool.submit(SQUARE, 3).unwrap();
    let error = util::within(HANG, "a task on dying workers", move || future.result(None));
    assert!(
        matches!(
            error,
            Err(Error::WorkerDied { .. } | Error::BrokenPool { .. })
        ),
        "{error:?}"
    );
    let started = pool.stats().workers_started;
    assert!(started <= 3, "{:?}", pool.stats());
    // Idle now: nothing is started for a while (the old pool started ten a
    // second, for ever). Observing that nothing happens takes time.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pool.stats().workers_started, started, "{:?}", pool.stats());
    assert!(util::tagged_processes("exit-after-hello").is_empty());
}

#[test]
fn workers_that_keep_dying_idle_break_a_pool_keeping_min_workers() {
    let pool = hostile("exit-after-hello", 1)
        .min_workers(1)
        .build()
        .unwrap();
    util::wait_until(HANG, "three failures", || pool.stats().worker_failures >= 3);
    // The pool broke at the third: a submit now is refused, or (racing the
    // manager's turn) fails with the same cause.
    let error = match pool.submit(NOOP, ()) {
        Err(e) => e,
        Ok(f) => f.result(Some(HANG)).unwrap_err(),
    };
    let cause = broken_cause(&error);
    assert!(cause.contains("died"), "{cause}");
    assert_eq!(pool.stats().workers_started, 3, "{:?}", pool.stats());
}

#[test]
fn workers_that_write_garbage_before_hello_break_the_pool_after_three() {
    let pool = util::tagged(hostile("garbage", 2), "garbage")
        .build()
        .unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let error = util::within(HANG, "garbage workers", move || future.result(None)).unwrap_err();
    let cause = broken_cause(&error);
    assert!(cause.contains("broke the protocol"), "{cause}");
    let stats = pool.stats();
    assert_eq!(
        (stats.workers_started, stats.worker_failures),
        (3, 3),
        "{stats:?}"
    );
    drop(pool);
    assert!(util::tagged_processes("garbage").is_empty());
}

#[test]
fn workers_that_die_at_every_call_fail_each_task_without_breaking_the_pool() {
    // A death while running a task is the task's failure, not the pool's:
    // each task fails with worker-died, and the pool goes on.
    let pool = hostile("exit-on-call", 2).build().unwrap();
    let errors = util::within(HANG, "five tasks on dying workers", move || {
        (0..5)
            .map(|x| pool.submit(SQUARE, x).unwrap().result(None))
            .collect::<Vec<_>>()
    });
    for error in errors {
        assert!(matches!(error, Err(Error::WorkerDied { .. })), "{error:?}");
    }
}

#[test]
fn kill_workers_kills_a_starting_and_an_idle_deaf_worker_at_once() {
    for mode in ["silent", "deaf"] {
        let pool = hostile(mode, 1)
            .min_workers(1)
            .start_timeout(Duration::from_secs(600))
            .exit_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        if mode == "deaf" {
            util::wait_until(SOON, "the deaf worker's Hello", || {
                pool.stats().workers_idle == 1
            });
        }
        // Both ignore the end of their call pipe: only a SIGKILL ends them,
        // and the exit timeout is far off. A SIGKILL and a reap take
        // milliseconds; the old pool closed their pipes and waited 10 s.
        util::within(Duration::from_secs(5), "kill_workers", move || {
            pool.kill_workers()
        });
    }
}

/// An output of nine bytes that announce 2^62 elements of `()`.
const ZST_BOMB: Task<u64, Vec<()>> = Task::new("square");

#[test]
fn an_output_announcing_two_to_the_62_empty_elements_is_a_codec_error_at_once() {
    let pool = hostile("zst-bomb", 1).build().unwrap();
    let outcomes = util::within(HANG, "decoding a ZST bomb", move || {
        let bomb = pool.submit(ZST_BOMB, 1).unwrap().result(None);
        // The pool goes on (the worker is fine: the bytes are the problem).
        let again = pool.submit(ZST_BOMB, 2).unwrap().result(None);
        (bomb, again)
    });
    for outcome in [outcomes.0, outcomes.1] {
        match outcome {
            Err(Error::Codec(e)) => {
                assert_eq!((e.task.as_str(), e.op), ("square", CodecOp::DecodeOutput));
                assert!(
                    matches!(e.cause, PayloadError::TooManyElements { .. }),
                    "{e}"
                );
            }
            other => panic!("expected a codec error, got {other:?}"),
        }
    }
}

/// An output type whose `Deserialize` panics.
#[derive(Debug, Clone)]
struct PanicOnDecode;

impl<'de> Deserialize<'de> for PanicOnDecode {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("PanicOnDecode refuses to be decoded")
    }
}

#[test]
fn a_deserialize_that_panics_fails_that_future_and_the_pool_goes_on() {
    const PANICKY: Task<(), PanicOnDecode> = Task::new("noop");
    let pool = util::pool(1);
    let (error, later) = util::within(HANG, "a panicking Deserialize", move || {
        let error = pool.submit(PANICKY, ()).unwrap().result(None).unwrap_err();
        let later: Vec<_> = (0..5)
            .map(|x| pool.submit(SQUARE, x).unwrap().result(None))
            .collect();
        (error, later)
    });
    match &error {
        Error::Codec(e) => {
            assert_eq!((e.task.as_str(), e.op), ("noop", CodecOp::DecodeOutput));
            assert!(matches!(e.cause, PayloadError::Panicked(_)), "{e}");
            assert!(
                error.to_string().contains("PanicOnDecode refuses"),
                "{error}"
            );
        }
        other => panic!("expected a codec error, got {other:?}"),
    }
    assert_eq!(later, vec![Ok(0), Ok(1), Ok(4), Ok(9), Ok(16)]);
}

/// Released by the test: until then, decoding a [`Held`] waits.
static RELEASE: AtomicBool = AtomicBool::new(false);

/// An output type whose `Deserialize` waits for the test's say-so (a slow
/// decoder, without a fixed sleep).
#[derive(Debug, Clone)]
struct Held;

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let end = Instant::now() + HANG;
        while !RELEASE.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        <()>::deserialize(d).map(|()| Held)
    }
}

#[test]
fn a_slow_deserialize_holds_up_only_the_thread_that_reads_its_result() {
    const HELD: Task<(), Held> = Task::new("noop");
    let pool = std::sync::Arc::new(util::pool(2));
    let held = pool.submit(HELD, ()).unwrap();
    let reader = std::thread::spawn(move || held.result(None).map(|_| ()));
    // While the reader decodes (and waits), other results arrive.
    let squares = util::within(SOON, "results while another decodes", {
        let pool = std::sync::Arc::clone(&pool);
        move || {
            (0..20)
                .map(|x| pool.submit(SQUARE, x).unwrap().result(None))
                .collect::<Vec<_>>()
        }
    });
    RELEASE.store(true, Ordering::SeqCst);
    assert_eq!(squares, (0..20).map(|x| Ok(x * x)).collect::<Vec<_>>());
    assert_eq!(reader.join().unwrap(), Ok(()));
}

#[test]
fn a_large_output_streams_in_while_small_results_of_another_worker_complete() {
    use procpool_conformance::tasks::BIG_OUTPUT;
    let pool = std::sync::Arc::new(util::builder(2).max_frame_len(400 << 20).build().unwrap());
    // Both workers up, so that the small calls do not wait for a start.
    let warm: Vec<_> = (0..2)
        .map(|_| {
            pool.submit(procpool_conformance::tasks::SLEEP_MS, 50)
                .unwrap()
        })
        .collect();
    for f in warm {
        f.result(Some(SOON)).unwrap();
    }
    let big = pool.submit(BIG_OUTPUT, 300 << 20).unwrap();
    let mut small_done_before_big = 0;
    for x in 0..50 {
        let small = pool.submit(SQUARE, x).unwrap();
        assert_eq!(small.result(Some(HANG)), Ok(x * x));
        if !big.done() {
            small_done_before_big += 1;
        }
    }
    let output = big.result(Some(HANG)).unwrap();
    assert_eq!(output.len(), 300 << 20);
    assert!(
        small_done_before_big > 0,
        "no small result arrived while the big one streamed"
    );
}

#[test]
fn a_call_over_the_frame_limit_is_refused_by_submit() {
    use procpool::ByteBuf;
    use procpool_conformance::tasks::ECHO;
    let pool = util::builder(1).max_frame_len(1 << 20).build().unwrap();
    let error = pool.submit(ECHO, ByteBuf(vec![0; 2 << 20])).unwrap_err();
    match &error {
        Error::TooLarge { task, len, limit } => {
            assert_eq!(task, "echo");
            assert!(*len > 2 << 20 && *limit == 1 << 20, "{error}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(pool.stats().workers_started, 0, "nothing was sent");
    assert_eq!(pool.submit(NOOP, ()).unwrap().result(Some(SOON)), Ok(()));
}

#[test]
fn a_memory_ceiling_exit_is_believed_only_when_the_pool_set_that_ceiling() {
    // Each worker answers one call, then says its resident memory is over
    // a 1 MiB ceiling, and lingers. Without that ceiling the claim is a
    // breach (killed at once); with it, a recycling (killed after the exit
    // timeout). Either way every task is answered on a fresh worker.
    for ceiling in [None, Some(1 << 20)] {
        let tag = format!("lying-ceiling-{}", ceiling.is_some());
        let mut builder = util::tagged(hostile("lying-ceiling", 1), &tag);
        if let Some(bytes) = ceiling {
            builder = builder.max_memory_per_child(bytes);
        }
        let pool = builder.build().unwrap();
        let recycled = if ceiling.is_some() { 3 } else { 0 };
        let (results, stats) = util::within(HANG, "three tasks", move || {
            let results: Vec<_> = (1..=3)
                .map(|x| pool.submit(SQUARE, x).unwrap().result(None))
                .collect();
            // The last worker's Exiting may follow its result by a turn.
            util::wait_until(SOON, "the last claim read", || {
                pool.stats().workers_replaced == 3
            });
            (results, pool.stats())
        });
        assert_eq!(results, vec![Ok(1), Ok(4), Ok(9)], "ceiling {ceiling:?}");
        assert_eq!(stats.recycled_for_memory, recycled, "{stats:?}");
        assert_eq!(stats.workers_started, 3, "{stats:?}");
        assert!(util::tagged_processes(&tag).is_empty());
    }
}

#[test]
fn a_worker_that_says_it_is_aborting_and_lingers_is_killed_and_its_task_fails() {
    // The claim "out of memory" holds only if the worker then dies by
    // SIGABRT: this one does not, is killed after the exit timeout, and its
    // task fails as a plain death.
    let pool = util::tagged(hostile("abort-linger", 1), "abort-linger")
        .build()
        .unwrap();
    let future = pool.submit(SQUARE, 3).unwrap();
    let started = Instant::now();
    let error = util::within(HANG, "an Aborting that lingers", move || {
        future.result(None)
    })
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "killed after the 2 s exit timeout, not waited for"
    );
    match &error {
        Error::WorkerDied { exit, .. } => {
            assert_eq!(*exit, procpool::ExitInfo::Signal(procpool::Signal::KILL));
        }
        other => panic!("expected a plain worker death, got {other:?}"),
    }
    assert_eq!(pool.stats().out_of_memory, 0);
    drop(pool);
    assert!(util::tagged_processes("abort-linger").is_empty());
}
