//! The bodies of procpool's fuzz targets, kept in a library so that the
//! cargo-fuzz binaries (`fuzz_targets/`) and an ordinary test that replays
//! the committed corpus (`tests/replay_corpus.rs`) run the same code.
//!
//! ```text
//! corpus/<target>/*  --> tests/replay_corpus.rs --\
//!                                                  +--> frame_decoder / payload_codec /
//! libFuzzer mutations --> fuzz_targets/<target>.rs /     worker_dispatch (bytes)
//!                                                        (panic = finding)
//! ```

use procpool_ipc::{
    ByteBuf, CallKind, Decoder, ExitReason, FrameReader, FromWorker, Outcome, PayloadError,
    RemoteError, RemoteErrorKind, Task, ToWorker,
};
use procpool_worker::{serve_channel, Ending, Registry, Settings};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// Splits `data` into chunks whose sizes come from its first bytes, feeds them
/// to a decoder in that order, and decodes every frame as both message
/// directions. Checks that the chunking does not change which frames come
/// out, and that nothing panics.
pub fn frame_decoder(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    // A small limit half of the time, so oversize frames are common.
    let limit = if control & 1 == 0 { 64 } else { 1 << 20 };
    let whole = frames_of(rest, limit, &[rest.len().max(1)]);
    let sizes: Vec<usize> = rest
        .iter()
        .take(16)
        .map(|b| usize::from(b % 7) + 1)
        .collect();
    let split = frames_of(rest, limit, &sizes);
    assert_eq!(whole, split, "chunking changed the frames");
}

/// Feeds `data` in chunks of `sizes` (cycled) and collects what comes out:
/// each frame's bytes, then the first error or the end state.
fn frames_of(data: &[u8], limit: usize, sizes: &[usize]) -> (Vec<Vec<u8>>, String) {
    let mut decoder = Decoder::with_max_frame_len(limit);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        decoder.feed(&data[at..at + n]);
        at += n;
        i += 1;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Ok(FromWorker::Hello(hello)) = FromWorker::decode(frame) {
                        let _ = hello.check();
                    }
                    let _ = ToWorker::decode(frame).map(|m| format!("{m:?}"));
                    frames.push(frame.to_vec());
                }
                Ok(None) => break,
                Err(e) => return (frames, e.to_string()),
            }
        }
    }
    let end = match decoder.finish() {
        Ok(()) => "clean end".to_owned(),
        Err(e) => e.to_string(),
    };
    (frames, end)
}

/// Decodes `data` as several argument types through the payload codec; what
/// decodes must encode and decode back to the same value. Zero-sized and
/// nested empty types are there for the element budget (a few bytes can
/// announce 2^62 of them), the recursive enum for the depth limit.
pub fn payload_codec(data: &[u8]) {
    round_trip::<u64>(data);
    round_trip::<String>(data);
    round_trip::<Vec<String>>(data);
    round_trip::<(u32, ByteBuf, Option<String>)>(data);
    round_trip::<BTreeMap<String, Vec<i32>>>(data);
    round_trip::<Result<Vec<u64>, RemoteError>>(data);
    round_trip::<()>(data);
    round_trip::<Unit>(data);
    round_trip::<PhantomData<u64>>(data);
    round_trip::<Vec<()>>(data);
    round_trip::<Vec<Vec<()>>>(data);
    round_trip::<Option<Vec<()>>>(data);
    round_trip::<BTreeMap<u8, ()>>(data);
    round_trip::<(Vec<()>, Vec<Vec<()>>)>(data);
    round_trip::<Expr>(data);
    batch_outputs_as_serde::<u64>(data);
    batch_outputs_as_serde::<String>(data);
    batch_outputs_as_serde::<()>(data);
}

/// `decode_batch_outputs` reads a batch's results without serde's `Result`
/// impl: it must accept exactly the bytes serde's own decode of
/// `Vec<Result<O, RemoteError>>` accepts, with the same values.
fn batch_outputs_as_serde<O>(data: &[u8])
where
    O: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let ours = procpool_ipc::decode_batch_outputs_uncaught::<O>(data)
        .ok()
        .map(Iterator::collect::<Vec<_>>);
    let serdes = procpool_ipc::decode_value::<Vec<Result<O, RemoteError>>>(data).ok();
    assert_eq!(ours, serdes, "decode_batch_outputs and serde disagree");
}

