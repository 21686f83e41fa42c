//! Which job goes to which worker: the pending queue, the idle workers,
//! the windows of busy ones and what a task is expected to cost. Plain
//! values and no I/O, so that it is tested as such.

use crate::job::Work;
use crate::slot::WorkerSlot;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A worker takes jobs into its window (beyond the one it runs) only while
/// the expected run time of what it already holds stays under this: a short
/// task never waits long behind another, and a long one never has anything
/// queued behind it.
pub(crate) const WINDOW_BUDGET: Duration = Duration::from_millis(1);

/// The most jobs one worker holds at once (running plus queued).
pub(crate) const MAX_WINDOW: usize = 64;

/// What a worker's window holds, for deciding whether it takes one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Jobs in it (the first runs).
    pub(crate) len: usize,
    /// The summed expected cost of those known to be short.
    pub(crate) known_load: Duration,
    /// Those whose cost is unknown or long.
    pub(crate) unknown_load: usize,
    /// Calls the worker answered so far.
    pub(crate) served: u64,
    /// It serves (ready, call pipe open) and its running job is not being
    /// stopped.
    pub(crate) open: bool,
}

impl Window {
    /// The window of `worker`.
    pub(crate) fn of(worker: &WorkerSlot) -> Self {
        let (known_load, unknown_load) = worker.load();
        Self {
            len: worker.window.len(),
            known_load,
            unknown_load,
            served: worker.served,
            open: worker.takes_work(),
        }
    }

    /// The load the window would carry with one more job of `cost`, if it
    /// can take it: everything it holds is short and known, the sum stays
    /// within [`WINDOW_BUDGET`], it holds fewer than [`MAX_WINDOW`], and a
    /// recycling worker (`max_tasks`) will live to run it.
    pub(crate) fn room_for(&self, cost: Duration, max_tasks: Option<u64>) -> Option<Duration> {
        let will_run = max_tasks.map_or(u64::MAX, |m| m.saturating_sub(self.served));
        if !self.open
            || self.unknown_load > 0
            || self.len >= MAX_WINDOW
            || self.len as u64 + 1 > will_run
        {
            return None;
        }
        let load = self.known_load + cost;
        (load <= WINDOW_BUDGET).then_some(load)
    }
}

/// The least loaded of the windows that can take one more job of `cost`.
pub(crate) fn least_loaded(
    windows: impl IntoIterator<Item = (usize, Window)>,
    cost: Duration,
    max_tasks: Option<u64>,
) -> Option<usize> {
    windows
        .into_iter()
        .filter_map(|(slot, window)| Some((window.room_for(cost, max_tasks)?, slot)))
        .min()
        .map(|(_, slot)| slot)
}

/// The queue and the idle workers.
///
/// Pending jobs wait by priority, highest first, and in arrival order
/// within one. Priority 0, the default, has a queue of its own, so that a
/// pool that never uses priorities pays for a `VecDeque` and nothing more;
/// the other levels live in a map, each level only while it holds a job.
#[derive(Default)]
pub(crate) struct Scheduler {
    /// Pending jobs of priority 0.
    pending: VecDeque<Work>,
    /// Pending jobs of other priorities, the highest first.
    ranked: BTreeMap<Reverse<i32>, VecDeque<Work>>,
    ranked_len: usize,
    /// A job of a priority other than 0 was ever submitted (the stats then
    /// report the levels).
    ranks_used: bool,
    /// Ready workers with nothing to run, and since when, most recently
    /// freed last: the warmest is picked first, the coldest retired first.
    idle: Vec<(usize, Instant)>,
    costs: Costs,
    tasks: KnownTasks,
}

/// Where the next pending job is.
#[derive(Clone, Copy)]
enum Level {
    Default,
    Ranked(i32),
}

impl Scheduler {
    /// A new job, behind the others of its priority.
    pub(crate) fn submit(&mut self, work: Work) {
        self.queue_of(work.priority).push_back(work);
    }

