//! Benchmarks only: criterion benches of procpool's pieces live in `benches/`,
//! and the `procpool-bench` comparison binary (one JSON line per scenario of
//! `shared/bench/SCENARIOS.md`) in `src/bin/`.
//!
//! This library holds what the pool benches (`round_trip`, `spawn`) and their
//! worker program (`src/bin/bench-worker.rs`) must agree on: the tasks.

use procpool::{Registry, Task};
use std::time::Duration;

/// Does nothing: the round trip of a call.
pub const NOOP: Task<(), ()> = Task::new("noop");

/// Sleeps this many milliseconds, then returns the worker's pid.
pub const GETPID: Task<u64, u32> = Task::new("getpid");

/// The tasks of the `bench-worker` program.
pub fn worker_tasks() -> Registry {
    Registry::new()
        .with(NOOP, |()| ())
        .with(GETPID, |delay_ms| {
            if delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(delay_ms));
            }
            std::process::id()
        })
}

/// The median as Python's `statistics.median` takes it (the mean of the two
/// middle values for an even count), so procpool's numbers and the peers'
/// are summarised alike. Empty input panics: callers always have samples.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
