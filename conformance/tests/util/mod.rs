//! Shared by the conformance tests: pools on the test worker, and checks
//! that processes are gone.
#![allow(dead_code)] // each test file uses its own part of this module

use procpool::{Pool, PoolBuilder};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The test worker program, built by this crate.
pub(crate) const WORKER: &str = env!("CARGO_BIN_EXE_procpool-test-worker");

/// A builder for a pool of `n` workers running the test worker.
pub(crate) fn builder(n: usize) -> PoolBuilder {
    Pool::builder().max_workers(n).worker_program(WORKER)
}

/// A pool of `n` test workers.
pub(crate) fn pool(n: usize) -> Pool {
    builder(n).build().expect("a pool starts")
}

/// Whether process `pid` exists (a zombie counts: it has not been reaped).
pub(crate) fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `limit` for every pid to be gone (exited and reaped).
pub(crate) fn assert_gone_within(pids: &[u32], limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| exists(p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "processes {left:?} still exist after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `limit` for `condition`.
pub(crate) fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < end, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh directory for marker files, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "procpool-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A generous bound for things that should take milliseconds.
pub(crate) const SOON: Duration = Duration::from_secs(10);