    /// A job that was sent to a worker which will not run it: first in line
    /// among its priority.
    pub(crate) fn requeue(&mut self, work: Work) {
        self.queue_of(work.priority).push_front(work);
    }

    fn queue_of(&mut self, priority: i32) -> &mut VecDeque<Work> {
        if priority == 0 {
            return &mut self.pending;
        }
        self.ranks_used = true;
        self.ranked_len += 1;
        self.ranked.entry(Reverse(priority)).or_default()
    }

    /// The level the next job comes from: a higher one than 0 first, then
    /// 0, then the lower ones.
    fn first_level(&self) -> Option<Level> {
        let top = self.ranked.keys().next().map(|Reverse(p)| *p);
        match top {
            Some(p) if p > 0 => Some(Level::Ranked(p)),
            _ if !self.pending.is_empty() => Some(Level::Default),
            Some(p) => Some(Level::Ranked(p)),
            None => None,
        }
    }

    pub(crate) fn front(&self) -> Option<&Work> {
        match self.first_level()? {
            Level::Default => self.pending.front(),
            Level::Ranked(p) => self.ranked.get(&Reverse(p))?.front(),
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Work> {
        match self.first_level()? {
            Level::Default => self.pending.pop_front(),
            Level::Ranked(p) => self.take_ranked(p, |queue| queue.pop_front()),
        }
    }

    /// Takes a job out of level `p` with `take`, dropping the level once
    /// empty.
    fn take_ranked(
        &mut self,
        p: i32,
        take: impl FnOnce(&mut VecDeque<Work>) -> Option<Work>,
    ) -> Option<Work> {
        let queue = self.ranked.get_mut(&Reverse(p))?;
        let work = take(queue)?;
        if queue.is_empty() {
            self.ranked.remove(&Reverse(p));
        }
        self.ranked_len -= 1;
        Some(work)
    }

    /// Takes the pending job `id` out of the queue.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Work> {
        if let Some(at) = self.pending.iter().position(|w| w.id == id) {
            return self.pending.remove(at);
        }
        let (p, at) = self
            .ranked
            .iter()
            .find_map(|(Reverse(p), queue)| Some((*p, queue.iter().position(|w| w.id == id)?)))?;
        self.take_ranked(p, |queue| queue.remove(at))
    }

    /// Takes every pending job, in the order they would have run.
    pub(crate) fn drain(&mut self) -> VecDeque<Work> {
        let mut all = VecDeque::with_capacity(self.pending());
        while let Some(work) = self.pop() {
            all.push_back(work);
        }
        all
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.len() + self.ranked_len
    }

    /// Pending jobs per priority, highest first; `None` while every job
    /// ever submitted had priority 0.
    pub(crate) fn pending_by_priority(&self) -> Option<Vec<(i32, usize)>> {
        if !self.ranks_used {
            return None;
        }
        let mut levels: Vec<(i32, usize)> = self
            .ranked
            .iter()
            .map(|(Reverse(p), queue)| (*p, queue.len()))
            .collect();
        if !self.pending.is_empty() {
            let at = levels.partition_point(|&(p, _)| p > 0);
            levels.insert(at, (0, self.pending.len()));
        }
        Some(levels)
    }

    /// Marks `slot` idle (once).
    pub(crate) fn set_idle(&mut self, slot: usize) {
        if !self.idle.iter().any(|&(s, _)| s == slot) {
            self.idle.push((slot, Instant::now()));
        }
    }

    /// Forgets `slot` as idle.
    pub(crate) fn set_busy(&mut self, slot: usize) {
        self.idle.retain(|&(s, _)| s != slot);
    }

    /// The warmest idle worker, no longer idle.
    pub(crate) fn take_idle(&mut self) -> Option<usize> {
        self.idle.pop().map(|(slot, _)| slot)
    }

    /// The idle worker idle the longest, and since when.
    pub(crate) fn coldest_idle(&self) -> Option<(usize, Instant)> {
        self.idle.first().copied()
    }

    pub(crate) fn idle(&self) -> usize {
        self.idle.len()
    }

    pub(crate) fn clear_idle(&mut self) {
        self.idle.clear();
    }

    pub(crate) fn costs(&mut self) -> &mut Costs {
        &mut self.costs
    }

    pub(crate) fn tasks(&mut self) -> &mut KnownTasks {
        &mut self.tasks
    }
}

/// The task names the workers said they have (in their `Hello`): a job of
/// another name fails at once instead of a round trip to a worker. Names
/// once found are remembered, so the check costs a set lookup per job.
#[derive(Default)]
pub(crate) struct KnownTasks {
    /// The latest `Hello`'s names, sorted.
    announced: Option<Vec<String>>,
    found: rustc_hash::FxHashSet<&'static str>,
}

impl KnownTasks {
    /// A worker said it has `names` (sorted, as a `Hello` sends them).
    pub(crate) fn announce(&mut self, names: Vec<String>) {
        if self.announced.as_ref() != Some(&names) {
            self.found.clear();
            self.announced = Some(names);
        }
    }

