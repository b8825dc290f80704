//! hot-hello: the hot (`format: http`) version of `ferrite/hello`, and the
//! benchmark's hello. One process serves request after request over its
//! stdin/stdout as HTTP/1.1: it reads a request (request line, headers up to
//! the blank line, then exactly `Content-Length` bytes of body) and answers
//! `Hello <name>!` where the name comes from a JSON body `{"name":"..."}`,
//! or `Hello World!` when there is no (non-empty) name. It exits 0 on EOF
//! between requests, 1 on a broken request or a failed write.
//!
//! Built with a bare rustc, std only, as a static binary (scripts/images.sh).
//! Fast on purpose: one buffered reader for the whole life of the process,
//! buffers reused from request to request, one write(2) per response.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::process::exit;

fn main() {
    // Raw fds 0 and 1 (std's Stdin and Stdout buffer on their own): one
    // reader buffer for the process's life; the response is assembled in
    // `out` and written at once. The loop only ends by exit(), so these
    // Files are never dropped (closed).
    let mut input = BufReader::with_capacity(64 * 1024, unsafe { File::from_raw_fd(0) });
    let mut stdout = unsafe { File::from_raw_fd(1) };
    let mut line = Vec::with_capacity(256);
    let mut body = Vec::with_capacity(256);
    let mut out = Vec::with_capacity(256);
    loop {
        match read_request(&mut input, &mut line, &mut body) {
            Ok(true) => {}
            Ok(false) => exit(0),
            Err(e) => {
                eprintln!("hot-hello: bad request: {e}");
                exit(1);
            }
        }
        // The greeting goes into `line` (free again) first: the length
        // comes before it in the response.
        line.clear();
        line.extend_from_slice(b"Hello ");
        if !json_name(&body, &mut line) {
            line.truncate(6);
            line.extend_from_slice(b"World");
        }
        line.extend_from_slice(b"!\n");
        out.clear();
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        );
        push_decimal(&mut out, line.len());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&line);
        if let Err(e) = stdout.write_all(&out) {
            eprintln!("hot-hello: writing the response: {e}");
            exit(1);
        }
    }
}

/// Reads one request; its body lands in `body`. Ok(false) on EOF before the
/// request's first byte.
fn read_request(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> io::Result<bool> {
    // The request line (empty lines before it are tolerated, as RFC 9112 asks).
    loop {
        line.clear();
        if input.read_until(b'\n', line)? == 0 {
            return Ok(false);
        }
        if !trim_eol(line).is_empty() {
            break;
        }
    }
    let mut length = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', line)? == 0 {
            return Err(eof("in the headers"));
        }
        let header = trim_eol(line);
        if header.is_empty() {
            break;
        }
        if header.len() > 15 && header[..15].eq_ignore_ascii_case(b"content-length:") {
            length = parse_length(&header[15..])
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        }
    }
    body.clear();
    if length > 0 {
        body.reserve(length.min(1 << 20)); // a lying length cannot abort us
        let got = input.by_ref().take(length as u64).read_to_end(body)?;
        if got < length {
            return Err(eof("in the body"));
        }
    }
    Ok(true)
}

fn eof(where_: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("end of input {where_}"),
    )
}

/// The line without its `\n` or `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 {
        return None;
    }
    let mut n = 0usize;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends the decoded value of the first `"name": "<string>"` in `json` to
/// `out`; false if there is none or it is empty. Minimal on purpose: it looks
/// for the key, not for a full parse, but decodes the string's escapes.
fn json_name(json: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut from = 0;
    while let Some(at) = find(&json[from..], b"\"name\"") {
        let mut i = from + at + 6;
        from = i;
        while i < json.len() && json[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= json.len() || json[i] != b':' {
            continue; // "name" as a value, not a key
        }
        i += 1;
        while i < json.len() && json[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= json.len() || json[i] != b'"' {
            return false; // not a string
        }
        return decode_string(&json[i + 1..], out) && out.len() > start;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a JSON string's content (after its opening quote) up to the
/// closing quote into `out`; false if it is not terminated.
fn decode_string(s: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => return true,
            b'\\' if i + 1 < s.len() => {
                i += 1;
                match s[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let Some(c) = hex4(&s[i + 1..]) else {
                            return false;
                        };
                        i += 4;
                        let mut c = c;
                        // A surrogate pair: \uD83D\uDE00.
                        if (0xD800..0xDC00).contains(&c) && s.get(i + 1..i + 3) == Some(b"\\u") {
                            if let Some(low @ 0xDC00..=0xDFFF) = hex4(&s[i + 3..]) {
                                c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                                i += 6;
                            }
                        }
                        let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    other => out.push(other), // \" \\ \/
                }
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    false
}

fn hex4(s: &[u8]) -> Option<u32> {
    let digits = s.get(..4)?;
    let mut n = 0u32;
    for &d in digits {
        n = n * 16 + (d as char).to_digit(16)?;
    }
    Some(n)
}
