//! Starting a worker through a launcher (ssh, srun, `kubectl exec`, any
//! wrapper): the launcher is the pool's child, the worker may not be. Its
//! stderr comes back through a pipe that a thread relays to this process's
//! stderr, line by line under the source's name, keeping the last lines:
//! when a worker ends before its `Hello` (a host down, a key refused, no
//! program there), they say why.
//!
//! ```text
//!  pool ──posix_spawn──▶ launcher (ssh HOST 'program --procpool-worker=v3:…')
//!    calls  ═══stdin═══▶      ═══▶ worker's stdin
//!    results ◀══stdout══      ◀═══ worker's stdout
//!    relay thread ◀═stderr═   ◀═══ worker's and launcher's stderr
//! ```

use super::command;
use super::{Process, StartError, Started};
use crate::config::{Config, Source};
use crate::sys;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The last stderr lines of a launched worker kept for its error messages.
const TAIL_LINES: usize = 8;
/// The longest line kept whole.
const TAIL_LINE_LEN: usize = 300;

/// The end of a launched worker's stderr, as far as it has arrived.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    state: Mutex<TailState>,
    /// Notified when the relay reaches the end of the pipe.
    ended: Condvar,
}

#[derive(Debug, Default)]
struct TailState {
    lines: VecDeque<String>,
    /// The relay has read the pipe to its end (or could not start).
    ended: bool,
}

impl StderrTail {
    /// The lines kept, joined with "; " (empty when there were none), once
    /// the relay has read the pipe to its end or `within` has passed.
    ///
    /// The relay is a thread of its own: when a launcher exits (ssh after
    /// "Permission denied"), its last line may not be read yet when the
    /// pool learns of the exit. The pipe ends with the launcher unless
    /// something it started keeps it open, hence the bound.
    pub(crate) fn text_when_ended(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock();
        while !state.ended {
            if self.ended.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        state.lines.iter().cloned().collect::<Vec<_>>().join("; ")
    }

    fn end(&self) {
        self.state.lock().ended = true;
        self.ended.notify_all();
    }

    fn push(&self, line: &str) {
        let mut line = line.trim_end().to_owned();
        if line.is_empty() {
            return;
        }
        if line.len() > TAIL_LINE_LEN {
            let mut cut = TAIL_LINE_LEN;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let lines = &mut self.state.lock().lines;
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Starts a worker of `source` (one with a launcher).
pub(crate) fn launch(
    config: &Config,
    index: usize,
    source: &Source,
) -> Result<Started, StartError> {
    let what = |e| StartError::new(format!("cannot start a worker ({})", source.name), e);
    let (calls_read, calls_write) = sys::pipe().map_err(what)?;
    let (results_read, results_write) = sys::pipe().map_err(what)?;
    let (stderr_read, stderr_write) = sys::pipe().map_err(what)?;
    let (spec, line) = command::launch_spec(config, source)
        .map_err(|e| StartError::new(format!("cannot build the command of {}", source.name), e))?;
    let pid = sys::spawn_with_stderr(&spec, &calls_read, &results_write, Some(&stderr_write))
        .map_err(|e| StartError::new(format!("{} ({line})", source.name), e))?;
    drop((calls_read, results_write, stderr_write));
    let tail = Arc::new(StderrTail::default());
    relay(stderr_read, &source.name, Arc::clone(&tail));
    log::debug!("procpool: launched a worker with {line} (pid {pid})");
    Ok(Started {
        process: Process::new(pid),
        calls: calls_write,
        results: results_read,
        forked: false,
        source: index,
        stderr: Some(tail),
    })
}

/// Relays `stderr` to this process's stderr, each line under `name`, and
/// keeps the last lines in `tail`; ends with the pipe (the launcher and the
/// worker gone). Without a thread, the lines go unrelayed: the pipe is
/// dropped and the worker's writes to it fail, which it survives.
fn relay(stderr: OwnedFd, name: &str, tail: Arc<StderrTail>) {
    let prefix = format!("[{name}] ");
    let tail_if_not_started = Arc::clone(&tail);
    let started = std::thread::Builder::new()
        .name("procpool-stderr".into())
        .spawn(move || {
            let mut lines = BufReader::new(std::fs::File::from(stderr));
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return tail.end(),
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                tail.push(&text);
                let mut out = std::io::stderr().lock();
                let _ = out.write_all(prefix.as_bytes());
                let _ = out.write_all(&line);
                if !line.ends_with(b"\n") {
                    let _ = out.write_all(b"\n");
                }
            }
        });
    if let Err(e) = started {
        log::warn!("procpool: cannot relay a launched worker's stderr: {e}");
        tail_if_not_started.end();
    }
}
