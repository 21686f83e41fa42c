//! Concurrency stress: thousands of rounds in which threads complete, cancel, abort, block in
//! `result`, `wait` and `as_completed`, await on tokio (some through `abort_on_drop` with a
//! timeout) and add callbacks, all on the same batch of futures at once.
//!
//! Checked every round: every future ends done with a consistent outcome, every callback ran
//! exactly once, the abort hook ran exactly once if and only if an abort reached a running
//! future, and nobody stayed blocked (a watchdog aborts the process if a round hangs).

mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use procpool_futures::{as_completed, wait, ReturnWhen};
use util::{pair, Completer, Future, TestError};

const ROUNDS: usize = 10_000;
const BATCH: usize = 8;
/// A hang is a failure: give up long after a healthy run would have ended.
const WATCHDOG: Duration = Duration::from_secs(180);

struct Round {
    futures: Vec<Future>,
    completers: Vec<Completer>,
    hook_calls: Vec<Arc<AtomicUsize>>,
    callbacks_added: Vec<AtomicUsize>,
    callbacks_ran: Arc<Vec<AtomicUsize>>,
}

impl Round {
    fn new() -> Self {
        let (futures, completers) = (0..BATCH).map(|_| pair()).unzip();
        Round {
            futures,
            completers,
            hook_calls: (0..BATCH).map(|_| Arc::new(AtomicUsize::new(0))).collect(),
            callbacks_added: (0..BATCH).map(|_| AtomicUsize::new(0)).collect(),
            callbacks_ran: Arc::new((0..BATCH).map(|_| AtomicUsize::new(0)).collect()),
        }
    }
}

/// xorshift64*: enough randomness to vary the interleavings, reproducible per seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
}

fn maybe_yield(rng: &mut Rng) {
    if rng.below(4) == 0 {
        thread::yield_now();
    }
}

fn executor(round: &Round, rng: &mut Rng) {
    for (i, c) in round.completers.iter().enumerate() {
        maybe_yield(rng);
        if !c.set_running_or_notify_cancel() {
            assert!(c.is_cancelled());
            continue;
        }
        let calls = Arc::clone(&round.hook_calls[i]);
        c.set_abort_hook(move || {
            calls.fetch_add(1, Ordering::SeqCst);
        });
        maybe_yield(rng);
        let outcome = if c.is_abort_requested() {
            c.set_cancelled()
        } else if rng.below(3) == 0 {
            c.set_error(TestError::Task(i.to_string()))
        } else {
            c.set_result(i as u32)
        };
        outcome.expect("only the executor completes a running future");
    }
}

fn canceller(round: &Round, rng: &mut Rng) {
    for _ in 0..BATCH / 2 {
        let f = &round.futures[rng.below(BATCH as u64) as usize];
        if rng.below(2) == 0 {
            f.cancel();
        } else {
            f.abort();
        }
        maybe_yield(rng);
    }
}

fn check_outcome(i: usize, f: &Future, outcome: Result<u32, TestError>) {
    match outcome {
        Ok(v) => assert_eq!(v, i as u32),
        Err(TestError::Task(s)) => assert_eq!(s, i.to_string()),
        Err(TestError::Cancelled) => assert!(f.cancelled()),
        Err(e) => panic!("unexpected outcome {e:?}"),
    }
    assert!(f.done());
}

fn blocker(round: &Round, _rng: &mut Rng) {
    for (i, f) in round.futures.iter().enumerate() {
        check_outcome(i, f, f.result(None));
    }
}

fn waiter(round: &Round, rng: &mut Rng) {
    let mode = [
        ReturnWhen::FirstCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::AllCompleted,
    ][rng.below(3) as usize];
    let r = wait(&round.futures, None, mode);
    assert!(!r.done.is_empty());
    assert_eq!(r.done.len() + r.not_done.len(), BATCH);
    if rng.below(2) == 0 {
        let yielded = as_completed(&round.futures, None)
            .map(Result::unwrap)
            .count();
        assert_eq!(yielded, BATCH);
    } else {
        let r = wait(&round.futures, None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), BATCH);
    }
}

