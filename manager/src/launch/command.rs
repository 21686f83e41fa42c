//! What starts the worker program: its path, arguments and environment,
//! built from the pool's [`Config`].
//!
//! The settings travel in environment variables (`procpool_ipc::env`), which
//! pass through wrappers (a shell script, `env`, `strace -f`); the worker
//! takes them out of its environment at once, so they reach only the worker
//! itself, never what its tasks start.

use crate::config::Config;
use crate::sys::SpawnSpec;
use procpool_ipc::env;
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The worker program's path: the configured one, or the current
/// executable.
pub(crate) fn program(config: &Config) -> io::Result<PathBuf> {
    match &config.program {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot find the current executable: {e}"))
        }),
    }
}

/// The variables a worker (or, with `forkserver`, the fork server) is
/// started with, on top of this process's environment and the pool's
/// `env`.
fn settings(config: &Config, forkserver: bool) -> Vec<(&'static str, Option<String>)> {
    vec![
        (env::WORKER, Some(env::WORKER_MODE.to_owned())),
        (env::MAX_FRAME_LEN, Some(config.max_frame_len.to_string())),
        (env::FORKSERVER, forkserver.then(|| "1".to_owned())),
        (
            env::MAX_TASKS,
            config.max_tasks_per_child.map(|n| n.to_string()),
        ),
        (
            env::MAX_MEMORY,
            config.max_memory_per_child.map(|n| n.to_string()),
        ),
        (
            env::MEMORY_LIMIT,
            config.memory_limit.map(|n| n.to_string()),
        ),
        (
            env::INITIALIZER,
            config.initializer.as_ref().map(|(name, _)| name.clone()),
        ),
        (
            env::INITIALIZER_ARGS,
            config
                .initializer
                .as_ref()
                .map(|(_, args)| env::hex_encode(args)),
        ),
    ]
}

fn c_string(bytes: Vec<u8>, what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// The command that starts the worker program (`forkserver`: as the fork
/// server) as `config` says, and the program's path for messages.
pub(crate) fn spawn_spec(config: &Config, forkserver: bool) -> io::Result<(SpawnSpec, PathBuf)> {
    let mut program = program(config)?;
    if config.cwd.is_some() && program.is_relative() && program.components().count() > 1 {
        // `bin/worker` names a file from here, not from the workers'
        // directory; a bare name is still looked up in PATH.
        program = std::path::absolute(&program)?;
    }
    let mut vars: BTreeMap<OsString, OsString> = if config.env_clear {
        BTreeMap::new()
    } else {
        std::env::vars_os().collect()
    };
    for (key, value) in &config.env {
        match value {
            Some(value) => vars.insert(key.clone(), value.clone()),
            None => vars.remove(key),
        };
    }
    for (key, value) in settings(config, forkserver) {
        match value {
            Some(value) => vars.insert(key.into(), value.into()),
            None => vars.remove(OsStr::new(key)),
        };
    }
    let mut envp = Vec::with_capacity(vars.len());
    for (key, value) in vars {
        let mut entry = key.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        envp.push(c_string(entry, "an environment variable")?);
    }
    let mut argv = vec![c_string(
        program.as_os_str().as_bytes().to_vec(),
        "the program's path",
    )?];
    for arg in &config.args {
        argv.push(c_string(arg.as_bytes().to_vec(), "an argument")?);
    }
    let spec = SpawnSpec {
        program: c_string(
            program.as_os_str().as_bytes().to_vec(),
            "the program's path",
        )?,
        argv,
        envp,
        cwd: config
            .cwd
            .as_ref()
            .map(|dir| c_string(dir.as_os_str().as_bytes().to_vec(), "the working directory"))
            .transpose()?,
    };
    Ok((spec, program))
}
