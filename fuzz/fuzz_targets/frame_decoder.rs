//! Arbitrary bytes in arbitrary chunks through the frame decoder.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| procpool_fuzz::frame_decoder(data));
