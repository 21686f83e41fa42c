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
//! `procpool-test-worker --host-pool` is a pool's parent instead, for the
//! tests that kill a pool's whole process: it starts a pool of two of these
//! workers, has one killed so that its replacement is forked by the fork
//! server, keeps both busy with tasks that start a `sleep` child each,
//! prints `workers PID PID`, `grandchildren PID PID` (once both run) and
//! `forked N`, and waits to be killed. It exits 1, with a message, when a
//! worker does not start its task within 20 s.

use procpool_conformance::tasks::{GETPID, KILL_SELF, PIDS_FILE_WITH_CHILD};
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
        _ => {}
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
