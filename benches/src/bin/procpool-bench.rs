//! procpool-bench: the scenarios of `shared/bench/SCENARIOS.md` against
//! procpool, printed as the same JSON lines as `peers.py` and `rust-peers`:
//!
//! ```text
//! {"executor":"procpool","scenario":"latency","value":48.2,"unit":"us","cpu_note":...,"p99_us":71.0,...}
//! ```
//!
//! Usage:
//!
//! ```text
//! procpool-bench                         every scenario, each in a fresh process
//! procpool-bench run [--scenarios a,b] [--repeat N] [--limit SEC]
//! procpool-bench one SCENARIO [--limit SEC]
//! procpool-bench list
//! ```
//!
//! `run` (the default) starts every scenario as a fresh `procpool-bench one
//! SCENARIO` in its own session (setsid) under a hard wall-clock limit (40 s
//! by default; every scenario bounds its own time well below that). A
//! scenario that overruns is SIGKILLed with everything in its session, by
//! PID, and reported as `"value": "timeout"`. Each scenario drops its pool
//! and checks that no worker is left (`workers_gone_after_drop`,
//! `descendants_after_drop`); `one` then SIGKILLs any descendant still there
//! and `run` anything still in the session (`leftover_procs_killed`).
//!
//! The binary is its own worker: the pool re-executes it, and the first thing
//! `main` does is `procpool::serve_if_worker(tasks)`.

use procpool_benches::median;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use procfs::process::{all_processes, Process, Stat, Status};
use procfs::{Current, CurrentSI, KernelStats, LoadAverage};
use procpool::{ByteBuf, Error, Future, Pool, PoolBuilder, Registry, SubmitOptions, Task};
use serde_json::{json, Map, Value};

const EXECUTOR: &str = "procpool";
const WORKERS: usize = 2;
const BYSTANDER_SECS: f64 = 4.0;
const VICTIM_SECS: f64 = 60.0;
const MIB: usize = 1 << 20;
const START_METHOD: &str = "exec of the current executable, re-entry at procpool::serve_if_worker";
/// Hard wall-clock limit of one scenario process, seconds.
const DEFAULT_LIMIT: f64 = 40.0;

// ------------------------------------------------------------------ tasks

const NOOP: Task<(), ()> = Task::new("noop");
const SQUARE: Task<u64, u64> = Task::new("square");
const ECHO: Task<ByteBuf, ByteBuf> = Task::new("echo");
/// Sleeps this many milliseconds, then returns the worker's pid.
const GETPID: Task<u64, u32> = Task::new("getpid");
/// Writes "pid monotonic-time" to the file, sleeps, returns "finished".
const SLEEP_MARKER: Task<(String, f64), String> = Task::new("sleep_marker");
/// Writes "pid monotonic-time" to the file, then `exit(1)`.
const CRASH_EXIT: Task<String, ()> = Task::new("crash_exit");
/// Writes "pid monotonic-time" to the file, then SIGKILLs itself.
const CRASH_SIGKILL: Task<String, ()> = Task::new("crash_sigkill");

fn tasks() -> Registry {
    Registry::new()
        .with(NOOP, |()| ())
        .with(SQUARE, |x: u64| x.wrapping_mul(x))
        .with(ECHO, |b: ByteBuf| b)
        .with(GETPID, |delay_ms: u64| {
            if delay_ms > 0 {
                thread::sleep(Duration::from_millis(delay_ms));
            }
            std::process::id()
        })
        .with(SLEEP_MARKER, |(path, secs): (String, f64)| {
            mark(&path);
            thread::sleep(Duration::from_secs_f64(secs));
            "finished".to_owned()
        })
        .with(CRASH_EXIT, |path: String| {
            mark(&path);
            std::process::exit(1);
        })
        .with(CRASH_SIGKILL, |path: String| {
            mark(&path);
            // SAFETY: kill(2) on our own pid with a valid signal number; the
            // process ends here, which is what the task is for.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            thread::sleep(Duration::from_secs(10)); // not reached
        })
}

/// Records "pid CLOCK_MONOTONIC" in `path`, atomically (write + rename), so
/// the reader never sees a torn line.
fn mark(path: &str) {
    let tmp = format!("{path}.tmp");
    fs::write(&tmp, format!("{} {:.9}\n", std::process::id(), now())).expect("write marker");
    fs::rename(&tmp, path).expect("rename marker");
}

// ------------------------------------------------------------------ helpers

/// CLOCK_MONOTONIC in seconds (the same clock in every process).
fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, owned `ts`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn ms(dt: f64) -> f64 {
    round(dt * 1e3, 3)
}

