//! Decoding is bounded by its input: a few bytes announcing 2^62 zero-sized
//! elements, or a recursive type nested 100,000 deep, fail at once with a
//! typed [`PayloadError`] instead of looping for ever or overflowing the
//! stack; legitimate values, large ones included, still decode; and every
//! error reads as a sentence.
//!
//! Each hostile decode runs on its own thread, with a 10 s bound, so that a
//! regression fails its test instead of hanging the suite.

use procpool_ipc::{
    decode_value, encode_value, CodecOp, PayloadError, Task, MAX_DEPTH, ZERO_SIZED_ALLOWANCE,
};
use proptest::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::mpsc;
use std::time::Duration;

/// bincode's varint for a u64: the 0xFD marker, then 8 little-endian bytes.
fn varint_u64(n: u64) -> Vec<u8> {
    let mut v = vec![0xFD];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

/// bincode's varint for a u32 above 0xFFFF: the 0xFC marker, then 4 bytes.
fn varint_u32(n: u32) -> Vec<u8> {
    let mut v = vec![0xFC];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

/// Decodes `bytes` as a `T` on a thread with `stack` bytes of stack, and
/// fails the test if that takes more than 10 s.
fn decode_within_10s<T>(bytes: Vec<u8>, stack: usize) -> Result<T, PayloadError>
where
    T: for<'de> Deserialize<'de> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let _ = tx.send(decode_value::<T>(&bytes));
        })
        .expect("a thread starts");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the decode ended within 10 s (a hang means the budget is not enforced)")
}

/// A 2 MiB stack, as a spawned thread's default.
const STACK: usize = 2 << 20;

/// The budget of an input of `len` bytes.
fn budget(len: usize) -> u64 {
    (len + ZERO_SIZED_ALLOWANCE) as u64
}

