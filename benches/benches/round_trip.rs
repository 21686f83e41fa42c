//! The submit-to-result round trip of a no-op task on a warm pool of 1 and of
//! 2 workers: `pool.submit(NOOP, ())?.result(None)?`, one call at a time.
//! The workers are the `bench-worker` program of this package.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use procpool::Pool;
use procpool_benches::{GETPID, NOOP};
use std::collections::BTreeSet;
use std::time::Duration;

/// A pool of `workers` with every worker started and past its first call.
fn warm_pool(workers: usize) -> Pool {
    let pool = Pool::builder()
        .max_workers(workers)
        .worker_program(env!("CARGO_BIN_EXE_bench-worker"))
        .build()
        .expect("pool");
    let mut pids = BTreeSet::new();
    for _ in 0..10 {
        let futures: Vec<_> = (0..workers)
            .map(|_| pool.submit(GETPID, 50).expect("submit"))
            .collect();
        for f in futures {
            pids.insert(f.result(None).expect("getpid"));
        }
        if pids.len() >= workers {
            break;
        }
    }
    assert_eq!(pids.len(), workers, "not every worker started");
    for _ in 0..200 {
        pool.submit(NOOP, ())
            .expect("submit")
            .result(None)
            .expect("noop");
    }
    pool
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/round_trip_noop");
    group.measurement_time(Duration::from_secs(4));
    for workers in [1usize, 2] {
        let pool = warm_pool(workers);
        group.bench_with_input(BenchmarkId::new("workers", workers), &pool, |b, pool| {
            b.iter(|| {
                pool.submit(NOOP, ())
                    .expect("submit")
                    .result(None)
                    .expect("noop")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
