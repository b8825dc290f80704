//! Runs the real init binary on the host with `/bin/sh -c ...` as the
//! function, speaking the frame protocol on its stdin and stdout.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ferrite_wire::frame::{self, Exit};

const MIB: usize = 1 << 20;

/// What the host saw of one call.
struct Call {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The `X` frame; `None` if the init wrote nothing at all.
    exit: Option<Exit>,
    /// The init's own exit status.
    status: ExitStatus,
    /// From starting the init to reading its `X` frame (or its end).
    elapsed: Duration,
    /// Size of the largest `O` or `L` frame.
    largest_chunk: usize,
}

/// Runs the init with `args`, writes `input` to its stdin (then closes it)
/// while reading its frames, and checks that `X`, if any, is the last frame.
fn call(args: &[&str], input: Vec<u8>) -> Call {
    let start = Instant::now();
    let mut init = Command::new(env!("CARGO_BIN_EXE_ferrite-init"))
        .args(args)
        .env("IMAGE_VAR", "from-image")
        .env("OVERRIDDEN", "from-image")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the init");
    let mut stdin = init.stdin.take().unwrap();
    // The init may stop reading early (protocol errors, exits): a failed write is expected then.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = init.stdout.take().unwrap();
    let (mut stdout, mut stderr, mut exit, mut largest_chunk) = (Vec::new(), Vec::new(), None, 0);
    while let Some((kind, payload)) =
        frame::read_frame(&mut out).expect("well-formed frames from the init")
    {
        assert!(exit.is_none(), "a frame of type {} after X", kind as char);
        match kind {
            frame::STDOUT => stdout.extend_from_slice(&payload),
            frame::STDERR => stderr.extend_from_slice(&payload),
            frame::EXIT => exit = Some(Exit::decode(&payload).expect("a valid X payload")),
            other => panic!("unexpected frame type {}", other as char),
        }
        if kind != frame::EXIT {
            largest_chunk = largest_chunk.max(payload.len());
        }
    }
    let elapsed = start.elapsed();
    let status = init.wait().unwrap();
    writer.join().unwrap();
    Call {
        stdout,
        stderr,
        exit,
        status,
        elapsed,
        largest_chunk,
    }
}

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

fn env_frame(vars: &[(&str, &str)]) -> Vec<u8> {
    let vars: Vec<_> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    encode(frame::ENV, &frame::encode_env(&vars).unwrap())
}

fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, kind, payload).unwrap();
    wire
}

/// A whole call's input: `E`, the payload in `I` frames of at most 1 MiB, `C`.
fn request(vars: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut wire = env_frame(vars);
    for chunk in payload.chunks(frame::MAX_FRAME) {
        wire.extend(encode(frame::INPUT, chunk));
    }
    wire.extend(encode(frame::CLOSE, b""));
    wire
}

