//! Hot mode (`format: http`): the function runs once for the container's
//! whole life and serves HTTP/1.1 requests over its stdin and stdout. The
//! init bridges those to one connection on a unix socket in a directory the
//! host mounted in, so the host talks to the function without the engine
//! relaying every byte.
//!
//! `ferrite-init --ferrite-hot SOCKET PROGRAM [ARGS...]`
//!
//! The function starts at once with the container's environment; its stderr
//! is the container's. The init accepts one connection and copies bytes
//! both ways until either side ends; the container ends with the function.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::{self, Command, Stdio};
use std::thread;

/// The argument that selects hot mode; no image's own command starts with it.
pub const FLAG: &str = "--ferrite-hot";

pub fn run(
    socket: &std::ffi::OsStr,
    program: &std::ffi::OsStr,
    args: Vec<std::ffi::OsString>,
) -> ! {
    let _ = std::fs::remove_file(socket);
    let listener = match UnixListener::bind(socket) {
        Ok(listener) => listener,
        Err(e) => fail(&format!("cannot listen on {socket:?}: {e}")),
    };
    // The host may connect as another user than the function's.
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666));
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => fail(&format!("cannot run {program:?}: {e}")),
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        fail("the function's pipes are missing")
    };
    // The container ends with the function, whatever the bridge is doing.
    thread::spawn(move || {
        let code = match child.wait() {
            Ok(status) => status.code().unwrap_or(128 + status_signal(&status)),
            Err(_) => 1,
        };
        process::exit(code)
    });
    let connection = match listener.accept() {
        Ok((connection, _)) => connection,
        Err(e) => fail(&format!("cannot accept on {socket:?}: {e}")),
    };
    let _ = std::fs::remove_file(socket);
    let mut from_host = match connection.try_clone() {
        Ok(c) => c,
        Err(e) => fail(&format!("cannot share the connection: {e}")),
    };
    let mut to_host = connection;
    thread::spawn(move || {
        let _ = relay(&mut from_host, &mut stdin);
        // The host hung up: the function's input ends, and so does it.
        process::exit(0)
    });
    let _ = relay(&mut stdout, &mut to_host);
    // The function closed its stdout; its exit ends the container.
    loop {
        thread::park();
    }
}

/// Copies until the end of `from`, passing on every read at once: a request
/// or a response must not wait in a buffer for more bytes that never come.
/// (`io::copy` may splice and wait for a full chunk between a socket and a pipe.)
fn relay(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

fn status_signal(status: &process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(0)
}

fn fail(message: &str) -> ! {
    eprintln!("ferrite-init: {message}");
    process::exit(127)
}
