//! chaos: a hot (`format: http`) function that misbehaves on request, so
//! that every failure mode of hot containers has a test. One process serves
//! request after request over its stdin/stdout as HTTP/1.1 (request line,
//! headers up to the blank line, then exactly `Content-Length` bytes of
//! body). What it does with a request comes from the request's JSON body,
//! one object whose keys are all optional and are applied in this order:
//!
//! - `"log":"text"`: writes the text and a newline to stderr
//! - `"sleep_ms":N`: sleeps N ms before going on
//! - `"allocate_mb":N`: allocates and touches N MiB, kept until the
//!   process exits (memory limit / OOM tests)
//! - `"exit":N`: exits with code N without answering
//! - `"crash":true`: aborts (SIGABRT) without answering
//! - `"malformed":true`: writes `this is not http\r\n\r\n` instead of an
//!   answer, then serves the next request
//! - `"no_length":true`: answers without Content-Length (and not chunked)
//! - `"status":N`: the status code (100-999), default 200
//! - `"headers":{...}`: extra response headers; a `Content-Type` or
//!   `Content-Length` given here replaces the function's
//! - `"body":"text"`: the response body
//! - `"large_kb":N`: a body of N KiB of `x` (wins over `body`)
//! - `"write":"path"`: writes `chaos` and a newline to the file (created
//!   or truncated); the body says `wrote PATH` or why it could not
//! - `"read":"path"`: the body is the file's content, or why it could not
//!   be read (wins over the others; after `write`, so both may be given)
//!
//! A failed `write` or `read` makes the status 500 unless `status` is given.
//!
//! Without `body` or `large_kb` the body is a JSON echo of the request:
//! `{"method","uri","headers" (names lower-cased),"body","pid","requests"
//! (served by this process, this one included),"env":{FN_FORMAT, APP_NAME,
//! ROUTE, FN_MEMORY, FN_TIMEOUT}}`. A body that is not a JSON object (or is
//! empty) gets the echo. Responses to HEAD, and with status 1xx, 204 or 304,
//! carry no body (1xx, 204 and 304 no Content-Type, 1xx and 204 no
//! Content-Length either). It exits 0 on EOF between requests, 1 on a
//! broken request or a failed write.
//!
//! Built with a bare rustc, std only, as a static binary (scripts/images.sh).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::process::exit;
use std::time::Duration;

struct Request {
    method: String,
    uri: String,
    /// Names lower-cased, in the order received.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn main() {
    // Raw fds 0 and 1 (std's Stdin and Stdout buffer on their own). The loop
    // only ends by exit(), so these Files are never dropped (closed).
    let mut input = BufReader::with_capacity(64 * 1024, unsafe { File::from_raw_fd(0) });
    let mut stdout = unsafe { File::from_raw_fd(1) };
    // What `allocate_mb` took, kept for the process's life.
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    let mut served: u64 = 0;
    loop {
        let request = match read_request(&mut input) {
            Ok(Some(request)) => request,
            Ok(None) => exit(0),
            Err(e) => {
                eprintln!("chaos: bad request: {e}");
                exit(1);
            }
        };
        served += 1;
        let response = handle(&request, served, &mut hoard);
        if let Err(e) = stdout.write_all(&response).and_then(|()| stdout.flush()) {
            eprintln!("chaos: writing the response: {e}");
            exit(1);
        }
    }
}

/// Carries out the request's instructions; returns the bytes to write.
fn handle(request: &Request, served: u64, hoard: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let parsed = Parser::parse(&request.body);
    let fields: &[(String, Json)] = match &parsed {
        Some(Json::Obj(fields)) => fields,
        _ => &[],
    };
    // The last of duplicate keys wins, as in most JSON readers.
    let get = |key: &str| fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
    let number = |key: &str| match get(key) {
        Some(Json::Num(n)) if n.is_finite() => Some(*n),
        _ => None,
    };
    let flag = |key: &str| matches!(get(key), Some(Json::Bool(true)));

    if let Some(Json::Str(text)) = get("log") {
        eprintln!("{text}");
    }
    if let Some(ms) = number("sleep_ms") {
        if ms > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    if let Some(mb) = number("allocate_mb") {
        // 1 MiB at a time, each page written, so the memory is really used
        // and an OOM kill happens at the limit, not at one huge request.
        for _ in 0..mb.max(0.0) as u64 {
            let chunk = vec![0xA5u8; 1 << 20];
            hoard.push(std::hint::black_box(chunk));
        }
    }
    if let Some(code) = number("exit") {
        exit(code as i32);
    }
    if flag("crash") {
        std::process::abort();
    }
    if flag("malformed") {
        return b"this is not http\r\n\r\n".to_vec();
    }
    // What the function can do to files (the confinement tests).
    let mut file: Option<(bool, Vec<u8>)> = None;
    if let Some(Json::Str(path)) = get("write") {
        file = Some(match std::fs::write(path, b"chaos\n") {
            Ok(()) => (true, format!("wrote {path}").into_bytes()),
            Err(e) => (false, format!("cannot write {path}: {e}").into_bytes()),
        });
    }
    if let Some(Json::Str(path)) = get("read") {
        file = Some(match std::fs::read(path) {
            Ok(bytes) => (true, bytes),
            Err(e) => (false, format!("cannot read {path}: {e}").into_bytes()),
        });
    }
    let no_length = flag("no_length");
    let status = match number("status") {
        Some(n) if (100.0..=999.0).contains(&n) => n as u16,
        _ if file.as_ref().is_some_and(|(ok, _)| !ok) => 500,
        _ => 200,
    };
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(Json::Obj(headers)) = get("headers") {
        for (name, value) in headers {
            let value = match value {
                Json::Str(s) => s.clone(),
                Json::Num(n) => format_number(*n),
                Json::Bool(b) => b.to_string(),
                _ => continue,
            };
            extra.push((name.clone(), value));
        }
    }
    let has = |name: &str| extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));

    let (body, content_type) = if let Some((_, bytes)) = file {
        (bytes, "text/plain; charset=utf-8")
    } else if let Some(kb) = number("large_kb") {
        (
            vec![b'x'; (kb.max(0.0) as usize) * 1024],
            "text/plain; charset=utf-8",
        )
    } else if let Some(Json::Str(text)) = get("body") {
        (text.as_bytes().to_vec(), "text/plain; charset=utf-8")
    } else {
        (echo(request, served).into_bytes(), "application/json")
    };

    let bodiless_status = status < 200 || status == 204 || status == 304;
    let send_body = !bodiless_status && request.method != "HEAD";
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    if !has("content-type") && !bodiless_status {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    if !no_length && !has("content-length") && status >= 200 && status != 204 {
        let length = if status == 304 { 0 } else { body.len() };
        let _ = write!(head, "Content-Length: {length}\r\n");
    }
    for (name, value) in &extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if send_body {
        out.extend_from_slice(&body);
    }
    out
}

