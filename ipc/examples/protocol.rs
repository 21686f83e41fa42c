//! A walk through procpool's wire protocol: a call and its result as frames,
//! delivered in awkward chunks, and what hostile bytes turn into.
//!
//! Run it with `cargo run -p procpool-ipc --example protocol`.

use procpool_ipc::{
    Call, Decoder, Done, FrameBuf, FromWorker, Outcome, Task, ToWorker, DEFAULT_MAX_FRAME_LEN,
};

const WORD_COUNT: Task<String, usize> = Task::new("word_count");

fn main() {
    // Parent: encode the arguments and frame a call.
    let mut args = Vec::new();
    WORD_COUNT
        .encode_args(&"the quick brown fox".to_owned(), &mut args)
        .expect("a String always encodes");
    let mut to_worker = FrameBuf::new();
    to_worker
        .push(&ToWorker::Call(Call::single(1, WORD_COUNT.name(), &args)))
        .expect("a small call fits a frame");
    println!("call frame: {} bytes", to_worker.pending().len());

    // Worker: the pipe delivers the frame two bytes at a time.
    let mut decoder = Decoder::new();
    let mut output = Vec::new();
    for chunk in to_worker.pending().chunks(2) {
        decoder.feed(chunk);
        while let Some(frame) = decoder.next_frame().expect("a valid frame") {
            let ToWorker::Call(call) = ToWorker::decode(frame).expect("a valid message") else {
                continue;
            };
            let text = WORD_COUNT.decode_args(call.payload).expect("a String");
            let count = text.split_whitespace().count();
            println!(
                "worker: task `{}` called with {text:?} -> {count}",
                call.task
            );
            WORD_COUNT
                .encode_output(&count, &mut output)
                .expect("a usize always encodes");
        }
    }

    // Worker -> parent: the result.
    let mut to_parent = FrameBuf::new();
    to_parent
        .push(&FromWorker::Done(Done {
            id: 1,
            outcome: Outcome::Output(&output),
        }))
        .expect("a small result fits a frame");
    let mut decoder = Decoder::new();
    decoder.feed(to_parent.pending());
    let frame = decoder.next_frame().expect("valid").expect("whole");
    if let FromWorker::Done(Done {
        id,
        outcome: Outcome::Output(bytes),
    }) = FromWorker::decode(frame).expect("a valid message")
    {
        let count = WORD_COUNT.decode_output(bytes).expect("a usize");
        println!("parent: call {id} returned {count}");
    }

    // Hostile bytes: a length prefix far over the limit, and a stream that
    // ends in the middle of a frame. Both are typed errors, never a panic.
    let mut decoder = Decoder::new();
    decoder.feed(&u32::MAX.to_le_bytes());
    let err = decoder.next_frame().expect_err("over the limit");
    println!("oversize frame (limit {DEFAULT_MAX_FRAME_LEN}): {err}");
    let mut decoder = Decoder::new();
    decoder.feed(&[10, 0, 0, 0, 1, 2, 3]);
    let err = decoder.finish().expect_err("cut short");
    println!("cut-short stream: {err}");
}