fn us(dt: f64) -> f64 {
    round(dt * 1e6, 2)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Nearest rank on the sorted list (as peers.py's `pct`).
fn pct(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let k = ((q / 100.0 * (n - 1) as f64).round() as usize).min(n - 1);
    v[k]
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn fmin(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

type R<T> = Result<T, String>;

/// An error as `Kind: message`, for the JSON lines.
fn err_name(e: &Error) -> String {
    let dbg = format!("{e:?}");
    let kind = dbg
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("Error");
    format!("{kind}: {e}")
}

/// `future.result()` with a timeout, errors as strings.
fn wait<T: Clone>(f: &Future<T>, s: f64) -> R<T> {
    f.result(Some(secs(s))).map_err(|e| err_name(&e))
}

fn submit<A, O>(pool: &Pool, task: Task<A, O>, args: A) -> R<Future<O>>
where
    A: serde::Serialize + 'static,
    O: serde::de::DeserializeOwned + Send + 'static,
{
    pool.submit(task, args)
        .map_err(|e| format!("submit {}: {}", task.name(), err_name(&e)))
}

// ---------------------------------------------------------------- /proc
//
// Read through procfs. A `Process` holds an fd of its /proc/PID folder: the
// readings below open one, read and drop it; the DeathWatch keeps its one.

/// `/proc/PID/stat` of every process, by pid.
fn proc_table() -> HashMap<i32, Stat> {
    let Ok(all) = all_processes() else {
        return HashMap::new();
    };
    all.flatten()
        .filter_map(|p| Some((p.pid(), p.stat().ok()?)))
        .collect()
}

fn gone(state: char) -> bool {
    matches!(state, 'Z' | 'X')
}

/// Live (not zombie) descendants of `root`.
fn descendants(root: i32) -> Vec<i32> {
    let tab = proc_table();
    let mut kids: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, e) in &tab {
        kids.entry(e.ppid).or_default().push(*pid);
    }
    let mut out = vec![];
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if let Some(cs) = kids.get(&p) {
            for &c in cs {
                if !tab.get(&c).is_some_and(|e| gone(e.state)) {
                    out.push(c);
                }
                stack.push(c);
            }
        }
    }
    out
}

/// Gone, or a zombie.
fn pid_dead(pid: i32) -> bool {
    !Process::new(pid).is_ok_and(|p| p.is_alive())
}

fn kill_pids(pids: &[i32]) {
    for &p in pids {
        if p > 1 {
            // SAFETY: kill(2) with a pid we found among our own descendants
            // (or our scenario's session) and a valid signal number.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

fn kill_descendants() {
    let me = std::process::id() as i32;
    for _ in 0..20 {
        let d = descendants(me);
        if d.is_empty() {
            return;
        }
        kill_pids(&d);
        thread::sleep(secs(0.05));
    }
}

fn session_pids(sid: i32) -> Vec<i32> {
    proc_table()
        .into_iter()
        .filter(|(_, e)| e.session == sid && !gone(e.state))
        .map(|(p, _)| p)
        .collect()
}

/// `/proc/PID/status` (its sizes in kB).
fn status(pid: i32) -> Option<Status> {
    Process::new(pid).ok()?.status().ok()
}

/// Proportional set size in kB, from `/proc/PID/smaps_rollup`.
fn pss_kb(pid: i32) -> Option<u64> {
    let rollup = Process::new(pid).ok()?.smaps_rollup().ok()?;
    let bytes = rollup
        .memory_map_rollup
        .into_iter()
        .find_map(|m| m.extension.map.get("Pss").copied())?;
    Some(bytes / 1024)
}

/// The command line, arguments joined by spaces, cut at 80 characters.
fn cmdline(pid: i32) -> String {
    let args = Process::new(pid).and_then(|p| p.cmdline());
    args.map(|a| a.join(" ").chars().take(80).collect())
        .unwrap_or_default()
}

fn mib(kb: Option<u64>) -> f64 {
    round(kb.unwrap_or(0) as f64 / 1024.0, 2)
}

/// utime + stime of a whole process (all threads), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    Process::new(pid)
        .and_then(|p| p.stat())
        .map_or(0, |s| s.utime + s.stime)
}

/// Time on CPU of each thread of a process in ns (the first field of
/// /proc/PID/task/TID/schedstat: nanosecond resolution), with the thread's
/// name.
fn thread_cpu(pid: i32) -> Vec<(String, u64)> {
    let Ok(tasks) = Process::new(pid).and_then(|p| p.tasks()) else {
        return vec![];
    };
    tasks
        .flatten()
        .filter_map(|t| Some((t.stat().ok()?.comm, t.schedstat().ok()?.sum_exec_runtime)))
        .collect()
}

/// Time on CPU of a whole process in ns: the sum of its threads'.
fn cpu_ns(pid: i32) -> u64 {
    thread_cpu(pid).into_iter().map(|(_, ns)| ns).sum()
}

/// CPU used by the parent and the given workers, both ways.
struct CpuSnap {
    ns: u64,
    ticks: u64,
    parent_ns: u64,
    /// The parent's time on CPU in ns, summed by thread name.
    parent_threads: BTreeMap<String, u64>,
}

fn cpu_snap(workers: &[i32]) -> CpuSnap {
    let me = std::process::id() as i32;
    let mut parent_threads = BTreeMap::new();
    for (name, ns) in thread_cpu(me) {
        *parent_threads.entry(name).or_default() += ns;
    }
    let parent_ns = parent_threads.values().sum::<u64>();
    CpuSnap {
        ns: parent_ns + workers.iter().map(|&p| cpu_ns(p)).sum::<u64>(),
        ticks: cpu_ticks(me) + workers.iter().map(|&p| cpu_ticks(p)).sum::<u64>(),
        parent_ns,
        parent_threads,
    }
}

/// Polls /proc every 0.25 ms in a thread; records when `pid` is gone
/// (exited, zombie or reaped).
///
/// The thread opens /proc/PID once and re-reads `stat` through that fd. A
/// poll then costs what the former hand-written read of /proc/PID/stat did,
/// 12.2 us of CPU against 11.7 us (medians), where opening /proc/PID at
/// every poll, as `pid_dead` does, costs 15.1 us: 8 rounds of 20 000 polls
/// of a live `sleep`, thread CPU time, on the 2-core machine under load.
/// The fd also keeps a reused pid from passing for the watched process.
struct DeathWatch {
    t: Arc<Mutex<Option<f64>>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl DeathWatch {
    fn new(pid: i32) -> DeathWatch {
        let t = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (t2, s2, d2) = (t.clone(), stop.clone(), done.clone());
        thread::spawn(move || {
            let watched = Process::new(pid).ok();
            while !s2.load(Ordering::SeqCst) {
                if !watched.as_ref().is_some_and(Process::is_alive) {
                    *t2.lock().expect("lock") = Some(now());
                    break;
                }
                thread::sleep(Duration::from_micros(250));
            }
            d2.store(true, Ordering::SeqCst);
        });
        DeathWatch { t, stop, done }
    }

    fn wait(&self, timeout: f64) -> Option<f64> {
        let end = now() + timeout;
        while !self.done.load(Ordering::SeqCst) && now() < end {
            thread::sleep(Duration::from_micros(250));
        }
        self.stop.store(true, Ordering::SeqCst);
        *self.t.lock().expect("lock")
    }
}

fn wait_marker(path: &Path, timeout: f64) -> R<(i32, f64)> {
    let end = now() + timeout;
    while now() < end {
        if let Ok(s) = fs::read_to_string(path) {
            let mut it = s.split_whitespace();
            if let (Some(a), Some(b)) = (it.next(), it.next()) {
                if let (Ok(p), Ok(t)) = (a.parse::<i32>(), b.parse::<f64>()) {
                    return Ok((p, t));
                }
            }
        }
        thread::sleep(Duration::from_micros(500));
    }
    Err(format!("task never started (no marker {})", path.display()))
}

struct TmpDir(PathBuf);

impl TmpDir {
    fn new() -> TmpDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "procpool-bench-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&p).expect("mkdir tmp");
        TmpDir(p)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.0).ok();
    }
}

// ------------------------------------------------------------------ output

/// One JSON line: executor, scenario, value, unit first (serde_json's
/// `preserve_order` keeps a `Map`'s insertion order), then the extras, sorted
/// by key at every depth as they always were, so that runs diff line by line.
fn line(scenario: &str, value: &Value, unit: &str, extra: &Map<String, Value>) -> String {
    let mut m = Map::new();
    m.insert("executor".into(), json!(EXECUTOR));
    m.insert("scenario".into(), json!(scenario));
    m.insert("value".into(), value.clone());
    m.insert("unit".into(), json!(unit));
    let mut extra = Value::Object(extra.clone());
    extra.sort_all_objects();
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            // the first four are ours, whatever the extras say
            m.entry(k).or_insert(v);
        }
    }
    Value::Object(m).to_string()
}

fn emit(scenario: &str, value: Value, unit: &str, extra: Value) {
    let mut m = match extra {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("start_method".into(), json!(START_METHOD));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", line(scenario, &value, unit, &m)).ok();
    out.flush().ok();
}

fn merge(a: &mut Map<String, Value>, b: Value) {
    if let Value::Object(b) = b {
        a.extend(b);
    }
}

// ------------------------------------------------------------------ pool glue

fn make_pool(grace: Option<Duration>) -> R<Pool> {
    make_pool_with(grace, 0)
}

/// A pool of [`WORKERS`], `min_workers` of them started with it.
fn make_pool_with(grace: Option<Duration>, min_workers: usize) -> R<Pool> {
    make_configured_pool(grace, |b| b.min_workers(min_workers))
}

/// [`WORKERS`] workers: local, or with `PROCPOOL_BENCH_SSH=PORT:KEY`,
/// over ssh to an sshd on 127.0.0.1 (this program at the same path), to
/// compare the transports.
fn base_builder() -> PoolBuilder {
    let ssh = std::env::var("PROCPOOL_BENCH_SSH").ok();
    let Some((port, key)) = ssh.as_deref().and_then(|v| v.split_once(':')) else {
        return Pool::builder().max_workers(WORKERS);
    };
    let launcher = procpool::Launcher::ssh("127.0.0.1")
        .port(port.parse().unwrap_or(22))
        .identity(key)
        .ssh_option("StrictHostKeyChecking=no")
        .ssh_option("UserKnownHostsFile=/dev/null")
        .ssh_option("LogLevel=ERROR");
    Pool::builder().workers_on(launcher, WORKERS)
}

/// A pool of [`WORKERS`] with what `configure` adds to the builder.
fn make_configured_pool(
    grace: Option<Duration>,
    configure: impl FnOnce(PoolBuilder) -> PoolBuilder,
) -> R<Pool> {
    let mut b = configure(base_builder());
    // PROCPOOL_BENCH_SPIN_US overrides the spin budget (0 = always block), to
    // compare a scenario with spinning off.
    if let Some(us) = std::env::var("PROCPOOL_BENCH_SPIN_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        b = b.spin(Duration::from_micros(us));
    }
    if let Some(g) = grace {
        b = b.grace(g);
    }
    b.build().map_err(|e| format!("build: {}", err_name(&e)))
}

/// Drops the pool (it shuts down, waits for running tasks, reaps every
/// worker) in a thread bounded to `limit` s, then checks that the given
/// worker pids and every other descendant are gone. Returns extras.
fn close(pool: Pool, known: &BTreeSet<i32>, limit: f64) -> Value {
    let (tx, rx) = mpsc::channel();
    let t0 = now();
    thread::spawn(move || {
        drop(pool);
        tx.send(()).ok();
    });
    let dropped = rx.recv_timeout(secs(limit)).is_ok();
    let t_drop = now() - t0;
    let alive: Vec<i32> = known.iter().copied().filter(|&p| !pid_dead(p)).collect();
    let desc = descendants(std::process::id() as i32);
    json!({
        "pool_drop_ms": if dropped { json!(ms(t_drop)) } else { json!(format!("not done after {limit} s")) },
        "workers_gone_after_drop": alive.is_empty(),
        "descendants_after_drop": desc.len(),
    })
}

/// Makes sure both workers exist and have run a task; returns their pids.
fn warm(pool: &Pool) -> R<BTreeSet<i32>> {
    let mut pids = BTreeSet::new();
    for _ in 0..5 {
        let fs: Vec<Future<u32>> = (0..WORKERS)
            .map(|_| submit(pool, GETPID, 150))
            .collect::<R<_>>()?;
        for f in &fs {
            pids.insert(wait(f, 20.0)? as i32);
        }
        if pids.len() >= WORKERS {
            break;
        }
    }
    Ok(pids)
}

fn pool_stats(pool: &Pool) -> Value {
    let s = pool.stats();
    json!({
        "workers_started": s.workers_started,
        "workers_replaced": s.workers_replaced,
        "workers_forked": s.workers_forked,
        "finished": s.finished,
        "failed": s.failed,
        "cancelled": s.cancelled,
        "timed_out": s.timed_out,
        "submits_waited": s.submits_waited,
    })
}

// ------------------------------------------------------------------ scenarios

fn sc_startup() -> R<()> {
    // The pool as a user who wants the first result soon builds it: one
    // worker started with the pool (it boots while the caller builds the submit). The
    // default (workers on demand) is measured after, as `on_demand_*`.
    let t0 = now();
    let pool = make_pool_with(None, 1)?;
    let t_make = now();
    wait(&submit(&pool, NOOP, ())?, 25.0)?;
    let t1 = now();
    let mut known: BTreeSet<i32> = descendants(std::process::id() as i32).into_iter().collect();
    let closed = close(pool, &known, 10.0);
    let mut again = vec![];
    let mut on_demand = vec![];
    for round in 0..10 {
        let min_workers = if round % 2 == 0 { 1 } else { 0 };
        let t2 = now();
        let p = make_pool_with(None, min_workers)?;
        wait(&submit(&p, NOOP, ())?, 25.0)?;
        let took = now() - t2;
        if min_workers == 1 {
            again.push(took);
        } else {
            on_demand.push(took);
        }
        known.extend(descendants(std::process::id() as i32));
        close(p, &known, 10.0);
    }
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "construct_ms": ms(t_make - t0),
            "shutdown_idle_ms": closed.get("pool_drop_ms").cloned(),
            "repeat_median_ms": ms(median(&again)),
            "repeat_min_ms": ms(fmin(&again)),
            "on_demand_repeat_median_ms": ms(median(&on_demand)),
            "on_demand_repeat_min_ms": ms(fmin(&on_demand)),
            "construct_note": "Pool::builder().max_workers(2).min_workers(1).build() starts the manager thread and one worker; on_demand_*: without min_workers (the default), workers start at the first submit",
        }),
    );
    merge(&mut extra, close_summary(&known));
    emit("startup", json!(ms(t1 - t0)), "ms", Value::Object(extra));
    Ok(())
}

