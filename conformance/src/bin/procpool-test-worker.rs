//! The worker program of the conformance tests: every task of
//! `procpool_conformance::tasks`, served on stdin/stdout.
//!
//! `--app` makes it an application whose `main` calls `serve_if_worker`
//! first and then prints `APP_RAN`; `--list-fds` prints its open fds.
//!
//! `procpool-test-worker --emfile-host [forever]` is a pool's parent that
//! runs out of fds (its `RLIMIT_NOFILE` lowered to what it has open) before
//! its first worker starts: the starts fail with EMFILE. It raises the limit
//! again after two failed starts (not with `forever`), and prints how its
//! task ended: `ok N` (N failed starts first) or `error ...`.
//!
//! `procpool-test-worker --emfile-replacement-host DIR passing|forever
//! replace|break` is a pool's parent (one worker, recycled after each task,
//! under that failure policy) that runs out of fds (its limit lowered to 3)
//! while its worker runs the first of three tasks, so that the worker's replacement cannot start
//! (CPython's `test_failed_worker_replacement_breaks_pool`). The first task
//! waits for a gate that the host opens once the limit is lowered; with
//! `passing` the limit is raised again after two failed starts. It prints one
//! line per task: `N: ` and the task's outcome (`Ok(..)` or `Err(..)`).
//!
//! `procpool-test-worker --ends-without-shutdown FILE` builds a pool of five
//! of these workers, submits a task that writes `apple` to FILE after half a
//! second, and returns from `main` without shutting the pool down (CPython's
//! `test_interpreter_shutdown`); `--shutdown-no-wait-then-ends FILE` calls
//! `shutdown(wait = false)` before `main` returns (CPython's
//! `test_hang_gh83386`).
//!
//! As a worker, with `PROCPOOL_TEST_START_GATE=PATH` in its environment, it
//! waits until the file PATH exists before it serves: a fork server (or a
//! worker) that is slow to start, which the pool's manager waits for.
//!
//! `procpool-test-worker --host-pool` is a pool's parent instead, for the
//! tests that kill a pool's whole process: it starts a pool of two of these
//! workers, has one killed so that its replacement is forked by the fork
//! server, keeps both busy with tasks that start a `sleep` child each,
//! prints `workers PID PID`, `grandchildren PID PID` (once both run) and
//! `forked N`, and waits to be killed. It exits 1, with a message, when a
//! worker does not start its task within 20 s.

use procpool_conformance::tasks::{GATED, GETPID, KILL_SELF, PIDS_FILE_WITH_CHILD, WRITE_AFTER_MS};
use std::time::Duration;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("--host-pool") => host_pool(),
        Some("--emfile-host") => emfile_host(std::env::args().nth(2).as_deref() == Some("forever")),
        Some("--app") => {
            // An application: serves if a pool started it, else goes on.
            procpool::serve_if_worker(procpool_conformance::registry);
            println!("{}", procpool_conformance::APP_RAN);
            return;
        }
        Some("--list-fds") => {
            for fd in procpool_conformance::open_fds() {
                println!("{fd}");
            }
            return;
        }
        Some("--emfile-replacement-host") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            emfile_replacement_host(&args)
        }
        Some("--ends-without-shutdown") => {
            ends_with_a_task_running(&std::env::args().nth(2).expect("a file"), false);
            return;
        }
        Some("--shutdown-no-wait-then-ends") => {
            ends_with_a_task_running(&std::env::args().nth(2).expect("a file"), true);
            return;
        }
        _ => {}
    }
    if let Ok(gate) = std::env::var("PROCPOOL_TEST_START_GATE") {
        procpool_conformance::wait_for_file(&gate);
    }
    procpool::serve(procpool_conformance::registry());
}

