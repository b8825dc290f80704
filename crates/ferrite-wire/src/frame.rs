//! The frames exchanged between the Ferrite host and the init, over the init's
//! stdin (host → init) and stdout (init → host).
//!
//! A frame is one type byte, a big-endian `u32` payload length, then the
//! payload. This module owns the encoding of frames and of the two structured
//! payloads (`E` environment, `X` exit); it does no I/O of its own beyond the
//! `Read`/`Write` it is handed, and std is its only dependency, so that the
//! static init binary stays small.

use std::fmt;
use std::io::{self, Read, Write};

/// Host → init: the call's environment; first frame, exactly one.
pub const ENV: u8 = b'E';
/// Host → init: bytes for the function's stdin.
pub const INPUT: u8 = b'I';
/// Host → init: end of the function's stdin; the payload is empty.
pub const CLOSE: u8 = b'C';
/// Init → host: a chunk of the function's stdout.
pub const STDOUT: u8 = b'O';
/// Init → host: a chunk of the function's stderr.
pub const STDERR: u8 = b'L';
/// Init → host: how the function ended; always the last frame.
pub const EXIT: u8 = b'X';

/// Largest payload a frame may carry (1 MiB). A longer length is a protocol
/// error, which bounds what either side buffers for one frame.
pub const MAX_FRAME: usize = 1 << 20;
/// Size of a frame header: type byte and length.
pub const HEADER_LEN: usize = 5;

const EXIT_CODE: u8 = 0;
const EXIT_SIGNAL: u8 = 1;
const EXIT_OOM: u8 = 2;
const EXIT_FAILED: u8 = 3;

/// Why bytes could not be read as frames or their payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A header announced more than [`MAX_FRAME`] bytes (or a payload to write has more).
    TooLong { kind: u8, len: usize },
    /// An `E` payload is not a sequence of NUL-terminated `KEY=VALUE` entries,
    /// or a variable cannot be encoded as one.
    InvalidEnv(String),
    /// An `X` payload is too short or has an unknown kind.
    InvalidExit(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { kind, len } => write!(
                f,
                "frame of type {} is {len} bytes long, over the {MAX_FRAME}-byte limit",
                KindName(*kind)
            ),
            FrameError::InvalidEnv(why) => write!(f, "invalid environment frame: {why}"),
            FrameError::InvalidExit(why) => write!(f, "invalid exit frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Shows a frame type as `'E'` when printable, else as `0x07`, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindName(pub u8);

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// The header of a frame of type `kind` carrying `len` payload bytes.
pub fn header(kind: u8, len: u32) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = len.to_be_bytes();
    [kind, a, b, c, d]
}

/// Writes one frame. Does not flush, so callers choose their own buffering.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = checked_len(kind, payload.len())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    w.write_all(&header(kind, len))?;
    w.write_all(payload)
}

/// Reads one frame. `Ok(None)` when the stream ends cleanly between frames;
/// an end inside a frame is `UnexpectedEof`, an oversized length `InvalidData`.
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut head[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(truncated("a frame header")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (kind, len) = parse_header(head)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => truncated(&format!("a frame of type {}", KindName(kind))),
        _ => e,
    })?;
    Ok(Some((kind, payload)))
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("stream ended inside {what}"),
    )
}

fn parse_header(head: [u8; HEADER_LEN]) -> Result<(u8, usize), FrameError> {
    let [kind, a, b, c, d] = head;
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLong { kind, len });
    }
    Ok((kind, len))
}

fn checked_len(kind: u8, len: usize) -> Result<u32, FrameError> {
    match u32::try_from(len) {
        Ok(n) if len <= MAX_FRAME => Ok(n),
        _ => Err(FrameError::TooLong { kind, len }),
    }
}

/// Incremental frame parser for callers that receive the stream in arbitrary
/// chunks (the async host): [`push`](Self::push) bytes as they arrive, then
/// take frames with [`next_frame`](Self::next_frame) until it yields `None`.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Bytes received and not yet returned as frames, from `start` on.
    buf: Vec<u8>,
    /// Where the first unconsumed byte is; the consumed prefix is dropped on the next push.
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After an
    /// error the stream cannot be resynchronised; the error repeats.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some(head) = rest.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut bytes = [0u8; HEADER_LEN];
        bytes.copy_from_slice(head);
        let (kind, len) = parse_header(bytes)?;
        let Some(payload) = rest.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some((kind, payload)))
    }

    /// Bytes held that do not yet form a whole frame. Non-zero when the stream
    /// has ended means it was cut inside a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Encodes variables as an `E` payload: `KEY=VALUE` entries, each followed by
