//! Bytes from another process are hostile: any input, in any chunking, gives
//! frames or a typed error, never a panic, an abort or a huge allocation.

use procpool_ipc::{
    decode_value, ByteBuf, CodecOp, DecodeError, Decoder, FrameBuf, FrameReader, FromWorker,
    PayloadError, ReadError, Task, ToWorker,
};
use proptest::prelude::*;

/// Feeds `bytes` in chunks of `cuts` (cycled) and decodes every frame as both
/// directions; returns the first error.
fn drain(decoder: &mut Decoder, bytes: &[u8], cuts: &[usize]) -> Result<usize, DecodeError> {
    let mut frames = 0;
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = cuts[i % cuts.len()].min(bytes.len() - at);
        decoder.feed(&bytes[at..at + n]);
        at += n;
        i += 1;
        while let Some(frame) = decoder.next_frame()? {
            let _ = ToWorker::decode(frame);
            let _ = FromWorker::decode(frame);
            frames += 1;
        }
    }
    decoder.finish()?;
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(1usize..100, 1..16),
        limit in prop_oneof![Just(16usize), Just(1 << 20)],
    ) {
        let mut decoder = Decoder::with_max_frame_len(limit);
        let _ = drain(&mut decoder, &bytes, &cuts);
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_value::<Vec<String>>(&bytes);
        let _ = decode_value::<(String, ByteBuf, Option<Vec<u64>>)>(&bytes);
        let _ = decode_value::<std::collections::HashMap<String, String>>(&bytes);
    }

    #[test]
    fn oversize_frame_is_too_long_whatever_follows(
        extra in 1u32..1000,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let limit = 100usize;
        let mut bytes = (limit as u32 + extra).to_le_bytes().to_vec();
        bytes.extend_from_slice(&tail);
        let mut decoder = Decoder::with_max_frame_len(limit);
        decoder.feed(&bytes);
        let err = decoder.next_frame().unwrap_err();
        prop_assert_eq!(err, DecodeError::TooLong { len: u64::from(limit as u32 + extra), limit });
    }

    #[test]
    fn eof_inside_a_frame_is_truncated(len in 1u32..500, cut in 0usize..600) {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(7u8, len as usize));
        let cut = cut.min(bytes.len() - 1).max(1);
        let mut decoder = Decoder::new();
        decoder.feed(&bytes[..cut]);
        prop_assert_eq!(decoder.next_frame().unwrap(), None);
        let expected = if cut < 4 { 4 } else { 4 + u64::from(len) };
        prop_assert_eq!(
            decoder.finish().unwrap_err(),
            DecodeError::Truncated { expected, got: cut as u64 }
        );
    }
}

/// bincode's varint for a u64: the 0xFD marker, then 8 little-endian bytes.
fn varint_u64(n: u64) -> Vec<u8> {
    let mut v = vec![0xFD];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

#[test]
fn thirteen_bytes_claiming_64_gib_are_refused_not_allocated() {
    let mut bytes = varint_u64(64 << 30);
    bytes.extend_from_slice(b"abcd");
    assert_eq!(bytes.len(), 13);
    assert!(decode_value::<String>(&bytes).is_err());
    assert!(decode_value::<ByteBuf>(&bytes).is_err());
    assert!(decode_value::<Vec<u8>>(&bytes).is_err());
    assert!(decode_value::<Vec<String>>(&bytes).is_err());
    const ECHO: Task<ByteBuf, String> = Task::new("echo");
    let err = ECHO.decode_args(&bytes).unwrap_err();
    assert_eq!(err.op, CodecOp::DecodeArgs);
    assert!(
        err.to_string()
            .contains("task `echo`: cannot decode the arguments"),
        "{err}"
    );
    assert!(ECHO.decode_output(&bytes).is_err());
}

#[test]
fn a_hello_whose_task_list_lies_is_undecodable() {
    // Hello is variant 0 of FromWorker; magic, version, pid, then a task list
    // that claims 2^40 names of 2^40 bytes each.
    let mut payload = vec![0u8];
    payload.extend(varint_u64(procpool_ipc::MAGIC));
    payload.push(1);
    payload.push(7);
    payload.extend(varint_u64(1 << 40));
    payload.extend(varint_u64(1 << 40));
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let mut decoder = Decoder::new();
    decoder.feed(&frame);
    let frame = decoder.next_frame().unwrap().unwrap();
    // 2^40 names cannot fit in 30 bytes: refused before the first is read.
    assert!(
        matches!(
            FromWorker::decode(frame),
            Err(DecodeError::Undecodable(
                PayloadError::TooManyElements { .. }
            ))
        ),
        "{:?}",
        FromWorker::decode(frame)
    );
}

#[test]
fn a_message_that_leaves_bytes_in_its_frame_is_refused() {
    let mut out = FrameBuf::new();
    out.push(&ToWorker::Shutdown).unwrap();
    let mut bytes = out.pending().to_vec();
    // Grow the frame by one garbage byte.
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) + 1;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    bytes.push(0xEE);
    let mut decoder = Decoder::new();
    decoder.feed(&bytes);
    let frame = decoder.next_frame().unwrap().unwrap();
    assert_eq!(
        ToWorker::decode(frame).unwrap_err(),
        DecodeError::Undecodable(PayloadError::TrailingBytes { used: 1, len: 2 })
    );
}

#[test]
fn a_huge_claimed_frame_reserves_only_what_arrives() {
    // 4 GiB claimed, limit raised to the maximum: reading 13 bytes must not
    // reserve the frame.
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 9]);
    let mut reader =
        FrameReader::with_decoder(bytes.as_slice(), Decoder::with_max_frame_len(usize::MAX));
    match reader.next_frame() {
        Err(ReadError::Decode(DecodeError::Truncated { expected, got })) => {
            assert_eq!((expected, got), (4 + u64::from(u32::MAX), 13));
        }
        other => panic!("expected a truncated frame, got {other:?}"),
    }
}

#[test]
fn errors_read_well() {
    let too_long = DecodeError::TooLong {
        len: 5000,
        limit: 100,
    };
    assert_eq!(
        too_long.to_string(),
        "frame of 5000 bytes is over the limit of 100 bytes"
    );
    let truncated = DecodeError::Truncated {
        expected: 10,
        got: 3,
    };
    assert_eq!(
        truncated.to_string(),
        "stream ended inside a frame: 3 of its 10 bytes arrived"
    );
}