fn host_pool() -> ! {
    let exe = std::env::current_exe().expect("the test worker's path");
    let pool = procpool::Pool::builder()
        .max_workers(2)
        .worker_program(exe)
        .build()
        .expect("a pool starts");
    let soon = Some(Duration::from_secs(10));
    for _ in 0..50 {
        let _ = pool.submit(KILL_SELF, ()).and_then(|f| f.result(soon));
        let _ = pool.submit(GETPID, ()).and_then(|f| f.result(soon));
        if pool.stats().workers_forked >= 1 {
            break;
        }
    }
    let dir = std::env::temp_dir().join(format!("procpool-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let file = dir.join(i.to_string()).to_string_lossy().into_owned();
            let future = pool
                .submit(PIDS_FILE_WITH_CHILD, (file.clone(), 600_000))
                .expect("submit");
            (file, future)
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pids: Vec<String> = busy
        .iter()
        .map(|(file, _)| loop {
            if let Ok(pids) = std::fs::read_to_string(file) {
                if pids.contains(' ') {
                    break pids;
                }
            }
            if std::time::Instant::now() > deadline {
                eprintln!("host-pool: a worker did not start its task within 20 s");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let field = |i: usize| {
        pids.iter()
            .map(|p| p.split_whitespace().nth(i).unwrap_or("0").to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("workers {}", field(0));
    println!("grandchildren {}", field(1));
    println!("forked {}", pool.stats().workers_forked);
    loop {
        std::thread::park();
    }
}

/// Runs out of fds under a pool's feet; see the module's doc.
fn emfile_host(forever: bool) -> ! {
    let exe = std::env::current_exe().expect("the test worker's path");
    let pool = procpool::Pool::builder()
        .max_workers(1)
        .worker_program(exe)
        .restart_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .max_failures_in_a_row(6)
        .build()
        .expect("a pool starts");
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    // The directory's own fd was counted and is closed again: one to spare,
    // which the first pipe of a start takes; its second fails.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one rlimit on this
    // frame.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let low = libc::rlimit {
            rlim_cur: open as libc::rlim_t,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &low);
    }
    let future = pool
        .submit(procpool_conformance::tasks::SQUARE, 7)
        .expect("submit");
    if !forever {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pool.stats().worker_failures < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    match future.result(Some(Duration::from_secs(60))) {
        Ok(49) => println!("ok {}", pool.stats().worker_failures),
        other => println!("error {other:?}"),
    }
    // SAFETY: as above: fds to shut the pool down with.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    drop(pool);
    std::process::exit(0)
}

/// A pool with a task still running when `main` returns; see the module's
/// doc.
fn ends_with_a_task_running(file: &str, shutdown_without_wait: bool) {
    let exe = std::env::current_exe().expect("the test worker's path");
    let pool = procpool::Pool::builder()
        .max_workers(5)
        .worker_program(exe)
        .build()
        .expect("a pool starts");
    let task = (file.to_owned(), 500, "apple".to_owned());
    let _running = pool.submit(WRITE_AFTER_MS, task).expect("submit");
    if shutdown_without_wait {
        pool.shutdown(false, false);
    }
    // The end of `main`: the pool is dropped here, as a program ends.
}

/// Runs out of fds when a worker must be replaced; see the module's doc.
fn emfile_replacement_host(args: &[String]) -> ! {
    let [dir, passing, policy] = args else {
        eprintln!("usage: --emfile-replacement-host DIR passing|forever replace|break");
        std::process::exit(2);
    };
    let policy = match policy.as_str() {
        "break" => procpool::FailurePolicy::BreakPool,
        _ => procpool::FailurePolicy::ReplaceWorker,
    };
    let exe = std::env::current_exe().expect("the test worker's path");
    let pool = procpool::Pool::builder()
        .max_workers(1)
        .max_tasks_per_child(1)
        .failure_policy(policy)
        .worker_program(exe)
        .restart_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .max_failures_in_a_row(4)
        .build()
        .expect("a pool starts");
    let path = |name: &str| format!("{dir}/{name}");
    let futures: Vec<_> = (0..3u64)
        .map(|i| {
            let args = (path(&format!("started-{i}")), path("gate"), i);
            pool.submit(GATED, args).expect("submit")
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&path("started-0")).exists() {
        if std::time::Instant::now() > deadline {
            eprintln!("emfile-replacement-host: the first task did not start within 30 s");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The gate opens by a rename, which takes no fd.
    std::fs::write(path("gate.tmp"), b"").expect("the gate's file");
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one rlimit on this
    // frame.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        // Below every fd it holds: those stay usable, and even the fds that
        // the old worker's end frees are above the limit, so every new fd
        // fails with EMFILE.
        let low = libc::rlimit {
            rlim_cur: 3,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &low);
    }
    std::fs::rename(path("gate.tmp"), path("gate")).expect("the gate opens");
    if passing == "passing" {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pool.stats().worker_failures < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    let outcomes: Vec<String> = futures
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{i}: {:?}", f.result(Some(Duration::from_secs(60)))))
        .collect();
    // SAFETY: as above: fds to print and to shut the pool down with.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    for line in outcomes {
        println!("{line}");
    }
    drop(pool);
    std::process::exit(0)
}
