//! procpool-testkit: what the tests of several procpool crates share, so that
//! none keeps its own copy: a child subreaper that reaps a killed process's
//! orphans within a bound, and processes as `/proc` shows them.
//!
//! A dev-dependency only (of procpool-conformance and procpool-worker), never
//! published. It depends on libc and procfs, never on procpool's own crates:
//! any of them can use it, and it tests nothing of theirs by itself.
//!
//! ```no_run
//! use procpool_testkit::{become_child_subreaper, reap_within, Ended};
//! use std::time::Duration;
//!
//! become_child_subreaper(); // process-global: a test file of its own
//! # let orphan = 0;
//! // ... kill the parent of `orphan`, which becomes our child ...
//! assert_eq!(
//!     reap_within(orphan, Duration::from_secs(10)),
//!     Some(Ended::Signal(libc::SIGKILL))
//! );
//! ```
//!
//! Modules: `reaper` (the subreaper and its `waitpid` loop), `process`
//! (`/proc` through procfs), `sys` (the OS calls).
#![deny(unsafe_code)]

mod process;
mod reaper;
#[allow(unsafe_code)] // the OS calls, each with its SAFETY note
mod sys;

pub use process::{children, children_of, env_var, open_fds, pids, stat, thread_names, Stat};
pub use reaper::{become_child_subreaper, reap_within, Ended};
