//! The environment variables through which a parent starts a worker: part of
//! the protocol, so that the manager and the worker crate agree on them
//! without depending on each other. The worker takes them out of its
//! environment as soon as it has read them, so that they reach only the
//! worker, never what its tasks start.
//!
//! The channel itself needs no variable: the call pipe is the child's stdin
//! and the result pipe its stdout.

/// Set (to [`WORKER_MODE`]) when this process was started as a procpool
/// worker.
pub const WORKER: &str = "PROCPOOL_WORKER";
/// The value of [`WORKER`]: the protocol version, in case a worker binary of
/// another version is started by mistake.
pub const WORKER_MODE: &str = "v3";
/// The number of calls after which the worker exits (`max_tasks_per_child`);
/// absent means no limit.
pub const MAX_TASKS: &str = "PROCPOOL_MAX_TASKS";
/// The frame limit both sides use, in bytes.
pub const MAX_FRAME_LEN: &str = "PROCPOOL_MAX_FRAME_LEN";
/// Set (to `1`) alongside [`WORKER`] for a fork server: a process the
/// manager keeps to fork new workers from, so that a replacement costs a
/// `fork`, not a `spawn` + `exec` of the program. Its stdin and stdout are
/// one Unix socket: it first writes [`FORKSERVER_GREETING`]; each request is 8 bytes
/// (a serial number, little-endian) carrying two fds (`SCM_RIGHTS`: the new
/// worker's call pipe, read end, and result pipe, write end); each answer is
/// 8 bytes, the new worker's pid (`u32` LE, 0 when the fork failed) and an
/// errno (`i32` LE). The new worker is the manager's child (`CLONE_PARENT`),
/// in a process group of its own, and then serves as if spawned.
pub const FORKSERVER: &str = "PROCPOOL_FORKSERVER";
/// What a fork server writes first: a magic and the protocol version.
pub const FORKSERVER_GREETING: [u8; 8] = *b"PPFS\x03\0\0\0";

/// The resident-memory ceiling in bytes (`max_memory_per_child`): after a
/// call that leaves the worker above it, the worker says
/// `Exiting(MemoryCeiling)` and exits. Absent: none.
pub const MAX_MEMORY: &str = "PROCPOOL_MAX_MEMORY";
/// The worker's address-space limit in bytes (`RLIMIT_AS`), set by the
/// worker itself before it serves (by each fork, not by the fork server).
/// Absent: none.
pub const MEMORY_LIMIT: &str = "PROCPOOL_MEMORY_LIMIT";

/// The first argument of a worker started by a launcher (ssh, srun,
/// `kubectl exec`, any wrapper), which may not pass the environment on: it
/// is followed by `=`, [`WORKER_MODE`], `:` and the worker's settings as
/// hex-encoded `NAME=value` lines (the variables of this module), so that
/// the argument survives a remote shell unquoted. See [`settings_arg`].
pub const WORKER_ARG: &str = "--procpool-worker";

/// The argument that starts a worker with `settings` (pairs of a variable
/// of this module and its value) when the environment cannot carry them.
pub fn settings_arg<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines = String::new();
    for (name, value) in settings {
        lines.push_str(name);
        lines.push('=');
        lines.push_str(value);
        lines.push('\n');
    }
    format!(
        "{WORKER_ARG}={WORKER_MODE}:{}",
        hex_encode(lines.as_bytes())
    )
}

/// The settings in an argument made by [`settings_arg`], as pairs; `None`
/// when `arg` is not one. `Err` names what is wrong with one that is (a
/// worker of another protocol version, or bytes that do not decode).
pub fn parse_settings_arg(arg: &str) -> Option<Result<Vec<(String, String)>, String>> {
    let rest = arg.strip_prefix(WORKER_ARG)?.strip_prefix('=')?;
    Some((|| {
        let (mode, hex) = rest
            .split_once(':')
            .ok_or_else(|| format!("no settings after the mode in {arg:?}"))?;
        if mode != WORKER_MODE {
            return Err(format!(
                "started as a worker of protocol {mode}, but this program speaks {WORKER_MODE}"
            ));
        }
        let bytes = hex_decode(hex).ok_or("the settings are not hex")?;
        let text = String::from_utf8(bytes).map_err(|_| "the settings are not UTF-8")?;
        text.lines()
            .map(|line| {
                line.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| format!("a setting without `=`: {line:?}"))
            })
            .collect()
    })())
}

/// The initializer's task name; absent means no initializer.
pub const INITIALIZER: &str = "PROCPOOL_INITIALIZER";
/// The initializer's encoded arguments, in lowercase hex.
pub const INITIALIZER_ARGS: &str = "PROCPOOL_INITIALIZER_ARGS";

/// `bytes` as lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of a hex string; `None` when it is not hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_travel_in_one_argument_and_other_versions_are_named() {
        let arg = settings_arg([(MAX_TASKS, "5"), (INITIALIZER, "a task = with spaces")]);
        assert!(arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-=:".contains(&b)));
        let pairs = parse_settings_arg(&arg).unwrap().unwrap();
        assert_eq!(
            pairs,
            vec![
                (MAX_TASKS.to_owned(), "5".to_owned()),
                (INITIALIZER.to_owned(), "a task = with spaces".to_owned())
            ]
        );
        assert_eq!(parse_settings_arg("--other"), None);
        let old = parse_settings_arg("--procpool-worker=v2:00")
            .unwrap()
            .unwrap_err();
        assert!(old.contains("v2") && old.contains(WORKER_MODE), "{old}");
        assert!(parse_settings_arg("--procpool-worker=v3:zz")
            .unwrap()
            .is_err());
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_decode(&hex_encode(&bytes)).unwrap(), bytes);
        assert_eq!(hex_decode("0aF"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode(""), Some(vec![]));
    }
}