/// The default body: what the function saw, as JSON.
fn echo(request: &Request, served: u64) -> String {
    let mut s = String::with_capacity(256 + request.body.len());
    s.push_str("{\"method\":");
    push_json_string(&mut s, &request.method);
    s.push_str(",\"uri\":");
    push_json_string(&mut s, &request.uri);
    s.push_str(",\"headers\":{");
    // A repeated header is one key, its values joined with ", ".
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in &request.headers {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_string(&mut s, name);
        s.push(':');
        let values: Vec<&str> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        push_json_string(&mut s, &values.join(", "));
    }
    s.push_str("},\"body\":");
    push_json_string(&mut s, &String::from_utf8_lossy(&request.body));
    let _ = write!(
        s,
        ",\"pid\":{},\"requests\":{served},\"env\":{{",
        std::process::id()
    );
    for (i, key) in ["FN_FORMAT", "APP_NAME", "ROUTE", "FN_MEMORY", "FN_TIMEOUT"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        push_json_string(&mut s, key);
        s.push(':');
        match std::env::var_os(key) {
            Some(value) => push_json_string(&mut s, &value.to_string_lossy()),
            None => s.push_str("null"),
        }
    }
    s.push_str("}}");
    s
}

fn push_json_string(s: &mut String, text: &str) {
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

// ---- The request -------------------------------------------------------

/// Reads one request; None on EOF before its first byte.
fn read_request(input: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = Vec::with_capacity(256);
    // The request line (empty lines before it are tolerated, as RFC 9112 asks).
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
    let mut parts = request_line.split_ascii_whitespace();
    let (Some(method), Some(uri)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    let (method, uri) = (method.to_string(), uri.to_string());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Err(eof("in the headers"));
        }
        let header = trim_eol(&line);
        if header.is_empty() {
            break;
        }
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            return Err(invalid(format!(
                "bad header {:?}",
                String::from_utf8_lossy(header)
            )));
        };
        let name = String::from_utf8_lossy(header[..colon].trim_ascii()).to_ascii_lowercase();
        let value = String::from_utf8_lossy(header[colon + 1..].trim_ascii()).into_owned();
        if name == "content-length" {
            length = value
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
        }
        headers.push((name, value));
    }
    let mut body = Vec::with_capacity(length.min(1 << 20)); // a lying length cannot abort us
    if input.take(length as u64).read_to_end(&mut body)? < length {
        return Err(eof("in the body"));
    }
    Ok(Some(Request {
        method,
        uri,
        headers,
        body,
    }))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
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

// ---- A small JSON reader -----------------------------------------------

enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// No key reads an array: its items are checked, not kept.
    Arr,
    Obj(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    /// The whole text as one JSON value; None if it is not valid JSON.
    fn parse(s: &'a [u8]) -> Option<Json> {
        let mut p = Parser { s, i: 0, depth: 0 };
        let value = p.value()?;
        p.ws();
        (p.i == s.len()).then_some(value)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Json::Str),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Limits nesting, so a hostile body cannot overflow the stack.
    fn nested(&mut self, f: fn(&mut Self) -> Option<Json>) -> Option<Json> {
        if self.depth >= 64 {
            return None;
        }
        self.depth += 1;
        let value = f(self);
        self.depth -= 1;
        value
    }

    fn object(&mut self) -> Option<Json> {
        self.i += 1; // {
        let mut fields = Vec::new();
        self.ws();
        if self.eat(b'}') {
            return Some(Json::Obj(fields));
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return None;
            }
            let value = self.value()?;
            fields.push((key, value));
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(Json::Obj(fields));
        }
    }

    fn array(&mut self) -> Option<Json> {
        self.i += 1; // [
        self.ws();
        if self.eat(b']') {
            return Some(Json::Arr);
        }
        loop {
            self.value()?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(Json::Arr);
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > from
        };
        if !digits(self) {
            return None;
        }
        if self.eat(b'.') && !digits(self) {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        text.parse().ok().map(Json::Num)
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1; // "
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let mut c = self.hex4()?;
                            // A surrogate pair: \uD83D\uDE00.
                            if (0xD800..0xDC00).contains(&c)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                match self.hex4() {
                                    Some(low @ 0xDC00..=0xDFFF) => {
                                        c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                                    }
                                    _ => self.i = save,
                                }
                            }
                            let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let mut n = 0u32;
        for &d in digits {
            n = n * 16 + (d as char).to_digit(16)?;
        }
        self.i += 4;
        Some(n)
    }
}
