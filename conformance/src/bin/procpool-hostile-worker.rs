//! A worker program that misbehaves on purpose, for `tests/hostile.rs`.
//!
//! It speaks procpool's protocol itself (with `procpool-ipc`), serving the
//! conformance tasks `square` and `noop` correctly, and breaks the protocol
//! exactly as its first argument says:
//!
//! | mode               | what it does                                                  |
//! |--------------------|---------------------------------------------------------------|
//! | `silent`           | never writes or reads anything, never exits                   |
//! | `deaf`             | says `Hello`, then never reads or exits                       |
//! | `garbage`          | writes bytes that are no frame before any `Hello`             |
//! | `exit-after-hello` | says `Hello`, then exits 0                                    |
//! | `half-frame`       | at its first call, writes half of a `Done` frame and stalls   |
//! | `close-output`     | at its first call, closes its stdout and keeps running        |
//! | `exiting-linger`   | answers its first call, says `Exiting`, then never exits      |
//! | `lying-exit`       | at its first call, says `Exiting` without answering, lingers  |
//! | `lying-ceiling`    | answers its first call, says `Exiting(MemoryCeiling)`, lingers |
//! | `abort-linger`     | at its first call, says `Aborting(OutOfMemory)`, never dies   |
//! | `zst-bomb`         | answers every call with an output announcing 2^62 elements    |
//! | `exit-on-call`     | exits 1 at every call                                         |
//! | `old-version`      | says a `Hello` of protocol version 2, then serves            |
//! | `serve`            | serves correctly (a control)                                  |
//!
//! "Never exits" and "stalls" are a sleep of ten minutes, far past any bound
//! a test waits for: the pool must not wait for it.

use procpool_ipc::{
    encode_value, AbortCause, Done, ExitReason, FrameBuf, FrameReader, FromWorker, Hello, Outcome,
    ToWorker,
};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::time::Duration;

fn linger() -> ! {
    std::thread::sleep(Duration::from_secs(600));
    std::process::exit(0)
}

/// Reads and drops calls until the channel ends, then exits 0.
fn drain(reader: &mut FrameReader<std::io::Stdin>) -> ! {
    while let Ok(Some(_)) = reader.next_frame() {}
    std::process::exit(0)
}

fn frame(message: &FromWorker<'_>) -> Vec<u8> {
    let mut out = FrameBuf::new();
    out.push(message).expect("an encodable message");
    out.pending().to_vec()
}

fn send(out: &mut std::io::Stdout, bytes: &[u8]) {
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// The output of a correct answer to `task` with `payload`.
fn answer(task: &str, payload: &[u8]) -> Vec<u8> {
    let mut output = Vec::new();
    match task {
        "square" => {
            let x: u64 = procpool_ipc::decode_value(payload).unwrap_or(0);
            encode_value(&x.wrapping_mul(x), &mut output).expect("a u64 encodes");
        }
        _ => encode_value(&(), &mut output).expect("() encodes"),
    }
    output
}

fn main() {
    // Started by a launcher, the settings come first: the mode follows.
    let mode = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--procpool-worker="))
        .unwrap_or_default();
    let mut out = std::io::stdout();
    let mut calls = FrameReader::new(std::io::stdin());
    match mode.as_str() {
        "silent" => linger(),
        "garbage" => {
            send(&mut out, b"\x10\0\0\0this is no procpool frame at all");
            drain(&mut calls)
        }
        _ => {}
    }
    let mut hello = Hello::new(std::process::id(), vec!["noop".into(), "square".into()]);
    if mode == "old-version" {
        hello.version = 2;
    }
    send(&mut out, &frame(&FromWorker::Hello(hello)));
    match mode.as_str() {
        "exit-after-hello" => std::process::exit(0),
        "deaf" => linger(),
        _ => {}
    }
    loop {
        let call = match calls.next_frame() {
            Ok(Some(bytes)) => match ToWorker::decode(bytes) {
                Ok(ToWorker::Call(call)) => (call.id, call.task.to_owned(), call.payload.to_vec()),
                _ => std::process::exit(2),
            },
            _ => std::process::exit(0),
        };
        let (id, task, payload) = call;
        let output = answer(&task, &payload);
        let done = frame(&FromWorker::Done(Done {
            id,
            outcome: Outcome::Output(&output),
        }));
        match mode.as_str() {
            "half-frame" => {
                send(&mut out, &done[..done.len() / 2]);
                linger()
            }
            "close-output" => {
                // SAFETY: fd 1 is this process's stdout, which nothing else
                // here uses after this point; closing it is the fault.
                unsafe { drop(std::fs::File::from_raw_fd(1)) };
                linger()
            }
            "lying-exit" => {
                send(&mut out, &frame(&FromWorker::Exiting(ExitReason::MaxTasks)));
                linger()
            }
            "lying-ceiling" => {
                let reason = ExitReason::MemoryCeiling {
                    resident: 1 << 40,
                    ceiling: 1 << 20,
                };
                // The answer and the claim in one write, so the pool reads
                // them in one turn: were the claim to come later, the pool
                // could send this worker the next call in between, which a
                // lying worker's breach then fails (as it must: the pool
                // cannot know whether it ran), and the test would be racy.
                // (Stdout is line-buffered and would split binary frames at
                // a newline byte: one write(2) on fd 1, under PIPE_BUF, is
                // atomic.)
                let mut both = done;
                both.extend(frame(&FromWorker::Exiting(reason)));
                // SAFETY: fd 1 is this process's stdout, open for its whole
                // life; ManuallyDrop keeps this File from closing it.
                let mut fd1 = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
                if out.flush().and_then(|()| fd1.write_all(&both)).is_err() {
                    std::process::exit(1);
                }
                linger()
            }
            "abort-linger" => {
                send(
                    &mut out,
                    &frame(&FromWorker::Aborting(AbortCause::OutOfMemory)),
                );
                linger()
            }
            "exiting-linger" => {
                send(&mut out, &done);
                send(&mut out, &frame(&FromWorker::Exiting(ExitReason::MaxTasks)));
                linger()
            }
            "zst-bomb" => {
                // A varint announcing 2^62 elements: an output of type
                // Vec<()> that takes nine bytes.
                let mut bomb = Vec::new();
                encode_value(&(1u64 << 62), &mut bomb).expect("a u64 encodes");
                let done = frame(&FromWorker::Done(Done {
                    id,
                    outcome: Outcome::Output(&bomb),
                }));
                send(&mut out, &done);
            }
            "exit-on-call" => std::process::exit(1),
            _ => send(&mut out, &done),
        }
    }
}
