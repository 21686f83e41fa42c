//! A launcher that stands between the pool and a worker the way ssh does,
//! for `tests/launched.rs`: it runs its arguments as a command whose stdin
//! and stdout are pipes of its own, and relays bytes both ways until the
//! command ends, then exits with its status. The worker is its child, not
//! the pool's; killing the relay ends the worker's stream.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: procpool-test-relay PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let mut child = match Command::new(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("procpool-test-relay: cannot run {program:?}: {e}");
            std::process::exit(127);
        }
    };
    let (Some(to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        eprintln!("procpool-test-relay: the child has no pipes");
        std::process::exit(1);
    };
    // Our stdin to the child; ends (closing its stdin) at our stdin's end.
    std::thread::spawn(move || copy(std::io::stdin(), to_child));
    let out = std::thread::spawn(move || copy(from_child, std::io::stdout()));
    let status = child.wait();
    let _ = out.join();
    std::process::exit(match status {
        Ok(status) => status.code().unwrap_or(255),
        Err(_) => 1,
    });
}
