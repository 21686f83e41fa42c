//! The worker's per-call overhead with a no-op task: `Registry::call` alone
//! (decode the args, dispatch, encode the output), and the whole serve loop
//! (`serve_channel`: frame decode, message decode, dispatch, Done encode and
//! write) over 1,000 pre-encoded `Call` frames in memory, one by one and as one
//! batch. Throughput is in calls; divide the time by 1,000 for ns per call.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use procpool_ipc::{encode_value, Call, CallKind, FrameBuf, Task, ToWorker};
use procpool_worker::{serve_channel, Registry, Settings};
use std::hint::black_box;

const NOOP: Task<u64, u64> = Task::new("noop");
const CALLS: u64 = 1000;

fn registry() -> Registry {
    Registry::new().with(NOOP, |x| x)
}

fn registry_call(c: &mut Criterion) {
    let registry = registry();
    let mut payload = Vec::new();
    NOOP.encode_args(&7, &mut payload).expect("encodable");
    let mut out = Vec::new();
    c.bench_function("worker/registry_call", |b| {
        b.iter(|| {
            out.clear();
            registry
                .call(
                    black_box("noop"),
                    CallKind::Single,
                    black_box(&payload),
                    &mut out,
                )
                .expect("runs");
            black_box(&out);
        })
    });
}

fn serve_loop(c: &mut Criterion) {
    let registry = registry();
    let config = Settings::default();
    let mut group = c.benchmark_group("worker/serve_channel");
    group.throughput(Throughput::Elements(CALLS));

    let mut singles = FrameBuf::new();
    let mut payload = Vec::new();
    for id in 0..CALLS {
        payload.clear();
        NOOP.encode_args(&id, &mut payload).expect("encodable");
        singles
            .push(&ToWorker::Call(Call::single(id, NOOP.name(), &payload)))
            .expect("encodable");
    }
    let singles = singles.pending().to_vec();
    let mut sink = Vec::with_capacity(64 << 10);
    group.bench_function("1000_single_calls", |b| {
        b.iter(|| {
            sink.clear();
            black_box(serve_channel(&registry, &config, &singles[..], &mut sink));
        })
    });

    let mut batch = FrameBuf::new();
    let mut payload = Vec::new();
    encode_value(&(0..CALLS).collect::<Vec<u64>>(), &mut payload).expect("encodable");
    batch
        .push(&ToWorker::Call(Call {
            spin_us: 0,
            id: 1,
            task: NOOP.name(),
            kind: CallKind::Batch,
            payload: &payload,
        }))
        .expect("encodable");
    let batch = batch.pending().to_vec();
    group.bench_function("one_batch_of_1000", |b| {
        b.iter(|| {
            sink.clear();
            black_box(serve_channel(&registry, &config, &batch[..], &mut sink));
        })
    });
    group.finish();
}

criterion_group!(benches, registry_call, serve_loop);
criterion_main!(benches);