    /// `Err` with the names there are, when the workers have no task
    /// `task`; `Ok` when they do or nothing was announced yet.
    pub(crate) fn check(&mut self, task: &'static str) -> Result<(), String> {
        if self.found.contains(task) {
            return Ok(());
        }
        match &self.announced {
            Some(names) if names.binary_search_by(|n| n.as_str().cmp(task)).is_err() => {
                Err(names.join(", "))
            }
            Some(_) => {
                self.found.insert(task);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Expected run time by task name: an average of recent runs, so that only
/// tasks known to be short are queued behind others.
#[derive(Default)]
pub(crate) struct Costs {
    // Task names are short and trusted: a fast hash (rustc's), not SipHash,
    // whose defence against chosen keys buys nothing here.
    expected: FxHashMap<&'static str, Duration>,
}

impl Costs {
    /// Folds a run time into the task's expected run time.
    pub(crate) fn learn(&mut self, task: &'static str, ran: Duration) {
        let expected = self.expected.entry(task).or_insert(ran);
        // An average weighted 1/4 to the newest run: quick to notice that a
        // task got slow, which is what keeps windows safe.
        *expected = (*expected * 3 + ran) / 4;
    }

    /// The expected run time of `task`, when it is known to be short enough
    /// to wait in a window.
    pub(crate) fn short(&self, task: &str) -> Option<Duration> {
        self.expected
            .get(task)
            .copied()
            .filter(|&d| d < WINDOW_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn window(len: usize, known: u32, unknown: usize) -> Window {
        Window {
            len,
            known_load: US * known,
            unknown_load: unknown,
            served: 0,
            open: true,
        }
    }

    #[test]
    fn a_window_takes_short_known_work_up_to_its_budget() {
        assert_eq!(window(0, 0, 0).room_for(US * 10, None), Some(US * 10));
        assert_eq!(window(3, 990, 0).room_for(US * 10, None), Some(US * 1000));
        assert_eq!(
            window(3, 991, 0).room_for(US * 10, None),
            None,
            "over budget"
        );
        assert_eq!(
            window(1, 0, 1).room_for(US, None),
            None,
            "behind unknown work"
        );
        assert_eq!(window(MAX_WINDOW, 0, 0).room_for(US, None), None, "full");
        let closed = Window {
            open: false,
            ..window(1, 1, 0)
        };
        assert_eq!(closed.room_for(US, None), None);
    }

    #[test]
    fn a_recycling_worker_takes_no_more_than_it_will_run() {
        let w = Window {
            served: 8,
            ..window(1, 1, 0)
        };
        // max_tasks 10: it runs 2 more, one of them held already.
        assert_eq!(w.room_for(US, Some(10)), Some(US * 2));
        assert_eq!(Window { len: 2, ..w }.room_for(US, Some(10)), None);
        assert_eq!(Window { served: 9, ..w }.room_for(US, Some(10)), None);
    }

    #[test]
    fn the_least_loaded_window_that_fits_wins() {
        let windows = [
            (0, window(2, 500, 0)),
            (1, window(1, 100, 0)),
            (2, window(1, 10, 1)),
            (3, window(2, 950, 0)),
        ];
        assert_eq!(least_loaded(windows, US * 100, None), Some(1));
        assert_eq!(least_loaded(windows, US * 950, None), None);
        assert_eq!(least_loaded([], US, None), None);
    }

    #[test]
    fn costs_follow_recent_runs_and_only_short_tasks_qualify() {
        let mut costs = Costs::default();
        assert_eq!(costs.short("t"), None, "unknown");
        costs.learn("t", US * 100);
        assert_eq!(costs.short("t"), Some(US * 100));
        costs.learn("t", US * 500);
        assert_eq!(costs.short("t"), Some(US * 200));
        for _ in 0..8 {
            costs.learn("t", Duration::from_millis(5));
        }
        assert_eq!(costs.short("t"), None, "it got slow");
    }

    #[test]
    fn unknown_task_names_are_found_from_the_hello() {
        let mut tasks = KnownTasks::default();
        assert_eq!(tasks.check("anything"), Ok(()), "nothing announced yet");
        tasks.announce(vec!["a".into(), "square".into()]);
        assert_eq!(tasks.check("square"), Ok(()));
        assert_eq!(tasks.check("nope"), Err("a, square".into()));
        tasks.announce(vec!["nope".into()]);
        assert_eq!(tasks.check("nope"), Ok(()));
        assert_eq!(tasks.check("square"), Err("nope".into()));
    }

    struct Nothing;

    impl crate::job::Completion for Nothing {
        fn set_running(&mut self) -> bool {
            true
        }
        fn finish(self: Box<Self>, _: Result<procpool_ipc::Payload, crate::Failure>) {}
        fn cancel(self: Box<Self>) {}
    }

    fn work(id: u64, priority: i32) -> Work {
        let job = crate::Job {
            id,
            task: "t",
            kind: procpool_ipc::CallKind::Single,
            frame: procpool_ipc::CallFrame::new("t"),
            completion: Box::new(Nothing),
            time_limit: None,
            grace: None,
            priority,
            permit: None,
        };
        Work::new(job, Duration::ZERO, None)
    }

    fn ids(s: &mut Scheduler) -> Vec<u64> {
        s.drain().into_iter().map(|w| w.id).collect()
    }

    #[test]
    fn pending_jobs_leave_by_priority_then_in_arrival_order() {
        let mut s = Scheduler::default();
        for (id, priority) in [(1, 0), (2, 5), (3, -1), (4, 5), (5, 0), (6, 9)] {
            s.submit(work(id, priority));
        }
        assert_eq!(s.pending(), 6);
        assert_eq!(
            s.pending_by_priority(),
            Some(vec![(9, 1), (5, 2), (0, 2), (-1, 1)])
        );
        assert_eq!(s.front().map(|w| w.id), Some(6));
        assert_eq!(s.remove(4).map(|w| w.id), Some(4));
        s.requeue(work(7, 5));
        assert_eq!(ids(&mut s), vec![6, 7, 2, 1, 5, 3]);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.pending_by_priority(), Some(vec![]));
    }

    #[test]
    fn a_pool_without_priorities_reports_no_levels() {
        let mut s = Scheduler::default();
        s.submit(work(1, 0));
        s.requeue(work(2, 0));
        assert_eq!(s.pending_by_priority(), None);
        assert_eq!(ids(&mut s), vec![2, 1]);
    }

    #[test]
    fn idle_workers_are_taken_warmest_first_and_once() {
        let mut s = Scheduler::default();
        s.set_idle(1);
        s.set_idle(2);
        s.set_idle(1);
        assert_eq!(s.idle(), 2);
        s.set_busy(2);
        s.set_idle(3);
        assert_eq!(s.take_idle(), Some(3));
        assert_eq!(s.take_idle(), Some(1));
        assert_eq!(s.take_idle(), None);
    }
}
