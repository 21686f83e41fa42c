//! Frame encode + decode round trips through `FrameBuf` and `Decoder`, with
//! 64 B, 4 KiB and 1 MiB payloads; and the payload codec's decoding alone:
//! one `u64` output, a batch of 1,000 `u64`s, 1,000 short strings.
#![allow(missing_docs)] // criterion_group! generates undocumented public items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use procpool_ipc::{decode_value, encode_value, Call, Decoder, FrameBuf, Task, ToWorker};
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

fn payload_decode(c: &mut Criterion) {
    const SQUARE: Task<u64, u64> = Task::new("square");
    let mut group = c.benchmark_group("payload_decode");

    let mut one = Vec::new();
    SQUARE
        .encode_output(&123_456_789, &mut one)
        .expect("encodable");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_u64_output", |b| {
        b.iter(|| black_box(SQUARE.decode_output(black_box(&one)).expect("decodable")))
    });

    let mut batch = Vec::new();
    let values: Vec<u64> = (0..1000u64).map(|i| i * 7919).collect();
    encode_value(&values, &mut batch).expect("encodable");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("batch_of_1000_u64", |b| {
        b.iter(|| black_box(decode_value::<Vec<u64>>(black_box(&batch)).expect("decodable")))
    });

    let mut strings = Vec::new();
    let words: Vec<String> = (0..1000).map(|i| format!("word-{i}")).collect();
    encode_value(&words, &mut strings).expect("encodable");
    group.bench_function("batch_of_1000_strings", |b| {
        b.iter(|| black_box(decode_value::<Vec<String>>(black_box(&strings)).expect("decodable")))
    });
    group.finish();
}

criterion_group!(benches, round_trip, payload_decode);
criterion_main!(benches);