/// After the last pool of a scenario is gone: are the workers gone?
fn close_summary(known: &BTreeSet<i32>) -> Value {
    json!({
        "workers_gone_after_drop": known.iter().all(|&p| pid_dead(p)),
        "descendants_after_drop": descendants(std::process::id() as i32).len(),
    })
}

fn latency_run(scenario: &str, gap: Option<Duration>) -> R<()> {
    let (iters, warmup, budget) = (2000usize, 200usize, 20.0);
    let pool = make_pool(None)?;
    let pids = warm(&pool)?;
    for _ in 0..warmup {
        wait(&submit(&pool, NOOP, ())?, 10.0)?;
    }
    let workers: Vec<i32> = pids.iter().copied().collect();
    let mut xs = Vec::with_capacity(iters);
    let end = now() + budget;
    let c0 = cpu_snap(&workers);
    let w0 = now();
    for _ in 0..iters {
        if let Some(g) = gap {
            thread::sleep(g);
        }
        let t0 = now();
        wait(&submit(&pool, NOOP, ())?, 10.0)?;
        xs.push(now() - t0);
        if now() > end {
            break;
        }
    }
    let wall = now() - w0;
    let c1 = cpu_snap(&workers);
    let n = xs.len() as f64;
    let cpu_us = (c1.ns - c0.ns) as f64 / 1e3 / n;
    let cpu_parent_us = (c1.parent_ns - c0.parent_ns) as f64 / 1e3 / n;
    let cpu_ticks_us = (c1.ticks - c0.ticks) as f64 / procfs::ticks_per_second() as f64 * 1e6 / n;
    let per_thread: Map<String, Value> = c1
        .parent_threads
        .iter()
        .map(|(name, ns)| {
            let before = c0.parent_threads.get(name).copied().unwrap_or(0);
            let per_call = ns.saturating_sub(before) as f64 / 1e3 / n;
            (name.clone(), json!(round(per_call, 2)))
        })
        .collect();
    let stats = pool_stats(&pool);
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "n": xs.len(),
            "p10_us": us(pct(&xs, 10.0)),
            "p90_us": us(pct(&xs, 90.0)),
            "p99_us": us(pct(&xs, 99.0)),
            "mean_us": us(mean(&xs)),
            "cpu_us_per_call": round(cpu_us, 2),
            "cpu_parent_us_per_call": round(cpu_parent_us, 2),
            "cpu_workers_us_per_call": round(cpu_us - cpu_parent_us, 2),
            "cpu_us_per_call_stat_ticks": round(cpu_ticks_us, 1),
            "cpu_parent_threads_us_per_call": per_thread,
            "cpu_note": "CPU of the parent (all threads) + both workers over the timed calls, from /proc/PID/task/*/schedstat (ns); _stat_ticks: the same from /proc/PID/stat utime+stime (10 ms ticks)",
            "stats": stats,
        }),
    );
    if let Some(g) = gap {
        merge(
            &mut extra,
            json!({
                "gap_us": g.as_micros() as u64,
                "mean_cycle_us": us(wall / n),
                "definition": "as latency, with a 500 us sleep before every submit (not timed)",
            }),
        );
    }
    merge(&mut extra, close(pool, &pids, 10.0));
    emit(scenario, json!(us(median(&xs))), "us", Value::Object(extra));
    Ok(())
}