fn failure(call: &Call) -> (i32, &str) {
    match &call.exit {
        Some(Exit::Failed { errno, message }) => (*errno, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn call_environment_is_added_to_the_image_environment_and_wins() {
    let input = request(&[("OVERRIDDEN", "from-call"), ("NEW", "a=b=c")], b"");
    let call = call(
        &sh(r#"printf '%s|%s|%s' "$IMAGE_VAR" "$OVERRIDDEN" "$NEW""#),
        input,
    );
    assert_eq!(call.stdout, b"from-image|from-call|a=b=c");
    assert_eq!(call.exit, Some(Exit::Code(0)));
    assert!(call.status.success());
}

#[test]
fn payload_reaches_stdin_and_outputs_stay_separate() {
    let input = request(&[], b"hello\nworld\n");
    let call = call(&sh("echo out; cat; echo err >&2; echo out2"), input);
    assert_eq!(call.stdout, b"out\nhello\nworld\nout2\n");
    assert_eq!(call.stderr, b"err\n");
    assert_eq!(call.exit, Some(Exit::Code(0)));
}

#[test]
fn exit_codes_are_reported() {
    for code in [0, 3] {
        let call = call(&sh(&format!("exit {code}")), request(&[], b""));
        assert_eq!(call.exit, Some(Exit::Code(code)));
        assert!(call.status.success(), "the init itself exits 0 after X");
    }
}

#[test]
fn death_by_signal_is_reported_as_such() {
    let call1 = call(&sh("kill -TERM $$"), request(&[], b""));
    assert_eq!(call1.exit, Some(Exit::Signal(15)));
    // SIGKILL without the cgroup's OOM counter moving is not an OOM kill.
    let call2 = call(&sh("kill -KILL $$"), request(&[], b""));
    assert_eq!(call2.exit, Some(Exit::Signal(9)));
}

#[test]
fn five_mib_in_while_five_mib_out_does_not_deadlock() {
    let mut seed = 0x2545_f491_u32;
    let payload: Vec<u8> = (0..5 * MIB)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect();
    // The function fills its stderr before it reads a byte of its stdin.
    let call = call(
        &sh("head -c 5242880 /dev/zero >&2; cat"),
        request(&[], &payload),
    );
    assert_eq!(call.exit, Some(Exit::Code(0)));
    assert_eq!(call.stderr.len(), 5 * MIB);
    assert!(call.stderr.iter().all(|&b| b == 0));
    assert!(call.stdout == payload, "stdout differs from the payload");
    assert!(call.largest_chunk <= 64 * 1024);
}

#[test]
fn a_function_closing_stdin_early_still_completes() {
    let payload = vec![b'x'; 3 * MIB];
    let call1 = call(&sh("head -c 5; echo"), request(&[], &payload));
    assert_eq!(call1.stdout, b"xxxxx\n");
    assert_eq!(call1.exit, Some(Exit::Code(0)));

    let call2 = call(
        &sh("exec 0<&-; sleep 0.1; echo done"),
        request(&[], &payload),
    );
    assert_eq!(call2.stdout, b"done\n");
    assert_eq!(call2.exit, Some(Exit::Code(0)));
}

#[test]
fn end_of_input_without_close_counts_as_close() {
    let mut input = env_frame(&[]);
    input.extend(encode(frame::INPUT, b"abc"));
    let call = call(&sh("cat"), input);
    assert_eq!(call.stdout, b"abc");
    assert_eq!(call.exit, Some(Exit::Code(0)));
}

#[test]
fn a_missing_program_cannot_run() {
    let call = call(&["/nonexistent/hello"], request(&[], b""));
    let (errno, message) = failure(&call);
    assert_eq!(errno, 2);
    assert_eq!(
        message,
        r#"cannot run "/nonexistent/hello": No such file or directory (os error 2)"#
    );
    assert!(call.status.success());
}

#[test]
fn no_entrypoint_cannot_run() {
    let call = call(&[], request(&[], b""));
    assert_eq!(failure(&call), (-1, "image has no entrypoint or command"));
}

#[test]
fn end_of_input_before_env_exits_quietly_without_running_anything() {
    let call = call(&sh("echo ran; exit 5"), Vec::new());
    assert_eq!(call.exit, None);
    assert!(call.stdout.is_empty() && call.stderr.is_empty());
    assert!(call.status.success());
}

#[test]
fn malformed_frames_are_protocol_errors() {
    let mut oversized = env_frame(&[]);
    oversized.extend(frame::header(frame::INPUT, frame::MAX_FRAME as u32 + 1));
    let mut second_env = env_frame(&[]);
    second_env.extend(env_frame(&[]));
    let cases: [(&str, Vec<u8>); 5] = [
        ("unknown type first", encode(b'Z', b"")),
        ("input before env", request(&[], b"x").split_off(5)),
        ("oversized length", oversized),
        ("second env", second_env),
        (
            "truncated frame",
            encode(frame::ENV, b"A=1\0")[..7].to_vec(),
        ),
    ];
    for (case, input) in cases {
        let call = call(&sh("cat"), input);
        let (errno, message) = failure(&call);
        assert_eq!(errno, -1, "{case}");
        assert!(message.starts_with("protocol error: "), "{case}: {message}");
        assert_eq!(call.status.code(), Some(1), "{case}");
    }
}

#[test]
fn a_background_grandchild_holding_stdout_does_not_delay_exit() {
    let call = call(&sh("sleep 10 & echo hi"), request(&[], b""));
    assert_eq!(call.stdout, b"hi\n");
    assert_eq!(call.exit, Some(Exit::Code(0)));
    assert!(
        call.elapsed < Duration::from_secs(1),
        "took {:?}",
        call.elapsed
    );
}