/// A unit struct: no bytes at all.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

/// A small recursive type, for the depth limit.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Expr {
    Leaf(u8),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
}

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = procpool_ipc::decode_value::<T>(data) else {
        return;
    };
    let mut bytes = Vec::new();
    procpool_ipc::encode_value(&value, &mut bytes).expect("a decoded value encodes");
    let again: T = match procpool_ipc::decode_value(&bytes) {
        Ok(again) => again,
        // The element budget grows with the input, and bincode accepts a
        // length written longer than it needs (a u64 varint for 5): the
        // re-encoded bytes are shorter and may allow fewer zero-sized
        // elements than the value holds.
        Err(PayloadError::TooManyElements { .. }) if bytes.len() < data.len() => return,
        Err(e) => panic!("an encoded value decodes: {e}"),
    };
    assert_eq!(value, again, "value changed in a round trip");
}

/// The frame limit of the worker under [`worker_dispatch`]: small, so that
/// oversize calls and outputs are easy to reach.
pub const DISPATCH_MAX_FRAME_LEN: usize = 4096;
/// The worker under [`worker_dispatch`] recycles after this many calls.
pub const DISPATCH_MAX_TASKS: u64 = 8;

/// `x * x`, wrapping.
pub const SQUARE: Task<u64, u64> = Task::new("square");
/// Its argument back.
pub const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
/// The strings joined with commas.
pub const JOIN: Task<Vec<String>, String> = Task::new("join");
/// `a / b`, or an error value when that has no answer.
pub const CHECKED_DIV: Task<(i64, i64), Result<i64, String>> = Task::new("checked_div");
/// Nothing in, nothing out.
pub const UNIT: Task<(), ()> = Task::new("unit");

/// The tasks of the worker under [`worker_dispatch`]; none of them panics, so
/// a `Panicked` outcome is a finding (a panic in a codec).
fn dispatch_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::new()
            .with(SQUARE, |x: u64| x.wrapping_mul(x))
            .with(ECHO, |bytes| bytes)
            .with(JOIN, |parts: Vec<String>| parts.join(","))
            .with(CHECKED_DIV, |(a, b): (i64, i64)| {
                a.checked_div(b)
                    .ok_or_else(|| format!("{a} / {b} has no answer"))
            })
            .with(UNIT, |()| ())
    })
}

/// How the worker must end, read from its input by the protocol's rules.
#[derive(Debug, PartialEq, Eq)]
enum ExpectedEnd {
    ChannelClosed,
    Shutdown,
    MaxTasks,
    Protocol,
}

/// A call the worker must answer: its id, task name and kind.
type ExpectedCall = (u64, String, CallKind);

/// Reads `data` as a call stream the way the protocol defines it: the calls a
/// worker must answer, in order, and how it must end.
fn expected_run(data: &[u8]) -> (Vec<ExpectedCall>, ExpectedEnd) {
    let mut decoder = Decoder::with_max_frame_len(DISPATCH_MAX_FRAME_LEN);
    decoder.feed(data);
    let mut calls = Vec::new();
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => return (calls, ExpectedEnd::Protocol),
        };
        match ToWorker::decode(frame) {
            Ok(ToWorker::Call(call)) => {
                calls.push((call.id, call.task.to_owned(), call.kind));
                if calls.len() as u64 == DISPATCH_MAX_TASKS {
                    return (calls, ExpectedEnd::MaxTasks);
                }
            }
            Ok(ToWorker::Shutdown) => return (calls, ExpectedEnd::Shutdown),
            // Between calls a stop names no running call: the worker reads on.
            Ok(ToWorker::Stop { .. }) => {}
            Err(_) => return (calls, ExpectedEnd::Protocol),
        }
    }
    // The input ended: cleanly between frames, or inside one.
    match decoder.finish() {
        Ok(()) => (calls, ExpectedEnd::ChannelClosed),
        Err(_) => (calls, ExpectedEnd::Protocol),
    }
}

