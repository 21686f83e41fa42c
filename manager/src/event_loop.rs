//! The manager thread: one `mio::Poll` over the wake-up channel, every
//! worker's result pipe and pidfd, the call pipes that have bytes waiting,
//! and the nearest deadline as the poll timeout. It blocks nowhere else.

use crate::config::{Config, FailurePolicy};
use crate::handle::{Command, Shared};
use crate::job::Job;
use crate::worker::{InFlight, Phase, StopReason, Worker};
use crate::{Error, ExitInfo};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use procpool_ipc::{ExitReason, FromWorker, Outcome, ReadStatus};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The wake-up channel's token; worker tokens are `slot * 4 + kind`.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// The deadline timer's token.
const TIMER: Token = Token(usize::MAX - 1);
const RESULTS: usize = 0;
const CALLS: usize = 1;
const PIDFD: usize = 2;

fn token(slot: usize, kind: usize) -> Token {
    Token(slot * 4 + kind)
}

/// How long a worker told to exit (its call pipe closed) may take before it
/// is killed. Generous: it only matters for a worker that ignores EOF.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// A worker takes jobs into its window (beyond the one it runs) only while
/// the expected run time of what it already holds stays under this: a short
/// task never waits long behind another, and a long one never has anything
/// queued behind it.
const WINDOW_BUDGET: Duration = Duration::from_millis(1);

/// The most jobs one worker holds at once (running plus queued).
const MAX_WINDOW: usize = 64;

/// How often a worker whose result pipe closed is checked for exit where
/// there is no pidfd to say so.
const REAP_RETRY: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// The running job's time limit.
    TimeLimit,
    /// The grace period after SIGTERM is over: SIGKILL.
    GraceOver,
    /// Look again whether a worker has exited (no pidfd).
    ReapRetry,
    /// A worker told to exit has not: SIGKILL.
    ExitOverdue,
}

/// A deadline, for the worker in `slot` with `serial` (and its job `job`):
/// a timer whose worker or job has changed since is ignored when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    slot: usize,
    serial: u64,
    job: u64,
    kind: TimerKind,
}

/// FNV-1a: task names are short and trusted, so SipHash's defence against
/// chosen keys buys nothing on this hot path.
#[derive(Default, Clone, Copy)]
struct BuildFnv;

struct Fnv(u64);

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A job waiting for a worker. `started` is set for one that was sent to a
/// worker that died before starting it: its future is already running.
struct Queued {
    job: Job,
    started: bool,
}

pub(crate) struct EventLoop {
    poll: Poll,
    shared: Arc<Shared>,
    config: Config,
    slots: Vec<Option<Worker>>,
    /// Ready workers with nothing to run, most recently freed last: the
    /// warmest is picked first.
    idle: Vec<usize>,
    pending: VecDeque<Queued>,
    /// Expected run time by task name (an average of recent runs): only
    /// tasks known to be short are queued behind others.
    expected: HashMap<&'static str, Duration, BuildFnv>,
    /// Workers with frames to write after this round of dispatch.
    dirty: Vec<usize>,
    timers: BinaryHeap<Reverse<Timer>>,
    next_serial: u64,
    start_failures: u32,
    shutting_down: bool,
    /// A shutdown's deadline: what still runs then is stopped.
    stop_running_at: Option<Instant>,
    broken: Option<String>,
    /// Fires at the nearest deadline (`None` where timerfd is missing: the
    /// poll timeout, rounded to milliseconds, does the job then).
    timer: Option<crate::sys::TimerFd>,
    /// When the pool last went quiet (no job in flight or queued), and how
    /// long it then stayed quiet before the next submit: the spin rule's
    /// measure of how dense the calls are.
    quiet_since: Option<Instant>,
    quiet_gap: Duration,
    /// Starts workers off this thread; `spawning` counts its requests not yet
    /// answered.
    spawner: crate::spawner::Spawner,
    spawning: usize,
    /// CPUs this process may use: the spin rule's yardstick.
    cpus: usize,
    /// The inbox's commands are swapped into this reused buffer.
    commands: VecDeque<Command>,
    /// Whether the pool's first start (which tries the fork server) is done.
    forkserver_tried: bool,
}

