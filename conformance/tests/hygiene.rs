//! Process hygiene: the worker marker reaches only the worker (a task may
//! run a procpool program, or build a pool of its own); a wrapper program
//! between the pool and its worker works; a worker starts with only fds 0-2
//! and its channel, and its tasks' subprocesses inherit nothing; codec
//! errors read as sentences. (A killed fork server comes back:
//! `forkserver.rs`.)
//!
//! The fd test leaks an fd without close-on-exec in this process on purpose
//! (the host's mistake that must not reach workers), hence a file of its
//! own.

mod util;

use procpool::{CodecOp, Error};
use procpool_conformance::tasks::*;
use procpool_conformance::APP_RAN;
use std::os::fd::AsRawFd;
use util::HANG;

#[test]
fn a_task_can_run_a_procpool_program_as_a_plain_subprocess() {
    let pool = util::pool(1);
    let printed = pool
        .submit(RUN_APP, ())
        .unwrap()
        .result(Some(HANG))
        .unwrap();
    assert_eq!(
        printed.trim(),
        APP_RAN,
        "the subprocess took itself for a worker"
    );
}

#[test]
fn a_task_can_build_a_pool_of_its_own() {
    let pool = util::pool(1);
    assert_eq!(
        pool.submit(NESTED_POOL, 7).unwrap().result(Some(HANG)),
        Ok(49)
    );
}

#[test]
fn a_worker_behind_a_wrapper_that_forks_serves() {
    // `sh -c 'prog; exit $?'` forks: the worker's parent is the shell. The
    // fork server behind it forks children that are not the pool's, so the
    // pool does without it and spawns.
    let pool = procpool::Pool::builder()
        .max_workers(2)
        .worker_program("sh")
        .worker_args(["-c", r#""$0"; exit $?"#, util::WORKER])
        .build()
        .unwrap();
    let squares = util::within(HANG, "tasks through a wrapper", move || {
        let futures: Vec<_> = (0..10).map(|x| pool.submit(SQUARE, x).unwrap()).collect();
        let squares: Vec<_> = futures.into_iter().map(|f| f.result(None)).collect();
        (squares, pool.stats())
    });
    assert_eq!(squares.0, (0..10).map(|x| Ok(x * x)).collect::<Vec<_>>());
    assert_eq!(squares.1.workers_forked, 0, "{:?}", squares.1);
}

/// A file opened without close-on-exec, as a careless host (or C library)
/// leaves one: it must reach neither a worker nor its task's subprocesses.
fn leak_an_fd() -> (std::fs::File, String) {
    let path = std::env::temp_dir().join(format!("procpool-leaked-{}", std::process::id()));
    let file = std::fs::File::create(&path).expect("a temporary file");
    // SAFETY: fcntl on an fd this function owns; clearing FD_CLOEXEC is the
    // mistake under test.
    let ret = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, 0) };
    assert_eq!(ret, 0, "fcntl: {}", std::io::Error::last_os_error());
    (file, path.to_string_lossy().into_owned())
}

#[test]
fn workers_and_their_subprocesses_inherit_no_fd_of_the_host() {
    let (_leaked, path) = leak_an_fd();
    for fork_server in [true, false] {
        let pool = util::builder(1).fork_server(fork_server).build().unwrap();
        let worker = pool
            .submit(OPEN_FDS, ())
            .unwrap()
            .result(Some(HANG))
            .unwrap();
        assert!(
            !worker.iter().any(|fd| fd.contains(&path)),
            "the worker inherited the host's fd (fork server {fork_server}): {worker:#?}"
        );
        let child = pool
            .submit(CHILD_OPEN_FDS, ())
            .unwrap()
            .result(Some(HANG))
            .unwrap();
        // fds 0-2, and the directory the child lists them from.
        assert!(
            child.len() <= 4,
            "the task's subprocess inherited: {child:#?}"
        );
        assert!(
            child.iter().all(|fd| fd.starts_with(['0', '1', '2', '3'])),
            "{child:#?}"
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn codec_errors_read_as_sentences() {
    let pool = util::pool(1);
    let undecodable = pool
        .submit(UNDECODABLE_ARGS, procpool_conformance::Undecodable)
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    let wrong = pool
        .submit(procpool::Task::<(), u64>::new("wrong_output_type"), ())
        .unwrap()
        .result(Some(HANG))
        .unwrap_err();
    util::assert_codec_failure(&undecodable, "undecodable_args", CodecOp::DecodeArgs, None);
    util::assert_codec_failure(&wrong, "wrong_output_type", CodecOp::DecodeOutput, None);
    for error in [&undecodable, &wrong] {
        let text = error.to_string();
        for internal in ["OtherString", "UnexpectedEnd", "LimitExceeded", "{", "Err("] {
            assert!(!text.contains(internal), "{internal} in {text:?}");
        }
        assert!(std::error::Error::source(error).is_some(), "{error:?}");
    }
    assert!(matches!(undecodable, Error::Codec(_)));
}
