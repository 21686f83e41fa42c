//! Shared by the test files: an error type, a tiny `block_on`, waker probes, thread CPU time.

#![allow(dead_code)] // each test file uses a subset

use std::future::Future as StdFuture;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use procpool_futures::{Cancelled, Taken, Timeout};

/// The error type of the futures under test, as a pool would define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TestError {
    Cancelled,
    Timeout,
    Taken,
    Task(String),
}

impl From<Cancelled> for TestError {
    fn from(_: Cancelled) -> Self {
        TestError::Cancelled
    }
}

impl From<Timeout> for TestError {
    fn from(_: Timeout) -> Self {
        TestError::Timeout
    }
}

impl From<Taken> for TestError {
    fn from(_: Taken) -> Self {
        TestError::Taken
    }
}

pub(crate) type Future<T = u32> = procpool_futures::Future<T, TestError>;
pub(crate) type Completer<T = u32> = procpool_futures::Completer<T, TestError>;

pub(crate) fn pair<T>() -> (Future<T>, Completer<T>) {
    procpool_futures::pair()
}

/// The one bound every "this should not take long" assert uses: generous, as
/// the machine is a noisy 2-core VM.
/// A future that finished with `v`.
pub(crate) fn finished(v: u32) -> Future {
    let (f, c) = pair::<u32>();
    c.set_result(v).unwrap();
    f
}

/// A future that failed.
pub(crate) fn failed() -> Future {
    let (f, c) = pair::<u32>();
    c.set_error(TestError::Task("boom".into())).unwrap();
    f
}

/// A future cancelled while pending.
pub(crate) fn cancelled() -> Future {
    let (f, _c) = pair::<u32>();
    f.cancel();
    f
}

pub(crate) const LONG: Duration = Duration::from_secs(10);

/// A short timeout that a test expects to expire.
pub(crate) const SHORT: Duration = Duration::from_millis(50);

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking between polls.
pub(crate) fn block_on<F: StdFuture>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
pub(crate) struct CountingWaker {
    pub(crate) wakes: AtomicUsize,
}

impl CountingWaker {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn count(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `future` once with `waker`.
pub(crate) fn poll_once<F: StdFuture + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// CPU time (user + system) this thread has used so far.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` is valid for writes of one `rusage`, and RUSAGE_THREAD
    // is supported on Linux, the only target these tests run on.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(
        rc,
        0,
        "getrusage failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: getrusage returned 0, so it filled `usage`.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