impl EventLoop {
    pub(crate) fn new(
        poll: Poll,
        shared: Arc<Shared>,
        mut config: Config,
        spawner: crate::spawner::Spawner,
    ) -> Self {
        config.max_workers = config.max_workers.max(1);
        Self {
            poll,
            shared,
            config,
            slots: Vec::new(),
            idle: Vec::new(),
            pending: VecDeque::new(),
            expected: HashMap::default(),
            dirty: Vec::new(),
            timers: BinaryHeap::new(),
            next_serial: 0,
            start_failures: 0,
            shutting_down: false,
            stop_running_at: None,
            broken: None,
            commands: VecDeque::new(),
            cpus: crate::cpus_available(),
            timer: None,
            spawner,
            spawning: 0,
            quiet_since: None,
            quiet_gap: Duration::MAX,
            forkserver_tried: false,
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        self.timer = crate::sys::TimerFd::new().ok().filter(|timer| {
            let fd = timer.as_raw_fd();
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), TIMER, Interest::READABLE)
                .is_ok()
        });
        // Prestarted workers boot while the caller builds its first submit.
        for _ in 0..self.config.prestart.min(self.config.max_workers) {
            if !self.spawn_or_break() {
                break;
            }
        }
        loop {
            let next = self.timers.peek().map(|Reverse(t)| t.at);
            let next = match (next, self.stop_running_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            if let (Some(timer), Some(after)) = (&self.timer, timeout) {
                if !after.is_zero() && timer.set(Some(after)).is_ok() {
                    // The timer wakes the poll on time; the poll's own
                    // timeout is only a backstop, a millisecond late.
                    timeout = Some(after + Duration::from_millis(1));
                }
            }
            if let Err(e) = self.wait_for_events(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("procpool: the manager's poll failed: {e}");
                    self.break_pool(format!("the manager's poll failed: {e}"));
                    break;
                }
            }
            for event in events.iter() {
                let Token(t) = event.token();
                if event.token() == WAKER {
                    continue;
                }
                if event.token() == TIMER {
                    if let Some(timer) = &self.timer {
                        timer.drain();
                    }
                    continue;
                }
                let slot = t / 4;
                match t % 4 {
                    RESULTS => self.read_results(slot),
                    CALLS => self.flush_calls(slot),
                    PIDFD => self.on_exit_signal(slot),
                    _ => {}
                }
            }
            self.take_spawned();
            self.drain_inbox();
            self.fire_timers();
            self.dispatch();
            self.retire_if_done();
            self.spawn_as_needed();
            self.publish_stats();
            if self.finished() {
                break;
            }
        }
        self.teardown();
        self.publish_stats();
    }

    /// Whether calls come close enough together that spinning for the next
    /// one pays: the last gap between the pool going quiet and the next
    /// submit was within the spin budget, and a CPU is free.
    fn calls_are_dense(&self) -> bool {
        !self.config.spin.is_zero()
            && self.quiet_gap <= self.config.spin
            && self.in_flight_total() < self.cpus
    }

    fn in_flight_total(&self) -> usize {
        self.slots.iter().flatten().map(|w| w.in_flight.len()).sum()
    }

    /// Polls for events: first spinning for up to the spin budget (a zero
    /// timeout poll and a `sched_yield` per round), then blocking until the
    /// next deadline. A pool in use answers a submit or a result within
    /// microseconds; an idle one sleeps after one budget.
    fn wait_for_events(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let spin = self.config.spin;
        // Spinning pays only while CPUs are free (with a job in flight per
        // CPU a spinning manager takes time from the workers) and an event is
        // due soon: a short job's result, or the next of a run of dense
        // submits. Sparse calls sleep at once, as if spinning were off.
        let in_flight = self.in_flight_total();
        let due_soon = if in_flight == 0 {
            self.quiet_gap <= spin
        } else {
            self.slots
                .iter()
                .flatten()
                .filter_map(|w| w.in_flight.front())
                .any(|job| job.cost.is_some_and(|c| c <= spin))
        };
        if !spin.is_zero() && timeout != Some(Duration::ZERO) && in_flight < self.cpus && due_soon {
            let end = Instant::now() + timeout.map_or(spin, |t| t.min(spin));
            loop {
                self.poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() || self.shared.wake_pending.load(Ordering::Acquire) {
                    return Ok(());
                }
                if Instant::now() >= end {
                    break;
                }
                std::thread::yield_now();
            }
        }
        self.poll.poll(events, timeout)
    }

    fn worker(&mut self, slot: usize) -> Option<&mut Worker> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    // ----------------------------------------------------------- commands

    fn drain_inbox(&mut self) {
        self.shared.wake_pending.store(false, Ordering::Release);
        std::mem::swap(&mut self.shared.inbox.lock().commands, &mut self.commands);
        while let Some(command) = self.commands.pop_front() {
            match command {
                Command::Submit(job) => match &self.broken {
                    Some(cause) => {
                        let error = Error::BrokenPool {
                            cause: cause.clone(),
                        };
                        self.fail(job.completion, error);
                    }
                    None => {
                        if let Some(since) = self.quiet_since.take() {
                            self.quiet_gap = since.elapsed();
                        }
                        self.pending.push_back(Queued {
                            job,
                            started: false,
                        });
                    }
                },
                Command::Abort(id) => self.abort(id),
                Command::Shutdown {
                    cancel_futures,
                    stop_running_at,
                } => {
                    self.shutting_down = true;
                    if cancel_futures {
                        self.cancel_pending();
                    }
                    if let Some(at) = stop_running_at {
                        self.stop_running_at = Some(self.stop_running_at.map_or(at, |t| t.min(at)));
                    }
                }
                Command::SignalWorkers { signal } => {
                    self.shutting_down = true;
                    self.cancel_pending();
                    let grace = if signal == libc::SIGKILL {
                        Duration::ZERO
                    } else {
                        self.config.grace
                    };
                    for slot in 0..self.slots.len() {
                        let Some(w) = self.worker(slot) else { continue };
                        w.phase = Phase::Retiring;
                        // What waits in its window never starts.
                        let queued = w.drain_waiting();
                        for job in queued {
                            self.settle(job, StopReason::Aborted, None);
                        }
                        if self.worker(slot).is_some_and(|w| !w.in_flight.is_empty()) {
                            self.stop_head(slot, StopReason::Aborted, Some(grace));
                        } else {
                            self.close_calls(slot);
                        }
                    }
                    self.idle.clear();
                }
            }
        }
    }

    fn cancel_pending(&mut self) {
        for queued in std::mem::take(&mut self.pending) {
            self.cancel(queued.job.completion);
        }
    }

    fn cancel(&self, completion: Box<dyn crate::job::Completion>) {
        completion.cancel();
        self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    fn abort(&mut self, id: u64) {
        if let Some(at) = self.pending.iter().position(|q| q.job.id == id) {
            let queued = self.pending.remove(at).expect("position found it");
            return self.cancel(queued.job.completion);
        }
        for slot in 0..self.slots.len() {
            let Some(w) = self.worker(slot) else { continue };
            let Some(at) = w.in_flight.iter().position(|j| j.id == id) else {
                continue;
            };
            if at == 0 {
                return self.stop_head(slot, StopReason::Aborted, None);
            }
            // Not started: it ends cancelled now. The worker will still
            // reach it; if it is running then, it is stopped like any other.
            let job = &mut w.in_flight[at];
            if job.stop.is_none() {
                job.stop = Some(StopReason::Aborted);
                if let Some(completion) = job.completion.take() {
                    self.cancel(completion);
                }
            }
            return;
        }
    }

    /// Starts stopping the job running in `slot` (the head of its window):
    /// SIGTERM to the worker's group and SIGKILL when the grace ends (grace
    /// zero: SIGKILL now).
    fn stop_head(&mut self, slot: usize, reason: StopReason, grace: Option<Duration>) {
        let Some(w) = self.worker(slot) else { return };
        let Some(head) = w.in_flight.front_mut() else {
            return;
        };
        if head.stop.is_some() && head.completion.is_some() {
            // Already being stopped.
            return;
        }
        if head.stop.is_none() {
            head.stop = Some(reason);
        }
        let grace = grace.unwrap_or(head.grace);
        let (job, serial) = (head.id, w.serial);
        log::debug!(
            "procpool: stopping `{}` in worker {} ({reason:?}, grace {grace:?})",
            head.task,
            w.pid
        );
        // Nothing more goes to this worker until the stop has played out.
        self.idle.retain(|&s| s != slot);
        let Some(w) = self.worker(slot) else { return };
        if grace.is_zero() {
            w.phase = Phase::Retiring;
            w.signal(libc::SIGKILL);
            self.replace_now(slot);
        } else {
            w.signal(libc::SIGTERM);
            self.timers.push(Reverse(Timer {
                at: Instant::now() + grace,
                slot,
                serial,
                job,
                kind: TimerKind::GraceOver,
            }));
        }
    }

    // ------------------------------------------------------------- timers

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.stop_running_at.is_some_and(|at| at <= now) {
            self.stop_running_at = None;
            self.cancel_pending();
            for slot in 0..self.slots.len() {
                self.stop_head(slot, StopReason::Aborted, None);
            }
        }
        while let Some(Reverse(timer)) = self.timers.peek().copied() {
            if timer.at > now {
                break;
            }
            self.timers.pop();
            let Some(w) = self.worker(timer.slot) else {
                continue;
            };
            if w.serial != timer.serial {
                continue;
            }
            let job_matches = w.in_flight.front().is_some_and(|j| j.id == timer.job);
            match timer.kind {
                TimerKind::TimeLimit if job_matches => {
                    let limit = w
                        .in_flight
                        .front()
                        .and_then(|j| j.time_limit)
                        .unwrap_or_default();
                    self.stop_head(timer.slot, StopReason::TimedOut(limit), None);
                }
                TimerKind::GraceOver if job_matches => {
                    w.phase = Phase::Retiring;
                    w.signal(libc::SIGKILL);
                    self.replace_now(timer.slot);
                }
                TimerKind::ReapRetry => self.try_reap(timer.slot),
                TimerKind::ExitOverdue => {
                    log::warn!(
                        "procpool: worker {} did not exit when told to; killing it",
                        w.pid
                    );
                    w.signal(libc::SIGKILL);
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------ results

    fn read_results(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let mut decoder = std::mem::take(&mut w.decoder);
        let mut reached_eof = false;
        while let Some(results) = self.worker(slot).and_then(|w| w.results.as_ref()) {
            let mut reader = results;
            match decoder.read_from(&mut reader) {
                Ok(ReadStatus::Data(_)) => {}
                Ok(ReadStatus::Eof) => {
                    if let Err(e) = decoder.finish() {
                        self.breach(slot, &e.to_string());
                    }
                    reached_eof = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.breach(slot, &format!("reading its results failed: {e}"));
                    break;
                }
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => self.on_frame(slot, frame),
                    Ok(None) => break,
                    Err(e) => {
                        self.breach(slot, &e.to_string());
                        break;
                    }
                }
            }
        }
        if let Some(w) = self.worker(slot) {
            w.decoder = decoder;
            if reached_eof {
                self.close_results(slot);
                let has_pidfd = self.worker(slot).is_some_and(|w| w.pidfd.is_some());
                if !has_pidfd {
                    self.try_reap(slot);
                }
            }
        }
    }

    fn on_frame(&mut self, slot: usize, frame: &[u8]) {
        let message = match FromWorker::decode(frame) {
            Ok(message) => message,
            Err(e) => return self.breach(slot, &e.to_string()),
        };
        let max_tasks = self.config.max_tasks_per_child;
        let Some(w) = self.worker(slot) else { return };
        if w.failure.is_some() {
            // It is being killed for an earlier breach: trust nothing more.
            return;
        }
        match message {
            FromWorker::Hello(hello) => {
                if let Err(e) = hello.check() {
                    return self.breach(slot, &e.to_string());
                }
                if w.said_hello {
                    return self.breach(slot, "it sent a second Hello");
                }
                w.said_hello = true;
                // A worker told to retire before it said hello (a shutdown
                // right after its start) stays retiring.
                let starting = w.phase == Phase::Starting;
                if starting {
                    w.phase = Phase::Ready;
                    log::debug!("procpool: worker {} is ready", w.pid);
                    self.idle.push(slot);
                }
                self.start_failures = 0;
            }
            FromWorker::Done(done) => {
                if w.in_flight.front().is_none_or(|j| j.id != done.id) {
                    let detail = match w.in_flight.front() {
                        Some(head) => format!(
                            "it finished call {} while running call {}",
                            done.id, head.id
                        ),
                        None => format!("it finished call {}, which it was never given", done.id),
                    };
                    return self.breach(slot, &detail);
                }
                let job = w.pop_job().expect("checked just above");
                let now = Instant::now();
                let ran = now.saturating_duration_since(w.head_started);
                w.head_started = now;
                w.served += 1;
                let last = max_tasks == Some(w.served);
                if last {
                    // It exits now; an Exiting frame follows. Nothing else it
                    // holds will start: it goes to another worker.
                    w.phase = Phase::Retiring;
                    w.orderly_exit = true;
                    self.requeue_all(slot);
                }
                self.learn(job.task, ran);
                self.complete(job, done.outcome);
                self.head_changed(slot);
            }
            FromWorker::Exiting(reason) => {
                w.orderly_exit = true;
                w.phase = Phase::Retiring;
                log::debug!("procpool: worker {} exits: {reason}", w.pid);
                self.idle.retain(|&s| s != slot);
                self.requeue_all(slot);
                if let ExitReason::InitializerFailed(e) = reason {
                    self.break_pool(e.message);
                }
            }
        }
    }

    /// Ends a job whose `Done` arrived.
    fn complete(&mut self, job: InFlight, outcome: Outcome<'_>) {
        let Some(completion) = job.completion else {
            // Its future was settled already (cancelled in the window).
            return;
        };
        let stats = &self.shared.stats;
        match job.stop {
            // It returned within the grace: the stop still wins.
            Some(StopReason::Aborted) => self.cancel(completion),
            Some(StopReason::TimedOut(limit)) => {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
                completion.finish(Err(Error::TimedOut {
                    task: job.task.to_owned(),
                    limit,
                }));
            }
            None => match outcome {
                Outcome::Output(bytes) => {
                    stats.finished.fetch_add(1, Ordering::Relaxed);
                    completion.finish(Ok(bytes));
                }
                Outcome::Error(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    completion.finish(Err(Error::from_remote(job.task, e)));
                }
            },
        }
    }

    /// Ends a job that will not run to its `Done`, for `reason`; `error` is
    /// the failure when there is no stop reason.
    fn settle(&mut self, job: InFlight, reason: StopReason, error: Option<Error>) {
        let Some(completion) = job.completion else {
            return;
        };
        match (job.stop.unwrap_or(reason), error) {
            (_, Some(error)) if job.stop.is_none() => self.fail(completion, error),
            (StopReason::Aborted, _) => self.cancel(completion),
            (StopReason::TimedOut(limit), _) => {
                self.shared.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                completion.finish(Err(Error::TimedOut {
                    task: job.task.to_owned(),
                    limit,
                }));
            }
        }
    }

    /// The job at the head of `slot`'s window has just started: arm its time
    /// limit, carry out a stop asked for while it waited, and let the worker
    /// take more work.
    fn head_changed(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        let serial = w.serial;
        let ready = w.phase == Phase::Ready;
        match w.in_flight.front() {
            None => {
                if ready && !self.idle.contains(&slot) {
                    self.idle.push(slot);
                }
            }
            Some(head) => {
                let (id, limit, stopped) = (head.id, head.time_limit, head.stop);
                if let Some(limit) = limit {
                    self.timers.push(Reverse(Timer {
                        at: Instant::now() + limit,
                        slot,
                        serial,
                        job: id,
                        kind: TimerKind::TimeLimit,
                    }));
                }
                if let Some(reason) = stopped {
                    self.stop_head(slot, reason, None);
                }
            }
        }
    }

    /// Sends the jobs waiting in `slot`'s window (not started) back to the
    /// front of the queue, in order: their worker will not run them.
    fn requeue_window(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        if w.in_flight.len() <= 1 {
            return;
        }
        let waiting = w.drain_waiting();
        for job in waiting.into_iter().rev() {
            self.requeue(job);
        }
    }

    /// Sends every job `slot` holds back to the queue: the worker has said it
    /// will run nothing more (recycling), so none of them has started.
    fn requeue_all(&mut self, slot: usize) {
        self.requeue_window(slot);
        let head = self.worker(slot).and_then(Worker::pop_job);
        if let Some(head) = head {
            self.requeue(head);
        }
    }

    /// Puts a job that never started back at the front of the queue (or, if
    /// it was stopped meanwhile, ends it cancelled).
    fn requeue(&mut self, job: InFlight) {
        let Some(completion) = job.completion else {
            return;
        };
        if job.stop.is_some() {
            return self.cancel(completion);
        }
        self.pending.push_front(Queued {
            job: Job {
                id: job.id,
                task: job.task,
                kind: job.kind,
                frame: job.frame,
                completion,
                time_limit: job.time_limit,
                grace: Some(job.grace),
            },
            started: true,
        });
    }

    /// Folds a run time into the task's expected run time.
    fn learn(&mut self, task: &'static str, ran: Duration) {
        let expected = self.expected.entry(task).or_insert(ran);
        // An average weighted 1/4 to the newest run: quick to notice that a
        // task got slow, which is what keeps windows safe.
        *expected = (*expected * 3 + ran) / 4;
    }

    /// Whether a job of `task` may wait in a window: only when its runs are
    /// known to be short.
    fn expected_short(&self, task: &str) -> Option<Duration> {
        self.expected
            .get(task)
            .copied()
            .filter(|&d| d < WINDOW_BUDGET)
    }

    /// The worker in `slot` broke the protocol: kill it; its job fails with
    /// a protocol error when it is reaped.
    fn breach(&mut self, slot: usize, detail: &str) {
        let Some(w) = self.worker(slot) else { return };
        if w.failure.is_none() {
            log::warn!("procpool: worker {} broke the protocol: {detail}", w.pid);
            w.failure = Some(Error::Protocol {
                pid: w.pid,
                detail: detail.to_owned(),
            });
        }
        w.phase = Phase::Retiring;
        w.signal(libc::SIGKILL);
        self.idle.retain(|&s| s != slot);
        self.close_results(slot);
        self.replace_now(slot);
    }

    /// Starts the replacement of the worker in `slot`, just sent SIGKILL,
    /// without waiting for its death to be confirmed: the new worker's start
    /// (the slow part: exec and the program's own start-up) overlaps with the
    /// kernel tearing the old one down. The killed worker no longer counts
    /// towards `max_workers`: it will never run anything again.
    fn replace_now(&mut self, slot: usize) {
        if self.broken.is_some() || self.shutting_down {
            return;
        }
        let Some(w) = self.worker(slot) else { return };
        if w.replaced || w.phase == Phase::Starting {
            return;
        }
        w.replaced = true;
        self.spawn_or_break();
    }

    /// Looks again, soon, whether the worker in `slot` has exited: without a
    /// pidfd nothing else will say so.
    fn reap_later(&mut self, slot: usize, serial: u64) {
        self.timers.push(Reverse(Timer {
            at: Instant::now() + REAP_RETRY,
            slot,
            serial,
            job: 0,
            kind: TimerKind::ReapRetry,
        }));
    }

    /// [`spawn`](Self::spawn), breaking the pool when it fails: a worker that
    /// cannot be started now will not start later either.
    fn spawn_or_break(&mut self) -> bool {
        match self.spawn() {
            Ok(()) => true,
            Err(e) => {
                log::error!("procpool: {e}");
                self.break_pool(e.to_string());
                false
            }
        }
    }

    /// Worker processes that count towards `max_workers`: all but those
    /// already killed and replaced.
    fn workers_counted(&self) -> usize {
        self.spawning + self.slots.iter().flatten().filter(|w| !w.replaced).count()
    }

    // -------------------------------------------------------------- calls

    /// Sends queued jobs to workers: idle ones first (the most recently idle,
    /// whose caches are warm), then into the windows of busy workers when
    /// every job involved is known to be short.
    fn dispatch(&mut self) {
        while let Some(front) = self.pending.front() {
            let slot = match self.idle.pop() {
                Some(slot) => slot,
                None => match self.window_for(front.job.task) {
                    Some(slot) => slot,
                    None => break,
                },
            };
            let usable = self
                .worker(slot)
                .is_some_and(|w| w.phase == Phase::Ready && w.calls.is_some());
            if !usable {
                continue;
            }
            let Some(Queued { mut job, started }) = self.pending.pop_front() else {
                break;
            };
            if !started && !job.completion.set_running() {
                // Cancelled while it waited.
                self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                self.return_to_idle(slot);
                continue;
            }
            let grace = job.grace.unwrap_or(self.config.grace);
            let time_limit = job.time_limit.or(self.config.time_limit);
            let cost = self.expected_short(job.task);
            let spin_us = if self.calls_are_dense() {
                u32::try_from(self.config.spin.as_micros()).unwrap_or(u32::MAX)
            } else {
                0
            };
            let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let max_frame_len = self.config.max_frame_len;
            if let Err(e) = job
                .frame
                .seal(job.id, job.task, job.kind, spin_us, max_frame_len)
            {
                let error = Error::Codec {
                    task: job.task.to_owned(),
                    op: procpool_ipc::CodecOp::EncodeArgs,
                    message: format!("task `{}`: cannot send the arguments: {e}", job.task),
                };
                self.fail(job.completion, error);
                self.return_to_idle(slot);
                continue;
            }
            let became_head = w.in_flight.is_empty();
            w.push_job(InFlight {
                id: job.id,
                task: job.task,
                kind: job.kind,
                frame: job.frame,
                completion: Some(job.completion),
                grace,
                time_limit,
                stop: None,
                cost,
            });
            if became_head {
                w.head_started = Instant::now();
                self.head_changed(slot);
            }
            if !self.dirty.contains(&slot) {
                self.dirty.push(slot);
            }
        }
        // One write per worker for everything sent to it this round.
        while let Some(slot) = self.dirty.pop() {
            self.flush_calls(slot);
        }
    }

    /// A busy worker whose window can take a job of `task`: everything it
    /// holds, and the job, are known to be short. The least loaded one.
    fn window_for(&self, task: &str) -> Option<usize> {
        let cost = self.expected_short(task)?;
        let mut best: Option<(usize, Duration)> = None;
        for (slot, w) in self.slots.iter().enumerate() {
            let Some(load) = w.as_ref().and_then(|w| {
                w.window_room(
                    cost,
                    WINDOW_BUDGET,
                    MAX_WINDOW,
                    self.config.max_tasks_per_child,
                )
            }) else {
                continue;
            };
            if best.is_none_or(|(_, l)| load < l) {
                best = Some((slot, load));
            }
        }
        best.map(|(slot, _)| slot)
    }

    /// A worker picked for a job it did not get goes back where it was.
    fn return_to_idle(&mut self, slot: usize) {
        let idle = self
            .worker(slot)
            .is_some_and(|w| w.phase == Phase::Ready && w.in_flight.is_empty());
        if idle && !self.idle.contains(&slot) {
            self.idle.push(slot);
        }
    }

    /// Writes the call frames of `slot` not yet written, many per `writev`,
    /// straight from the jobs' own buffers.
    fn flush_calls(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        // Out of the worker for the loop, so its frames can be borrowed.
        let Some(mut calls) = w.calls.take() else {
            return;
        };
        loop {
            let written = {
                let pending = w.unwritten_slices();
                if pending.is_empty() {
                    if w.calls_registered {
                        let _ = registry.deregister(&mut calls);
                        w.calls_registered = false;
                    }
                    break;
                }
                let mut writer: &mio::unix::pipe::Sender = &calls;
                io::Write::write_vectored(&mut writer, &pending)
            };
            match written {
                Ok(0) => break,
                Ok(n) => w.advance_written(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !w.calls_registered {
                        match registry.register(&mut calls, token(slot, CALLS), Interest::WRITABLE)
                        {
                            Ok(()) => w.calls_registered = true,
                            Err(e) => {
                                log::error!(
                                    "procpool: cannot watch worker {}'s call pipe: {e}",
                                    w.pid
                                )
                            }
                        }
                    }
                    break;
                }
                Err(e) => {
                    // EPIPE and friends: the worker is gone or going; its
                    // pidfd (or result pipe's EOF) will say so.
                    log::debug!("procpool: writing to worker {}: {e}", w.pid);
                    w.mark_all_written();
                    break;
                }
            }
        }
        w.calls = Some(calls);
    }

    /// Closes the call pipe: the worker reads EOF and exits 0.
    fn close_calls(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(mut calls) = w.calls.take() {
            if w.calls_registered {
                let _ = registry.deregister(&mut calls);
                w.calls_registered = false;
            }
            w.orderly_exit = true;
            w.mark_all_written();
            let (serial, at) = (w.serial, Instant::now() + EXIT_GRACE);
            self.timers.push(Reverse(Timer {
                at,
                slot,
                serial,
                job: 0,
                kind: TimerKind::ExitOverdue,
            }));
        }
    }

    fn close_results(&mut self, slot: usize) {
        let registry = self.poll.registry();
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(mut results) = w.results.take() {
            let _ = registry.deregister(&mut results);
            if w.pidfd.is_none() {
                // Without a pidfd the result pipe's EOF was the only sign of
                // the worker's exit: watch for it with the reap timer now.
                let serial = w.serial;
                self.reap_later(slot, serial);
            }
        }
    }

    // ------------------------------------------------------- worker lives

    fn spawn_as_needed(&mut self) {
        if self.broken.is_some() || self.pending.is_empty() {
            return;
        }
        let alive = self.workers_counted();
        let starting = self.spawning
            + self
                .slots
                .iter()
                .flatten()
                .filter(|w| w.phase == Phase::Starting)
                .count();
        let wanted = self
            .pending
            .len()
            .saturating_sub(self.idle.len() + starting);
        let room = self.config.max_workers.saturating_sub(alive);
        for _ in 0..wanted.min(room) {
            if !self.spawn_or_break() {
                return;
            }
        }
    }

    /// Starts a worker: here when no job is in flight (nothing waits on this
    /// thread, and a hop to the spawner would only add a wake-up), else on
    /// the spawner thread so that the other workers' results are not held up
    /// for the millisecond a start takes. The pool's first start starts the
    /// fork server and forks the first worker from it ([`first_fork`]), so
    /// that every worker is a fork. Both threads live as long as the pool, as
    /// the workers' parent-death signal needs.
    ///
    /// [`first_fork`]: Self::first_fork
    fn spawn(&mut self) -> Result<(), Error> {
        self.next_serial += 1;
        if !self.forkserver_tried {
            self.forkserver_tried = true;
            if let Some(w) = self.first_fork() {
                return self.install(w);
            }
        }
        if self.in_flight_total() == 0 {
            let w = crate::spawner::start_worker(&self.shared, &self.config, self.next_serial)?;
            return self.install(w);
        }
        self.spawner
            .request(crate::spawner::SpawnRequest(self.next_serial))?;
        self.spawning += 1;
        Ok(())
    }

    /// Starts the fork server and forks the pool's first worker from it: the
    /// request is sent at once and found by the server when it first reads,
    /// so the first worker comes a fork (~0.1 ms) later than a spawned one
    /// would, and, like every fork, maps only the code it runs (a spawned
    /// worker keeps what its program's start touched: about a third more
    /// resident memory). This waits for the server's start on this thread;
    /// nothing is in flight yet. `None` (and workers are spawned) when the
    /// server is off or fails.
    fn first_fork(&mut self) -> Option<Worker> {
        if !self.config.forkserver || self.shutting_down {
            return None;
        }
        let mut server = match crate::forkserver::Forkserver::start(&self.config) {
            Ok(server) => server,
            Err(e) => {
                log::info!("procpool: no fork server, workers will be spawned: {e}");
                return None;
            }
        };
        match Worker::fork(&mut server, &self.config, self.next_serial) {
            Ok(w) => {
                log::debug!("procpool: fork server {} is ready", server.pid());
                *self.shared.forkserver.lock() = Some(server);
                Some(w)
            }
            Err(e) => {
                // Dropping the server kills and reaps it.
                log::info!("procpool: no fork server, workers will be spawned: {e}");
                None
            }
        }
    }

    /// Takes in the workers the spawner has started.
    fn take_spawned(&mut self) {
        let started = std::mem::take(&mut *self.shared.spawned.lock());
        for result in started {
            self.spawning = self.spawning.saturating_sub(1);
            match result.and_then(|w| self.install(w)) {
                Ok(()) => {}
                Err(e) => {
                    log::error!("procpool: {e}");
                    self.break_pool(e.to_string());
                }
            }
        }
    }

    /// Gives a new worker a slot and watches its pipe and pidfd.
    fn install(&mut self, mut w: Worker) -> Result<(), Error> {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let registry = self.poll.registry();
        let registered = (|| {
            if let Some(results) = w.results.as_mut() {
                registry.register(results, token(slot, RESULTS), Interest::READABLE)?;
            }
            if let Some(pidfd) = &w.pidfd {
                let fd = pidfd.as_raw_fd();
                registry.register(&mut SourceFd(&fd), token(slot, PIDFD), Interest::READABLE)?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = registered {
            w.signal(libc::SIGKILL);
            let _ = w.process.wait();
            return Err(Error::Spawn(format!("cannot watch worker {}: {e}", w.pid)));
        }
        log::debug!("procpool: started worker {}", w.pid);
        self.shared
            .stats
            .workers_started
            .fetch_add(1, Ordering::Relaxed);
        if matches!(w.process, crate::worker::Process::Forked { .. }) {
            self.shared
                .stats
                .workers_forked
                .fetch_add(1, Ordering::Relaxed);
        }
        self.slots[slot] = Some(w);
        Ok(())
    }

    /// The pidfd turned readable: the worker has exited.
    fn on_exit_signal(&mut self, slot: usize) {
        // Its last frames may still be in the pipe: take them first.
        self.read_results(slot);
        self.try_reap(slot);
    }

    /// Reaps the worker in `slot` if it has exited, and settles its job.
    fn try_reap(&mut self, slot: usize) {
        let Some(w) = self.worker(slot) else { return };
        if !w.orderly_exit && !w.killed {
            // It died on its own: what its task started dies with it. Done
            // before reaping, while the group id cannot have been reused.
            w.signal(libc::SIGKILL);
            w.killed = false;
        }
        let status = match w.process.try_wait() {
            Ok(Some(status)) => ExitInfo::from_status(status),
            Ok(None) => {
                if w.pidfd.is_none() {
                    let serial = w.serial;
                    self.reap_later(slot, serial);
                }
                return;
            }
            Err(e) => {
                log::error!("procpool: waiting for worker {}: {e}", w.pid);
                ExitInfo::Code(-1)
            }
        };
        self.remove(slot, status);
    }

    fn remove(&mut self, slot: usize, exit: ExitInfo) {
        self.close_results(slot);
        self.close_calls(slot);
        let registry = self.poll.registry();
        let Some(mut w) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(pidfd) = &w.pidfd {
            let fd = pidfd.as_raw_fd();
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        self.idle.retain(|&s| s != slot);
        let expected = w.orderly_exit || w.killed;
        if !expected {
            log::warn!("procpool: worker {} died unexpectedly ({exit})", w.pid);
        } else {
            log::debug!("procpool: worker {} exited ({exit})", w.pid);
        }
        if !self.shutting_down || !self.pending.is_empty() {
            self.shared
                .stats
                .workers_replaced
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut break_cause = None;
        // Jobs that never started go to another worker; the head ran here.
        let waiting = w.drain_waiting();
        if let Some(head) = w.pop_job() {
            let error = w.failure.take().unwrap_or_else(|| Error::WorkerDied {
                pid: w.pid,
                exit,
                task: head.task.to_owned(),
            });
            if head.stop.is_none()
                && head.completion.is_some()
                && self.config.failure_policy == FailurePolicy::BreakPool
                && matches!(error, Error::WorkerDied { .. })
            {
                break_cause = Some(format!("a worker died: {error}"));
            }
            self.settle(head, StopReason::Aborted, Some(error));
        }
        for job in waiting.into_iter().rev() {
            self.requeue(job);
        }
        if w.phase == Phase::Starting && !w.killed && self.broken.is_none() && !self.shutting_down {
            self.start_failures += 1;
            if self.start_failures >= self.config.max_start_failures {
                break_cause = Some(format!(
                    "{} workers in a row exited before serving (the last, {}, with {exit})",
                    self.start_failures, w.pid
                ));
            }
        }
        if let Some(cause) = break_cause {
            self.break_pool(cause);
        } else if self.broken.is_none() && !self.shutting_down && !w.replaced {
            // Replace it now, not when the next job needs it: the spawn then
            // overlaps with whatever the caller does about the ended job.
            self.spawn_or_break();
        }
    }

    fn fail(&self, completion: Box<dyn crate::job::Completion>, error: Error) {
        self.shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        completion.finish(Err(error));
    }

    /// The pool can run nothing more: fail what is pending and running, kill
    /// the workers, refuse later submits.
    fn break_pool(&mut self, cause: String) {
        if self.broken.is_some() {
            return;
        }
        log::warn!("procpool: the pool is broken: {cause}");
        self.shared.inbox.lock().broken = Some(cause.clone());
        let error = Error::BrokenPool {
            cause: cause.clone(),
        };
        self.broken = Some(cause);
        for queued in std::mem::take(&mut self.pending) {
            self.fail(queued.job.completion, error.clone());
        }
        for slot in 0..self.slots.len() {
            let Some(w) = self.worker(slot) else { continue };
            let waiting = w.drain_waiting();
            if !w.in_flight.is_empty() && w.failure.is_none() {
                w.failure = Some(error.clone());
            }
            w.phase = Phase::Retiring;
            w.signal(libc::SIGKILL);
            for job in waiting {
                self.settle(job, StopReason::Aborted, Some(error.clone()));
            }
        }
        self.idle.clear();
    }

    /// When shutting down and nothing is left to run, tells the idle workers
    /// to exit.
    fn retire_if_done(&mut self) {
        if !(self.shutting_down || self.broken.is_some()) || !self.pending.is_empty() {
            return;
        }
        for slot in 0..self.slots.len() {
            let idle = self
                .worker(slot)
                .is_some_and(|w| w.in_flight.is_empty() && w.calls.is_some());
            if idle {
                if let Some(w) = self.worker(slot) {
                    w.phase = Phase::Retiring;
                }
                self.close_calls(slot);
            }
        }
        self.idle.clear();
    }

    fn finished(&self) -> bool {
        (self.shutting_down || self.broken.is_some())
            && self.pending.is_empty()
            && self.spawning == 0
            && self.slots.iter().all(Option::is_none)
    }

    /// The loop has ended: nothing should be left, but make sure no process
    /// outlives the manager.
    fn teardown(&mut self) {
        // After the spawner has stopped, nothing new can arrive.
        self.spawner.stop();
        // Dropping the fork server kills and reaps it.
        drop(self.shared.forkserver.lock().take());
        let leftovers = std::mem::take(&mut *self.shared.spawned.lock());
        for mut w in leftovers.into_iter().flatten() {
            w.signal(libc::SIGKILL);
            let _ = w.process.wait();
        }
        self.spawning = 0;
        for slot in 0..self.slots.len() {
            if let Some(w) = self.worker(slot) {
                w.signal(libc::SIGKILL);
                let status = w
                    .process
                    .wait()
                    .map_or(ExitInfo::Code(-1), ExitInfo::from_status);
                self.remove(slot, status);
            }
        }
        for queued in std::mem::take(&mut self.pending) {
            queued.job.completion.cancel();
        }
    }

    fn publish_stats(&mut self) {
        if self.quiet_since.is_none() && self.pending.is_empty() && self.in_flight_total() == 0 {
            self.quiet_since = Some(Instant::now());
        }
        let dense = self.calls_are_dense();
        self.shared.spin_ok.store(dense, Ordering::Relaxed);
        let stats = &self.shared.stats;
        let alive = self.workers_counted();
        let running = self.slots.iter().flatten().map(|w| w.in_flight.len()).sum();
        stats.workers_alive.store(alive, Ordering::Relaxed);
        stats.workers_idle.store(self.idle.len(), Ordering::Relaxed);
        stats.queued.store(self.pending.len(), Ordering::Relaxed);
        stats.running.store(running, Ordering::Relaxed);
    }
}