/// Asserts that 9 bytes announcing 2^62 `T`s fail with `TooManyElements`.
fn assert_zst_bomb_refused<T>()
where
    T: for<'de> Deserialize<'de> + Send + Debug + 'static,
{
    let bytes = varint_u64(1 << 62);
    assert_eq!(
        decode_within_10s::<Vec<T>>(bytes, STACK).unwrap_err(),
        PayloadError::TooManyElements { limit: budget(9) },
        "{}",
        std::any::type_name::<T>()
    );
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Unit;

#[derive(Deserialize, Serialize, Debug, PartialEq, Default)]
struct AllSkipped {
    #[serde(skip)]
    hidden: u64,
    #[serde(skip)]
    also: String,
}

#[test]
fn a_bomb_of_units_is_refused_at_once() {
    assert_zst_bomb_refused::<()>();
}

#[test]
fn a_bomb_of_unit_structs_is_refused_at_once() {
    assert_zst_bomb_refused::<Unit>();
}

#[test]
fn a_bomb_of_phantom_data_is_refused_at_once() {
    assert_zst_bomb_refused::<PhantomData<u64>>();
}

#[test]
fn a_bomb_of_empty_arrays_is_refused_at_once() {
    assert_zst_bomb_refused::<[u8; 0]>();
}

#[test]
fn a_bomb_of_structs_with_only_skipped_fields_is_refused_at_once() {
    assert_zst_bomb_refused::<AllSkipped>();
}

#[test]
fn a_bomb_nested_in_a_vec_is_refused_at_once() {
    // Two inner Vec<()>s, the first of 2^62 units.
    let mut bytes = vec![2];
    bytes.extend(varint_u64(1 << 62));
    bytes.push(0);
    let len = bytes.len();
    assert_eq!(
        decode_within_10s::<Vec<Vec<()>>>(bytes, STACK).unwrap_err(),
        PayloadError::TooManyElements { limit: budget(len) }
    );
}

#[test]
fn the_budget_is_shared_by_the_whole_value() {
    // Three inner Vec<()>s of 500,000 units each: each alone is under the
    // allowance, together they are over it.
    let mut bytes = vec![3];
    for _ in 0..3 {
        bytes.extend(varint_u32(500_000));
    }
    let len = bytes.len();
    assert_eq!(
        decode_within_10s::<Vec<Vec<()>>>(bytes, STACK).unwrap_err(),
        PayloadError::TooManyElements { limit: budget(len) }
    );
}

#[test]
fn a_map_bomb_of_unit_keys_is_refused_at_once() {
    let bytes = varint_u64(1 << 62);
    assert_eq!(
        decode_within_10s::<BTreeMap<(), ()>>(bytes, STACK).unwrap_err(),
        PayloadError::TooManyElements { limit: budget(9) }
    );
}

#[test]
fn a_map_whose_value_is_a_bomb_is_refused_at_once() {
    let mut bytes = vec![1];
    bytes.extend(varint_u64(1 << 62));
    assert_eq!(
        decode_within_10s::<HashMap<(), Vec<()>>>(bytes, STACK).unwrap_err(),
        PayloadError::TooManyElements { limit: budget(10) }
    );
}

#[test]
fn zero_sized_elements_up_to_the_budget_decode() {
    // 5 bytes of length prefix: the budget is 5 + the allowance.
    let exactly = varint_u32(ZERO_SIZED_ALLOWANCE as u32);
    let units: Vec<()> = decode_value(&exactly).expect("the allowance decodes");
    assert_eq!(units.len(), ZERO_SIZED_ALLOWANCE);

    let full = ZERO_SIZED_ALLOWANCE as u32 + 5;
    let units: Vec<()> = decode_value(&varint_u32(full)).expect("the whole budget decodes");
    assert_eq!(units.len(), full as usize);
    assert_eq!(
        decode_value::<Vec<()>>(&varint_u32(full + 1)),
        Err(PayloadError::TooManyElements { limit: budget(5) })
    );
}

#[test]
fn millions_of_elements_that_take_bytes_decode() {
    // The budget grows with the input: 5 million u8s is over the allowance.
    let bytes: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut encoded = Vec::new();
    encode_value(&bytes, &mut encoded).expect("encodable");
    assert_eq!(decode_value::<Vec<u8>>(&encoded).expect("decodable"), bytes);

    let numbers: Vec<u64> = (0..3_000_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let mut encoded = Vec::new();
    encode_value(&numbers, &mut encoded).expect("encodable");
    assert_eq!(
        decode_value::<Vec<u64>>(&encoded).expect("decodable"),
        numbers
    );
}

/// A recursive type: a chain of `Node`s ending in a `Leaf`.
#[derive(Deserialize, Serialize, Debug, PartialEq)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

impl Tree {
    fn depth(&self) -> usize {
        let mut depth = 1;
        let mut at = self;
        while let Tree::Node(next) = at {
            depth += 1;
            at = next;
        }
        depth
    }
}

impl Drop for Tree {
    // Dropping a deep chain recursively could itself overflow a small stack.
    fn drop(&mut self) {
        let mut next = match self {
            Tree::Node(next) => std::mem::replace(&mut **next, Tree::Leaf),
            Tree::Leaf => return,
        };
        while let Tree::Node(child) = &mut next {
            next = std::mem::replace(&mut **child, Tree::Leaf);
        }
    }
}

/// `nodes` times variant 1 (`Node`), then variant 0 (`Leaf`): `nodes + 1`
/// nested enums.
fn tree_bytes(nodes: usize) -> Vec<u8> {
    let mut bytes = vec![1u8; nodes];
    bytes.push(0);
    bytes
}

/// A small stack: what a thread pool's worker might be given. A level of
/// `Tree` takes about 200 bytes of stack optimised and 1.4 KiB in a debug
/// build, so [`MAX_DEPTH`] levels need 50 KiB or 350 KiB; a hostile 100,000
/// levels would need 20 MiB or 140 MiB.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    1 << 20
} else {
    256 << 10
};

#[test]
fn a_recursive_value_100000_deep_is_too_deep_not_a_stack_overflow() {
    assert_eq!(
        decode_within_10s::<Tree>(tree_bytes(100_000), SMALL_STACK).unwrap_err(),
        PayloadError::TooDeep { limit: MAX_DEPTH }
    );
}

#[test]
fn recursive_values_up_to_the_depth_limit_decode_on_a_small_stack() {
    let tree = decode_within_10s::<Tree>(tree_bytes(200), SMALL_STACK).expect("200 deep decodes");
    assert_eq!(tree.depth(), 201);
    let tree = decode_within_10s::<Tree>(tree_bytes(MAX_DEPTH - 1), SMALL_STACK)
        .expect("MAX_DEPTH levels decode");
    assert_eq!(tree.depth(), MAX_DEPTH);
    assert_eq!(
        decode_within_10s::<Tree>(tree_bytes(MAX_DEPTH), SMALL_STACK).unwrap_err(),
        PayloadError::TooDeep { limit: MAX_DEPTH }
    );
}

/// A type whose `Deserialize` panics.
#[derive(Debug)]
struct Explodes;

impl<'de> Deserialize<'de> for Explodes {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("Explodes always explodes");
    }
}

#[test]
fn a_panicking_deserialize_is_an_error_not_an_unwind() {
    const BOOM: Task<Explodes, Explodes> = Task::new("boom");
    let err = BOOM.decode_output(&[0]).unwrap_err();
    assert_eq!(err.op, CodecOp::DecodeOutput);
    assert_eq!(
        err.cause,
        PayloadError::Panicked("Explodes always explodes".to_owned())
    );
    assert!(
        err.to_string().starts_with(
            "task `boom`: cannot decode the output (bounded::Explodes): its Deserialize panicked"
        ),
        "{err}"
    );
    let err = BOOM.decode_args(&[0]).unwrap_err();
    assert_eq!(err.op, CodecOp::DecodeArgs);
    assert!(matches!(err.cause, PayloadError::Panicked(_)), "{err:?}");
}

#[test]
fn a_codec_error_has_its_cause_as_source() {
    const SQUARE: Task<u64, u64> = Task::new("square");
    let err = SQUARE.decode_output(&[0xFD, 1]).unwrap_err();
    let source = std::error::Error::source(&err).expect("a cause");
    assert_eq!(source.to_string(), err.cause.to_string());
    assert_eq!(
        err.to_string(),
        "task `square`: cannot decode the output (u64): \
         the bytes end at least 7 bytes before the value does"
    );
}

