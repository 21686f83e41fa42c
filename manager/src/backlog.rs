//! The bounded backlog: how many submitted tasks may wait for a worker.
//!
//! A submit takes a [`Permit`] before its job goes in; the permit travels
//! with the job and is given back when the job leaves the queue (sent to a
//! worker, or ended while it waited). A submitter that finds no room waits
//! in line: a thread parks, an async submit registers its waker, and a
//! permit given back goes straight to the first in line, so that nobody
//! overtakes a waiter and no waiter starves. A shutdown or a broken pool
//! closes the backlog: every waiter returns the refusal.
//!
//! ```text
//!   submit ──acquire──▶ Permit ──with the Job──▶ pending queue ──dispatch──▶ worker
//!     ▲  (waits in line                                  │
//!     │   when full)                                     ▼ drop(Permit)
//!     └──────────── handed to the first waiter ◀─── release
//! ```

use crate::failure::Refused;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{Thread, ThreadId};

/// Room for one task in the backlog, given back when dropped.
pub struct Permit {
    backlog: Arc<Backlog>,
    /// Taken from the places (given back on drop); `false` for a submit
    /// let in over the bound (see [`Backlog::acquire`]).
    counted: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.counted {
            self.backlog.release();
        }
    }
}

/// Why [`Backlog::try_acquire`] gave no permit.
#[derive(Debug, Clone)]
pub enum TryAcquireError {
    /// Every place is taken.
    Full,
    /// The pool takes no more tasks.
    Refused(Refused),
}

/// How a waiter is woken.
enum Wake {
    Thread(Thread),
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Self::Thread(thread) => thread.unpark(),
            Self::Task(waker) => waker.wake(),
        }
    }
}

struct State {
    /// Places not taken.
    free: usize,
    /// Submitters waiting, first in line first, by ticket.
    line: VecDeque<(u64, Wake)>,
    /// Tickets handed a permit that their waiter has not collected yet.
    granted: Vec<u64>,
    next_ticket: u64,
    closed: Option<Refused>,
    /// Submits that had to wait, in all.
    waited: u64,
}

/// The places for tasks waiting for a worker (see the module docs).
pub struct Backlog {
    capacity: usize,
    state: Mutex<State>,
    /// The pool's manager thread, which gives places back: it must never
    /// wait for one (a done callback runs there, and may submit).
    manager: OnceLock<ThreadId>,
}

