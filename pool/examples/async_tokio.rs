//! procpool from async code (Python's `loop.run_in_executor` with a process
//! pool): run it with `cargo run --example async_tokio`.
//!
//! - many submitters wait for room in a bounded backlog without a thread
//!   each (`submit_async`), then await their results;
//! - a slow task raced against a timeout is stopped when the timeout wins
//!   (`abort_on_drop`): its worker process is killed, not left running;
//! - a task that panics and a worker that dies fail only their own futures.
//!
//! The pool's futures work on any runtime; this one uses tokio.

use procpool::{Error, Pool, Registry, Task};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SQUARE: Task<u64, u64> = Task::new("square");
const SLOW: Task<u64, String> = Task::new("slow");
const FAIL: Task<String, ()> = Task::new("fail");
const DIE: Task<i32, ()> = Task::new("die");

fn tasks() -> Registry {
    Registry::new()
        .with(SQUARE, |x| x * x)
        .with(SLOW, |ms| {
            // A long computation that looks at the stop flag between steps.
            let end = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < end {
                if procpool::stop_requested() {
                    return "stopped".to_owned();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            "done".to_owned()
        })
        .with(FAIL, |why: String| panic!("{why}"))
        .with(DIE, |code| std::process::exit(code))
}

fn main() {
    // First, before the runtime starts its threads: when the pool starts
    // this program as a worker, it serves here and exits. (A worker, and the
    // fork server above all, must start with one thread; `#[tokio::main]`
    // would start the runtime before this line.)
    procpool::serve_if_worker(tasks);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("async_tokio failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    // Two workers; at most eight tasks waiting for them: a producer faster
    // than the workers waits for room instead of queueing without limit.
    let pool = Arc::new(Pool::builder().max_workers(2).max_pending(8).build()?);

    // 1. A hundred submitters at once, each its own tokio task.
    let started = Instant::now();
    let mut submitters = tokio::task::JoinSet::new();
    for x in 0..100u64 {
        let pool = Arc::clone(&pool);
        submitters.spawn(async move {
            // The first await waits for room in the backlog; the second,
            // for the output.
            pool.submit_async(SQUARE, x).await?.await
        });
    }
    let mut sum = 0;
    while let Some(joined) = submitters.join_next().await {
        sum += joined.expect("a submitter does not panic")?;
    }
    assert_eq!(sum, (0..100u64).map(|x| x * x).sum::<u64>());
    let stats = pool.stats();
    println!(
        "1. 100 submitters, room for 8 waiting: the squares sum to {sum} \
         ({} submits waited for room) in {:.1?}",
        stats.submits_waited,
        started.elapsed()
    );

    // 2. A 60 s task raced against a 200 ms timeout. Dropping the future
    //    wrapped in `abort_on_drop` stops the task: SIGTERM to its worker
    //    (which it sees as `stop_requested`), SIGKILL after the grace.
    let slow = pool.submit_async(SLOW, 60_000).await?;
    let raced = tokio::time::timeout(Duration::from_millis(200), slow.abort_on_drop()).await;
    assert!(raced.is_err(), "the timeout wins: {raced:?}");
    println!("2. a 60 s task lost its race against 200 ms and was stopped");

    // 3. A task that panics fails its own future, with the panic's message.
    match pool.submit_async(FAIL, "bad input".to_owned()).await?.await {
        Err(Error::TaskPanicked { message, .. }) => {
            println!("3. a panicking task: {message}");
        }
        other => panic!("expected the task's panic, got {other:?}"),
    }

    // 4. A worker that dies mid-task fails that task only; the pool starts
    //    another worker and goes on.
    match pool.submit_async(DIE, 3).await?.await {
        Err(Error::WorkerDied { pid, exit, .. }) => {
            println!("4. worker {pid} died ({exit}); only its task failed");
        }
        other => panic!("expected the worker's death, got {other:?}"),
    }
    assert_eq!(pool.submit_async(SQUARE, 12).await?.await?, 144);

    let stats = pool.stats();
    println!(
        "   and the pool goes on: 12 squared is 144 (tasks finished: {}, failed: {}; \
         workers replaced: {})",
        stats.finished, stats.failed, stats.workers_replaced
    );

    // Shutting down waits for the workers to exit: a blocking call, so not
    // on the runtime's own threads.
    tokio::task::spawn_blocking(move || pool.shutdown(true, false))
        .await
        .expect("the shutdown does not panic");
    Ok(())
}
