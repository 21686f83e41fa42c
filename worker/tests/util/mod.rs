//! Shared by the process tests: starts `examples/standalone_worker` as a real
//! child process the way a pool would (call pipe on its stdin, result pipe on
//! its stdout, the `PROCPOOL_*` environment) and speaks the protocol to it by
//! hand with procpool-ipc.
//!
//! Every read and every wait has a generous deadline, so a broken worker fails
//! its test instead of hanging it, and a [`Worker`] kills and reaps its
//! process when dropped: no test leaves a process or a zombie behind.
#![allow(dead_code)] // each test file uses its own part of this module

use procpool_ipc::{
    env, AbortCause, Call, CallKind, ExitReason, FrameBuf, FrameReader, FromWorker, Hello, Outcome,
    RemoteError, Task, ToWorker,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any one read or wait may take before the test fails. Generous:
/// the tests run in parallel on a noisy 2-core machine.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The example binary. A plain `cargo test` builds examples before it runs
/// tests (`cargo test --test <file>` does not: run `cargo build --examples`
/// first), and this test runs as `target/<profile>/deps/<test>-<hash>`.
pub(crate) fn worker_program() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let program = profile_dir.join("examples").join("standalone_worker");
    assert!(
        program.is_file(),
        "{} is missing: build it with `cargo test` (which builds examples) or \
         `cargo build --example standalone_worker`",
        program.display()
    );
    program
}

/// A command for the example with a clean `PROCPOOL_*` environment.
pub(crate) fn worker_command() -> Command {
    let mut command = Command::new(worker_program());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PROCPOOL_") {
            command.env_remove(key);
        }
    }
    command
}

/// The environment a pool sets for a worker it spawns itself.
pub(crate) fn pool_env(command: &mut Command) -> &mut Command {
    command.env(env::WORKER, env::WORKER_MODE)
}

/// The hex of an initializer's encoded arguments.
pub(crate) fn initializer_args<A: Serialize, O>(task: Task<A, O>, args: &A) -> String {
    let mut bytes = Vec::new();
    task.encode_args(args, &mut bytes).expect("encodable");
    env::hex_encode(&bytes)
}

/// A message from the worker, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Hello(Hello),
    Done {
        id: u64,
        outcome: Result<Vec<u8>, RemoteError>,
    },
    Exiting(ExitReason),
    Aborting(AbortCause),
    /// The result pipe ended between frames.
    Eof,
}

/// A reader that waits at most until its deadline for each read.
pub(crate) struct DeadlineReader<R> {
    inner: R,
    timeout: Duration,
}

impl<R: Read + AsRawFd> Read for DeadlineReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing arrived from the worker in {:?}", self.timeout),
                ));
            }
            let mut pollfd = libc::pollfd {
                fd: self.inner.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
            // SAFETY: `pollfd` is one valid, initialised pollfd that outlives
            // the call, and the count passed is 1.
            let ready = unsafe { libc::poll(&mut pollfd, 1, ms) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready > 0 {
                return self.inner.read(buf);
            }
        }
    }
}

/// A worker process and the test's ends of its pipes.
pub(crate) struct Worker {
    child: Child,
    calls: Option<ChildStdin>,
    results: FrameReader<DeadlineReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
    out: FrameBuf,
    next_id: u64,
    reaped: bool,
}

impl Worker {
    /// Starts the example with the pool's environment plus `extra`.
    pub(crate) fn start(extra: &[(&str, &str)]) -> Self {
        let mut command = worker_command();
        pool_env(&mut command);
        for (key, value) in extra {
            command.env(key, value);
        }
        Self::spawn(command)
    }

    /// Starts the example and reads its `Hello`.
    pub(crate) fn start_hello(extra: &[(&str, &str)]) -> (Self, Hello) {
        let mut worker = Self::start(extra);
        let hello = worker.hello();
        (worker, hello)
    }

