//! Benches for `procpool-futures`: the cost of one future on one thread, and how fast a
//! completion on one thread wakes a thread blocked in `result()` on another.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use procpool_futures::{pair, Cancelled, Completer, Future, Timeout};

/// The error type a pool would bring.
#[derive(Debug, Clone)]
enum BenchError {
    Cancelled,
    Timeout,
}

impl From<Cancelled> for BenchError {
    fn from(_: Cancelled) -> Self {
        BenchError::Cancelled
    }
}

impl From<Timeout> for BenchError {
    fn from(_: Timeout) -> Self {
        BenchError::Timeout
    }
}

/// Create a future, run it through Running to Finished and read it, all on one thread:
/// what every task costs the pool in this crate when nobody is blocked on it.
fn create_complete_read(c: &mut Criterion) {
    c.bench_function("future/create_complete_read", |b| {
        b.iter(|| {
            let (future, completer) = pair::<u64, BenchError>();
            assert!(completer.set_running_or_notify_cancel());
            completer.set_result(black_box(42)).unwrap();
            black_box(future.result(None).unwrap())
        })
    });
    c.bench_function("future/create_complete_read_with_callback", |b| {
        b.iter(|| {
            let (future, completer) = pair::<u64, BenchError>();
            future.add_done_callback(|f| {
                black_box(f);
            });
            completer.set_result(black_box(42)).unwrap();
            black_box(future.result(None).unwrap())
        })
    });
}

/// Ping-pong between two threads, each blocked in `result()` on the future the other
/// completes. One iteration is a round trip: two cross-thread wake-ups, so the one-way
/// wake-up latency is half the reported time. The futures are made before timing starts.
fn cross_thread_wakeup(c: &mut Criterion) {
    type Pair = (Future<u64, BenchError>, Completer<u64, BenchError>);
    c.bench_function("future/cross_thread_round_trip", |b| {
        b.iter_custom(|iters| {
            let n = iters as usize;
            let (ping_futures, ping_completers): (Vec<_>, Vec<_>) =
                (0..n).map(|_| -> Pair { pair() }).unzip();
            let (pong_futures, pong_completers): (Vec<_>, Vec<_>) =
                (0..n).map(|_| -> Pair { pair() }).unzip();
            let (ready_tx, ready_rx) = mpsc::channel();
            let ponger = thread::spawn(move || {
                ready_tx.send(()).unwrap();
                for (ping, pong) in ping_futures.iter().zip(&pong_completers) {
                    let v = ping.result(None).unwrap();
                    pong.set_result(v + 1).unwrap();
                }
            });
            ready_rx.recv().unwrap();
            // Let the ponger reach its first `result()`.
            thread::sleep(Duration::from_millis(1));
            let start = Instant::now();
            for (i, (ping, pong)) in ping_completers.iter().zip(&pong_futures).enumerate() {
                ping.set_result(i as u64).unwrap();
                black_box(pong.result(None).unwrap());
            }
            let elapsed = start.elapsed();
            ponger.join().unwrap();
            elapsed
        })
    });
}

criterion_group!(benches, create_complete_read, cross_thread_wakeup);
criterion_main!(benches);
