//! Every message survives encode, arbitrary splitting and decode, and many
//! frames in one buffer come out in order.

use procpool_ipc::{
    Call, CallKind, Decoder, ExitReason, FrameBuf, FrameReader, FrameWriter, FromWorker, Hello,
    Outcome, RemoteError, RemoteErrorKind, ToWorker,
};
use proptest::prelude::*;

/// Owned stand-ins for the borrowing messages, so proptest can generate them.
#[derive(Debug, Clone)]
enum Owned {
    Call(u64, String, bool, Vec<u8>),
    Shutdown,
    Hello(u32, Vec<String>),
    DoneOutput(u64, Vec<u8>),
    DoneError(u64, u8, String, Option<String>),
    Exiting(u8, String),
}

fn kind(k: u8) -> RemoteErrorKind {
    match k % 5 {
        0 => RemoteErrorKind::Panicked,
        1 => RemoteErrorKind::UnknownTask,
        2 => RemoteErrorKind::ArgsDecode,
        3 => RemoteErrorKind::OutputEncode,
        _ => RemoteErrorKind::Initializer,
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (
            any::<u64>(),
            ".{0,20}",
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(id, t, b, p)| Owned::Call(id, t, b, p)),
        Just(Owned::Shutdown),
        (any::<u32>(), prop::collection::vec(".{0,12}", 0..5))
            .prop_map(|(p, t)| Owned::Hello(p, t)),
        (any::<u64>(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(id, p)| Owned::DoneOutput(id, p)),
        (
            any::<u64>(),
            any::<u8>(),
            ".{0,40}",
            proptest::option::of(".{0,40}")
        )
            .prop_map(|(id, k, m, b)| Owned::DoneError(id, k, m, b)),
        (any::<u8>(), ".{0,20}").prop_map(|(r, m)| Owned::Exiting(r, m)),
    ]
}

fn remote(k: u8, m: &str, b: &Option<String>) -> RemoteError {
    RemoteError {
        kind: kind(k),
        message: m.to_owned(),
        backtrace: b.clone(),
    }
}

fn exit_reason(r: u8, m: &str) -> ExitReason {
    match r % 3 {
        0 => ExitReason::MaxTasks,
        1 => ExitReason::Shutdown,
        _ => ExitReason::InitializerFailed(remote(r, m, &None)),
    }
}

/// Pushes `m` and returns a closure-free check that the decoded frame matches.
fn push(out: &mut FrameBuf, m: &Owned) {
    match m {
        Owned::Call(id, t, batch, p) => out.push(&ToWorker::Call(Call {
            spin_us: 0,
            id: *id,
            task: t,
            kind: if *batch {
                CallKind::Batch
            } else {
                CallKind::Single
            },
            payload: p,
        })),
        Owned::Shutdown => out.push(&ToWorker::Shutdown),
        Owned::Hello(pid, tasks) => out.push(&FromWorker::Hello(Hello::new(*pid, tasks.clone()))),
        Owned::DoneOutput(id, p) => out.push(&FromWorker::Done(procpool_ipc_done(*id, p))),
        Owned::DoneError(id, k, msg, b) => out.push(&FromWorker::Done(procpool_ipc::Done {
            id: *id,
            outcome: Outcome::Error(remote(*k, msg, b)),
        })),
        Owned::Exiting(r, msg) => out.push(&FromWorker::Exiting(exit_reason(*r, msg))),
    }
    .expect("every generated message encodes");
}

fn procpool_ipc_done(id: u64, p: &[u8]) -> procpool_ipc::Done<'_> {
    procpool_ipc::Done {
        id,
        outcome: Outcome::Output(p),
    }
}