fn sc_latency() -> R<()> {
    latency_run("latency", None)
}

fn sc_latency_gapped() -> R<()> {
    latency_run("latency_gapped", Some(Duration::from_micros(500)))
}

fn pilot_n(rate: f64, full: usize, target_s: f64, floor: usize) -> usize {
    (full as f64).min((floor as f64).max(rate * target_s)) as usize
}

/// How a throughput_submit variant submits its i-th task.
type SubmitNth = fn(&Pool, usize) -> R<Future<()>>;

fn submit_plain(pool: &Pool, _: usize) -> R<Future<()>> {
    submit(pool, NOOP, ())
}

/// Priorities 0 to 3 in turn: four levels in use at once.
fn submit_ranked(pool: &Pool, i: usize) -> R<Future<()>> {
    let priority = i32::try_from(i % 4).unwrap_or(0);
    pool.submit_with(NOOP, (), SubmitOptions::new().priority(priority))
        .map_err(|e| format!("submit noop: {}", err_name(&e)))
}

fn submit_and_collect(pool: &Pool, n: usize, submit_nth: SubmitNth) -> R<f64> {
    let t0 = now();
    let fs: Vec<Future<()>> = (0..n).map(|i| submit_nth(pool, i)).collect::<R<_>>()?;
    for f in &fs {
        wait(f, 30.0)?;
    }
    Ok(now() - t0)
}

fn sc_throughput_submit() -> R<()> {
    throughput_submit("throughput_submit", |b| b, submit_plain, "")
}

/// throughput_submit through a bounded backlog of 1 000: the submitter
/// waits for room most of the time (procpool's own; no peer has it).
fn sc_throughput_submit_backlog() -> R<()> {
    throughput_submit(
        "throughput_submit_backlog",
        |b| b.max_pending(1000),
        submit_plain,
        "max_pending(1000): submit blocks while 1 000 wait",
    )
}

/// throughput_submit with four priorities in turn (procpool's own).
fn sc_throughput_submit_priority() -> R<()> {
    throughput_submit(
        "throughput_submit_priority",
        |b| b,
        submit_ranked,
        "priorities 0..3 in turn",
    )
}

