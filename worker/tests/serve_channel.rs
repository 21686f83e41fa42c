//! The serve loop without a process: `serve_channel` over in-memory readers
//! and writers. Covers the frames it writes (Hello first, a Done per call,
//! Exiting), how it ends (`Ending` and its exit code) for every way a channel
//! can end, the initializer, recycling, bytes arriving one at a time, and
//! panics outside a task's body (in an argument's `Deserialize` or an
//! output's `Serialize`), which fail only their call.

use procpool_ipc::{
    decode_value, encode_value, Call, CallKind, ExitReason, FrameBuf, FrameReader, FromWorker,
    Outcome, RemoteError, RemoteErrorKind, Task, ToWorker,
};
use procpool_worker::{serve_channel, Ending, Registry, Settings};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const SQUARE: Task<u64, u64> = Task::new("square");
const TOUCHY: Task<Touchy, u64> = Task::new("touchy");
const EXPLOSIVE: Task<u64, Explosive> = Task::new("explosive");
const BOOM: Task<String, ()> = Task::new("boom");
const INIT: Task<bool, Result<(), String>> = Task::new("init");
const COUNT: Task<(), u32> = Task::new("count");

/// A u64 whose `Deserialize` panics on 13.
struct Touchy(u64);

impl Serialize for Touchy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = u64::deserialize(d)?;
        assert!(x != 13, "Touchy cannot stand 13");
        Ok(Self(x))
    }
}

/// An output whose `Serialize` panics.
struct Explosive;

impl Serialize for Explosive {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Explosive went off while being serialized")
    }
}

fn registry(init_runs: &Arc<AtomicU32>) -> Registry {
    let runs = Arc::clone(init_runs);
    let counted = Arc::clone(init_runs);
    let mut registry = Registry::new()
        .with(SQUARE, |x| x * x)
        .with(TOUCHY, |t: Touchy| t.0)
        .with(EXPLOSIVE, |_| Explosive)
        .with(BOOM, |m: String| panic!("{m}"))
        .with(COUNT, move |()| counted.load(Ordering::SeqCst));
    registry
        .register_initializer(INIT, move |ok: bool| {
            runs.fetch_add(1, Ordering::SeqCst);
            if ok {
                Ok(())
            } else {
                Err("told to fail".to_owned())
            }
        })
        .expect("a new name");
    registry
}

/// What the worker wrote, owned.
#[derive(Debug, PartialEq)]
enum Out {
    Hello(Vec<String>),
    Done(u64, Result<Vec<u8>, RemoteError>),
    Exiting(ExitReason),
}

fn read_all(bytes: &[u8]) -> Vec<Out> {
    let mut reader = FrameReader::new(bytes);
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().expect("whole valid frames") {
        out.push(match FromWorker::decode(frame).expect("a valid message") {
            FromWorker::Hello(h) => {
                h.check().expect("current version");
                assert_eq!(h.pid, std::process::id());
                Out::Hello(h.tasks)
            }
            FromWorker::Done(d) => Out::Done(
                d.id,
                match d.outcome {
                    Outcome::Output(b) => Ok(b.to_vec()),
                    Outcome::Error(e) => Err(e),
                },
            ),
            FromWorker::Exiting(r) => Out::Exiting(r),
            FromWorker::Aborting(cause) => panic!("serve_channel never aborts: {cause}"),
        });
    }
    out
}

/// Builds a call stream.
#[derive(Default)]
struct Calls(FrameBuf);

impl Calls {
    fn call<A: Serialize, O>(mut self, id: u64, task: Task<A, O>, args: &A) -> Self {
        let mut payload = Vec::new();
        task.encode_args(args, &mut payload).expect("encodable");
        self.0
            .push(&ToWorker::Call(Call::single(id, task.name(), &payload)))
            .expect("encodable");
        self
    }

    fn raw(mut self, id: u64, task: &str, kind: CallKind, payload: &[u8]) -> Self {
        self.0
            .push(&ToWorker::Call(Call {
                spin_us: 0,
                id,
                task,
                kind,
                payload,
            }))
            .expect("encodable");
        self
    }

    fn shutdown(mut self) -> Self {
        self.0.push(&ToWorker::Shutdown).expect("encodable");
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.pending().to_vec()
    }
}

fn serve(config: &Settings, input: &[u8]) -> (Ending, Vec<Out>) {
    let runs = Arc::new(AtomicU32::new(0));
    let mut output = Vec::new();
    let ending = serve_channel(&registry(&runs), config, input, &mut output);
    (ending, read_all(&output))
}

