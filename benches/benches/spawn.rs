//! Start-up: build a pool of 1 worker and get the first result of a no-op
//! task, i.e. the manager thread, the spawn of one worker (the
//! `bench-worker` program of this package) and the first call. Dropping the
//! pool (shutdown, reaping the worker) is outside the timing.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, Criterion};
use procpool::Pool;
use procpool_benches::NOOP;
use std::time::Duration;

fn spawn_first_result(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/spawn");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("build_1_worker_first_result", |b| {
        b.iter_with_large_drop(|| {
            let pool = Pool::builder()
                .max_workers(1)
                .worker_program(env!("CARGO_BIN_EXE_bench-worker"))
                .build()
                .expect("pool");
            pool.submit(NOOP, ())
                .expect("submit")
                .result(None)
                .expect("noop");
            pool
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_first_result);
criterion_main!(benches);
