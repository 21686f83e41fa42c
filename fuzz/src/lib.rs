//! The bodies of procpool's fuzz targets, kept in a library so that the
//! cargo-fuzz binaries (`fuzz_targets/`) and an ordinary test that replays
//! the committed corpus (`tests/replay_corpus.rs`) run the same code.
//!
//! ```text
//! corpus/<target>/*  --> tests/replay_corpus.rs --\
//!                                                  +--> frame_decoder(bytes) / payload_codec(bytes)
//! libFuzzer mutations --> fuzz_targets/<target>.rs /        (panic = finding)
//! ```

use procpool_ipc::{ByteBuf, Decoder, FromWorker, RemoteError, ToWorker};
use std::collections::BTreeMap;

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
/// decodes must encode back to the same bytes.
pub fn payload_codec(data: &[u8]) {
    round_trip::<u64>(data);
    round_trip::<String>(data);
    round_trip::<Vec<String>>(data);
    round_trip::<(u32, ByteBuf, Option<String>)>(data);
    round_trip::<BTreeMap<String, Vec<i32>>>(data);
    round_trip::<Result<Vec<u64>, RemoteError>>(data);
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
    let again: T = procpool_ipc::decode_value(&bytes).expect("an encoded value decodes");
    assert_eq!(value, again, "value changed in a round trip");
}