fn throughput_submit(
    name: &str,
    configure: fn(PoolBuilder) -> PoolBuilder,
    submit_nth: SubmitNth,
    variant: &str,
) -> R<()> {
    let (full, target_s) = (20000usize, 12.0);
    let pool = make_configured_pool(None, configure)?;
    let pids = warm(&pool)?;
    // pilot (also a warm-up): scale down only if 20 000 would take > 12 s
    let pn = 500;
    let rate = pn as f64 / submit_and_collect(&pool, pn, submit_nth)?;
    let n = pilot_n(rate, full, target_s, 1000);
    let t0 = now();
    let fs: Vec<Future<()>> = (0..n).map(|i| submit_nth(&pool, i)).collect::<R<_>>()?;
    let t_sub = now();
    for f in &fs {
        wait(f, 30.0)?;
    }
    let dt = now() - t0;
    drop(fs);
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "n": n,
            "scaled_down": n < full,
            "submit_phase_ms": ms(t_sub - t0),
            "total_ms": ms(dt),
            "note": "all n futures held, then result() in submit order",
            "stats": pool_stats(&pool),
        }),
    );
    if !variant.is_empty() {
        extra.insert("variant".into(), json!(variant));
    }
    merge(&mut extra, close(pool, &pids, 10.0));
    emit(
        name,
        json!(round(n as f64 / dt, 1)),
        "tasks/s",
        Value::Object(extra),
    );
    Ok(())
}

fn run_map(pool: &Pool, n: usize, chunksize: usize) -> R<Vec<u64>> {
    pool.map(SQUARE, 0..n as u64, chunksize)
        .map_err(|e| format!("map: {}", err_name(&e)))?
        .collect::<Result<Vec<u64>, Error>>()
        .map_err(|e| format!("map item: {}", err_name(&e)))
}

fn sc_throughput_map() -> R<()> {
    let (full, chunksize, target_s) = (200_000usize, 1000usize, 12.0);
    let pool = make_pool(None)?;
    let pids = warm(&pool)?;
    let pn = 20_000;
    let t0 = now();
    run_map(&pool, pn, chunksize)?;
    let n = pilot_n(pn as f64 / (now() - t0), full, target_s, 1000);
    let t0 = now();
    let out = run_map(&pool, n, chunksize)?;
    let dt = now() - t0;
    let last = (n - 1) as u64;
    if out.len() != n || out[n - 1] != last * last {
        return Err("map result mismatch".into());
    }
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "n": n,
            "chunksize": chunksize,
            "scaled_down": n < full,
            "note": "Pool::map(SQUARE, 0..n, 1000) (native map: one batch call per chunk, a bounded number of chunks ahead), collected in order",
            "total_ms": ms(dt),
            "stats": pool_stats(&pool),
        }),
    );
    merge(&mut extra, close(pool, &pids, 10.0));
    emit(
        "throughput_map",
        json!(round(n as f64 / dt, 1)),
        "items/s",
        Value::Object(extra),
    );
    Ok(())
}

fn echo(pool: &Pool, buf: &ByteBuf) -> R<ByteBuf> {
    pool.submit(ECHO, buf)
        .map_err(|e| format!("submit echo: {}", err_name(&e)))?
        .into_result(Some(secs(30.0)))
        .map_err(|e| err_name(&e))
}

fn sc_payload() -> R<()> {
    let (size, reps) = (16 * MIB, 10usize);
    let pool = make_pool(None)?;
    let pids = warm(&pool)?;
    let mut data = vec![0u8; size];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .map_err(|e| e.to_string())?;
    let buf = ByteBuf(data);
    // warm-up on both workers, checked byte for byte
    for _ in 0..2 {
        if echo(&pool, &buf)? != buf {
            return Err("echo mismatch".into());
        }
    }
    let mut xs = vec![];
    let end = now() + 15.0;
    for _ in 0..reps {
        let t0 = now();
        let r = echo(&pool, &buf)?;
        xs.push(now() - t0);
        if r.len() != size {
            return Err("short echo".into());
        }
        drop(r);
        if now() > end {
            break;
        }
    }
    let med = median(&xs);
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "n": xs.len(),
            "bytes": size,
            "rtt_median_ms": ms(med),
            "rtt_min_ms": ms(fmin(&xs)),
            "definition": "2*16MiB/median round trip; MB=1e6 B; payload type procpool::ByteBuf (one blob), submitted by reference, output moved out with into_result",
        }),
    );
    merge(&mut extra, close(pool, &pids, 10.0));
    emit(
        "payload",
        json!(round(2.0 * size as f64 / med / 1e6, 1)),
        "MB/s",
        Value::Object(extra),
    );
    Ok(())
}

/// A pool with one worker busy on a bystander (BYSTANDER_SECS) and a victim
/// submitted (by `victim`) for the other.
struct TwoBusy<T> {
    bystander: Future<String>,
    b_pid: i32,
    victim: Future<T>,
    t_sub: f64,
}

fn two_busy<T, F>(pool: &Pool, d: &TmpDir, victim: F) -> R<TwoBusy<T>>
where
    F: FnOnce(&Pool) -> R<Future<T>>,
{
    let pb = d.path("bystander");
    let bystander = submit(pool, SLEEP_MARKER, (pb.clone(), BYSTANDER_SECS))?;
    let (b_pid, _) = wait_marker(Path::new(&pb), 15.0)?;
    let t_sub = now();
    let victim = victim(pool)?;
    Ok(TwoBusy {
        bystander,
        b_pid,
        victim,
        t_sub,
    })
}

/// Common tail: run a new task (on the replacement worker, the bystander
/// still busy), then check the bystander. Returns (new task ok, its end time).
fn finish_kill<T>(
    pool: &Pool,
    tb: &TwoBusy<T>,
    v_pid: i32,
    known: &mut BTreeSet<i32>,
    extra: &mut Map<String, Value>,
) -> (bool, f64) {
    let mut new_pid = None;
    let ok = match submit(pool, GETPID, 0).and_then(|f| wait(&f, BYSTANDER_SECS + 10.0)) {
        Ok(p) => {
            new_pid = Some(p as i32);
            known.insert(p as i32);
            true
        }
        Err(e) => {
            extra.insert("new_task_error".into(), json!(e));
            false
        }
    };
    let t_new = now();
    let by_ok = match wait(&tb.bystander, BYSTANDER_SECS + 5.0) {
        Ok(s) => s == "finished",
        Err(e) => {
            extra.insert("bystander_error".into(), json!(e));
            false
        }
    };
    merge(
        extra,
        json!({
            "new_task_ok": ok,
            "new_task_on_replacement_worker": new_pid.map(|p| p != v_pid && p != tb.b_pid),
            "bystander_survived": by_ok,
            "stats": pool_stats(pool),
        }),
    );
    (ok, t_new)
}

