//! The worker program of the conformance tests: every task of
//! `procpool_conformance::tasks`, served on stdin/stdout.

fn main() {
    procpool::serve(procpool_conformance::registry());
}
