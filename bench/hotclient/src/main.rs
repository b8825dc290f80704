//! hotclient: the load client of bench/hot.sh (std only).
//!
//! Drives a hot hello one request at a time per client thread, either
//! directly over a container's stdio (`docker run -i`, the baseline without
//! Ferrite: every byte goes through the engine's attach relay) or through
//! Ferrite over HTTP/1.1 keep-alive TCP connections (TCP_NODELAY), and prints
//! one JSON object on stdout.
//!
//!   hotclient stdio IMAGE NAME_PREFIX CLIENTS WARMUP MAX SECONDS
//!   hotclient http  URL               CLIENTS WARMUP MAX SECONDS
//!
//! Each client thread makes WARMUP unmeasured calls; then all threads start
//! together and each makes up to MAX calls, stopping early when SECONDS have
//! passed (0: no time limit). In stdio mode each thread runs its own
//! container, `docker run -i --rm --name NAME_PREFIX-<i> IMAGE`, closed
//! (stdin EOF, the function exits, `--rm` removes it) after the run.
//!
//! Latency is `Instant` around one request: its write up to the last byte
//! of the response body, so neither process start nor connection setup is
//! counted. Percentiles are nearest-rank over the sorted latencies of the
//! calls that answered 200. Throughput is those calls over the measured
//! phase's wall time (all threads start at a barrier and the phase ends when
//! the last thread is done). With `HOTCLIENT_EXPECT=202` (bench/async.sh) an
//! answer counts when it has that status, whatever its body (a call id).
//! `HOTCLIENT_METHOD=GET` sends bodiless GETs instead of the hello POST and
//! counts any answer with the expected status (bench/async.sh: `GET /version`
//! as the baseline of a server's own request rate).
//! `HOTCLIENT_HEADER="Name: value"` adds a header to every HTTP request
//! (bench/services.sh: a task's watchdog key, to call the task directly).
//! `HOTCLIENT_ROUTES=N` spreads the calls over N routes: the URL's path
//! ends in a prefix, and call k of client t goes to that prefix followed by
//! `(t + k × CLIENTS) mod N` (bench/routes.sh).
//! The CPU time every process on the machine used
//! during the phase (from /proc, grouped by command name) is reported per
//! call, to show where the time goes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const BODY: &[u8] = br#"{"name":"Johnny"}"#;
const EXPECTED: &[u8] = b"Hello Johnny!\n";
/// The request the baseline writes to the function's stdin, as asked.
const STDIO_PATH: &str = "/r/bench/hello";

/// The status a call must answer to count: `HOTCLIENT_EXPECT`, else 200
/// with the hello body.
fn expected_status() -> u16 {
    std::env::var("HOTCLIENT_EXPECT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Whether `HOTCLIENT_METHOD=GET` asks for bodiless GETs.
fn is_get() -> bool {
    std::env::var("HOTCLIENT_METHOD").is_ok_and(|m| m.eq_ignore_ascii_case("GET"))
}

const USAGE: &str = "usage:
  hotclient stdio IMAGE NAME_PREFIX CLIENTS WARMUP MAX SECONDS
  hotclient http  URL               CLIENTS WARMUP MAX SECONDS";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("stdio") if args.len() == 7 => run_stdio(&args[1..]),
        Some("http") if args.len() == 6 => run_http(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("hotclient: {e}");
            std::process::exit(1);
        }
    }
}

struct Plan {
    clients: usize,
    warmup: u64,
    max: u64,
    seconds: f64,
}

fn plan(args: &[String]) -> io::Result<Plan> {
    let bad = |what: &str, v: &str| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("bad {what}: {v}"))
    };
    Ok(Plan {
        clients: args[0]
            .parse()
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| bad("CLIENTS", &args[0]))?,
        warmup: args[1].parse().map_err(|_| bad("WARMUP", &args[1]))?,
        max: args[2].parse().map_err(|_| bad("MAX", &args[2]))?,
        seconds: args[3].parse().map_err(|_| bad("SECONDS", &args[3]))?,
    })
}

/// One way of making a call: Ok(status) with the body in `body`, Err on a
/// transport failure (the transport reconnects if it can).
trait Transport: Send {
    fn call(&mut self, resp: &mut Response) -> io::Result<u16>;
    fn close(&mut self) {}
}

