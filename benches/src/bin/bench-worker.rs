//! The worker program of the criterion pool benches (`round_trip`, `spawn`).
//!
//! A criterion bench binary is started by cargo with arguments of its own, so
//! it cannot re-execute itself as a worker; its pools name this program with
//! `PoolBuilder::worker_program(env!("CARGO_BIN_EXE_bench-worker"))`.

fn main() {
    procpool::serve_if_worker(procpool_benches::worker_tasks);
    eprintln!("bench-worker: a procpool worker program; a pool starts it, not a person");
    std::process::exit(2);
}