fn check(frame: &[u8], m: &Owned) {
    match m {
        Owned::Call(id, t, batch, p) => {
            let ToWorker::Call(c) = ToWorker::decode(frame).unwrap() else {
                panic!("not a call")
            };
            assert_eq!((c.id, c.task, c.payload), (*id, t.as_str(), p.as_slice()));
            assert_eq!(c.kind == CallKind::Batch, *batch);
        }
        Owned::Shutdown => assert_eq!(ToWorker::decode(frame).unwrap(), ToWorker::Shutdown),
        Owned::Hello(pid, tasks) => {
            let FromWorker::Hello(h) = FromWorker::decode(frame).unwrap() else {
                panic!("not a hello")
            };
            h.check().unwrap();
            assert_eq!((h.pid, &h.tasks), (*pid, tasks));
        }
        Owned::DoneOutput(id, p) => assert_eq!(
            FromWorker::decode(frame).unwrap(),
            FromWorker::Done(procpool_ipc_done(*id, p))
        ),
        Owned::DoneError(id, k, msg, b) => assert_eq!(
            FromWorker::decode(frame).unwrap(),
            FromWorker::Done(procpool_ipc::Done {
                id: *id,
                outcome: Outcome::Error(remote(*k, msg, b))
            })
        ),
        Owned::Exiting(r, msg) => assert_eq!(
            FromWorker::decode(frame).unwrap(),
            FromWorker::Exiting(exit_reason(*r, msg))
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_survive_any_chunking(
        messages in prop::collection::vec(owned(), 1..12),
        cuts in prop::collection::vec(1usize..64, 1..32),
    ) {
        let mut out = FrameBuf::new();
        for m in &messages {
            push(&mut out, m);
        }
        let bytes = out.pending().to_vec();
        let mut decoder = Decoder::new();
        let mut next = 0;
        let mut at = 0;
        let mut i = 0;
        while at < bytes.len() {
            let n = cuts[i % cuts.len()].min(bytes.len() - at);
            decoder.feed(&bytes[at..at + n]);
            at += n;
            i += 1;
            while let Some(frame) = decoder.next_frame().unwrap() {
                check(frame, &messages[next]);
                next += 1;
            }
        }
        prop_assert_eq!(next, messages.len());
        prop_assert!(decoder.finish().is_ok());
    }

    #[test]
    fn blocking_reader_and_writer_agree(messages in prop::collection::vec(owned(), 0..8)) {
        let mut writer = FrameWriter::new(Vec::new());
        let mut expected = FrameBuf::new();
        for m in &messages {
            push(&mut expected, m);
        }
        // The writer queues the same bytes the buffer holds.
        let mut raw = FrameBuf::new();
        for m in &messages {
            push(&mut raw, m);
        }
        writer.queue(&ToWorker::Shutdown).unwrap();
        writer.flush().unwrap();
        let mut stream = writer.get_ref().clone();
        stream.extend_from_slice(raw.pending());
        let mut reader = FrameReader::new(stream.as_slice());
        let first = reader.next_frame().unwrap().unwrap();
        prop_assert_eq!(ToWorker::decode(first).unwrap(), ToWorker::Shutdown);
        for m in &messages {
            let frame = reader.next_frame().unwrap().expect("a frame per message");
            check(frame, m);
        }
        prop_assert!(reader.next_frame().unwrap().is_none());
    }
}

#[test]
fn one_read_takes_many_small_frames() {
    let mut out = FrameBuf::new();
    for id in 0..1000 {
        out.push(&ToWorker::Call(Call::single(id, "noop", &[])))
            .unwrap();
    }
    let bytes = out.pending().to_vec();
    let mut decoder = Decoder::new();
    let mut source = bytes.as_slice();
    let mut reads = 0;
    let mut ids = Vec::new();
    while !source.is_empty() {
        decoder.read_from(&mut source).unwrap();
        reads += 1;
        while let Some(frame) = decoder.next_frame().unwrap() {
            let ToWorker::Call(call) = ToWorker::decode(frame).unwrap() else {
                panic!("not a call")
            };
            ids.push(call.id);
        }
    }
    assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    assert!(reads <= 2, "{} bytes took {reads} reads", bytes.len());
}

#[test]
fn frame_buf_resumes_after_a_short_write() {
    /// Takes at most 5 bytes per write, then refuses with WouldBlock once.
    struct Trickle(Vec<u8>, bool);
    impl std::io::Write for Trickle {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(5);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = FrameBuf::new();
    out.push(&ToWorker::Call(Call::single(1, "echo", b"hello world")))
        .unwrap();
    out.push(&ToWorker::Shutdown).unwrap();
    let expected = out.pending().to_vec();
    let mut pipe = Trickle(Vec::new(), false);
    let mut calls = 0;
    while !out.write_to(&mut pipe).unwrap() {
        calls += 1;
        assert!(calls < 100, "no progress");
    }
    assert!(out.is_empty());
    assert_eq!(pipe.0, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn call_frames_built_in_place_equal_pushed_ones(
        id in any::<u64>(),
        task in ".{0,80}",
        batch in any::<bool>(),
        spin_us in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let kind = if batch { CallKind::Batch } else { CallKind::Single };
        let mut frame = procpool_ipc::CallFrame::new(&task);
        frame.payload_buf().extend_from_slice(&payload);
        frame.seal(id, &task, kind, spin_us, 1 << 20).unwrap();
        let mut pushed = FrameBuf::new();
        pushed.push(&ToWorker::Call(Call { id, task: &task, kind, spin_us, payload: &payload })).unwrap();
        prop_assert_eq!(frame.bytes(), pushed.pending());
        // Sealing again (a re-dispatch) gives the new fields.
        frame.seal(id.wrapping_add(1), &task, kind, 0, 1 << 20).unwrap();
        let mut again = FrameBuf::new();
        again.push(&ToWorker::Call(Call { id: id.wrapping_add(1), task: &task, kind, spin_us: 0, payload: &payload })).unwrap();
        prop_assert_eq!(frame.bytes(), again.pending());
    }

    #[test]
    fn done_frames_built_in_place_equal_pushed_ones(
        id in any::<u64>(),
        output in prop::collection::vec(any::<u8>(), 0..70_000),
    ) {
        let mut frame = procpool_ipc::DoneFrame::new();
        frame.output_buf().extend_from_slice(&output);
        frame.seal(id, 1 << 20).unwrap();
        let mut pushed = FrameBuf::new();
        pushed.push(&FromWorker::Done(procpool_ipc_done(id, &output))).unwrap();
        prop_assert_eq!(frame.bytes(), pushed.pending());
        frame.clear();
        prop_assert!(frame.output().is_empty());
    }
}

#[test]
fn in_place_frames_refuse_what_exceeds_the_limit() {
    let mut frame = procpool_ipc::CallFrame::new("t");
    frame.payload_buf().extend_from_slice(&[0; 100]);
    assert!(matches!(
        frame.seal(1, "t", CallKind::Single, 0, 50),
        Err(procpool_ipc::EncodeError::TooLong { .. })
    ));
    let mut done = procpool_ipc::DoneFrame::new();
    done.output_buf().extend_from_slice(&[0; 100]);
    assert!(done.seal(1, 50).is_err());
}

/// The offset of `part` inside `whole` (both from one frame).
fn range_in(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

#[test]
fn outputs_taken_from_frames_keep_their_bytes_and_the_stream_goes_on() {
    // A small output, a large one (taken with the buffer), and small frames
    // after it in the same reads: each comes out whole, in order.
    let sizes = [3usize, 3 << 20, 5, 300 << 10, 0];
    let mut out = FrameBuf::with_max_frame_len(8 << 20);
    let outputs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
        .collect();
    for (id, output) in outputs.iter().enumerate() {
        out.push(&FromWorker::Done(procpool_ipc_done(id as u64, output)))
            .unwrap();
    }
    let bytes = out.pending().to_vec();
    let mut decoder = Decoder::with_max_frame_len(8 << 20);
    let mut source = bytes.as_slice();
    let mut taken = Vec::new();
    while !source.is_empty() {
        decoder.read_from(&mut source).unwrap();
        while let Some(frame) = decoder.next_frame().unwrap() {
            let FromWorker::Done(done) = FromWorker::decode(frame).unwrap() else {
                panic!("not a Done")
            };
            let Outcome::Output(output) = done.outcome else {
                panic!("not an output")
            };
            let range = range_in(frame, output);
            let payload = decoder.take_payload(range).expect("the last frame");
            taken.push(payload.to_vec());
        }
    }
    assert_eq!(taken, outputs);
}

#[test]
fn take_payload_refuses_a_range_outside_the_last_frame() {
    let mut out = FrameBuf::new();
    out.push(&ToWorker::Shutdown).unwrap();
    let mut decoder = Decoder::new();
    assert!(decoder.take_payload(0..0).is_none(), "no frame yet");
    decoder.feed(out.pending());
    let len = decoder.next_frame().unwrap().expect("a frame").len();
    assert!(decoder.take_payload(0..len + 1).is_none());
    assert_eq!(decoder.take_payload(0..len).map(|p| p.len()), Some(len));
    decoder.feed(&[1]);
    assert!(decoder.take_payload(0..0).is_none(), "bytes arrived since");
}

#[test]
fn reading_more_while_whole_frames_wait_unread_is_fine() {
    // A reader that stops taking frames (its peer is being killed) and reads
    // once more must not trip over the frames it holds.
    let mut out = FrameBuf::new();
    for id in 0..3 {
        out.push(&ToWorker::Call(Call::single(id, "noop", &[1, 2, 3])))
            .unwrap();
    }
    let bytes = out.pending().to_vec();
    let mut decoder = Decoder::new();
    decoder.feed(&bytes);
    let mut more: &[u8] = &bytes;
    decoder.read_from(&mut more).unwrap();
    let mut frames = 0;
    while decoder.next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 6);
}

/// A batch's results, as a worker encodes them.
fn batch_results() -> impl Strategy<Value = Vec<Result<u64, RemoteError>>> {
    let error = (".{0,20}", any::<bool>()).prop_map(|(message, panicked)| {
        let kind = if panicked {
            RemoteErrorKind::Panicked
        } else {
            RemoteErrorKind::OutputEncode
        };
        RemoteError::new(kind, message)
    });
    prop::collection::vec(
        prop_oneof![4 => any::<u64>().prop_map(Ok), 1 => error.prop_map(Err)],
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `decode_batch_outputs` skips serde's `Result` impl, not its bytes:
    /// what serde encodes, it decodes to the same values in the same order.
    #[test]
    fn batch_outputs_decode_what_serde_encodes(results in batch_results()) {
        let mut bytes = Vec::new();
        procpool_ipc::encode_value(&results, &mut bytes).expect("encodable");
        let decoded: Vec<_> = procpool_ipc::decode_batch_outputs::<u64>(&bytes)
            .expect("decodable")
            .collect();
        prop_assert_eq!(decoded, results);
    }

    /// And it refuses what serde refuses: the same outcome for a valid
    /// encoding with one byte changed, cut short, or extended.
    #[test]
    fn batch_outputs_accept_exactly_what_serde_accepts(
        results in batch_results(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        edit in 0u8..3,
    ) {
        let mut bytes = Vec::new();
        procpool_ipc::encode_value(&results, &mut bytes).expect("encodable");
        match edit {
            0 => { let i = at.index(bytes.len()); bytes[i] = byte; }
            1 => bytes.truncate(at.index(bytes.len())),
            _ => bytes.push(byte),
        }
        let ours = procpool_ipc::decode_batch_outputs_uncaught::<u64>(&bytes)
            .ok()
            .map(Iterator::collect::<Vec<_>>);
        let serdes = procpool_ipc::decode_value::<Vec<Result<u64, RemoteError>>>(&bytes).ok();
        prop_assert_eq!(ours, serdes);
    }
}

#[test]
fn a_batch_output_whose_deserialize_panics_is_a_codec_error() {
    #[derive(Debug)]
    struct Explodes;
    impl<'de> serde::Deserialize<'de> for Explodes {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("Explodes refuses to be decoded")
        }
    }
    let mut bytes = Vec::new();
    procpool_ipc::encode_value(&vec![Ok::<u64, RemoteError>(1)], &mut bytes).expect("encodable");
    match procpool_ipc::decode_batch_outputs::<Explodes>(&bytes) {
        Err(procpool_ipc::PayloadError::Panicked(message)) => {
            assert!(message.contains("Explodes refuses"), "{message}");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[test]
fn a_batch_output_with_a_third_variant_is_refused() {
    // Length 1, variant index 2, then a u64.
    let bytes = [1u8, 2, 7];
    assert!(procpool_ipc::decode_batch_outputs::<u64>(&bytes).is_err());
    assert!(procpool_ipc::decode_value::<Vec<Result<u64, RemoteError>>>(&bytes).is_err());
}
