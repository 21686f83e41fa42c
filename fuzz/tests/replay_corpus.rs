//! Replays the committed seed corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' bodies, so `cargo test` exercises them without cargo-fuzz.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a readable corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        body(&bytes);
        count += 1;
    }
    assert!(
        count >= 5,
        "{target}: only {count} seeds in {}",
        dir.display()
    );
}

#[test]
fn frame_decoder_corpus_replays_without_panic() {
    replay("frame_decoder", procpool_fuzz::frame_decoder);
}

#[test]
fn payload_codec_corpus_replays_without_panic() {
    replay("payload_codec", procpool_fuzz::payload_codec);
}

#[test]
fn worker_dispatch_corpus_replays_without_panic() {
    replay("worker_dispatch", procpool_fuzz::worker_dispatch);
}
