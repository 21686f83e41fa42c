//! The basic path end to end: submit, result, map, errors.

mod util;
use procpool::Error;
use procpool_conformance::tasks::*;

#[test]
fn submit_returns_the_output() {
    let pool = util::pool(2);
    let f = pool.submit(SQUARE, 7).unwrap();
    assert_eq!(f.result(Some(util::SOON)).unwrap(), 49);
}

#[test]
fn a_panic_comes_back_with_its_message() {
    let pool = util::pool(1);
    let err = pool
        .submit(PANIC, "boom".to_owned())
        .unwrap()
        .result(None)
        .unwrap_err();
    match &err {
        Error::TaskPanicked {
            message, backtrace, ..
        } => {
            assert!(message.contains("boom"), "{message}");
            assert!(backtrace.as_deref().is_some_and(|b| !b.is_empty()));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(pool.submit(SQUARE, 3).unwrap().result(None).unwrap(), 9);
}

#[test]
fn map_equals_the_sequential_map() {
    let pool = util::pool(2);
    let out: Vec<u64> = pool
        .map(SQUARE, 0..1000u64, 7)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
}
