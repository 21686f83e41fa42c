//! The error types: one small type per way a read, a wait or a completion can fail.

use std::error::Error;
use std::fmt;

use crate::State;

/// The future was cancelled before it ran, or stopped by its executor after an
/// [`abort`](crate::Future::abort).
///
/// A future's error type `E` must be `From<Cancelled>`, so reading a cancelled
/// future can return it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future was cancelled")
    }
}

impl Error for Cancelled {}

/// A wait for a future's outcome timed out.
///
/// Only the *wait* ended: the task was not touched and may still finish (use
/// [`Future::abort`](crate::Future::abort) to stop it). A future's error type
/// `E` must be `From<Timeout>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "timed out waiting for the future; the task was not touched and may still finish",
        )
    }
}

impl Error for Timeout {}

/// The outcome was already moved out by [`Future::into_result`](crate::Future::into_result)
/// on another handle of the same future.
///
/// Only `into_result` requires `E: From<Taken>`. It converts this error into an
/// `E` when it moves the outcome out and leaves that `E` behind, so the other
/// handles read it as the future's error from then on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Taken;

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the future's outcome was already taken by `into_result` on another handle")
    }
}

impl Error for Taken {}

/// A [`Completer`](crate::Completer) tried to complete a future that is already
/// done: CPython's `InvalidStateError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidState {
    state: State,
}

impl InvalidState {
    pub(crate) fn new(state: State) -> Self {
        InvalidState { state }
    }

    /// The state the future was in: [`State::Finished`] or [`State::Cancelled`].
    pub fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Pending => "pending",
            State::Running => "running",
            State::Finished => "finished",
            State::Cancelled => "cancelled",
        };
        write!(f, "invalid state: the future is already {state}")
    }
}

impl Error for InvalidState {}

/// [`as_completed`](crate::as_completed) timed out with futures still unfinished.
///
/// `Display` reads like CPython's: "2 (of 4) futures unfinished".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsCompletedTimeout {
    unfinished: usize,
    total: usize,
}

impl AsCompletedTimeout {
    pub(crate) fn new(unfinished: usize, total: usize) -> Self {
        AsCompletedTimeout { unfinished, total }
    }

    /// How many futures were not done when the time ran out.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// How many distinct futures were given to `as_completed`.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl fmt::Display for AsCompletedTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.unfinished, self.total
        )
    }
}

impl Error for AsCompletedTimeout {}

impl From<AsCompletedTimeout> for Timeout {
    fn from(_: AsCompletedTimeout) -> Self {
        Timeout
    }
}