/// a NUL. Refuses what the receiver could not split back apart (an empty key,
/// `=` in a key, NUL anywhere) instead of letting one value smuggle in another
/// variable, and a payload over [`MAX_FRAME`].
pub fn encode_env(vars: &[(String, String)]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    for (key, value) in vars {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(FrameError::InvalidEnv(format!(
                "variable name {key:?} is empty or contains '=' or NUL"
            )));
        }
        if value.contains('\0') {
            return Err(FrameError::InvalidEnv(format!(
                "the value of {key} contains NUL"
            )));
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    checked_len(ENV, out.len())?;
    Ok(out)
}

/// Decodes an `E` payload into `(key, value)` pairs, in order. A value may
/// contain `=`: the key ends at the first one.
pub fn decode_env(payload: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let Some(body) = payload.strip_suffix(&[0]) else {
        return if payload.is_empty() {
            Ok(Vec::new())
        } else {
            Err(FrameError::InvalidEnv(
                "the last entry is not NUL-terminated".into(),
            ))
        };
    };
    body.split(|&b| b == 0)
        .map(|entry| {
            let entry = std::str::from_utf8(entry)
                .map_err(|_| FrameError::InvalidEnv("an entry is not UTF-8".into()))?;
            match entry.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
                _ => Err(FrameError::InvalidEnv(format!(
                    "entry {entry:?} is not KEY=VALUE"
                ))),
            }
        })
        .collect()
}

/// How the function ended: the payload of the `X` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// The kernel's OOM killer killed it, with this signal (normally 9).
    Oom(i32),
    /// It could not be run at all (or the init failed): `errno` when known, else -1.
    Failed { errno: i32, message: String },
}

