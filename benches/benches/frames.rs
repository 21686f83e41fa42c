//! Frame encode + decode round trips through `FrameBuf` and `Decoder`, with
//! 64 B, 4 KiB and 1 MiB payloads.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use procpool_ipc::{Call, Decoder, FrameBuf, ToWorker};
use std::hint::black_box;

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_round_trip");
    for size in [64usize, 4 << 10, 1 << 20] {
        let payload = vec![0xA5u8; size];
        let mut out = FrameBuf::new();
        let mut decoder = Decoder::new();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                out.push(&ToWorker::Call(Call::single(7, "square", payload)))
                    .expect("encodable");
                decoder.feed(out.pending());
                out.clear();
                let frame = decoder.next_frame().expect("valid").expect("whole");
                let message = ToWorker::decode(frame).expect("decodable");
                black_box(message);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
