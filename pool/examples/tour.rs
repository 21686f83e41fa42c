//! A guided tour of procpool: run it with `cargo run --example tour`.
//!
//! The program is its own worker: the pool re-executes this binary, and the
//! first line of `main` turns those copies into workers.

use procpool::{as_completed, Error, MapOptions, Pool, Registry, SubmitOptions, Task};
use std::time::{Duration, Instant};

const SQUARE: Task<u64, u64> = Task::new("square");
const PARSE: Task<String, Result<i64, String>> = Task::new("parse");
const EXPLODE: Task<String, ()> = Task::new("explode");
const SEGFAULT: Task<(), ()> = Task::new("segfault");
const SLEEP: Task<u64, u64> = Task::new("sleep");
const POLITE_SLEEP: Task<u64, String> = Task::new("polite_sleep");
const WHO: Task<(), u32> = Task::new("who");

fn tasks() -> Registry {
    Registry::new()
        .with(SQUARE, |x| x * x)
        .with(PARSE, |s: String| {
            s.trim().parse::<i64>().map_err(|e| format!("{s:?}: {e}"))
        })
        .with(EXPLODE, |why: String| panic!("{why}"))
        .with(SEGFAULT, |()| {
            // A task that crashes its process, as C code sometimes does.
            // SAFETY: raising SIGSEGV at ourselves is the point of the demo.
            #[allow(unsafe_code)]
            unsafe {
                libc_raise_segv()
            }
        })
        .with(SLEEP, |secs| {
            std::thread::sleep(Duration::from_secs(secs));
            secs
        })
        .with(POLITE_SLEEP, |secs| {
            let end = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < end {
                if procpool::stop_requested() {
                    return "stopped politely".to_owned();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            "slept".to_owned()
        })
        .with(WHO, |()| std::process::id())
}

/// A segmentation fault, declared here so the example needs no libc crate.
///
/// # Safety
/// Always sound to call; it kills the calling process.
unsafe fn libc_raise_segv() {
    extern "C" {
        fn signal(signal: i32, handler: usize) -> usize;
        fn raise(signal: i32) -> i32;
    }
    // SAFETY: 11 is SIGSEGV on Linux and 0 is SIG_DFL: Rust's stack-overflow
    // handler would otherwise swallow a raised SIGSEGV.
    unsafe {
        signal(11, 0);
        raise(11);
    }
}

fn main() -> Result<(), Error> {
    procpool::serve_if_worker(tasks);

    let pool = Pool::builder()
        .max_workers(2)
        .grace(Duration::from_millis(200))
        .build()?;
    println!("procpool tour: a pool of 2 worker processes (this program, re-executed)\n");

    println!("1. Results come back typed.");
    let nine = pool.submit(SQUARE, 3)?;
    println!("   square(3) = {}", nine.result(None)?);
    let t0 = Instant::now();
    let total: u64 = pool
        .map(SQUARE, 0..200_000u64, 1_000)?
        .map(|r| r.expect("squares do not fail"))
        .sum();
    println!(
        "   sum of squares of 0..200000 with map(chunksize 1000) = {total} ({:.1} ms)\n",
        t0.elapsed().as_secs_f64() * 1e3
    );

    println!("2. Errors come back with their messages.");
    println!(
        "   parse(\"42\")   -> {:?}",
        pool.submit(PARSE, "42".to_owned())?.result(None)?
    );
    println!(
        "   parse(\"forty\") -> {:?}  (an Err value is just an output)",
        pool.submit(PARSE, "forty".to_owned())?.result(None)?
    );
    match pool
        .submit(EXPLODE, "the disk is full".to_owned())?
        .result(None)
    {
        Err(e @ Error::TaskPanicked { .. }) => println!("   explode        -> error: {e}"),
        other => println!("   explode        -> unexpected {other:?}"),
    }
    println!();

    println!("3. A crashed worker does not break the pool.");
    let before = pool.submit(WHO, ())?.result(None)?;
    match pool.submit(SEGFAULT, ())?.result(None) {
        Err(e) => println!("   segfault -> error: {e}"),
        Ok(()) => println!("   segfault -> it survived?"),
    }
    let after = pool.submit(SQUARE, 12)?.result(None)?;
    println!("   the next task still runs: square(12) = {after} (a worker was {before}; the dead one was replaced)\n");

    println!("4. Running tasks can be stopped.");
    let long = pool.submit(SLEEP, 60)?;
    while !long.running() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    println!(
        "   a 60 s task is running; cancel() -> {} (CPython's meaning: too late)",
        long.cancel()
    );
    long.abort();
    let outcome = long.result(None);
    println!(
        "   abort() -> {:?} after {:.0} ms (SIGTERM, SIGKILL after a 200 ms grace)",
        outcome.map_err(|e| e.to_string()),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let limited = pool.submit_with(
        SLEEP,
        60,
        SubmitOptions::new().time_limit(Duration::from_millis(300)),
    )?;
    println!(
        "   a 60 s task with a 300 ms time limit -> {}",
        limited.result(None).unwrap_err()
    );
    let polite = pool.submit_with(
        POLITE_SLEEP,
        60,
        SubmitOptions::new().grace(Duration::from_secs(5)),
    )?;
    while !polite.running() {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    polite.abort();
    println!(
        "   a task that polls stop_requested() returns within its grace -> {:?}; its worker lives on",
        polite.result(None).map_err(|e| e.to_string())
    );
    let slow: Vec<_> = (0..4)
        .map(|_| pool.submit(SLEEP, 100))
        .collect::<Result<_, _>>()?;
    let unfinished = as_completed(&slow, Some(Duration::from_millis(100)))
        .find_map(Result::err)
        .map(|e| e.to_string())
        .unwrap_or_default();
    println!("   four 100 s tasks, as_completed(timeout 100 ms) -> {unfinished}");
    let t0 = Instant::now();
    for f in &slow {
        f.abort();
    }
    let ended: Vec<String> = slow
        .iter()
        .map(|f| {
            f.result(None)
                .map(|_| ())
                .map_err(|e| e.to_string())
                .unwrap_err()
        })
        .collect();
    println!(
        "   ...then abort() on each: all {} ended ({:?}) in {:.0} ms\n",
        ended.len(),
        ended[0],
        t0.elapsed().as_secs_f64() * 1e3
    );

    println!("5. map with a timeout stops what it no longer needs.");
    let results: Vec<String> = pool
        .map_with(
            SLEEP,
            [0, 0, 30, 0],
            MapOptions::new().timeout(Duration::from_millis(500)),
        )?
        .map(|r| match r {
            Ok(v) => format!("{v}"),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    println!("   {results:?}\n");

    let stats = pool.stats();
    println!(
        "stats: {} finished, {} failed, {} cancelled, {} timed out, {} workers started \
         ({} of them forked by the fork server), {} replaced",
        stats.finished,
        stats.failed,
        stats.cancelled,
        stats.timed_out,
        stats.workers_started,
        stats.workers_forked,
        stats.workers_replaced
    );
    let t0 = Instant::now();
    drop(pool);
    println!(
        "pool dropped: every worker reaped in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