/// Checks that `bytes` decode as what `task` returns for a call of `kind`.
fn check_output(task: &str, kind: CallKind, bytes: &[u8]) {
    fn decodes<O: DeserializeOwned>(task: Task<impl Sized, O>, kind: CallKind, bytes: &[u8]) {
        let decoded = match kind {
            CallKind::Single => task
                .decode_output(bytes)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CallKind::Batch => procpool_ipc::decode_value::<Vec<Result<O, RemoteError>>>(bytes)
                .map(|results| {
                    for e in results.iter().filter_map(|r| r.as_ref().err()) {
                        assert_ne!(
                            e.kind,
                            RemoteErrorKind::Panicked,
                            "no task here panics: {e}"
                        );
                    }
                })
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = decoded {
            panic!(
                "the output of `{}` ({kind:?}) does not decode: {e}",
                task.name()
            );
        }
    }
    match task {
        "square" => decodes(SQUARE, kind, bytes),
        "echo" => decodes(ECHO, kind, bytes),
        "join" => decodes(JOIN, kind, bytes),
        "checked_div" => decodes(CHECKED_DIV, kind, bytes),
        "unit" => decodes(UNIT, kind, bytes),
        other => panic!("an output from `{other}`, which is no task here"),
    }
}

/// Serves `data` as a worker's call stream with a small registry and checks
/// what the worker wrote against what the protocol says it must: a valid
/// `Hello`, then one `Done` per call in order (an output that decodes as the
/// task's output type, or an error of a kind that is not a panic), then
/// `Exiting` for a `Shutdown` or the last allowed call, and nothing else; and
/// that the loop ends the way the input calls for.
pub fn worker_dispatch(data: &[u8]) {
    let config = Settings {
        max_tasks: Some(DISPATCH_MAX_TASKS),
        max_frame_len: DISPATCH_MAX_FRAME_LEN,
        ..Settings::default()
    };
    let mut written = Vec::new();
    let ending = serve_channel(dispatch_registry(), &config, data, &mut written);
    let (calls, expected_end) = expected_run(data);
    let end = match ending {
        Ending::ChannelClosed => ExpectedEnd::ChannelClosed,
        Ending::Shutdown => ExpectedEnd::Shutdown,
        Ending::MaxTasks => ExpectedEnd::MaxTasks,
        Ending::Protocol(_) => ExpectedEnd::Protocol,
        other => panic!("an in-memory worker cannot end with {other:?}"),
    };
    assert_eq!(
        end, expected_end,
        "the worker ended otherwise than its input says"
    );

    let mut reader = FrameReader::new(&written[..]);
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().expect("the worker writes whole frames") {
        frames.push(frame.to_vec());
    }
    let (first, rest) = frames.split_first().expect("a Hello first");
    let FromWorker::Hello(hello) = FromWorker::decode(first).expect("a valid Hello") else {
        panic!("the first frame is not a Hello");
    };
    hello.check().expect("the Hello speaks this protocol");
    let mut names = hello.tasks.clone();
    names.sort();
    assert_eq!(names, ["checked_div", "echo", "join", "square", "unit"]);

    assert!(rest.len() >= calls.len(), "one Done per call");
    let (dones, exiting) = rest.split_at(calls.len());
    for (frame, (id, task, kind)) in dones.iter().zip(&calls) {
        let FromWorker::Done(done) = FromWorker::decode(frame).expect("a valid Done") else {
            panic!("expected the Done of call {id}");
        };
        assert_eq!(done.id, *id, "Dones come in call order");
        match done.outcome {
            Outcome::Output(bytes) => check_output(task, *kind, bytes),
            Outcome::Error(e) => assert_ne!(
                e.kind,
                RemoteErrorKind::Panicked,
                "nothing in this registry panics: {e}"
            ),
        }
    }
    let expected_exiting = match expected_end {
        ExpectedEnd::Shutdown => Some(ExitReason::Shutdown),
        ExpectedEnd::MaxTasks => Some(ExitReason::MaxTasks),
        ExpectedEnd::ChannelClosed | ExpectedEnd::Protocol => None,
    };
    match (exiting, expected_exiting) {
        ([], None) => {}
        ([frame], Some(reason)) => assert_eq!(
            FromWorker::decode(frame).expect("a valid Exiting"),
            FromWorker::Exiting(reason)
        ),
        (frames, reason) => panic!(
            "{} frames after the Dones, expected {reason:?}",
            frames.len()
        ),
    }
}
