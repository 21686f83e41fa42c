//! How a worker was started: the [`Settings`] a pool passes in the
//! environment (`procpool_ipc::env`), taken out of it at once so that they
//! reach only the worker itself.
//!
//! A task may run a program that uses procpool, as a plain subprocess or
//! with a pool of its own: were the marker left in the environment, that
//! program would take itself for a worker.

use procpool_ipc::{env, DEFAULT_MAX_FRAME_LEN};
use std::fmt;

/// A worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Exit after this many calls (`max_tasks_per_child`).
    pub max_tasks: Option<u64>,
    /// The initializer's task name and encoded arguments.
    pub initializer: Option<(String, Vec<u8>)>,
    /// The frame limit for both directions.
    pub max_frame_len: usize,
    /// After a call that leaves the resident set above this many bytes, say
    /// `Exiting(MemoryCeiling)` and exit (`max_memory_per_child`).
    pub max_memory: Option<u64>,
    /// The address-space limit (`RLIMIT_AS`) in bytes, set before serving.
    pub memory_limit: Option<u64>,
    /// Started by a launcher, its settings in its arguments
    /// (`procpool_ipc::env::WORKER_ARG`): the pool cannot signal it, so it
    /// reads its channel while a task runs and obeys `Stop` frames.
    pub launched: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_tasks: None,
            initializer: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_memory: None,
            memory_limit: None,
            launched: false,
        }
    }
}

/// A worker setting with a value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad worker setting {}={:?}", self.variable, self.value)
    }
}

impl std::error::Error for SettingsError {}

/// What the pool started this process as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Worker,
    /// A fork server (`procpool_ipc::env::FORKSERVER`): it forks workers.
    ForkServer,
}

/// Every variable of the worker contract, removed from the environment once
/// read.
const VARIABLES: [&str; 8] = [
    env::WORKER,
    env::FORKSERVER,
    env::MAX_TASKS,
    env::MAX_FRAME_LEN,
    env::MAX_MEMORY,
    env::MEMORY_LIMIT,
    env::INITIALIZER,
    env::INITIALIZER_ARGS,
];

impl Settings {
    /// Whether this process was started as a procpool worker and has not
    /// taken its settings out of its environment yet (which
    /// [`serve_if_worker`](crate::serve_if_worker) and [`serve`](crate::serve)
    /// do first).
    pub fn is_worker() -> bool {
        std::env::var_os(env::WORKER).is_some() || Self::settings_arg().is_some()
    }

    /// The first argument, when it is a launcher's worker settings.
    fn settings_arg() -> Option<String> {
        std::env::args_os()
            .nth(1)?
            .into_string()
            .ok()
            .filter(|arg| env::parse_settings_arg(arg).is_some())
    }

    /// Reads the settings a pool passes in the environment; absent ones take
    /// their defaults. The environment is left as it is.
    ///
    /// # Errors
    /// [`SettingsError`] for a variable that does not parse.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from the variables `lookup` finds (the
    /// environment, or the pairs of a launcher's argument).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let var = |name: &'static str| lookup(name).filter(|v| !v.is_empty());
        let number = |name: &'static str| -> Result<Option<u64>, SettingsError> {
            var(name)
                .map(|v| {
                    v.parse().map_err(|_| SettingsError {
                        variable: name,
                        value: v,
                    })
                })
                .transpose()
        };
        let initializer = match var(env::INITIALIZER) {
            None => None,
            Some(name) => {
                let hex = var(env::INITIALIZER_ARGS).unwrap_or_default();
                let args = env::hex_decode(&hex).ok_or(SettingsError {
                    variable: env::INITIALIZER_ARGS,
                    value: hex,
                })?;
                Some((name, args))
            }
        };
        let max_frame_len = match number(env::MAX_FRAME_LEN)? {
            Some(n) => usize::try_from(n).map_err(|_| SettingsError {
                variable: env::MAX_FRAME_LEN,
                value: n.to_string(),
            })?,
            None => DEFAULT_MAX_FRAME_LEN,
        };
        Ok(Self {
            max_tasks: number(env::MAX_TASKS)?.filter(|&n| n > 0),
            initializer,
            max_frame_len,
            max_memory: number(env::MAX_MEMORY)?.filter(|&n| n > 0),
            memory_limit: number(env::MEMORY_LIMIT)?.filter(|&n| n > 0),
            launched: false,
        })
    }

    /// Reads the settings a launcher's worker got in its first argument
    /// (`procpool_ipc::env::WORKER_ARG`). `None` when there is none.
    ///
    /// A launcher (ssh, srun, `kubectl exec`) may drop the environment, so
    /// the settings travel in the argument, which the worker reads before
    /// anything else; the environment is not touched.
    pub(crate) fn take_from_args() -> Option<(Role, Result<Self, SettingsError>)> {
        let arg = Self::settings_arg()?;
        let settings = match env::parse_settings_arg(&arg)? {
            Ok(pairs) => Self::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
            .map(|settings| Self {
                launched: true,
                ..settings
            }),
            Err(why) => Err(SettingsError {
                variable: env::WORKER_ARG,
                value: why,
            }),
        };
        Some((Role::Worker, settings))
    }

    /// Reads the settings and takes every worker variable out of this
    /// process's environment, so that what the worker's tasks start never
    /// sees them. `None` when this process is no worker.
    ///
    /// Call it while the process has one thread (first thing in `main`):
    /// changing the environment races with threads that read it.
    pub(crate) fn take_from_env() -> Option<(Role, Result<Self, SettingsError>)> {
        std::env::var_os(env::WORKER)?;
        let role = if std::env::var_os(env::FORKSERVER).is_some() {
            Role::ForkServer
        } else {
            Role::Worker
        };
        let settings = Self::from_env();
        for variable in VARIABLES {
            std::env::remove_var(variable);
        }
        Some((role, settings))
    }
}
