//! Hot mode (`format: http`): the function runs once for the container's
//! whole life and serves HTTP/1.1 requests over its stdin and stdout. The
//! init listens on a unix socket in a directory the host mounted in, accepts
//! the host's one connection, and starts the function with that connection
//! as its stdin and stdout: the host then talks to the function with no
//! engine and no copy in between.
//!
//! `ferrite-init --ferrite-hot SOCKET PROGRAM [ARGS...]`
//!
//! The function gets the container's environment; its stderr is the
//! container's. The container ends with the function: when the host hangs
//! up, the function reads the end of its input and exits.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::{self, Command, Stdio};

/// The argument that selects hot mode; no image's own command starts with it.
pub const FLAG: &str = "--ferrite-hot";

pub fn run(
    socket: &std::ffi::OsStr,
    program: &std::ffi::OsStr,
    args: Vec<std::ffi::OsString>,
) -> ! {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)
        .unwrap_or_else(|e| fail(&format!("cannot listen on {socket:?}: {e}")));
    // The host may connect as another user than the function's.
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666));
    let (connection, _) = listener
        .accept()
        .unwrap_or_else(|e| fail(&format!("cannot accept on {socket:?}: {e}")));
    drop(listener);
    let _ = std::fs::remove_file(socket);
    let input = connection
        .try_clone()
        .unwrap_or_else(|e| fail(&format!("cannot share the connection: {e}")));
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(input)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(connection)))
        .stderr(Stdio::inherit())
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run {program:?}: {e}")));
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    process::exit(code)
}

fn fail(message: &str) -> ! {
    eprintln!("ferrite-init: {message}");
    process::exit(127)
}
