//! Workers over ssh, against a real sshd on the loopback address that each
//! test starts itself, with throwaway keys in a temporary folder: the checks
//! of `tests/launched.rs` (results, payloads, map, stopping a task and its
//! child, time limits, a worker killed, the ssh process killed) and the
//! failures a cluster user meets (a host refusing connections, a key
//! refused), which must say where and not storm.
//!
//! They need `sshd` (Debian's openssh-server), which a development machine
//! may lack: they are ignored by a plain `cargo test`, and `.ci/run`
//! installs openssh-server and runs them (`-- --ignored`).

mod util;

use procpool::{Error, Launcher, Pool};
use procpool_conformance::tasks::SQUARE;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::launched::{self as check, adopt_orphans, assert_ended_within};
use util::{TempDir, HANG, SOON};

const SSHD: &str = "/usr/sbin/sshd";

/// An sshd of this test's own on 127.0.0.1, which lets in one throwaway
/// key for the current user; killed on drop.
struct Sshd {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Sshd {
    fn start() -> Self {
        assert!(
            std::path::Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (.ci/run does)"
        );
        let dir = TempDir::new("sshd");
        for key in ["host", "user", "stranger"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.file(key))
                .status()
                .expect("ssh-keygen runs");
            assert!(status.success(), "ssh-keygen {key}");
        }
        std::fs::copy(dir.file("user.pub"), dir.file("authorized_keys")).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPermitRootLogin yes\nPidFile {}\nLogLevel ERROR\n",
            dir.file("host"),
            dir.file("authorized_keys"),
            dir.file("sshd.pid"),
        );
        std::fs::write(dir.file("sshd_config"), config).unwrap();
        // Privilege separation wants its empty directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        // Its log (the probes below among it) goes to a file, not the
        // test's output.
        let log = std::fs::File::create(dir.file("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.file("sshd_config"))
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        util::wait_until(SOON, "sshd listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, dir, port }
    }

    /// ssh to this sshd with `key`, the test worker as the program.
    fn launcher(&self, key: &str) -> Launcher {
        Launcher::ssh("127.0.0.1")
            .port(self.port)
            .identity(self.dir.file(key))
            .ssh_option("StrictHostKeyChecking=no")
            .ssh_option("UserKnownHostsFile=/dev/null")
            .ssh_option("LogLevel=ERROR")
            .program(util::WORKER)
    }

    fn pool(&self, slots: usize) -> Pool {
        self.pool_of(self.launcher("user"), slots)
    }

    fn pool_of(&self, launcher: Launcher, slots: usize) -> Pool {
        Pool::builder()
            .workers_on(launcher, slots)
            .grace(Duration::from_millis(300))
            .build()
            .expect("a pool builds")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on, as the kernel picks one.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
    listener.local_addr().expect("its address").port()
}

const PLACE: &str = "ssh to 127.0.0.1";

#[test]
#[ignore = "needs sshd (openssh-server): .ci/run installs it and runs these"]
fn results_payloads_and_maps_over_ssh() {
    adopt_orphans();
    let sshd = Sshd::start();
    let pool = sshd.pool(2);
    check::serves_results_payloads_and_maps(&pool);
    let workers = check::worker_pids(&pool, 4);
    drop(pool);
    assert_ended_within(&workers, SOON);
}

#[test]
#[ignore = "needs sshd (openssh-server): .ci/run installs it and runs these"]
fn abort_stops_a_task_over_ssh_with_its_child() {
    adopt_orphans();
    let sshd = Sshd::start();
    let dir = TempDir::new("ssh-abort");
    let pool = sshd.pool(1);
    check::abort_stops_a_task_and_its_child(&pool, &dir);
    check::a_time_limit_stops_a_task(&pool);
    let workers = check::worker_pids(&pool, 1);
    drop(pool);
    assert_ended_within(&workers, SOON);
}

#[test]
#[ignore = "needs sshd (openssh-server): .ci/run installs it and runs these"]
fn a_worker_killed_over_ssh_fails_only_its_task_and_says_where() {
    adopt_orphans();
    let sshd = Sshd::start();
    let dir = TempDir::new("ssh-killed");
    let pool = sshd.pool(2);
    check::a_killed_worker_fails_only_its_task(&pool, &dir, PLACE);
    let workers = check::worker_pids(&pool, 2);
    drop(pool);
    assert_ended_within(&workers, SOON);
}

#[test]
#[ignore = "needs sshd (openssh-server): .ci/run installs it and runs these"]
fn killing_the_ssh_process_ends_the_remote_worker_and_its_task_s_child() {
    adopt_orphans();
    let sshd = Sshd::start();
    let dir = TempDir::new("ssh-cut");
    // A tag in this pool's ssh command line, to tell its ssh process from
    // those of the other tests running alongside.
    let tag = format!("SetEnv=PROCPOOL_TEST_CUT={}", std::process::id());
    let pool = sshd.pool_of(sshd.launcher("user").ssh_option(&tag), 1);
    check::killing_the_launcher_ends_the_worker(&pool, &dir, |_worker| {
        let me = std::process::id();
        procpool_testkit::children_of(me)
            .into_iter()
            .find(|&pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| cmd.split(|&b| b == 0).any(|arg| arg == tag.as_bytes()))
            })
            .expect("the pool's ssh process is our child")
    });
    let workers = check::worker_pids(&pool, 1);
    drop(pool);
    assert_ended_within(&workers, SOON);
}

#[test]
#[ignore = "needs sshd (openssh-server): .ci/run installs it and runs these"]
fn a_host_refusing_connections_and_a_refused_key_break_the_pool_with_ssh_s_words() {
    adopt_orphans();
    let sshd = Sshd::start();
    let nobody = Launcher::ssh("127.0.0.1")
        .port(free_port())
        .ssh_option("StrictHostKeyChecking=no")
        .ssh_option("UserKnownHostsFile=/dev/null")
        .program(util::WORKER);
    let cases = [
        (nobody, "Connection refused"),
        (sshd.launcher("stranger"), "Permission denied"),
    ];
    for (launcher, says) in cases {
        let pool = Pool::builder()
            .workers_on(launcher, 2)
            .restart_backoff(Duration::from_millis(10), Duration::from_millis(100))
            .max_failures_in_a_row(3)
            .build()
            .unwrap();
        let started = Instant::now();
        let (error, stats) = util::within(HANG, "a pool that cannot reach its host", move || {
            let error = pool.submit(SQUARE, 2).unwrap().result(None).unwrap_err();
            (error, pool.stats())
        });
        match &error {
            Error::BrokenPool { cause, .. } => {
                assert!(cause.contains(says), "{cause}");
                assert!(cause.contains("127.0.0.1"), "the host is named: {cause}");
            }
            other => panic!("expected a broken pool ({says}), got {other:?}"),
        }
        assert_eq!(stats.workers_started, 3, "no storm: {stats:?}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
