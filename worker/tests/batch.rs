//! Batch calls (`CallKind::Batch`, a `map` chunk) against a real worker
//! process: the payload is an encoded `Vec<Args>`, the output an encoded
//! `Vec<Result<Output, RemoteError>>`, and a failing element fails only
//! itself.

mod util;

use procpool_ipc::{decode_value, encode_value, CallKind, RemoteError, RemoteErrorKind};
use util::Worker;

fn batch<A: serde::Serialize>(args: &[A]) -> Vec<u8> {
    let mut payload = Vec::new();
    encode_value(args, &mut payload).expect("encodable");
    payload
}

#[test]
fn batch_returns_one_result_per_element_in_order() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let args: Vec<u64> = (0..100).collect();
    let output = worker
        .call_raw("square", CallKind::Batch, &batch(&args))
        .expect("the batch runs");
    let results: Vec<Result<u64, RemoteError>> = decode_value(&output).expect("decodable");
    let expected: Vec<Result<u64, RemoteError>> = args.iter().map(|x| Ok(x * x)).collect();
    assert_eq!(results, expected);
    let output = worker
        .call_raw("square", CallKind::Batch, &batch::<u64>(&[]))
        .expect("an empty batch runs");
    assert_eq!(
        decode_value::<Vec<Result<u64, RemoteError>>>(&output),
        Ok(vec![])
    );
}

#[test]
fn panicking_element_fails_only_itself() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let output = worker
        .call_raw("half", CallKind::Batch, &batch(&[2u64, 3, 4, 5]))
        .expect("the batch runs");
    let results: Vec<Result<u64, RemoteError>> = decode_value(&output).expect("decodable");
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], Ok(1));
    assert_eq!(results[2], Ok(2));
    for (i, odd) in [(1, 3), (3, 5)] {
        let e = results[i].as_ref().expect_err("odd input panics");
        assert_eq!(e.kind, RemoteErrorKind::Panicked);
        assert!(e.message.contains(&format!("half: {odd} is odd")), "{e}");
        assert!(e.backtrace.is_some(), "element {i} has a backtrace");
    }
}

#[test]
fn unencodable_elements_fail_each_with_output_encode() {
    let (mut worker, _) = Worker::start_hello(&[]);
    let output = worker
        .call_raw("unserializable", CallKind::Batch, &batch(&[(), ()]))
        .expect("the batch runs");
    let results: Vec<Result<(), RemoteError>> = decode_value(&output).expect("decodable");
    assert_eq!(results.len(), 2);
    for r in results {
        let e = r.expect_err("unencodable");
        assert_eq!(e.kind, RemoteErrorKind::OutputEncode);
        assert!(e.message.contains("Unserializable refuses"), "{e}");
    }
}

#[test]
fn undecodable_batch_fails_as_a_whole_with_args_decode() {
    let (mut worker, _) = Worker::start_hello(&[]);
    // A batch that claims 3 elements and holds 1.
    let e = worker
        .call_raw("square", CallKind::Batch, &[3, 1])
        .expect_err("undecodable");
    assert_eq!(e.kind, RemoteErrorKind::ArgsDecode);
    assert!(
        e.message.contains("batch") && e.message.contains("square"),
        "{e}"
    );
    let e = worker
        .call_raw("nope", CallKind::Batch, &batch(&[1u64]))
        .expect_err("unknown");
    assert_eq!(e.kind, RemoteErrorKind::UnknownTask);
    let output = worker
        .call_raw("square", CallKind::Batch, &batch(&[9u64]))
        .expect("the worker goes on");
    assert_eq!(
        decode_value::<Vec<Result<u64, RemoteError>>>(&output),
        Ok(vec![Ok(81)])
    );
}