/// Reused response buffers.
#[derive(Default)]
struct Response {
    line: Vec<u8>,
    body: Vec<u8>,
    close: bool,
}

/// Reads one line into `line` and returns it without its end of line; the
/// end of input there is an error, `where_` saying where in the response.
fn read_line<'a, R: BufRead>(
    input: &mut R,
    line: &'a mut Vec<u8>,
    where_: &str,
) -> io::Result<&'a [u8]> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("end of input {where_}"),
        ));
    }
    Ok(trim_eol(line))
}

/// Reads one HTTP/1.1 response: status line, headers up to the blank line,
/// then Content-Length bytes (or a chunked body). Returns the status.
fn read_response<R: BufRead>(input: &mut R, resp: &mut Response) -> io::Result<u16> {
    let broken = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let status_line = read_line(input, &mut resp.line, "before a response")?;
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
        return Err(broken(&format!(
            "bad status line: {}",
            String::from_utf8_lossy(status_line)
        )));
    }
    let status = parse_u64(&status_line[9..12]).ok_or_else(|| broken("bad status code"))? as u16;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    resp.close = false;
    loop {
        let h = read_line(input, &mut resp.line, "in the headers")?;
        if h.is_empty() {
            break;
        }
        let Some(colon) = h.iter().position(|&b| b == b':') else {
            return Err(broken("header without a colon"));
        };
        let (name, value) = (&h[..colon], h[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(parse_u64(value).ok_or_else(|| broken("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            resp.close = value.eq_ignore_ascii_case(b"close");
        }
    }
    resp.body.clear();
    if chunked {
        loop {
            resp.line.clear();
            input.read_until(b'\n', &mut resp.line)?;
            let size = trim_eol(&resp.line);
            let size = size
                .split(|&b| b == b';')
                .next()
                .unwrap_or(size)
                .trim_ascii();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| broken("bad chunk size"))?;
            if size == 0 {
                // Trailers up to the blank line.
                loop {
                    resp.line.clear();
                    if input.read_until(b'\n', &mut resp.line)? == 0
                        || trim_eol(&resp.line).is_empty()
                    {
                        return Ok(status);
                    }
                }
            }
            read_exact_into(input, &mut resp.body, size)?;
            resp.line.clear();
            input.read_until(b'\n', &mut resp.line)?;
        }
    }
    match length {
        Some(n) => read_exact_into(input, &mut resp.body, n)?,
        None if status == 204 || status == 304 || status < 200 => {}
        None => {
            // Delimited by the end of the connection.
            input.read_to_end(&mut resp.body)?;
            resp.close = true;
        }
    }
    Ok(status)
}

fn read_exact_into<R: Read>(input: &mut R, out: &mut Vec<u8>, n: u64) -> io::Result<()> {
    let got = input.by_ref().take(n).read_to_end(out)?;
    if (got as u64) < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "end of input in the body",
        ));
    }
    Ok(())
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

// ---------------------------------------------------------------- stdio mode

/// One `docker run -i --rm` container spoken to over the CLI's stdio.
struct DockerRun {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    request: Vec<u8>,
    name: String,
}

impl DockerRun {
    fn spawn(image: &str, name: &str) -> io::Result<DockerRun> {
        let mut child = Command::new("docker")
            .args(["run", "-i", "--rm", "--name", name, image])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::with_capacity(64 * 1024, child.stdout.take().expect("piped"));
        let mut request = format!(
            "POST {STDIO_PATH} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY.len()
        )
        .into_bytes();
        request.extend_from_slice(BODY);
        Ok(DockerRun {
            child,
            stdin,
            stdout,
            request,
            name: name.to_string(),
        })
    }
}

impl Transport for DockerRun {
    fn call(&mut self, resp: &mut Response) -> io::Result<u16> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        stdin.write_all(&self.request)?;
        read_response(&mut self.stdout, resp)
    }

    /// EOF on stdin: the function exits 0 and `--rm` removes the container.
    fn close(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    eprintln!(
                        "hotclient: {} did not exit; killing its docker CLI",
                        self.name
                    );
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for DockerRun {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.close();
        }
    }
}