fn sc_cancel_running() -> R<()> {
    let pool = make_pool(Some(Duration::ZERO))?;
    let mut known = warm(&pool)?;
    let d = TmpDir::new();
    let pv = d.path("victim");
    let pv2 = pv.clone();
    let tb = two_busy(&pool, &d, move |p| {
        submit(p, SLEEP_MARKER, (pv2, VICTIM_SECS))
    })?;
    let (v_pid, _) = wait_marker(Path::new(&pv), 15.0)?;
    known.insert(v_pid);
    let dw = DeathWatch::new(v_pid);
    let t0 = now();
    let abort_rv = tb.victim.abort();
    let outcome = tb.victim.result(Some(secs(20.0)));
    let t_res = now();
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "method": "future.abort() on the victim's future, pool grace 0 (SIGKILL to the worker's process group at once); the manager reaps and replaces the worker",
            "abort_returned": abort_rv,
            "victim_outcome": match &outcome { Ok(s) => format!("returned {s:?}"), Err(e) => err_name(e) },
            "victim_cancelled": matches!(outcome, Err(Error::Cancelled)),
            "t_future_resolved_ms": ms(t_res - t0),
        }),
    );
    let (ok, t_new) = finish_kill(&pool, &tb, v_pid, &mut known, &mut extra);
    let t_dead = dw.wait(5.0);
    merge(
        &mut extra,
        json!({
            "t_worker_dead_ms": match t_dead { Some(t) => json!(ms(t - t0)), None => json!("not dead after 5 s") },
            "definition": "stop request -> victim future resolved -> a new task has returned (other worker kept busy by a bystander)",
            "stats": pool_stats(&pool),
        }),
    );
    merge(&mut extra, close(pool, &known, 10.0));
    emit(
        "cancel_running",
        if ok {
            json!(ms(t_new - t0))
        } else {
            json!("failed")
        },
        "ms",
        Value::Object(extra),
    );
    drop(d);
    Ok(())
}

fn sc_crash(sigkill: bool) -> R<()> {
    let scen = if sigkill {
        "crash_detect_sigkill"
    } else {
        "crash_detect"
    };
    let pool = make_pool(None)?;
    let mut known = warm(&pool)?;
    let d = TmpDir::new();
    let pv = d.path("victim");
    let pv2 = pv.clone();
    let tb = two_busy(&pool, &d, move |p| {
        if sigkill {
            submit(p, CRASH_SIGKILL, pv2)
        } else {
            submit(p, CRASH_EXIT, pv2)
        }
    })?;
    let outcome = tb.victim.result(Some(secs(20.0)));
    let t_raise = now();
    let (v_pid, t_crash) = wait_marker(Path::new(&pv), 1.0)?;
    known.insert(v_pid);
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "exception": match &outcome { Ok(()) => "returned Ok(())".to_owned(), Err(e) => err_name(e) },
            "worker_died_error": matches!(outcome, Err(Error::WorkerDied { .. })),
            "from_submit_ms": ms(t_raise - tb.t_sub),
            "definition": format!("worker's CLOCK_MONOTONIC just before {} -> the parent's result() returns Err",
                if sigkill { "SIGKILL self" } else { "std::process::exit(1)" }),
        }),
    );
    let (ok, t_new) = finish_kill(&pool, &tb, v_pid, &mut known, &mut extra);
    merge(&mut extra, json!({"stats": pool_stats(&pool)}));
    let closed = close(pool, &known, 10.0);
    merge(&mut extra, closed.clone());
    emit(
        scen,
        json!(ms(t_raise - t_crash)),
        "ms",
        Value::Object(extra),
    );
    let mut usable = Map::new();
    merge(
        &mut usable,
        json!({"t_new_task_ms": if ok { json!(ms(t_new - t_raise)) } else { Value::Null }}),
    );
    merge(&mut usable, closed);
    emit(
        &format!("{scen}_pool_usable"),
        json!(ok),
        "bool",
        Value::Object(usable),
    );
    drop(d);
    Ok(())
}

fn sc_timeout_kill() -> R<()> {
    let limit = 0.2;
    let pool = make_pool(None)?;
    let mut known = warm(&pool)?;
    let d = TmpDir::new();
    let pv = d.path("victim");
    let pv2 = pv.clone();
    let opts = SubmitOptions::new()
        .time_limit(secs(limit))
        .grace(Duration::ZERO);
    let tb = two_busy(&pool, &d, move |p| {
        p.submit_with(SLEEP_MARKER, (pv2, VICTIM_SECS), opts)
            .map_err(|e| err_name(&e))
    })?;
    // result() in a thread, so that this one can start the death watch as
    // soon as the victim has announced itself
    let (tx, rx) = mpsc::channel();
    let fv = tb.victim.clone();
    thread::spawn(move || {
        let r = fv.result(Some(secs(20.0)));
        tx.send((r, now())).ok();
    });
    let (v_pid, t_start) = wait_marker(Path::new(&pv), 15.0)?;
    known.insert(v_pid);
    let dw = DeathWatch::new(v_pid);
    let (r, t_raise) = rx
        .recv_timeout(secs(25.0))
        .map_err(|_| "result() never returned".to_string())?;
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "exception": match &r { Ok(s) => format!("returned {s:?}"), Err(e) => err_name(e) },
            "timed_out_error": matches!(r, Err(Error::TimedOut { .. })),
            "overshoot_from_task_start_ms": ms(t_raise - t_start - limit),
            "task_started_after_submit_ms": ms(t_start - tb.t_sub),
            "timeout_s": limit,
            "method": "submit_with(SubmitOptions::new().time_limit(200 ms).grace(0)): the manager kills the worker at the limit",
        }),
    );
    let (_, t_new) = finish_kill(&pool, &tb, v_pid, &mut known, &mut extra);
    let t_dead = dw.wait(5.0);
    merge(
        &mut extra,
        json!({
            "t_worker_dead_ms": match t_dead { Some(t) => json!(ms(t - tb.t_sub)), None => json!("not dead after 5 s") },
            "t_new_task_done_ms": ms(t_new - tb.t_sub),
            "definition": "submit(60 s sleep, time limit 0.2 s) -> result() returns Err(TimedOut)",
            "stats": pool_stats(&pool),
        }),
    );
    merge(&mut extra, close(pool, &known, 10.0));
    emit(
        "timeout_kill",
        json!(ms(t_raise - tb.t_sub)),
        "ms",
        Value::Object(extra),
    );
    drop(d);
    Ok(())
}

