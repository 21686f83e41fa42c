//! Arbitrary bytes through the payload codec, decoded as several types.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| procpool_fuzz::payload_codec(data));
