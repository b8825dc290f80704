//! The init of a pre-started function container: `/.ferrite/init <entrypoint and cmd...>`.
//!
//! It waits on stdin for one call (an `E` frame, then `I` frames and a `C`),
//! runs its arguments as the function with that environment added and that
//! input on the function's stdin, streams the function's stdout and stderr
//! back as `O` and `L` frames, and ends with an `X` frame saying how the
//! function ended. See `docs/init-protocol.md`.
//!
//! Built by ferrite-engine's build script as a static binary (see its
//! `build.rs`), so that it runs in any image. It knows the frames
//! (`ferrite_wire::frame`) and nothing else of Ferrite: no apps, routes or
//! engine; the host tells it all a call needs.
#![forbid(unsafe_code)]

mod guard;
mod hot;

use std::fmt::Display;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{self, Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use ferrite_wire::frame::{self, Exit, KindName};

/// Largest chunk of the function's output sent in one frame.
const CHUNK: usize = 64 * 1024;
/// How long a pipe may stay silent after the function exited before the init
/// stops waiting for its end: a background grandchild may hold it open forever.
const GRACE: Duration = Duration::from_millis(100);
/// How long after the function exited the init waits for its pipes at most,
/// even while output is still flowing (a chatty background grandchild).
const LINGER: Duration = Duration::from_secs(1);
/// Where the cgroup's OOM-kill counter lives: cgroup v2, then v1.
const OOM_COUNTERS: [&str; 2] = [
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/memory/memory.oom_control",
];
const SIGKILL: i32 = 9;

fn main() {
    if let Err(e) = guard::seal() {
        // Without the seal the function could forge this init's frames:
        // refuse to run it rather than run it unguarded.
        eprintln!("ferrite-init: {e}");
        process::exit(126);
    }
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|first| first == hot::FLAG) {
        let (Some(socket), Some(program)) = (argv.next(), argv.next()) else {
            eprintln!("usage: ferrite-init {} SOCKET PROGRAM [ARGS...]", hot::FLAG);
            process::exit(2)
        };
        hot::run(&socket, &program, argv.collect());
    }
    // Read the function's files while no call is waiting yet (see `warm`).
    let _ = spawn(|| warm(std::env::args_os().skip(1).collect()));
    let oom_kills_before = oom_kills();
    let env = match frame::read_frame(&mut io::stdin()) {
        // The host drained a container it started ahead and did not use.
        Ok(None) => process::exit(0),
        Ok(Some((frame::ENV, payload))) => match frame::decode_env(&payload) {
            Ok(env) => env,
            Err(e) => protocol_error(e),
        },
        Ok(Some((kind, _))) => protocol_error(format!(
            "the first frame must be 'E', not {}",
            KindName(kind)
        )),
        Err(e) => protocol_error(e),
    };

    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        finish(failed(-1, "image has no entrypoint or command"), 0)
    };
    let spawned = Command::new(&program)
        .args(args)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => finish(failed(errno(&e), format!("cannot run {program:?}: {e}")), 0),
    };

    let (pump_events, pumps) = match connect(&mut child) {
        Ok(pumps) => pumps,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            finish(failed(errno(&e), format!("cannot start a thread: {e}")), 0)
        }
    };

    let exit = match child.wait() {
        Ok(status) => exit_of(status, oom_kills_before),
        Err(e) => failed(errno(&e), format!("cannot wait for the function: {e}")),
    };
    wait_for_pumps(&pump_events, pumps);
    finish(exit, 0)
}

/// Starts the threads that move bytes between the host and the function:
/// one feeding its stdin, one pump per output pipe. Returns the pumps' events
/// and how many pumps there are.
fn connect(child: &mut Child) -> io::Result<(Receiver<Pump>, usize)> {
    if let Some(stdin) = child.stdin.take() {
        spawn(move || feed(io::stdin(), stdin))?;
    }
    let (events, pump_events) = mpsc::channel();
    let mut pumps = 0;
    if let Some(stdout) = child.stdout.take() {
        let events = events.clone();
        spawn(move || pump(stdout, frame::STDOUT, events))?;
        pumps += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        spawn(move || pump(stderr, frame::STDERR, events))?;
        pumps += 1;
    }
    Ok((pump_events, pumps))
}

/// Copies `I` frames to the function's stdin until `C` or the end of the
/// init's stdin, then closes it. If the function closes its stdin first, the
/// rest of the input is read and discarded, so the host is never blocked.
fn feed(mut input: impl Read, stdin: ChildStdin) {
    let mut stdin = Some(stdin);
    loop {
        match frame::read_frame(&mut input) {
            Ok(None) => return,
            Ok(Some((frame::INPUT, bytes))) => {
                if let Some(pipe) = &mut stdin {
                    if pipe.write_all(&bytes).is_err() {
                        stdin = None;
                    }
                }
            }
            Ok(Some((frame::CLOSE, payload))) if payload.is_empty() => return,
            Ok(Some((frame::CLOSE, _))) => protocol_error("a 'C' frame must be empty"),
            Ok(Some((frame::ENV, _))) => protocol_error("a second 'E' frame"),
            Ok(Some((kind, _))) => {
                protocol_error(format!("unexpected frame type {}", KindName(kind)))
            }
            Err(e) => protocol_error(e),
        }
    }
}

