//! Benchmarks only: criterion benches of procpool's pieces live in `benches/`,
//! and the `procpool-bench` comparison binary (one JSON line per scenario of
//! `shared/bench/SCENARIOS.md`) in `src/bin/`.
