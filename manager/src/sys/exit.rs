//! Threads the process waits for when it exits (`atexit`): the manager
//! threads of pools shut down without waiting, so that the work they were
//! given still completes when `main` returns right after, as CPython's
//! interpreter joins its executors' threads at exit (gh-83386).

use parking_lot::Mutex;
use std::sync::Once;
use std::thread::JoinHandle;

/// The threads to join at exit.
static AT_EXIT: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Joins `thread` when the process exits (`exit`, or `main` returning).
pub(crate) fn join_at_exit(thread: JoinHandle<()>) {
    static REGISTERED: Once = Once::new();
    let mut threads = AT_EXIT.lock();
    // Threads that ended already need no joining later.
    threads.retain(|t| !t.is_finished());
    threads.push(thread);
    drop(threads);
    REGISTERED.call_once(|| {
        // SAFETY: atexit stores a function pointer to call at exit; the
        // function has the C ABI and signature atexit expects and touches
        // only this module's static.
        if unsafe { libc::atexit(join_all) } != 0 {
            log::warn!("procpool: cannot register the exit hook: pools shut down without waiting are not waited for at exit");
        }
    });
}

/// The exit hook: joins the threads, outside the lock. A thread that
/// panicked is not a reason to fail the exit.
extern "C" fn join_all() {
    let threads = std::mem::take(&mut *AT_EXIT.lock());
    for thread in threads {
        let _ = thread.join();
    }
}
