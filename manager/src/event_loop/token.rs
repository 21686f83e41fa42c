//! The poll's tokens, typed: which source an event came from.

use mio::Token;

/// A source of events in the manager's poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A caller's command, or a worker from the spawner thread.
    Waker,
    /// The deadline timer.
    Timer,
    /// The result pipe of the worker in this slot.
    Results(usize),
    /// The call pipe of the worker in this slot has room again.
    Calls(usize),
    /// The worker in this slot has exited.
    Pidfd(usize),
}

/// Per-slot sources, and how many of them a slot spans in token space.
const RESULTS: usize = 0;
const CALLS: usize = 1;
const PIDFD: usize = 2;
const PER_SLOT: usize = 3;

impl Source {
    pub(crate) fn token(self) -> Token {
        Token(match self {
            Self::Waker => usize::MAX,
            Self::Timer => usize::MAX - 1,
            Self::Results(slot) => slot * PER_SLOT + RESULTS,
            Self::Calls(slot) => slot * PER_SLOT + CALLS,
            Self::Pidfd(slot) => slot * PER_SLOT + PIDFD,
        })
    }

    pub(crate) fn from_token(Token(token): Token) -> Self {
        match token {
            usize::MAX => Self::Waker,
            t if t == usize::MAX - 1 => Self::Timer,
            t => match (t / PER_SLOT, t % PER_SLOT) {
                (slot, RESULTS) => Self::Results(slot),
                (slot, CALLS) => Self::Calls(slot),
                (slot, _) => Self::Pidfd(slot),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_comes_back_from_its_token() {
        let sources = [
            Source::Waker,
            Source::Timer,
            Source::Results(0),
            Source::Calls(0),
            Source::Pidfd(0),
            Source::Results(7),
            Source::Calls(1000),
            Source::Pidfd(123_456),
        ];
        for source in sources {
            assert_eq!(Source::from_token(source.token()), source);
        }
    }
}