fn run_stdio(args: &[String]) -> io::Result<String> {
    let (image, prefix) = (args[0].clone(), args[1].clone());
    let plan = plan(&args[2..])?;
    let detail = format!(r#""image":"{image}""#);
    run(
        "stdio",
        &plan,
        detail,
        Arc::new(move |i| {
            Ok(Box::new(DockerRun::spawn(&image, &format!("{prefix}-{i}"))?) as Box<dyn Transport>)
        }),
    )
}

// ----------------------------------------------------------------- http mode

/// One keep-alive HTTP/1.1 connection; reconnects after a failure or a
/// `Connection: close`.
struct Http {
    addr: String,
    request: Vec<u8>,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    /// With `HOTCLIENT_ROUTES`: the request up to the route's number, the
    /// rest after it, the number of routes, the next route and the step.
    spread: Option<Spread>,
}

struct Spread {
    head: Vec<u8>,
    tail: Vec<u8>,
    routes: u64,
    next: u64,
    step: u64,
}

impl Http {
    fn new(url: &str, client: usize, clients: usize) -> io::Result<Http> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "URL must start with http://")
        })?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let extra = std::env::var("HOTCLIENT_HEADER")
            .map(|h| format!("{}\r\n", h.trim()))
            .unwrap_or_default();
        let request = if is_get() {
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n").into_bytes()
        } else {
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                BODY.len()
            )
            .into_bytes();
            request.extend_from_slice(BODY);
            request
        };
        let routes: u64 = match std::env::var("HOTCLIENT_ROUTES") {
            Ok(n) => n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bad HOTCLIENT_ROUTES: {n}"),
                )
            })?,
            Err(_) => 0,
        };
        let spread = (routes > 0).then(|| {
            // The path ends before " HTTP/1.1".
            let at = request
                .windows(9)
                .position(|w| w == b" HTTP/1.1")
                .unwrap_or(0);
            Spread {
                head: request[..at].to_vec(),
                tail: request[at..].to_vec(),
                routes,
                next: client as u64 % routes,
                step: clients as u64,
            }
        });
        Ok(Http {
            addr: addr.to_string(),
            request,
            conn: None,
            spread,
        })
    }

    fn connect(&mut self) -> io::Result<&mut (TcpStream, BufReader<TcpStream>)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
            self.conn = Some((stream, reader));
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

impl Transport for Http {
    fn call(&mut self, resp: &mut Response) -> io::Result<u16> {
        if let Some(spread) = &mut self.spread {
            self.request.clear();
            self.request.extend_from_slice(&spread.head);
            self.request
                .extend_from_slice(spread.next.to_string().as_bytes());
            self.request.extend_from_slice(&spread.tail);
            spread.next = (spread.next + spread.step) % spread.routes;
        }
        let request = std::mem::take(&mut self.request);
        let result = self.connect().and_then(|(stream, reader)| {
            stream.write_all(&request)?;
            read_response(reader, resp)
        });
        self.request = request;
        if result.is_err() || resp.close {
            self.conn = None;
        }
        result
    }

    fn close(&mut self) {
        self.conn = None;
    }
}