/// Refuses to be encoded.
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("Refuses refuses"))
    }
}

/// Serializes a sequence without saying its length.
struct Unsized;

impl Serialize for Unsized {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        seq.serialize_element(&1u8)?;
        seq.end()
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
#[allow(dead_code)] // only its decoding matters
enum Untagged {
    Number(u64),
    Text(String),
}

#[derive(Deserialize, Debug)]
#[allow(dead_code)] // only its decoding matters
enum TwoVariants {
    A,
    B,
}

fn encode_err<T: Serialize>(value: &T) -> PayloadError {
    let mut out = vec![1, 2, 3];
    let err = encode_value(value, &mut out).unwrap_err();
    assert_eq!(
        out,
        [1, 2, 3],
        "a failed encode leaves the buffer as it was"
    );
    err
}

#[test]
fn every_error_reads_as_a_sentence() {
    let mut bad_utf8 = vec![2];
    bad_utf8.extend([0xC3, 0x28]);
    let mut lying_string = varint_u64(64 << 30);
    lying_string.extend(b"abcd");
    let cases: Vec<(PayloadError, &str)> = vec![
        (decode_value::<u64>(&[0xFD, 1]).unwrap_err(), "Truncated"),
        (decode_value::<u8>(&[1, 2]).unwrap_err(), "TrailingBytes"),
        (
            decode_value::<String>(&lying_string).unwrap_err(),
            "LengthOverInput",
        ),
        (
            decode_value::<Vec<()>>(&varint_u64(1 << 62)).unwrap_err(),
            "TooManyElements",
        ),
        (
            decode_value::<Tree>(&tree_bytes(1000)).unwrap_err(),
            "TooDeep",
        ),
        (decode_value::<bool>(&[7]).unwrap_err(), "Invalid"),
        (decode_value::<char>(&[0xFF]).unwrap_err(), "Invalid"),
        (decode_value::<String>(&bad_utf8).unwrap_err(), "Invalid"),
        (decode_value::<Option<u8>>(&[5]).unwrap_err(), "Invalid"),
        (decode_value::<TwoVariants>(&[9]).unwrap_err(), "Invalid"),
        (
            decode_value::<u16>(&varint_u64(1 << 40)).unwrap_err(),
            "Invalid",
        ),
        (decode_value::<u8>(&[]).unwrap_err(), "Truncated"),
        (decode_value::<Untagged>(&[1]).unwrap_err(), "Unsupported"),
        (encode_err(&Refuses), "Unencodable"),
        (encode_err(&Unsized), "Unsupported"),
        (PayloadError::Panicked("the message".to_owned()), "Panicked"),
    ];
    for (err, variant) in &cases {
        let text = err.to_string();
        assert!(
            format!("{err:?}").starts_with(variant),
            "{err:?} is not {variant}"
        );
        for bincode_internal in [
            "{",
            "OtherString",
            "UnexpectedEnd",
            "LimitExceeded",
            "Serde(",
            "InvalidIntegerType",
            "U64",
        ] {
            assert!(
                !text.contains(bincode_internal),
                "{variant}: {text:?} contains {bincode_internal:?}"
            );
        }
        assert!(text.len() > 10, "{variant}: {text:?} says nothing");
    }
    let texts: Vec<String> = cases.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(
        texts[0],
        "the bytes end at least 7 bytes before the value does"
    );
    assert_eq!(
        texts[1],
        "1 byte is left over after the value (1 of 2 used)"
    );
    assert_eq!(
        texts[2],
        "a length prefix claims more bytes than the input holds"
    );
    assert_eq!(texts[4], "values nest deeper than 256 levels");
    assert_eq!(texts[5], "invalid value: 7 for a bool, which is 0 or 1");
    assert!(
        texts[12].starts_with("the type needs a self-describing format"),
        "{}",
        texts[12]
    );
    assert_eq!(texts[13], "Refuses refuses");
}

fn round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + Debug,
{
    let mut bytes = Vec::new();
    encode_value(value, &mut bytes).expect("encodable");
    prop_assert_eq!(&decode_value::<T>(&bytes).expect("decodable"), value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn vec_of_u64_round_trips(v in prop::collection::vec(any::<u64>(), 0..200)) {
        round_trip(&v)?;
    }

    #[test]
    fn string_and_options_round_trip(
        v in (".{0,40}", prop::collection::vec(any::<Option<u32>>(), 0..100)),
    ) {
        round_trip(&v)?;
    }

    #[test]
    fn map_of_vecs_round_trips(
        v in prop::collection::btree_map(".{0,12}", prop::collection::vec(any::<i32>(), 0..20), 0..30),
    ) {
        round_trip(&v)?;
    }

    #[test]
    fn vec_of_unit_pairs_round_trips(
        v in prop::collection::vec(any::<u8>().prop_map(|b| ((), b)), 0..300),
    ) {
        round_trip(&v)?;
    }
}
