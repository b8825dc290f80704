//! hot-stream: a hot (`format: http`) function whose answer comes a piece
//! at a time, for the streaming tests and to try streaming by hand. One
//! process serves request after request over its stdin/stdout as HTTP/1.1
//! (request line, headers up to the blank line, then exactly
//! `Content-Length` bytes of body, which it ignores). What it answers comes
//! from the request's query string, every key optional:
//!
//! - `chunks=N`: how many pieces (default 3)
//! - `size=B`: bytes per piece (default 16); piece `i` (from 1) is
//!   `chunk i\n` padded with `.` to `B` bytes (cut to `B` when longer)
//! - `pause_ms=M`: sleeps M ms before each piece but the first (default 0)
//! - `hold=1`: after the first piece, never writes again (the caller's
//!   timeout ends it)
//! - `length=1`: one buffered answer with `Content-Length` instead: the same
//!   bytes, written at once
//! - `sse=1`: `Content-Type: text/event-stream`, each piece a `data:` event
//!   (`size` is then ignored)
//!
//! A chunked answer writes each piece as one chunk and flushes it. It exits
//! 0 on EOF between requests, 1 on a broken request or a failed write (its
//! caller went away).
//!
//! Built with a bare rustc, std only, as a static binary (scripts/images.sh).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::process::exit;
use std::time::Duration;

/// What one request asks for.
struct Ask {
    chunks: u64,
    size: usize,
    pause_ms: u64,
    hold: bool,
    length: bool,
    sse: bool,
}

fn main() {
    // Raw fds 0 and 1, unbuffered: each piece leaves when it is written.
    let mut input = BufReader::with_capacity(64 * 1024, unsafe { File::from_raw_fd(0) });
    let mut stdout = unsafe { File::from_raw_fd(1) };
    loop {
        let target = match read_request(&mut input) {
            Ok(Some(target)) => target,
            Ok(None) => exit(0),
            Err(e) => {
                eprintln!("hot-stream: bad request: {e}");
                exit(1);
            }
        };
        let ask = ask(&target);
        if let Err(e) = answer(&mut stdout, &ask) {
            eprintln!("hot-stream: writing the answer: {e}");
            exit(1);
        }
    }
}

fn ask(target: &str) -> Ask {
    let mut ask = Ask {
        chunks: 3,
        size: 16,
        pause_ms: 0,
        hold: false,
        length: false,
        sse: false,
    };
    let query = target.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value.parse::<u64>().ok();
        match (key, number) {
            ("chunks", Some(n)) => ask.chunks = n,
            ("size", Some(n)) => ask.size = usize::try_from(n).unwrap_or(usize::MAX).max(1),
            ("pause_ms", Some(n)) => ask.pause_ms = n,
            ("hold", Some(n)) => ask.hold = n != 0,
            ("length", Some(n)) => ask.length = n != 0,
            ("sse", Some(n)) => ask.sse = n != 0,
            _ => {}
        }
    }
    ask
}

/// Piece `i` of the answer into `out`.
fn piece(ask: &Ask, i: u64, out: &mut Vec<u8>) {
    out.clear();
    if ask.sse {
        out.extend_from_slice(format!("data: chunk {i}\n\n").as_bytes());
        return;
    }
    out.extend_from_slice(format!("chunk {i}\n").as_bytes());
    out.resize(ask.size, b'.');
}

fn answer(stdout: &mut File, ask: &Ask) -> io::Result<()> {
    let kind = if ask.sse {
        "text/event-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = Vec::new();
    if ask.length {
        let mut body = Vec::new();
        for i in 1..=ask.chunks {
            piece(ask, i, &mut out);
            body.extend_from_slice(&out);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stdout.write_all(head.as_bytes())?;
        return stdout.write_all(&body);
    }
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n");
    stdout.write_all(head.as_bytes())?;
    let mut chunk = Vec::new();
    for i in 1..=ask.chunks {
        if i > 1 {
            if ask.hold {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            std::thread::sleep(Duration::from_millis(ask.pause_ms));
        }
        piece(ask, i, &mut out);
        chunk.clear();
        chunk.extend_from_slice(format!("{:x}\r\n", out.len()).as_bytes());
        chunk.extend_from_slice(&out);
        chunk.extend_from_slice(b"\r\n");
        stdout.write_all(&chunk)?;
    }
    stdout.write_all(b"0\r\n\r\n")
}

/// Reads one request; its target (the request URI) back, or None on EOF
/// before the request's first byte.
fn read_request(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        if !trim_eol(&line).is_empty() {
            break;
        }
    }
    let request_line = String::from_utf8_lossy(trim_eol(&line)).into_owned();
    let target = request_line
        .split(' ')
        .nth(1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no request target"))?
        .to_string();
    let mut length = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of input in the headers",
            ));
        }
        let header = trim_eol(&line);
        if header.is_empty() {
            break;
        }
        if header.len() > 15 && header[..15].eq_ignore_ascii_case(b"content-length:") {
            length = String::from_utf8_lossy(&header[15..])
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        }
    }
    let skipped = io::copy(&mut input.by_ref().take(length), &mut io::sink())?;
    if skipped < length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "end of input in the body",
        ));
    }
    Ok(Some(target))
}

/// The line without its `\n` or `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
