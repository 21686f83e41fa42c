//! What starts the worker program: its path, arguments and environment,
//! built from the pool's [`Config`].
//!
//! The settings travel in environment variables (`procpool_ipc::env`), which
//! pass through wrappers (a shell script, `env`, `strace -f`); the worker
//! takes them out of its environment at once, so they reach only the worker
//! itself, never what its tasks start.

use crate::config::{Config, Launch, Source};
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
    let envp = environment(config, settings(config, forkserver))?;
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
        cwd: working_directory(config)?,
    };
    Ok((spec, program))
}

/// The command that starts a worker through `source`'s launcher: the
/// launcher's argv, then the worker program, its settings in its first
/// argument (a launcher may not pass the environment on) and the pool's
/// worker arguments; quoted for a shell when the launcher hands the command
/// to one (ssh). Also the command line, for messages.
pub(crate) fn launch_spec(config: &Config, source: &Source) -> io::Result<(SpawnSpec, String)> {
    let Launch::Command {
        argv: launcher,
        through_shell,
    } = &source.launch
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a local source has no launcher",
        ));
    };
    let first = launcher.first().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the launcher command is empty")
    })?;
    let program = match (&source.program, &config.program) {
        (Some(program), _) | (None, Some(program)) => program.clone(),
        // A shared file system, as on clusters: the same path there.
        (None, None) => program(config)?,
    };
    let pairs: Vec<(&str, String)> = settings(config, false)
        .into_iter()
        .filter(|(name, _)| *name != env::WORKER && *name != env::FORKSERVER)
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    let mut command: Vec<OsString> = vec![
        program.clone().into_os_string(),
        env::settings_arg(pairs.iter().map(|(n, v)| (*n, v.as_str()))).into(),
    ];
    command.extend(config.args.iter().cloned());
    let mut argv: Vec<OsString> = launcher.clone();
    if *through_shell {
        let quoted: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
        argv.push(quoted.join(" ").into());
    } else {
        argv.extend(command);
    }
    let line = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut c_argv = Vec::with_capacity(argv.len());
    for arg in argv {
        c_argv.push(c_string(arg.into_vec(), "a launcher argument")?);
    }
    // The pool's own variables stay out: the settings are in the argument.
    let no_settings = vec![(env::WORKER, None), (env::FORKSERVER, None)];
    let spec = SpawnSpec {
        program: c_string(first.as_bytes().to_vec(), "the launcher's name")?,
        argv: c_argv,
        envp: environment(config, no_settings)?,
        cwd: working_directory(config)?,
    };
    Ok((spec, line))
}

/// `arg` as one word for a POSIX shell: single-quoted, a `'` in it closed,
/// escaped and reopened.
fn shell_quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.into_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn working_directory(config: &Config) -> io::Result<Option<CString>> {
    config
        .cwd
        .as_ref()
        .map(|dir| c_string(dir.as_os_str().as_bytes().to_vec(), "the working directory"))
        .transpose()
}

/// This process's environment (unless cleared) with the pool's changes and
/// then `settings` applied, as `NAME=value` C strings.
fn environment(
    config: &Config,
    settings: Vec<(&'static str, Option<String>)>,
) -> io::Result<Vec<CString>> {
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
    for (key, value) in settings {
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
    Ok(envp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_a_shell_only_when_they_need_it() {
        assert_eq!(
            shell_quote(OsStr::new("/opt/bin/worker")),
            "/opt/bin/worker"
        );
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_quote(OsStr::new("$HOME;rm")), "'$HOME;rm'");
    }

    #[test]
    fn a_launched_worker_gets_its_settings_in_its_first_argument() {
        let config = Config {
            program: Some("/opt/my worker".into()),
            max_tasks_per_child: Some(3),
            ..Config::default()
        };
        let ssh = Source {
            name: "ssh to h".into(),
            launch: Launch::Command {
                argv: vec!["ssh".into(), "h".into()],
                through_shell: true,
            },
            slots: 1,
            program: None,
        };
        let (spec, line) = launch_spec(&config, &ssh).unwrap();
        assert_eq!(spec.argv.len(), 3, "ssh, host, one command string: {line}");
        let command = spec.argv[2].to_str().unwrap();
        assert!(
            command.starts_with("'/opt/my worker' --procpool-worker=v3:"),
            "{command}"
        );
        let arg = command.split(' ').nth(2).unwrap();
        let pairs = env::parse_settings_arg(arg).unwrap().unwrap();
        assert!(
            pairs.contains(&(env::MAX_TASKS.to_owned(), "3".to_owned())),
            "{pairs:?}"
        );
        assert!(spec
            .envp
            .iter()
            .all(|e| !e.to_bytes().starts_with(env::WORKER.as_bytes())));

        let srun = Source {
            launch: Launch::Command {
                argv: vec!["srun".into(), "-n1".into()],
                through_shell: false,
            },
            ..ssh
        };
        let (spec, _) = launch_spec(&config, &srun).unwrap();
        assert_eq!(
            spec.argv[2].to_str().unwrap(),
            "/opt/my worker",
            "no quoting"
        );
    }
}