impl fmt::Debug for Backlog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Backlog {
    /// A backlog of `capacity` places (at least 1).
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.max(1);
        Arc::new(Self {
            capacity,
            state: Mutex::new(State {
                free: capacity,
                line: VecDeque::new(),
                granted: Vec::new(),
                next_ticket: 0,
                closed: None,
                waited: 0,
            }),
            manager: OnceLock::new(),
        })
    }

    /// Names the thread that gives places back (the pool's manager thread).
    pub fn set_manager_thread(&self, thread: ThreadId) {
        let _ = self.manager.set(thread);
    }

    /// Its number of places.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Submitters waiting for a place now, and how many had to wait in all.
    pub fn waiting(&self) -> (usize, u64) {
        let state = self.state.lock();
        (state.line.len(), state.waited)
    }

    /// A place, at once if one is free and nobody waits.
    ///
    /// # Errors
    /// [`TryAcquireError::Full`], or the refusal of a closed backlog.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, TryAcquireError> {
        let mut state = self.state.lock();
        if let Some(refused) = &state.closed {
            return Err(TryAcquireError::Refused(refused.clone()));
        }
        if state.free > 0 && state.line.is_empty() {
            state.free -= 1;
            return Ok(self.permit());
        }
        Err(TryAcquireError::Full)
    }

    /// A place, blocking this thread in line until one is free.
    ///
    /// On the pool's own manager thread (a done callback that submits) it
    /// does not wait, since that thread is the one that frees places: the
    /// submit is let in over the bound.
    ///
    /// # Errors
    /// The refusal, when the backlog is closed (the pool shut down or
    /// broke) before a place came free.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Refused> {
        let ticket = {
            let mut state = self.state.lock();
            if let Some(refused) = &state.closed {
                return Err(refused.clone());
            }
            let full = state.free == 0 || !state.line.is_empty();
            if full && self.manager.get() == Some(&std::thread::current().id()) {
                return Ok(Permit {
                    backlog: Arc::clone(self),
                    counted: false,
                });
            }
            match self.take_or_queue(&mut state, || Wake::Thread(std::thread::current())) {
                Entry::Taken => return Ok(self.permit()),
                Entry::Closed(refused) => return Err(refused),
                Entry::Queued(ticket) => ticket,
            }
        };
        loop {
            // A wake-up meant for other code that parks this thread only
            // costs one more look.
            std::thread::park();
            let mut state = self.state.lock();
            match Self::collect(&mut state, ticket) {
                Some(Ok(())) => return Ok(self.permit()),
                Some(Err(refused)) => return Err(refused),
                None => {}
            }
        }
    }

    /// A place, waited for without blocking a thread.
    pub fn acquire_async(self: &Arc<Self>) -> Acquire {
        Acquire {
            backlog: Arc::clone(self),
            ticket: None,
        }
    }

    /// No more places: every waiter, and every later acquire, gets
    /// `refused`. Permits already out stay valid (their jobs are refused
    /// or run as the pool decides).
    pub fn close(&self, refused: Refused) {
        let waiters: Vec<Wake> = {
            let mut state = self.state.lock();
            if state.closed.is_none() {
                state.closed = Some(refused);
            }
            state.line.drain(..).map(|(_, wake)| wake).collect()
        };
        for wake in waiters {
            wake.wake();
        }
    }

    fn permit(self: &Arc<Self>) -> Permit {
        Permit {
            backlog: Arc::clone(self),
            counted: true,
        }
    }

    /// A free place taken, or a ticket in line with `wake`.
    fn take_or_queue(&self, state: &mut State, wake: impl FnOnce() -> Wake) -> Entry {
        if let Some(refused) = &state.closed {
            return Entry::Closed(refused.clone());
        }
        if state.free > 0 && state.line.is_empty() {
            state.free -= 1;
            return Entry::Taken;
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waited += 1;
        state.line.push_back((ticket, wake()));
        Entry::Queued(ticket)
    }

    /// Whether `ticket` was handed a place (taking it) or the backlog
    /// closed; `None` while it still waits.
    fn collect(state: &mut State, ticket: u64) -> Option<Result<(), Refused>> {
        if let Some(at) = state.granted.iter().position(|&t| t == ticket) {
            state.granted.swap_remove(at);
            return Some(Ok(()));
        }
        if let Some(refused) = &state.closed {
            let refused = refused.clone();
            state.line.retain(|(t, _)| *t != ticket);
            return Some(Err(refused));
        }
        None
    }

    /// A place comes free: straight to the first in line, or back to the
    /// free ones.
    fn release(&self) {
        let woken = {
            let mut state = self.state.lock();
            // A closed backlog has nobody in line (closing woke them all).
            match state.line.pop_front() {
                Some((ticket, wake)) => {
                    state.granted.push(ticket);
                    Some(wake)
                }
                None => {
                    state.free += 1;
                    None
                }
            }
        };
        if let Some(wake) = woken {
            wake.wake();
        }
    }

    /// A waiter gave up (its future was dropped): out of line, and a place
    /// it was handed goes on to the next.
    fn give_up(&self, ticket: u64) {
        let handed = {
            let mut state = self.state.lock();
            state.line.retain(|(t, _)| *t != ticket);
            match state.granted.iter().position(|&t| t == ticket) {
                Some(at) => {
                    state.granted.swap_remove(at);
                    true
                }
                None => false,
            }
        };
        if handed {
            self.release();
        }
    }
}

