//! Running a block's commands with bash: in its own process group (so that
//! whatever it started can be stopped with it), output to a file, within a
//! time bound.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one block may run: far above any block's need, so that a hung
/// command fails its file instead of the whole suite.
pub const BLOCK_LIMIT: Duration = Duration::from_secs(180);

/// Environment changes: a value to set, or `None` to remove the variable.
pub type Env = Vec<(String, Option<String>)>;

/// What a finished (or stopped) script did.
pub struct Finished {
    /// `None` when it ran past [`BLOCK_LIMIT`] and was killed.
    pub status: Option<ExitStatus>,
    /// Its stdout and stderr, interleaved as written.
    pub output: String,
}

/// Start `script` with bash in `dir`, its output going to `log`.
pub fn spawn(script: &str, dir: &Path, env: &Env, log: &Path) -> Child {
    use std::os::unix::process::CommandExt as _;
    let out = std::fs::File::create(log).expect("a log file for the block");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .process_group(0);
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.spawn().expect("run bash")
}

/// Run `script` to its end (or [`BLOCK_LIMIT`]).
pub fn run(script: &str, dir: &Path, env: &Env, log: &Path) -> Finished {
    let mut child = spawn(script, dir, env, log);
    let deadline = Instant::now() + BLOCK_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if Instant::now() > deadline {
            stop(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        output: std::fs::read_to_string(log).unwrap_or_default(),
    }
}

/// SIGTERM the script's process group, as Ctrl-C-like stops go, then
/// SIGKILL what is left after 40 s (a server drains its calls first).
pub fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}
