//! Shared by the conformance tests: pools on the test worker, and checks
//! that processes are gone.
#![allow(dead_code)] // each test file uses its own part of this module

pub(crate) mod launched;

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
#[track_caller]
pub(crate) fn assert_gone_within(pids: &[u32], limit: Duration) {
    assert_none_left_within(pids, limit, exists);
}

/// Waits up to `limit` until `left` holds for none of `pids`.
#[track_caller]
pub(crate) fn assert_none_left_within(
    pids: &[u32],
    limit: Duration,
    mut left: impl FnMut(u32) -> bool,
) {
    let end = Instant::now() + limit;
    loop {
        let still: Vec<u32> = pids.iter().copied().filter(|&p| left(p)).collect();
        if still.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "processes {still:?} still exist after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `limit` for `condition`.
pub(crate) fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh directory for marker files, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("procpool-{tag}-{}-{n}", std::process::id()));
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

/// The bound past which a wait counts as a hang (the failure matrix: "a hang
/// is a failure").
pub(crate) const HANG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns its value; panics if it has not
/// returned within `limit` (a hang), or if it panicked.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {limit:?}: a hang")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Waits up to `limit` for a task to write its pid to `path`, and reads it.
pub(crate) fn read_pid(path: &str, limit: Duration) -> u32 {
    let mut pid = None;
    wait_until(limit, "the pid file", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.expect("read above")
}

/// SIGKILLs process `pid` from the test, as `kill -9` would.
pub(crate) fn kill_9(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: kill(2) takes any pid and signal; the pid is a worker this test
    // saw alive and that the pool has not reaped (it only reaps after exit).
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}: {}", std::io::Error::last_os_error());
}

/// Asserts that `error` is a codec failure of `task` in `op`, whose message
/// contains `says` (when given).
#[track_caller]
pub(crate) fn assert_codec_failure(
    error: &procpool::Error,
    task: &str,
    op: procpool::CodecOp,
    says: Option<&str>,
) {
    match error {
        procpool::Error::Codec(e) => {
            assert_eq!((e.task.as_str(), e.op), (task, op), "{error:?}");
        }
        other => panic!("expected a codec failure of `{task}` ({op:?}), got {other:?}"),
    }
    if let Some(says) = says {
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// A tag for a pool's workers (an environment variable), so that a test can
/// find them with [`tagged_processes`] even if it never learned their pids.
pub(crate) fn tagged(builder: PoolBuilder, tag: &str) -> PoolBuilder {
    builder.worker_env(TAG_VAR, tag_value(tag))
}

const TAG_VAR: &str = "PROCPOOL_CONFORMANCE_TAG";

fn tag_value(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// The live processes whose environment carries the tag of [`tagged`].
pub(crate) fn tagged_processes(tag: &str) -> Vec<u32> {
    let value = tag_value(tag);
    procpool_testkit::pids()
        .into_iter()
        .filter(|&pid| procpool_testkit::env_var(pid, TAG_VAR).is_some_and(|v| v == *value))
        .collect()
}

/// What of this process a pool may leave behind: its open fds, its pool
/// threads and its children. Taken before a scenario, checked after.
pub(crate) struct Baseline {
    fds: usize,
}

impl Baseline {
    /// Now, with no pool thread and no child.
    pub(crate) fn now() -> Self {
        assert_eq!(manager_threads(), 0, "a pool thread before the test");
        assert!(
            children().is_empty(),
            "children before the test: {:?}",
            children()
        );
        Self { fds: open_fds() }
    }

    /// Waits up to `limit` for the process to be back to the baseline: as
    /// many fds, no pool thread, no child (zombies included).
    #[track_caller]
    pub(crate) fn assert_back(&self, scenario: &str, limit: Duration) {
        wait_until(limit, &format!("{scenario}: no pool thread"), || {
            manager_threads() == 0
        });
        let end = Instant::now() + limit;
        while !children().is_empty() {
            assert!(
                Instant::now() < end,
                "{scenario}: children left after {limit:?} (pid, state): {:?}",
                children()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let end = Instant::now() + limit;
        loop {
            let fds = open_fds();
            if fds == self.fds {
                return;
            }
            if Instant::now() >= end {
                let open = procpool_testkit::open_fds();
                panic!("{scenario}: {fds} fds open, {} before: {open:?}", self.fds);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Open fds of this process (counted as [`procpool_testkit::open_fds`]
/// lists them: compare with a count taken the same way).
pub(crate) fn open_fds() -> usize {
    procpool_testkit::open_fds().len()
}

/// Threads of this process that are a pool's: the manager
/// (`procpool-manager`, truncated by the kernel to 15 bytes) and its
/// spawner (`procpool-spawn`).
pub(crate) fn manager_threads() -> usize {
    procpool_testkit::thread_names()
        .iter()
        .filter(|name| name.starts_with("procpool-manage") || *name == "procpool-spawn")
        .count()
}

/// Children of this process, zombies included, with their state.
pub(crate) use procpool_testkit::children;

/// A gate for [`GATED`](procpool_conformance::tasks::GATED) tasks, in a
/// fresh directory: each task writes its worker's pid to its own marker
/// when it starts, then waits until the gate opens. What CPython's tests do
/// with a semaphore or an event, with files, so that no sleep decides an
/// outcome.
pub(crate) struct Gate {
    dir: TempDir,
}

impl Gate {
    pub(crate) fn new(tag: &str) -> Self {
        Self {
            dir: TempDir::new(tag),
        }
    }

    /// The arguments of the `i`th gated task, which returns `value`.
    pub(crate) fn task(&self, i: usize, value: u64) -> (String, String, u64) {
        (self.marker(i), self.dir.file("gate"), value)
    }

    fn marker(&self, i: usize) -> String {
        self.dir.file(&format!("started-{i}"))
    }

    /// Whether the `i`th task has started.
    pub(crate) fn started(&self, i: usize) -> bool {
        std::path::Path::new(&self.marker(i)).exists()
    }

    /// Waits up to `limit` for the `i`th task to start; the pid of the
    /// worker running it.
    pub(crate) fn wait_started(&self, i: usize, limit: Duration) -> u32 {
        read_pid(&self.marker(i), limit)
    }

    /// Lets every gated task, running or to come, return.
    pub(crate) fn open(&self) {
        std::fs::write(self.dir.file("gate"), b"").expect("the gate opens");
    }

    /// A file in the gate's directory.
    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.file(name)
    }
}

/// Runs this crate's test worker program with `args` as a plain
/// subprocess (a pool's parent, in one of its host modes), bounded by
/// `limit`, and returns (success, stdout, stderr).
pub(crate) fn run_host(args: &[&str], limit: Duration) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    within(limit, "the host program", move || {
        let out = std::process::Command::new(WORKER)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the host runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
}