    /// Spawns `command` with its stdin, stdout and stderr piped.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the worker program starts");
        let calls = child.stdin.take();
        let results = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Drained all along, so that a task printing a lot never blocks.
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        Self {
            child,
            calls,
            results: FrameReader::new(DeadlineReader {
                inner: results,
                timeout: DEADLINE,
            }),
            stderr: Some(stderr),
            out: FrameBuf::new(),
            next_id: 1,
            reaped: false,
        }
    }

    /// The worker's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `/proc` calls the test's ends of the call and result pipes
    /// (`pipe:[inode]`), which are also what it calls the worker's ends.
    pub(crate) fn channel_pipes(&self) -> [PathBuf; 2] {
        let calls = self
            .calls
            .as_ref()
            .expect("the call pipe is open")
            .as_raw_fd();
        let results = self.results.get_ref().inner.as_raw_fd();
        [calls, results].map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("our own fd has a link")
        })
    }

    /// Reads the next message.
    ///
    /// # Panics
    /// When nothing valid arrives before the deadline.
    pub(crate) fn next_message(&mut self) -> Message {
        let frame = match self.results.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Message::Eof,
            Err(e) => panic!("reading the worker's next frame: {e}"),
        };
        match FromWorker::decode(frame).expect("the worker sends valid messages") {
            FromWorker::Hello(hello) => Message::Hello(hello),
            FromWorker::Done(done) => Message::Done {
                id: done.id,
                outcome: match done.outcome {
                    Outcome::Output(bytes) => Ok(bytes.to_vec()),
                    Outcome::Error(e) => Err(e),
                },
            },
            FromWorker::Exiting(reason) => Message::Exiting(reason),
            FromWorker::Aborting(cause) => Message::Aborting(cause),
        }
    }

    /// Reads the `Hello` and checks its magic and version.
    pub(crate) fn hello(&mut self) -> Hello {
        match self.next_message() {
            Message::Hello(hello) => {
                hello.check().expect("a current procpool Hello");
                hello
            }
            other => panic!("expected Hello first, got {other:?}"),
        }
    }

    /// Queues a message; [`flush`](Self::flush) writes it.
    pub(crate) fn queue(&mut self, message: &ToWorker<'_>) {
        self.out.push(message).expect("an encodable message");
    }

    /// Writes everything queued, in one go.
    pub(crate) fn flush(&mut self) {
        let calls = self.calls.as_mut().expect("the call pipe is open");
        self.out
            .write_to(calls)
            .expect("the worker reads its calls");
    }

    /// Writes raw bytes on the call pipe.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        let calls = self.calls.as_mut().expect("the call pipe is open");
        calls.write_all(bytes).expect("the worker reads its calls");
    }

    /// Sends one message.
    pub(crate) fn send(&mut self, message: &ToWorker<'_>) {
        self.queue(message);
        self.flush();
    }

    /// Queues a call of `task` with an already encoded payload; returns its id.
    pub(crate) fn queue_raw_call(&mut self, task: &str, kind: CallKind, payload: &[u8]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.queue(&ToWorker::Call(Call {
            spin_us: 0,
            id,
            task,
            kind,
            payload,
        }));
        id
    }

    /// Queues a single call; returns its id.
    pub(crate) fn queue_call<A: Serialize, O>(&mut self, task: Task<A, O>, args: &A) -> u64 {
        let mut payload = Vec::new();
        task.encode_args(args, &mut payload).expect("encodable");
        self.queue_raw_call(task.name(), CallKind::Single, &payload)
    }

    /// Reads the `Done` of call `id`.
    pub(crate) fn done(&mut self, id: u64) -> Result<Vec<u8>, RemoteError> {
        match self.next_message() {
            Message::Done { id: got, outcome } => {
                assert_eq!(got, id, "Done for another call");
                outcome
            }
            other => panic!("expected Done for call {id}, got {other:?}"),
        }
    }

    /// Reads the `Done` of call `id` of `task` and decodes its output.
    pub(crate) fn done_of<A, O: DeserializeOwned>(
        &mut self,
        task: Task<A, O>,
        id: u64,
    ) -> Result<O, RemoteError> {
        self.done(id)
            .map(|bytes| task.decode_output(&bytes).expect("a decodable output"))
    }

    /// Calls `task` and waits for its result.
    pub(crate) fn call<A: Serialize, O: DeserializeOwned>(
        &mut self,
        task: Task<A, O>,
        args: &A,
    ) -> Result<O, RemoteError> {
        let id = self.queue_call(task, args);
        self.flush();
        self.done_of(task, id)
    }

    /// Calls a task by raw name and payload and waits for the raw result.
    pub(crate) fn call_raw(
        &mut self,
        task: &str,
        kind: CallKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        let id = self.queue_raw_call(task, kind, payload);
        self.flush();
        self.done(id)
    }

    /// Closes the call pipe: the worker sees EOF.
    pub(crate) fn close_calls(&mut self) {
        self.calls = None;
    }

    /// Sends `signal` to the worker (which has not been reaped yet, so the
    /// pid is still its own).
    pub(crate) fn signal(&self, signal: libc::c_int) {
        assert!(!self.reaped, "signalling a reaped worker");
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill only sends a signal; `pid` is our unreaped child, so it
        // cannot name another process.
        let ret = unsafe { libc::kill(pid, signal) };
        assert_eq!(ret, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits for the worker to exit (closing nothing), reaps it and returns
    /// its status and everything it wrote to stderr.
    ///
    /// # Panics
    /// When it has not exited within the deadline (it is killed first).
    pub(crate) fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.reap();
        self.calls = None;
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().expect("the stderr thread does not panic"))
            .unwrap_or_default();
        (status, stderr)
    }

    /// Waits for the process to exit and reaps it, leaving the call pipe open
    /// and stderr unread (a process it started may still hold them).
    ///
    /// # Panics
    /// When it has not exited within the deadline (it is killed first).
    pub(crate) fn reap(&mut self) -> ExitStatus {
        // Reaped either way: `reap_within` kills and reaps before it panics.
        self.reaped = true;
        reap_within(&mut self.child, DEADLINE)
    }

    /// Reads until the result pipe ends (the worker must send nothing more),
    /// then waits for the exit.
    pub(crate) fn expect_eof_and_exit(&mut self) -> (ExitStatus, String) {
        let message = self.next_message();
        assert_eq!(message, Message::Eof, "nothing more after the end");
        self.wait()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.calls = None;
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

/// `status` is a normal exit with `code`; the message shows stderr otherwise.
pub(crate) fn assert_exit_code(status: ExitStatus, code: i32, stderr: &str) {
    assert_eq!(
        status.code(),
        Some(code),
        "worker exit status {status:?} (signal {:?}); its stderr:\n{stderr}",
        status.signal()
    );
}

impl Worker {
    /// Stops reading the worker's results for good: the test's end of the
    /// result pipe becomes /dev/null, so the pipe has no reader left (what a
    /// worker sees when its pool's process is gone, whoever its parent is).
    pub(crate) fn hang_up_results(&mut self) {
        let null = std::fs::File::open("/dev/null").expect("/dev/null opens");
        let fd = self.results.get_ref().inner.as_raw_fd();
        // SAFETY: dup2 takes two integers; `fd` is this struct's own open
        // read end, which now names /dev/null instead (its pipe end closes).
        let ret = unsafe { libc::dup2(null.as_raw_fd(), fd) };
        assert_eq!(ret, fd, "dup2: {}", io::Error::last_os_error());
    }
}

impl Worker {
    /// Waits until the worker has read everything sent on its call pipe
    /// (the pipe holds no byte): it then runs what it read.
    ///
    /// # Panics
    /// When bytes are still there after the deadline.
    pub(crate) fn wait_until_calls_taken(&self) {
        let fd = self
            .calls
            .as_ref()
            .expect("the call pipe is open")
            .as_raw_fd();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut unread: libc::c_int = 0;
            // SAFETY: FIONREAD writes one c_int, the bytes in the pipe, into
            // `unread`, which lives on this frame.
            let ret = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) };
            assert_eq!(ret, 0, "FIONREAD: {}", io::Error::last_os_error());
            if unread == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{unread} bytes of calls unread");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Waits up to `limit` for `child` to exit and reaps it.
///
/// # Panics
/// When it has not exited by then (it is killed and reaped first).
pub(crate) fn reap_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait works") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("worker {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