enum Entry {
    Taken,
    Queued(u64),
    Closed(Refused),
}

/// [`Backlog::acquire_async`]'s future: a place, or the refusal of a closed
/// backlog. Dropping it leaves the line (a place it was handed goes on to
/// the next waiter).
#[must_use = "a place is only waited for while the future is polled"]
pub struct Acquire {
    backlog: Arc<Backlog>,
    ticket: Option<u64>,
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Future for Acquire {
    type Output = Result<Permit, Refused>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let backlog = Arc::clone(&self.backlog);
        let mut state = backlog.state.lock();
        let Some(ticket) = self.ticket else {
            return match backlog.take_or_queue(&mut state, || Wake::Task(cx.waker().clone())) {
                Entry::Taken => Poll::Ready(Ok(backlog.permit())),
                Entry::Closed(refused) => Poll::Ready(Err(refused)),
                Entry::Queued(ticket) => {
                    self.ticket = Some(ticket);
                    Poll::Pending
                }
            };
        };
        match Backlog::collect(&mut state, ticket) {
            Some(result) => {
                self.ticket = None;
                drop(state);
                Poll::Ready(result.map(|()| backlog.permit()))
            }
            None => {
                // Polled again: keep the newest waker.
                if let Some((_, wake)) = state.line.iter_mut().find(|(t, _)| *t == ticket) {
                    if !matches!(wake, Wake::Task(w) if w.will_wake(cx.waker())) {
                        *wake = Wake::Task(cx.waker().clone());
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.backlog.give_up(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn noop_context() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn places_are_taken_and_given_back() {
        let backlog = Backlog::new(2);
        let a = backlog.try_acquire().unwrap();
        let _b = backlog.try_acquire().unwrap();
        assert!(matches!(backlog.try_acquire(), Err(TryAcquireError::Full)));
        drop(a);
        assert!(backlog.try_acquire().is_ok());
    }

    #[test]
    fn a_blocked_acquire_gets_the_place_given_back() {
        let backlog = Backlog::new(1);
        let held = backlog.acquire().unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let waiter = std::thread::spawn({
            let (backlog, got) = (Arc::clone(&backlog), Arc::clone(&got));
            move || {
                let permit = backlog.acquire().unwrap();
                got.store(1, Ordering::SeqCst);
                drop(permit);
            }
        });
        while backlog.waiting().0 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            got.load(Ordering::SeqCst),
            0,
            "it waits while the place is held"
        );
        drop(held);
        waiter.join().unwrap();
        assert_eq!(got.load(Ordering::SeqCst), 1);
        assert_eq!(backlog.waiting(), (0, 1));
    }

    #[test]
    fn closing_refuses_waiters_and_later_acquires() {
        let backlog = Backlog::new(1);
        let _held = backlog.acquire().unwrap();
        let waiter = std::thread::spawn({
            let backlog = Arc::clone(&backlog);
            move || backlog.acquire().map(drop)
        });
        while backlog.waiting().0 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        backlog.close(Refused::ShutDown);
        assert!(matches!(waiter.join().unwrap(), Err(Refused::ShutDown)));
        assert!(matches!(
            backlog.try_acquire(),
            Err(TryAcquireError::Refused(Refused::ShutDown))
        ));
    }

    #[test]
    fn async_waiters_are_served_in_line_and_a_dropped_one_passes_its_place_on() {
        let backlog = Backlog::new(1);
        let held = backlog.try_acquire().unwrap();
        let mut cx = noop_context();
        let mut first = Box::pin(backlog.acquire_async());
        let mut second = Box::pin(backlog.acquire_async());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(
            matches!(backlog.try_acquire(), Err(TryAcquireError::Full)),
            "no overtaking the line"
        );
        drop(held); // handed to `first`
        drop(first); // which gives up: on to `second`
        match second.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(_permit)) => {}
            other => panic!("the place went on to the next waiter: {other:?}"),
        }
    }
}