/// What an output pump tells the main thread, which must not write `X` while
/// a pump still has output in hand.
enum Pump {
    /// Read a chunk from the function and is sending it.
    Busy,
    /// Sent it and is waiting for more.
    Idle,
    /// Reached the end of the pipe.
    Done,
}

/// Sends one of the function's output pipes to the host as `kind` frames.
fn pump(mut pipe: impl Read, kind: u8, events: Sender<Pump>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let _ = events.send(Pump::Busy);
        // A host that stopped reading cannot be told anything; keep draining
        // the pipe so the function is never blocked on its output.
        let _ = send(kind, &buf[..n]);
        let _ = events.send(Pump::Idle);
    }
    let _ = events.send(Pump::Done);
}

/// Once the function has exited, waits for its output pipes to end. A pipe
/// that stays open and silent for [`GRACE`] is held by something that outlived
/// the function and is abandoned; a pump still sending to a slow host is
/// waited for, up to [`LINGER`] after the exit.
fn wait_for_pumps(events: &Receiver<Pump>, mut open: usize) {
    let give_up = Instant::now() + LINGER;
    let mut busy = 0usize;
    while open > 0 {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let wait = if busy > 0 { left } else { left.min(GRACE) };
        match events.recv_timeout(wait) {
            Ok(Pump::Busy) => busy += 1,
            Ok(Pump::Idle) => busy = busy.saturating_sub(1),
            Ok(Pump::Done) => open -= 1,
            Err(_) => return,
        }
    }
}

fn exit_of(status: ExitStatus, oom_kills_before: Option<u64>) -> Exit {
    if let Some(code) = status.code() {
        return Exit::Code(code);
    }
    match status.signal() {
        Some(SIGKILL)
            if oom_kills()
                .zip(oom_kills_before)
                .is_some_and(|(now, before)| now > before) =>
        {
            Exit::Oom(SIGKILL)
        }
        Some(signal) => Exit::Signal(signal),
        None => failed(
            -1,
            format!("the function ended in an unexpected way: {status}"),
        ),
    }
}

/// The cgroup's OOM-kill count, if this cgroup version exposes one.
fn oom_kills() -> Option<u64> {
    OOM_COUNTERS.iter().find_map(|path| {
        let text = fs::read_to_string(path).ok()?;
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix("oom_kill "))?;
        line.trim().parse().ok()
    })
}

/// Most bytes read ahead from one file: a function's program and script are
/// small; a huge file argument is not worth the memory traffic.
const WARM_LIMIT: u64 = 64 << 20;

/// Reads the files the function will run — its program (found on `PATH`),
/// a script's interpreter (`#!`), and arguments naming files — so that they
/// are in the page cache when the call comes. The container's root
/// filesystem is a fresh overlay mount (through FUSE on some engines), whose
/// first reads cost more than the rest of a small call; doing them while the
/// container waits takes them out of the call's time.
fn warm(argv: Vec<std::ffi::OsString>) {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    if let Some(program) = argv.first() {
        files.extend(find_program(program));
    }
    files.extend(
        argv.iter()
            .skip(1)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute() || p.exists()),
    );
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = files.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let Ok(file) = fs::File::open(&path) else {
            continue;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut head = [0u8; 256];
        let mut reader = io::BufReader::new(file.take(WARM_LIMIT));
        let n = reader.read(&mut head).unwrap_or(0);
        if let Some(interpreter) = shebang(&head[..n]) {
            files.push(interpreter);
        }
        let _ = io::copy(&mut reader, &mut io::sink());
    }
    // Scripts run tools by name: look up every entry of PATH once, so their
    // first lookups are cached too (cheap next to reading files).
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&dirs) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten().take(4096) {
            let _ = fs::metadata(entry.path());
        }
    }
}

/// The program as `Command` will find it: a path, or a name on `PATH`.
fn find_program(program: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if path.components().count() > 1 {
        return Some(path.to_path_buf());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The interpreter of a `#!` script.
fn shebang(head: &[u8]) -> Option<std::path::PathBuf> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let text = std::str::from_utf8(line).ok()?;
    text.split_whitespace().next().map(std::path::PathBuf::from)
}

fn spawn(f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().spawn(f).map(drop)
}

fn failed(errno: i32, message: impl Into<String>) -> Exit {
    Exit::Failed {
        errno,
        message: message.into(),
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Writes one frame to the host; the stdout lock keeps frames whole.
fn send(kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    frame::write_frame(&mut out, kind, payload)?;
    out.flush()
}

/// Reports a malformed frame from the host and gives up.
fn protocol_error(why: impl Display) -> ! {
    finish(failed(-1, format!("protocol error: {why}")), 1)
}

/// Writes the `X` frame and exits with `status` (1 if `X` could not be written).
fn finish(exit: Exit, status: i32) -> ! {
    let mut out = io::stdout().lock();
    let written =
        frame::write_frame(&mut out, frame::EXIT, &exit.encode()).and_then(|()| out.flush());
    // Exit still holding the lock, so that no output frame can follow `X`.
    process::exit(if written.is_ok() { status } else { 1 })
}