fn callback_adder(round: &Round, rng: &mut Rng) {
    for i in 0..BATCH {
        for _ in 0..rng.below(3) {
            round.callbacks_added[i].fetch_add(1, Ordering::SeqCst);
            let ran = Arc::clone(&round.callbacks_ran);
            round.futures[i].add_done_callback(move |f| {
                assert!(f.done());
                ran[i].fetch_add(1, Ordering::SeqCst);
            });
        }
        maybe_yield(rng);
    }
}

fn awaiter(round: &Round, rng: &mut Rng, rt: &tokio::runtime::Runtime) {
    let tasks: Vec<_> = round
        .futures
        .iter()
        .map(|f| {
            let f = f.clone();
            let limit = if rng.below(8) == 0 {
                Some(Duration::from_micros(rng.below(200)))
            } else {
                None
            };
            rt.spawn(async move {
                let outcome = match limit {
                    Some(limit) => tokio::time::timeout(limit, f.clone().abort_on_drop())
                        .await
                        .ok(),
                    None => Some(f.clone().await),
                };
                (f, outcome)
            })
        })
        .collect();
    rt.block_on(async {
        for (i, task) in tasks.into_iter().enumerate() {
            let (f, outcome) = task.await.unwrap();
            if let Some(outcome) = outcome {
                check_outcome(i, &f, outcome);
            }
        }
    });
}

fn check_round(round: &Round) {
    for i in 0..BATCH {
        let f = &round.futures[i];
        assert!(f.done(), "future {i} not done: {f:?}");
        assert_eq!(
            round.callbacks_ran[i].load(Ordering::SeqCst),
            round.callbacks_added[i].load(Ordering::SeqCst),
            "future {i}: every callback runs exactly once"
        );
        let hook_calls = round.hook_calls[i].load(Ordering::SeqCst);
        let aborted = round.completers[i].is_abort_requested();
        assert_eq!(
            hook_calls,
            usize::from(aborted),
            "future {i}: hook runs once iff aborted while running"
        );
    }
}

#[test]
fn every_callback_runs_once_and_no_waiter_is_lost_under_contention() {
    let finished = Arc::new(AtomicBool::new(false));
    {
        let finished = Arc::clone(&finished);
        thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < WATCHDOG {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
            eprintln!("stress: no progress within {WATCHDOG:?}: a waiter was lost or something deadlocked");
            std::process::abort();
        });
    }

    type Role = fn(&Round, &mut Rng);
    let roles: [Role; 5] = [executor, canceller, blocker, waiter, callback_adder];
    let participants = roles.len() + 2; // + the awaiter + this thread
    let barrier = Arc::new(Barrier::new(participants));
    let current: Arc<Mutex<Option<Arc<Round>>>> = Arc::new(Mutex::new(None));
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap(),
    );

    let start = Instant::now();
    let mut threads = Vec::new();
    for (n, role) in roles.into_iter().enumerate() {
        let (barrier, current) = (Arc::clone(&barrier), Arc::clone(&current));
        threads.push(thread::spawn(move || {
            for r in 0..ROUNDS {
                barrier.wait();
                let round = current.lock().unwrap().clone().unwrap();
                role(&round, &mut Rng::new((r * 16 + n) as u64));
                drop(round);
                barrier.wait();
            }
        }));
    }
    {
        let (barrier, current, rt) = (Arc::clone(&barrier), Arc::clone(&current), Arc::clone(&rt));
        threads.push(thread::spawn(move || {
            for r in 0..ROUNDS {
                barrier.wait();
                let round = current.lock().unwrap().clone().unwrap();
                awaiter(&round, &mut Rng::new((r * 16 + 15) as u64), &rt);
                drop(round);
                barrier.wait();
            }
        }));
    }
    for _ in 0..ROUNDS {
        let round = Arc::new(Round::new());
        *current.lock().unwrap() = Some(Arc::clone(&round));
        barrier.wait();
        barrier.wait();
        check_round(&round);
    }
    for t in threads {
        t.join().unwrap();
    }
    finished.store(true, Ordering::SeqCst);
    eprintln!(
        "stress: {ROUNDS} rounds of {BATCH} futures in {:?}",
        start.elapsed()
    );
}
