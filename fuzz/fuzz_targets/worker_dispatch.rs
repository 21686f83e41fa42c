//! Arbitrary bytes as a worker's call stream through its serve loop.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| procpool_fuzz::worker_dispatch(data));