impl Exit {
    /// The `X` payload: kind byte, big-endian `i32`, then the message for `Failed`.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, value, message) = match self {
            Exit::Code(code) => (EXIT_CODE, *code, ""),
            Exit::Signal(signal) => (EXIT_SIGNAL, *signal, ""),
            Exit::Oom(signal) => (EXIT_OOM, *signal, ""),
            Exit::Failed { errno, message } => (EXIT_FAILED, *errno, message.as_str()),
        };
        // Keep the whole frame within MAX_FRAME even for an absurd message.
        let mut end = message.len().min(MAX_FRAME - 5);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = Vec::with_capacity(5 + end);
        out.push(kind);
        out.extend_from_slice(&value.to_be_bytes());
        out.extend_from_slice(&message.as_bytes()[..end]);
        out
    }

    /// Parses an `X` payload. A message on kinds other than `Failed` is ignored;
    /// invalid UTF-8 in a message is replaced rather than refused.
    pub fn decode(payload: &[u8]) -> Result<Exit, FrameError> {
        let [kind, a, b, c, d, message @ ..] = payload else {
            return Err(FrameError::InvalidExit(format!(
                "{} bytes, at least 5 expected",
                payload.len()
            )));
        };
        let value = i32::from_be_bytes([*a, *b, *c, *d]);
        match *kind {
            EXIT_CODE => Ok(Exit::Code(value)),
            EXIT_SIGNAL => Ok(Exit::Signal(value)),
            EXIT_OOM => Ok(Exit::Oom(value)),
            EXIT_FAILED => Ok(Exit::Failed {
                errno: value,
                message: String::from_utf8_lossy(message).into_owned(),
            }),
            other => Err(FrameError::InvalidExit(format!("unknown kind {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn header_is_type_then_big_endian_length() {
        assert_eq!(header(INPUT, 0x0102_0304), [b'I', 1, 2, 3, 4]);
    }

    #[test]
    fn frames_round_trip_through_read_and_write() {
        let mut wire = Vec::new();
        write_frame(&mut wire, ENV, b"A=1\0").unwrap();
        write_frame(&mut wire, INPUT, &[7; 70_000]).unwrap();
        write_frame(&mut wire, CLOSE, b"").unwrap();
        let mut r = wire.as_slice();
        assert_eq!(read_frame(&mut r).unwrap(), Some((ENV, b"A=1\0".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((INPUT, vec![7; 70_000])));
        assert_eq!(read_frame(&mut r).unwrap(), Some((CLOSE, Vec::new())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_unexpected_eof() {
        let mut wire = Vec::new();
        write_frame(&mut wire, INPUT, b"hello").unwrap();
        for cut in 1..wire.len() {
            let err = read_frame(&mut &wire[..cut]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    #[test]
    fn oversized_lengths_are_rejected_on_both_sides() {
        let head = header(INPUT, MAX_FRAME as u32 + 1);
        let err = read_frame(&mut &head[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut decoder = FrameDecoder::new();
        decoder.push(&head);
        let too_long = FrameError::TooLong {
            kind: INPUT,
            len: MAX_FRAME + 1,
        };
        assert_eq!(decoder.next_frame(), Err(too_long.clone()));
        assert_eq!(decoder.next_frame(), Err(too_long));

        let err = write_frame(&mut Vec::new(), INPUT, &vec![0; MAX_FRAME + 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let mut wire = Vec::new();
        write_frame(&mut wire, INPUT, &vec![0; MAX_FRAME]).unwrap();
        assert_eq!(
            read_frame(&mut wire.as_slice()).unwrap().map(|f| f.1.len()),
            Some(MAX_FRAME)
        );
    }

    #[test]
    fn decoder_fed_byte_by_byte_yields_every_frame_once() {
        let mut wire = Vec::new();
        write_frame(&mut wire, STDOUT, b"out").unwrap();
        write_frame(&mut wire, STDERR, b"").unwrap();
        write_frame(&mut wire, EXIT, &Exit::Code(3).encode()).unwrap();
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            got.extend(frames(&mut decoder));
        }
        let expected = vec![
            (STDOUT, b"out".to_vec()),
            (STDERR, Vec::new()),
            (EXIT, Exit::Code(3).encode()),
        ];
        assert_eq!(got, expected);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn decoder_handles_many_frames_in_one_push_and_reports_leftovers() {
        let mut wire = Vec::new();
        for i in 0..10u8 {
            write_frame(&mut wire, STDOUT, &[i; 3]).unwrap();
        }
        let mut decoder = FrameDecoder::new();
        decoder.push(&wire[..wire.len() - 2]);
        assert_eq!(frames(&mut decoder).len(), 9);
        assert_eq!(decoder.buffered(), 6);
        decoder.push(&wire[wire.len() - 2..]);
        assert_eq!(frames(&mut decoder), vec![(STDOUT, vec![9; 3])]);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn env_round_trips_with_equals_signs_and_empty_values() {
        let env = vars(&[("URL", "http://h/r?a=1&b=2"), ("EMPTY", ""), ("EQ", "=")]);
        let payload = encode_env(&env).unwrap();
        assert_eq!(payload, b"URL=http://h/r?a=1&b=2\0EMPTY=\0EQ==\0".to_vec());
        assert_eq!(decode_env(&payload).unwrap(), env);
        assert_eq!(decode_env(b"").unwrap(), Vec::new());
    }

    #[test]
    fn env_that_cannot_be_split_back_is_refused() {
        for bad in [
            &[("A=B", "x")][..],
            &[("", "x")],
            &[("A\0", "x")],
            &[("A", "x\0PATH=/evil")],
        ] {
            assert!(encode_env(&vars(bad)).is_err(), "{bad:?}");
        }
        let huge = vec![("BIG".to_string(), "x".repeat(MAX_FRAME))];
        assert!(matches!(encode_env(&huge), Err(FrameError::TooLong { .. })));
        for bad in [&b"A=1"[..], b"A=1\0\0", b"NOEQUALS\0", b"=x\0", b"A=\xff\0"] {
            assert!(decode_env(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exits_round_trip() {
        let exits = [
            Exit::Code(0),
            Exit::Code(-1),
            Exit::Signal(15),
            Exit::Oom(9),
            Exit::Failed {
                errno: 2,
                message: "cannot run \"/hello\": No such file".into(),
            },
            Exit::Failed {
                errno: -1,
                message: String::new(),
            },
        ];
        for exit in exits {
            assert_eq!(Exit::decode(&exit.encode()).unwrap(), exit);
        }
        assert_eq!(Exit::Code(3).encode(), vec![0, 0, 0, 0, 3]);
        assert_eq!(Exit::Signal(9).encode(), vec![1, 0, 0, 0, 9]);
    }

    #[test]
    fn malformed_exits_are_refused() {
        assert!(Exit::decode(&[0, 0, 0, 0]).is_err());
        assert!(Exit::decode(&[4, 0, 0, 0, 0]).is_err());
        assert_eq!(Exit::decode(&[0, 0, 0, 0, 1, b'x']).unwrap(), Exit::Code(1));
    }

    #[test]
    fn kinds_are_named_readably() {
        assert_eq!(KindName(b'E').to_string(), "'E'");
        assert_eq!(KindName(7).to_string(), "0x07");
    }
}
