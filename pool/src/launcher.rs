//! [`Launcher`]: where a pool's workers run.

use procpool_manager::{Launch, Source};
use std::ffi::OsString;
use std::path::PathBuf;

/// Where workers run, for [`PoolBuilder::workers_on`](crate::PoolBuilder::workers_on):
/// this machine, or through a program that starts a command elsewhere and forwards its
/// stdin and stdout: `ssh HOST`, Slurm's `srun`, `kubectl exec -i POD --`,
/// any wrapper.
///
/// ```no_run
/// use procpool::{Launcher, Pool};
/// let pool = Pool::builder()
///     .workers_on(Launcher::local(), 4)
///     .workers_on(Launcher::ssh("gpu1").identity("/home/me/.ssh/pool_key"), 8)
///     .workers_on(Launcher::command(["srun", "--nodes=1", "--ntasks=1"]), 16)
///     .workers_on(Launcher::command(["kubectl", "exec", "-i", "worker-0", "--"]), 2)
///     .build()?;
/// # Ok::<(), procpool::Error>(())
/// ```
///
/// A launched worker is the same program (by default at the same path: a
/// shared file system, as on clusters; [`Launcher::program`] names another),
/// started with its settings in its first argument, since a launcher may
/// not pass the environment on. It serves the same protocol on its stdin and
/// stdout; the pool stops its tasks with a frame it obeys (the stop flag,
/// SIGTERM to its process group, SIGKILL after the grace), backed by killing
/// the launcher. When its stream hangs up (the pool died, the connection
/// dropped, the launcher was killed) it kills its process group and exits.
#[derive(Debug, Clone)]
#[must_use]
pub struct Launcher {
    kind: Kind,
    program: Option<PathBuf>,
    name: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Local,
    Command(Vec<OsString>),
    Ssh {
        host: String,
        port: Option<u16>,
        identity: Option<PathBuf>,
        options: Vec<OsString>,
    },
}

impl Launcher {
    /// This machine: workers are the pool's children (forked by the fork
    /// server or spawned), as without any launcher.
    pub fn local() -> Self {
        Self::with(Kind::Local)
    }

    /// A command prefix: `argv` then the worker's command, as separate
    /// arguments (no shell): `["srun", "--nodes=1", "--ntasks=1"]`,
    /// `["kubectl", "exec", "-i", "POD", "--"]`, a wrapper script.
    pub fn command<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::with(Kind::Command(argv.into_iter().map(Into::into).collect()))
    }

    /// `ssh HOST` (a `user@host` works too): with `BatchMode` (a prompt
    /// for a password or a host key would hang a start), `-T`, and
    /// keep-alives, so that a dead connection ends the worker within
    /// seconds. Keys, known hosts and the rest come from ssh's own
    /// configuration, or [`identity`](Self::identity),
    /// [`port`](Self::port) and [`ssh_option`](Self::ssh_option).
    pub fn ssh(host: impl Into<String>) -> Self {
        Self::with(Kind::Ssh {
            host: host.into(),
            port: None,
            identity: None,
            options: Vec::new(),
        })
    }

    fn with(kind: Kind) -> Self {
        Self {
            kind,
            program: None,
            name: None,
        }
    }

    /// The ssh port (ssh launchers only; ignored otherwise).
    pub fn port(mut self, port: u16) -> Self {
        if let Kind::Ssh { port: p, .. } = &mut self.kind {
            *p = Some(port);
        }
        self
    }

    /// The ssh key to log in with (`-i`; ssh launchers only).
    pub fn identity(mut self, key: impl Into<PathBuf>) -> Self {
        if let Kind::Ssh { identity, .. } = &mut self.kind {
            *identity = Some(key.into());
        }
        self
    }

    /// An ssh option, as `-o` takes it (`"StrictHostKeyChecking=no"`; ssh
    /// launchers only).
    pub fn ssh_option(mut self, option: impl Into<OsString>) -> Self {
        if let Kind::Ssh { options, .. } = &mut self.kind {
            options.push(option.into());
        }
        self
    }

    /// The worker program's path on the other side. Default: the pool's
    /// [`worker_program`](crate::PoolBuilder::worker_program), else this
    /// executable's path.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Its name in messages and in the lines of the workers' stderr.
    /// Default: "local", "ssh to HOST", or the launcher command.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The manager's source for `slots` workers.
    pub(crate) fn into_source(self, slots: usize) -> Source {
        let (default_name, launch) = match self.kind {
            Kind::Local => ("local".to_owned(), Launch::Local),
            Kind::Command(argv) => {
                let name = argv
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ");
                let launch = Launch::Command {
                    argv,
                    through_shell: false,
                };
                (format!("`{name}`"), launch)
            }
            Kind::Ssh {
                host,
                port,
                identity,
                options,
            } => {
                let mut argv: Vec<OsString> = ["ssh", "-T", "-o", "BatchMode=yes"]
                    .into_iter()
                    .map(OsString::from)
                    .collect();
                for keepalive in ["ServerAliveInterval=5", "ServerAliveCountMax=3"] {
                    argv.extend(["-o".into(), keepalive.into()]);
                }
                if let Some(port) = port {
                    argv.extend(["-p".into(), port.to_string().into()]);
                }
                if let Some(identity) = identity {
                    argv.extend(["-i".into(), identity.into_os_string()]);
                }
                for option in options {
                    argv.extend(["-o".into(), option]);
                }
                argv.push(host.clone().into());
                let launch = Launch::Command {
                    argv,
                    through_shell: true,
                };
                (format!("ssh to {host}"), launch)
            }
        };
        Source {
            name: self.name.unwrap_or(default_name),
            launch,
            slots,
            program: self.program,
        }
    }
}