fn sc_rss_per_worker() -> R<()> {
    let pool = make_pool(None)?;
    let pids = warm(&pool)?;
    for _ in 0..20 {
        wait(&submit(&pool, NOOP, ())?, 10.0)?;
    }
    thread::sleep(secs(0.2));
    let (mut per, mut rss, mut pss) = (vec![], vec![], vec![]);
    for &p in &pids {
        let st = status(p);
        let r = mib(st.as_ref().and_then(|x| x.vmrss));
        let s = mib(pss_kb(p));
        rss.push(r);
        pss.push(s);
        per.push(json!({"pid": p, "VmRSS_MiB": r, "RssAnon_MiB": mib(st.as_ref().and_then(|x| x.rssanon)), "Pss_MiB": s, "threads": st.map(|x| x.threads)}));
    }
    let me = std::process::id() as i32;
    let helpers: Vec<Value> = descendants(me)
        .into_iter()
        .filter(|p| !pids.contains(p))
        .map(|p| json!({"pid": p, "VmRSS_MiB": mib(status(p).and_then(|x| x.vmrss)), "cmd": cmdline(p)}))
        .collect();
    let parent = status(me);
    let mut extra = Map::new();
    merge(
        &mut extra,
        json!({
            "workers": per,
            "helpers": helpers,
            "pss_median_MiB": round(median(&pss), 2),
            "parent_VmRSS_MiB": mib(parent.as_ref().and_then(|x| x.vmrss)),
            "parent_Pss_MiB": mib(pss_kb(me)),
            "parent_threads": parent.map(|x| x.threads),
        }),
    );
    merge(&mut extra, close(pool, &pids, 10.0));
    emit(
        "rss_per_worker",
        json!(round(median(&rss), 2)),
        "MiB",
        Value::Object(extra),
    );
    Ok(())
}

type ScFn = fn() -> R<()>;

/// Scenarios of procpool's own features, with no counterpart in the shared
/// harness (`SCENARIOS.md`): `run` leaves them out unless named.
const OWN_SCENARIOS: [&str; 2] = ["throughput_submit_backlog", "throughput_submit_priority"];

fn scenarios() -> Vec<(&'static str, ScFn)> {
    vec![
        ("startup", sc_startup as ScFn),
        ("latency", sc_latency),
        ("latency_gapped", sc_latency_gapped),
        ("throughput_submit", sc_throughput_submit),
        ("throughput_submit_backlog", sc_throughput_submit_backlog),
        ("throughput_submit_priority", sc_throughput_submit_priority),
        ("throughput_map", sc_throughput_map),
        ("payload", sc_payload),
        ("cancel_running", sc_cancel_running),
        ("crash_detect", || sc_crash(false)),
        ("crash_detect_sigkill", || sc_crash(true)),
        ("timeout_kill", sc_timeout_kill),
        ("rss_per_worker", sc_rss_per_worker),
    ]
}

// ------------------------------------------------------------------ drivers

const USAGE: &str = "usage: procpool-bench [run [--scenarios a,b] [--repeat N] [--limit SEC]] \
                     | one SCENARIO [--limit SEC] | list";

/// The command line, as the module doc gives it.
enum Cmd {
    /// The given scenarios (every one when `None`), `repeat` times, each in
    /// a fresh process under `limit` s.
    Run {
        scenarios: Option<String>,
        repeat: usize,
        limit: f64,
    },
    /// One scenario in this process, ended by SIGALRM past `limit` + 5 s.
    One {
        scenario: String,
        limit: f64,
    },
    List,
}

impl Cmd {
    fn parse(mut args: pico_args::Arguments) -> Result<Cmd, String> {
        let e = |err: pico_args::Error| err.to_string();
        let cmd = match args.subcommand().map_err(e)?.as_deref() {
            None => Cmd::Run {
                scenarios: None,
                repeat: 1,
                limit: DEFAULT_LIMIT,
            },
            Some("run") => Cmd::Run {
                scenarios: args.opt_value_from_str("--scenarios").map_err(e)?,
                repeat: args.opt_value_from_str("--repeat").map_err(e)?.unwrap_or(1),
                limit: Self::limit(&mut args)?,
            },
            // options first: pico-args takes the free argument last
            Some("one") => Cmd::One {
                limit: Self::limit(&mut args)?,
                scenario: args.free_from_str().map_err(|_| "one needs a SCENARIO")?,
            },
            Some("list") => Cmd::List,
            Some(other) => return Err(format!("unknown command {other:?}")),
        };
        let rest = args.finish();
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(format!("unexpected arguments {rest:?}"))
        }
    }

    fn limit(args: &mut pico_args::Arguments) -> Result<f64, String> {
        let limit = args.opt_value_from_str("--limit");
        Ok(limit.map_err(|e| e.to_string())?.unwrap_or(DEFAULT_LIMIT))
    }
}

fn one_main(sc: &str, limit: f64) -> ! {
    // SAFETY: alarm(2) only schedules a SIGALRM, whose default action ends
    // this process: a last resort if the scenario and the runner both hang.
    unsafe {
        libc::alarm(limit as u32 + 5);
    }
    let Some(f) = scenarios()
        .into_iter()
        .find(|(n, _)| *n == sc)
        .map(|(_, f)| f)
    else {
        eprintln!("unknown scenario {sc:?}");
        std::process::exit(2);
    };
    let rc = match std::panic::catch_unwind(f) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            emit(
                sc,
                json!("error"),
                "",
                json!({"error": e.chars().take(300).collect::<String>()}),
            );
            1
        }
        Err(p) => {
            let m = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            emit(
                sc,
                json!("error"),
                "",
                json!({"error": format!("panic: {m}").chars().take(300).collect::<String>()}),
            );
            1
        }
    };
    std::io::stdout().flush().ok();
    std::io::stderr().flush().ok();
    kill_descendants();
    // SAFETY: _exit ends the process without running destructors or atexit
    // handlers; everything worth keeping was flushed above.
    unsafe { libc::_exit(rc) }
}