fn run_http(args: &[String]) -> io::Result<String> {
    let url = args[0].clone();
    let plan = plan(&args[1..])?;
    let clients = plan.clients;
    Http::new(&url, 0, clients)?; // check the URL before starting threads
    let detail = format!(r#""url":"{url}""#);
    run(
        "http",
        &plan,
        detail,
        Arc::new(move |i| Ok(Box::new(Http::new(&url, i, clients)?) as Box<dyn Transport>)),
    )
}

// ------------------------------------------------------------------- the run

type Factory = Arc<dyn Fn(usize) -> io::Result<Box<dyn Transport>> + Send + Sync>;

#[derive(Default)]
struct ThreadResult {
    lat_ns: Vec<u64>,
    errors: u64,
    bad_body: u64,
    warmup_errors: u64,
    statuses: HashMap<u16, u64>,
    first_error: Option<String>,
}

fn run(mode: &str, plan: &Plan, detail: String, factory: Factory) -> io::Result<String> {
    // Barriers: everyone warmed up; everyone done measuring (the main
    // thread takes part in both to time the phase).
    let start = Arc::new(Barrier::new(plan.clients + 1));
    let done = Arc::new(Barrier::new(plan.clients + 1));
    let (warmup, max, seconds) = (plan.warmup, plan.max, plan.seconds);
    let stdio = mode == "stdio";
    let expect = expected_status();
    let check_body = expect == 200 && !is_get();
    let mut handles = Vec::new();
    for i in 0..plan.clients {
        let (start, done, factory) = (start.clone(), done.clone(), factory.clone());
        handles.push(thread::spawn(move || {
            let mut r = ThreadResult {
                lat_ns: Vec::with_capacity(max.min(1 << 22) as usize),
                ..Default::default()
            };
            let mut resp = Response {
                line: Vec::with_capacity(256),
                body: Vec::with_capacity(256),
                close: false,
            };
            let mut transport = match factory(i) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.first_error = Some(format!("client {i}: {e}"));
                    None
                }
            };
            // A transport that cannot call (stdio: the container is gone)
            // ends this thread's calls; http reconnects on the next call.
            let fatal =
                |e: &io::Error, stdio: bool| stdio || e.kind() == io::ErrorKind::ConnectionRefused;
            if let Some(t) = transport.as_mut() {
                for _ in 0..warmup {
                    match t.call(&mut resp) {
                        Ok(status) if status == expect => {}
                        Ok(_) => r.warmup_errors += 1,
                        Err(e) => {
                            r.warmup_errors += 1;
                            r.first_error
                                .get_or_insert_with(|| format!("client {i} warm-up: {e}"));
                            if fatal(&e, stdio) {
                                transport = None;
                                break;
                            }
                        }
                    }
                }
            }
            start.wait();
            let began = Instant::now();
            let deadline = (seconds > 0.0).then(|| began + Duration::from_secs_f64(seconds));
            if let Some(t) = transport.as_mut() {
                for _ in 0..max {
                    let t0 = Instant::now();
                    let result = t.call(&mut resp);
                    let elapsed = t0.elapsed();
                    match result {
                        Ok(status) => {
                            *r.statuses.entry(status).or_insert(0) += 1;
                            if status == expect {
                                if check_body && resp.body != EXPECTED {
                                    r.bad_body += 1;
                                }
                                r.lat_ns.push(elapsed.as_nanos() as u64);
                            } else {
                                r.errors += 1;
                            }
                        }
                        Err(e) => {
                            *r.statuses.entry(0).or_insert(0) += 1;
                            r.errors += 1;
                            r.first_error
                                .get_or_insert_with(|| format!("client {i}: {e}"));
                            if fatal(&e, stdio) {
                                break;
                            }
                        }
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
            done.wait();
            if let Some(mut t) = transport {
                t.close();
            }
            r
        }));
    }
    start.wait();
    let cpu0 = Cpu::sample();
    let began = Instant::now();
    done.wait();
    let wall = began.elapsed().as_secs_f64();
    let cpu1 = Cpu::sample();
    let results: Vec<ThreadResult> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();

    let mut lat: Vec<u64> = Vec::with_capacity(results.iter().map(|r| r.lat_ns.len()).sum());
    let (mut errors, mut bad, mut warmup_errors) = (0, 0, 0);
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    let mut first_error = None;
    let mut per_client = Vec::new();
    for r in results {
        lat.extend_from_slice(&r.lat_ns);
        per_client.push(r.lat_ns.len());
        errors += r.errors;
        bad += r.bad_body;
        warmup_errors += r.warmup_errors;
        for (s, n) in r.statuses {
            *statuses.entry(s).or_insert(0) += n;
        }
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let ms = |ns: u64| ns as f64 / 1e6;
    let pct = |p: f64| -> String {
        if lat.is_empty() {
            return "null".into();
        }
        let rank = ((p / 100.0 * lat.len() as f64).ceil() as usize).max(1);
        format!("{:.4}", ms(lat[rank - 1]))
    };
    let mean = if lat.is_empty() {
        "null".into()
    } else {
        format!("{:.4}", ms(lat.iter().sum::<u64>() / ok))
    };
    let mut statuses: Vec<_> = statuses.into_iter().collect();
    statuses.sort();
    let statuses = statuses
        .iter()
        .map(|(s, n)| format!(r#""{s}":{n}"#))
        .collect::<Vec<_>>()
        .join(",");
    let cpu = cpu0.delta(&cpu1, ok);
    Ok(format!(
        concat!(
            r#"{{"mode":"{}",{},"clients":{},"warmup_per_client":{},"max_per_client":{},"seconds":{},"#,
            r#""n":{},"ok":{},"errors":{},"bad_body":{},"warmup_errors":{},"statuses":{{{}}},"per_client_ok":{:?},"#,
            r#""p50_ms":{},"p90_ms":{},"p99_ms":{},"p999_ms":{},"min_ms":{},"max_ms":{},"mean_ms":{},"#,
            r#""wall_s":{:.3},"rate_per_s":{:.1},{},"first_error":{}}}"#
        ),
        mode,
        detail,
        plan.clients,
        plan.warmup,
        plan.max,
        plan.seconds,
        ok + errors,
        ok,
        errors,
        bad,
        warmup_errors,
        statuses,
        per_client,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        lat.first()
            .map_or("null".into(), |&v| format!("{:.4}", ms(v))),
        lat.last()
            .map_or("null".into(), |&v| format!("{:.4}", ms(v))),
        mean,
        wall,
        ok as f64 / wall,
        cpu,
        first_error.map_or("null".into(), |e| json_string(&e)),
    ))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ------------------------------------------------------------------- the CPU

extern "C" {
    fn sysconf(name: i32) -> i64;
}
const SC_CLK_TCK: i32 = 2; // Linux

/// CPU time of the whole machine (/proc/stat) and of every process
/// (/proc/PID/stat utime + stime, all threads), in clock ticks.
struct Cpu {
    busy: u64,
    total: u64,
    procs: HashMap<u32, (String, u64)>,
}

impl Cpu {
    fn sample() -> Cpu {
        let (mut busy, mut total) = (0, 0);
        if let Ok(stat) = fs::read_to_string("/proc/stat") {
            if let Some(line) = stat.lines().next() {
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal
                if v.len() >= 8 {
                    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                    total = busy + v[3] + v[4];
                }
            }
        }
        let mut procs = HashMap::new();
        if let Ok(dir) = fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                    continue;
                };
                let comm = stat[open + 1..close].to_string();
                // Fields after the comm: state is field 3; utime 14, stime 15.
                let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
                let (Some(u), Some(s)) = (
                    f.get(11).and_then(|v| v.parse::<u64>().ok()),
                    f.get(12).and_then(|v| v.parse::<u64>().ok()),
                ) else {
                    continue;
                };
                procs.insert(pid, (comm, u + s));
            }
        }
        Cpu { busy, total, procs }
    }

    /// JSON fields: machine busy share, CPU µs per call, and per command
    /// name (processes alive at both samples) µs per call, largest first.
    fn delta(&self, later: &Cpu, calls: u64) -> String {
        if calls == 0 {
            return r#""machine_busy_pct":null,"cpu_us_per_call":null,"cpu_us_per_call_by_process":{}"#.into();
        }
        let calls = calls as f64;
        let tick_us = 1e6 / unsafe { sysconf(SC_CLK_TCK) }.max(1) as f64;
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let mut by_comm: HashMap<&str, u64> = HashMap::new();
        for (pid, (comm, t1)) in &later.procs {
            if let Some((c0, t0)) = self.procs.get(pid) {
                if c0 == comm && t1 > t0 {
                    *by_comm.entry(comm.as_str()).or_insert(0) += t1 - t0;
                }
            }
        }
        let mut by_comm: Vec<_> = by_comm.into_iter().collect();
        by_comm.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let procs = by_comm
            .iter()
            .take(12)
            .map(|(c, t)| format!("{}:{:.1}", json_string(c), *t as f64 * tick_us / calls))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            r#""machine_busy_pct":{:.1},"cpu_us_per_call":{:.1},"cpu_us_per_call_by_process":{{{}}}"#,
            100.0 * busy / total,
            busy * tick_us / calls,
            procs
        )
    }
}
