//! A hot function (`format: http`): Ferrite starts this program once and
//! keeps its container up; each call arrives on stdin as an HTTP/1.1
//! request, and the answer goes to stdout as an HTTP/1.1 response, one call
//! at a time. stderr is the log. End of input means the container is being
//! stopped: the program exits. The app's and route's config keys are
//! environment variables, fixed when the container starts; per-call facts
//! come as request headers (`Fn-Call-Id`, ...).

mod json;

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;

/// Longest request line or header line read (Ferrite sends far shorter).
const MAX_LINE: u64 = 64 * 1024;

fn main() -> ExitCode {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    loop {
        let body = match read_request(&mut input) {
            Ok(Some(body)) => body,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bad request: {e}");
                return ExitCode::FAILURE;
            }
        };
        let name = json::name(&String::from_utf8_lossy(&body))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "World".to_string());
        eprintln!("greeting {name}");
        let answer = format!("{greeting}, {name}!\n");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        // Flushed at once: Ferrite waits for the whole response.
        if let Err(e) = output
            .write_all(response.as_bytes())
            .and_then(|()| output.flush())
        {
            eprintln!("cannot write the response: {e}");
            return ExitCode::FAILURE;
        }
    }
}

/// Reads one request and returns its body; `None` at the end of input
/// before a request begins.
fn read_request(input: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    // The request line (`POST /r/app/route HTTP/1.1`); blank lines before it
    // are skipped, as HTTP/1.1 allows.
    let mut line = String::new();
    loop {
        line.clear();
        if input.take(MAX_LINE).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    // Headers up to the blank line; names in any case.
    let mut length = 0;
    loop {
        line.clear();
        if input.take(MAX_LINE).read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of input in the headers",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "Content-Length is not a number")
                })?;
            }
        }
    }
    // Exactly Content-Length bytes: the next request follows them.
    let mut body = Vec::new();
    input.take(length).read_to_end(&mut body)?;
    if body.len() as u64 != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "end of input in the body",
        ));
    }
    Ok(Some(body))
}