/// The machine's CPU time (the `cpu` line of /proc/stat), in ticks.
#[derive(Clone, Copy, Default)]
struct MachineCpu {
    /// Its first eight fields, user to steal (guest time is inside user).
    total: u64,
    /// idle + iowait.
    idle: u64,
    steal: Option<u64>,
}

impl MachineCpu {
    fn now() -> MachineCpu {
        let Ok(KernelStats { total: t, .. }) = KernelStats::current() else {
            return MachineCpu::default();
        };
        let [iowait, irq, softirq, steal] =
            [t.iowait, t.irq, t.softirq, t.steal].map(|x| x.unwrap_or(0));
        let idle = t.idle + iowait;
        MachineCpu {
            total: t.user + t.nice + t.system + idle + irq + softirq + steal,
            idle,
            steal: t.steal,
        }
    }

    /// Of the time from `before` to `self`: (busy %, steal %).
    fn pct_since(self, before: MachineCpu) -> (f64, Option<f64>) {
        let tot = self.total.saturating_sub(before.total).max(1) as f64;
        let idle = self.idle.saturating_sub(before.idle) as f64;
        let steal = self
            .steal
            .zip(before.steal)
            .map(|(b, a)| b.saturating_sub(a));
        (
            100.0 * (tot - idle) / tot,
            steal.map(|s| 100.0 * s as f64 / tot),
        )
    }
}

/// CPU busy % of the whole machine over `window` s while we sit idle.
fn others_busy_pct(window: f64) -> f64 {
    let a = MachineCpu::now();
    thread::sleep(secs(window));
    round(MachineCpu::now().pct_since(a).0, 1)
}

fn loadavg1() -> f64 {
    LoadAverage::current().map_or(0.0, |l| f64::from(l.one))
}

fn tail(path: &Path, n: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let c: Vec<char> = s.chars().collect();
    c[c.len().saturating_sub(n)..].iter().collect()
}

/// Runs one scenario in a fresh process, in its own session, under `limit`.
fn run_one(sc: &str, limit: f64) -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("current_exe");
    let load1 = loadavg1();
    let other_busy = others_busy_pct(0.3);
    let c0 = MachineCpu::now();
    let d = TmpDir::new();
    let out_p = d.0.join("stdout");
    let err_p = d.0.join("stderr");
    let out_f = fs::File::create(&out_p).expect("stdout file");
    let err_f = fs::File::create(&err_p).expect("stderr file");
    let t0 = now();
    let mut cmd = Command::new(exe);
    cmd.args(["one", sc, "--limit", &format!("{limit}")])
        .stdin(Stdio::null())
        .stdout(out_f)
        .stderr(err_f);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setsid(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn scenario");
    let pid = child.id() as i32;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if now() - t0 > limit {
            let mut v = session_pids(pid);
            v.push(pid);
            kill_pids(&v);
            timed_out = true;
            break child.wait().ok();
        }
        thread::sleep(secs(0.005));
    };
    let wall = now() - t0;
    // anything left in that session is killed, by PID
    let left = session_pids(pid);
    for _ in 0..20 {
        let rest = session_pids(pid);
        if rest.is_empty() {
            break;
        }
        kill_pids(&rest);
        thread::sleep(secs(0.05));
    }
    let (_, steal) = MachineCpu::now().pct_since(c0);
    let meta = json!({
        "wall_s": round(wall, 2),
        "load1_before": round(load1, 2),
        "others_busy_pct_before": other_busy,
        "steal_pct": steal.map(|s| round(s, 2)),
        "leftover_procs_killed": left.len(),
    });
    let rc = status.and_then(|s| s.code());
    let out = fs::read_to_string(&out_p).unwrap_or_default();
    let err_tail = tail(&err_p, 400);
    let mut recs = vec![];
    for l in out.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let mut extra = m.clone();
        merge(&mut extra, meta.clone());
        if rc != Some(0) {
            extra.insert("stderr_tail".into(), json!(err_tail));
        }
        recs.push(line(
            m.get("scenario").and_then(Value::as_str).unwrap_or(sc),
            m.get("value").unwrap_or(&Value::Null),
            m.get("unit").and_then(Value::as_str).unwrap_or(""),
            &extra,
        ));
    }
    if timed_out || recs.is_empty() {
        let mut m = Map::new();
        merge(
            &mut m,
            json!({"stderr_tail": err_tail, "rc": rc, "start_method": START_METHOD}),
        );
        merge(&mut m, meta);
        let v = json!(if timed_out { "timeout" } else { "error" });
        recs.push(line(sc, &v, "", &m));
    }
    recs
}

fn run_main(scenario_list: Option<&str>, repeat: usize, limit: f64) {
    let all = scenarios();
    let scs: Vec<String> = match scenario_list {
        Some(s) => s
            .split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        // The shared scenarios: procpool's own variants run only by name.
        None => all
            .iter()
            .map(|s| s.0.to_string())
            .filter(|name| !OWN_SCENARIOS.contains(&name.as_str()))
            .collect(),
    };
    for s in &scs {
        if !all.iter().any(|a| a.0 == s) {
            eprintln!("unknown scenario {s:?}");
            std::process::exit(2);
        }
    }
    for _ in 0..repeat {
        for sc in &scs {
            eprintln!("procpool-bench: {sc}");
            for l in run_one(sc, limit) {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{l}").ok();
                out.flush().ok();
            }
        }
    }
}

fn main() {
    // Workers are re-executions of this binary: they serve here and exit.
    procpool::serve_if_worker(tasks);
    match Cmd::parse(pico_args::Arguments::from_env()) {
        Ok(Cmd::Run {
            scenarios,
            repeat,
            limit,
        }) => run_main(scenarios.as_deref(), repeat, limit),
        Ok(Cmd::One { scenario, limit }) => one_main(&scenario, limit),
        Ok(Cmd::List) => {
            let names: Vec<&str> = scenarios().iter().map(|s| s.0).collect();
            println!("scenarios: {}", names.join(", "));
        }
        Err(e) => {
            eprintln!("procpool-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    }
}