fn done_u64(out: &Out) -> (u64, u64) {
    match out {
        Out::Done(id, Ok(bytes)) => (*id, decode_value(bytes).expect("a u64")),
        other => panic!("expected a Done with output, got {other:?}"),
    }
}

fn done_error(out: &Out) -> (u64, &RemoteError) {
    match out {
        Out::Done(id, Err(e)) => (*id, e),
        other => panic!("expected a Done with an error, got {other:?}"),
    }
}

#[test]
fn hello_then_a_done_per_call_then_channel_closed_at_eof() {
    let input = Calls::default()
        .call(1, SQUARE, &3)
        .call(2, SQUARE, &4)
        .bytes();
    let (ending, out) = serve(&Settings::default(), &input);
    assert!(matches!(ending, Ending::ChannelClosed), "{ending:?}");
    assert_eq!(ending.exit_code(), 0);
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[0],
        Out::Hello(
            ["boom", "count", "explosive", "init", "square", "touchy"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(done_u64(&out[1]), (1, 9));
    assert_eq!(done_u64(&out[2]), (2, 16));
}

#[test]
fn bytes_arriving_one_at_a_time_give_the_same_frames() {
    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }
    let input = Calls::default()
        .call(1, SQUARE, &300)
        .call(2, SQUARE, &5)
        .shutdown()
        .bytes();
    let runs = Arc::new(AtomicU32::new(0));
    let mut output = Vec::new();
    let ending = serve_channel(
        &registry(&runs),
        &Settings::default(),
        OneByte(&input),
        &mut output,
    );
    assert!(matches!(ending, Ending::Shutdown), "{ending:?}");
    let out = read_all(&output);
    assert_eq!(done_u64(&out[1]), (1, 90_000));
    assert_eq!(done_u64(&out[2]), (2, 25));
    assert_eq!(out[3], Out::Exiting(ExitReason::Shutdown));
}

#[test]
fn shutdown_answers_earlier_calls_then_exits_without_reading_on() {
    let input = Calls::default()
        .call(1, SQUARE, &2)
        .shutdown()
        .call(2, SQUARE, &3)
        .bytes();
    let (ending, out) = serve(&Settings::default(), &input);
    assert!(matches!(ending, Ending::Shutdown), "{ending:?}");
    assert_eq!(ending.exit_code(), 0);
    assert_eq!(out.len(), 3);
    assert_eq!(done_u64(&out[1]), (1, 4));
    assert_eq!(out[2], Out::Exiting(ExitReason::Shutdown));
}

#[test]
fn max_tasks_ends_with_exiting_max_tasks_after_that_many_calls() {
    let config = Settings {
        max_tasks: Some(2),
        ..Settings::default()
    };
    let input = Calls::default()
        .raw(1, "unknown", CallKind::Single, &[])
        .call(2, SQUARE, &3)
        .call(3, SQUARE, &4)
        .bytes();
    let (ending, out) = serve(&config, &input);
    assert!(matches!(ending, Ending::MaxTasks), "{ending:?}");
    assert_eq!(ending.exit_code(), 0);
    assert_eq!(out.len(), 4);
    assert_eq!(done_error(&out[1]).1.kind, RemoteErrorKind::UnknownTask);
    assert_eq!(done_u64(&out[2]), (2, 9));
    assert_eq!(out[3], Out::Exiting(ExitReason::MaxTasks));
}

#[test]
fn initializer_runs_once_before_the_first_call() {
    let config = Settings {
        initializer: Some(("init".to_owned(), vec![1])),
        ..Settings::default()
    };
    let input = Calls::default()
        .call(1, COUNT, &())
        .call(2, COUNT, &())
        .bytes();
    let runs = Arc::new(AtomicU32::new(0));
    let mut output = Vec::new();
    let ending = serve_channel(&registry(&runs), &config, &input[..], &mut output);
    assert!(matches!(ending, Ending::ChannelClosed), "{ending:?}");
    let out = read_all(&output);
    for (i, id) in [(1, 1), (2, 2)] {
        let Out::Done(got, Ok(bytes)) = &out[i] else {
            panic!("{:?}", out[i])
        };
        assert_eq!(*got, id);
        assert_eq!(COUNT.decode_output(bytes), Ok(1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn failing_initializer_ends_with_initializer_failed_and_exit_code_3() {
    let config = Settings {
        initializer: Some(("init".to_owned(), vec![0])),
        ..Settings::default()
    };
    let input = Calls::default().call(1, SQUARE, &2).bytes();
    let (ending, out) = serve(&config, &input);
    assert_eq!(ending.exit_code(), 3);
    let Ending::InitializerFailed(e) = &ending else {
        panic!("{ending:?}")
    };
    assert_eq!(e.kind, RemoteErrorKind::Initializer);
    assert!(e.message.contains("told to fail"), "{e}");
    assert_eq!(out.len(), 2, "no call was served: {out:?}");
    assert_eq!(
        out[1],
        Out::Exiting(ExitReason::InitializerFailed(e.clone()))
    );
}

#[test]
fn protocol_violations_end_with_exit_code_2_after_answering_earlier_calls() {
    let calls = Calls::default().call(1, SQUARE, &7).bytes();
    let cases: [(&[u8], &str); 4] = [
        (&[2, 0, 0, 0, 0xff, 0xff], "no valid message"),
        (&[0xff, 0xff, 0xff, 0xff], "over the limit"),
        (&[9, 0, 0, 0, 1], "stream ended inside a frame"),
        (&[1], "stream ended inside a frame"),
    ];
    for (garbage, what) in cases {
        let input = [&calls[..], garbage].concat();
        let (ending, out) = serve(&Settings::default(), &input);
        assert_eq!(ending.exit_code(), 2, "{garbage:?}: {ending:?}");
        let Ending::Protocol(message) = &ending else {
            panic!("{ending:?}")
        };
        assert!(message.contains(what), "{garbage:?}: {message}");
        assert!(
            ending.to_string().contains("protocol violation"),
            "{ending}"
        );
        assert_eq!(out.len(), 2, "{garbage:?}: {out:?}");
        assert_eq!(done_u64(&out[1]), (1, 49));
    }
}

#[test]
fn broken_result_channel_ends_with_io_and_exit_code_1() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let runs = Arc::new(AtomicU32::new(0));
    let input = Calls::default().call(1, SQUARE, &7).bytes();
    let ending = serve_channel(&registry(&runs), &Settings::default(), &input[..], Broken);
    assert!(matches!(ending, Ending::Io(_)), "{ending:?}");
    assert_eq!(ending.exit_code(), 1);
}

#[test]
fn panic_in_an_argument_deserialize_fails_only_that_call() {
    let input = Calls::default()
        .call(1, TOUCHY, &Touchy(13))
        .call(2, TOUCHY, &Touchy(12))
        .bytes();
    let (ending, out) = serve(&Settings::default(), &input);
    assert!(matches!(ending, Ending::ChannelClosed), "{ending:?}");
    let (id, e) = done_error(&out[1]);
    assert_eq!(id, 1);
    assert_eq!(e.kind, RemoteErrorKind::Panicked);
    assert!(e.message.contains("Touchy cannot stand 13"), "{e}");
    assert!(e.backtrace.is_some());
    assert_eq!(done_u64(&out[2]), (2, 12));
}

#[test]
fn panic_in_an_output_serialize_fails_only_that_call() {
    let input = Calls::default()
        .call(1, EXPLOSIVE, &1)
        .call(2, SQUARE, &6)
        .bytes();
    let (_, out) = serve(&Settings::default(), &input);
    let (id, e) = done_error(&out[1]);
    assert_eq!(id, 1);
    assert_eq!(e.kind, RemoteErrorKind::Panicked);
    assert!(e.message.contains("Explosive went off"), "{e}");
    assert_eq!(done_u64(&out[2]), (2, 36));
}

#[test]
fn batch_elements_fail_on_their_own() {
    let mut payload = Vec::new();
    encode_value(&vec!["a", "b"], &mut payload).expect("encodable");
    let mut squares = Vec::new();
    encode_value(&vec![1u64, 2, 3], &mut squares).expect("encodable");
    let input = Calls::default()
        .raw(1, "boom", CallKind::Batch, &payload)
        .raw(2, "square", CallKind::Batch, &squares)
        .bytes();
    let (_, out) = serve(&Settings::default(), &input);
    let Out::Done(1, Ok(bytes)) = &out[1] else {
        panic!("{:?}", out[1])
    };
    let results: Vec<Result<(), RemoteError>> = decode_value(bytes).expect("decodable");
    assert_eq!(results.len(), 2);
    for (r, m) in results.iter().zip(["a", "b"]) {
        let e = r.as_ref().expect_err("panicked");
        assert_eq!(e.kind, RemoteErrorKind::Panicked);
        assert!(e.message.ends_with(&format!(": {m}")), "{e}");
    }
    let Out::Done(2, Ok(bytes)) = &out[2] else {
        panic!("{:?}", out[2])
    };
    let results: Vec<Result<u64, RemoteError>> = decode_value(bytes).expect("decodable");
    assert_eq!(results, vec![Ok(1), Ok(4), Ok(9)]);
}
