//! Hot functions' chunked answers streamed to sync callers, against the
//! real engine (docs/streaming.md): the first chunk reaches the client
//! while the function is still writing, answers over the buffered cap
//! arrive whole, `Content-Length` answers keep the cap, a timeout or a
//! client gone mid-stream removes the container, the history record ends
//! with the stream, and the node's memory does not grow with the answer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    client, create_route, eventually, metric_value, node_containers, require_images, TestServer,
};
use serde_json::{json, Value};

const IMAGE: &str = "ferrite/hot-stream";

fn containers(server: &TestServer) -> usize {
    node_containers(&server.node_id).len()
}

/// The call's history record, once it has one.
fn record(server: &TestServer, call_id: &str) -> Option<Value> {
    let reply = client()
        .get(format!("{}/v1/calls/{call_id}", server.url))
        .send()
        .unwrap();
    (reply.status() == 200).then(|| reply.json::<Value>().unwrap()["call"].clone())
}

/// The call's record, waiting for it to be written.
#[track_caller]
fn ended_record(server: &TestServer, call_id: &str) -> Value {
    let mut found = None;
    assert!(
        eventually(Duration::from_secs(30), || {
            found = record(server, call_id);
            found.is_some()
        }),
        "no record of call {call_id}"
    );
    found.unwrap()
}

/// `ferrite_calls_total` of route `path` of `app` ended `status`.
fn calls_total(server: &TestServer, app: &str, path: &str, status: &str) -> u64 {
    let series = format!(
        r#"ferrite_calls_total{{app="{app}",route="{path}",kind="sync",status="{status}"}}"#
    );
    metric_value(server, &series).map_or(0, |n| n as u64)
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A raw HTTP/1.1 GET of `target` on `server`: the connection, past the
/// answer's head (which is returned).
fn raw_get(server: &TestServer, target: &str) -> (TcpStream, String) {
    let address = server.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The first chunk reaches the client while the function is blocked after
/// writing it (it never writes again): a buffered answer could only come
/// at the function's end. The route's timeout then cuts the stream: the
/// client sees the answer end without its last chunk, the call is
/// recorded (only then) as a timeout and counted once, and its container
/// is removed.
fn first_chunk_then_timeout(server: &TestServer) {
    create_route(
        server,
        "st",
        json!({"path":"/s","image":IMAGE,"format":"http","timeout":3}),
    );
    let (mut stream, head) = raw_get(server, "/r/st/s?chunks=2&size=32&hold=1");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        header(&head, "transfer-encoding"),
        Some("chunked"),
        "{head}"
    );
    assert_eq!(header(&head, "content-length"), None, "{head}");
    let call_id = header(&head, "fn-call-id").unwrap().to_string();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("chunk 1\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before its first chunk: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    // The function is held after its first chunk: the call has not ended,
    // so it has no record yet, and its container is busy.
    assert!(record(server, &call_id).is_none());
    assert_eq!(containers(server), 1);
    // Past the timeout the answer is cut: the connection closes without
    // the terminating chunk.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(!text.contains("chunk 2"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the cut answer looks whole: {text}"
    );
    let call = ended_record(server, &call_id);
    assert_eq!(call["status"], "timeout", "{call}");
    assert_eq!(call["error"], "Timed out", "{call}");
    assert!(
        eventually(Duration::from_secs(10), || containers(server) == 0),
        "{:?}",
        node_containers(&server.node_id)
    );
    assert!(
        eventually(Duration::from_secs(5), || calls_total(
            server, "st", "/s", "timeout"
        ) == 1),
        "counted once as a timeout"
    );
    assert_eq!(calls_total(server, "st", "/s", "success"), 0);
    // The route serves the next call from a fresh container.
    let reply = client()
        .get(format!("{}/r/st/s?chunks=3&size=8", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "chunk 1\nchunk 2\nchunk 3\n");
}

#[test]
fn the_first_chunk_arrives_while_the_function_still_writes_and_the_timeout_cuts_it() {
    require_images(&[IMAGE]);
    first_chunk_then_timeout(&TestServer::start());
}

#[test]
fn through_the_engine_attach_stream_too() {
    require_images(&[IMAGE]);
    // No shared socket directory: the engine relays the function's stdio.
    first_chunk_then_timeout(&TestServer::start_with_env(&[(
        "FERRITE_HOT_SOCKET_DIR",
        "off",
    )]));
}

/// With a buffered cap of 64 KiB: a chunked 4 MiB answer streams through
/// whole (and the container serves the next call), a `Content-Length`
/// answer over the cap still gets 502, and a chunked answer over the
/// streamed-bytes cap is cut and its container removed. Server-Sent Events
/// pass as they come. Prints time to first and last byte.
#[test]
fn streamed_answers_pass_the_buffered_cap_and_sized_ones_keep_it() {
    require_images(&[IMAGE]);
    let server = TestServer::start_with_env(&[
        ("FN_MAX_RESPONSE_BYTES", "65536"),
        ("FERRITE_MAX_STREAMED_BYTES", "8388608"),
    ]);
    create_route(
        &server,
        "big",
        json!({"path":"/s","image":IMAGE,"format":"http","timeout":60}),
    );
    let url = |query: &str| format!("{}/r/big/s?{query}", server.url);
    // 64 pieces of 64 KiB: each alone is at the cap, together 64 times it.
    let reply = client().get(url("chunks=64&size=65536")).send().unwrap();
    assert_eq!(reply.status(), 200);
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let body = reply.bytes().unwrap();
    assert_eq!(body.len(), 64 * 65536);
    for (i, piece) in body.chunks(65536).enumerate() {
        assert!(
            piece.starts_with(format!("chunk {}\n", i + 1).as_bytes()),
            "piece {i}"
        );
    }
    let call = ended_record(&server, &call_id);
    assert_eq!(call["status"], "success", "{call}");
    assert_eq!(containers(&server), 1, "the container serves the next call");
    // The same answer with Content-Length is read whole: over the cap, 502.
    let reply = client()
        .get(url("chunks=64&size=65536&length=1"))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 502);
    let text = reply.text().unwrap();
    assert!(text.contains("larger than the limit of 65536"), "{text}");
    // Under the cap it comes as it always did.
    let reply = client()
        .get(url("chunks=2&size=8&length=1"))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-length"], "16");
    assert_eq!(reply.text().unwrap(), "chunk 1\nchunk 2\n");
    // Over the streamed cap (8 MiB): cut, recorded, container removed.
    let mut reply = client().get(url("chunks=16&size=1048576")).send().unwrap();
    assert_eq!(reply.status(), 200);
    let call_id = reply.headers()["fn-call-id"].to_str().unwrap().to_string();
    let mut sink = Vec::new();
    assert!(
        reply.read_to_end(&mut sink).is_err(),
        "the cut answer looks whole"
    );
    assert!(sink.len() <= 8 * 1048576, "{}", sink.len());
    let call = ended_record(&server, &call_id);
    assert_eq!(call["status"], "error", "{call}");
    assert_eq!(
        call["error"], "the streamed answer is larger than the limit of 8388608 bytes",
        "{call}"
    );
    assert!(
        eventually(Duration::from_secs(10), || containers(&server) == 0),
        "{:?}",
        node_containers(&server.node_id)
    );
    // Server-Sent Events: the function's content type, the events whole.
    let reply = client().get(url("sse=1&chunks=3")).send().unwrap();
    assert_eq!(reply.headers()["content-type"], "text/event-stream");
    assert_eq!(
        reply.text().unwrap(),
        "data: chunk 1\n\ndata: chunk 2\n\ndata: chunk 3\n\n"
    );
    // Time to first and last byte: ten pieces, 200 ms apart.
    let started = Instant::now();
    let mut reply = client()
        .get(url("chunks=10&size=64&pause_ms=200"))
        .send()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = reply.read(&mut buf).unwrap();
    assert!(n > 0);
    let first = started.elapsed();
    let mut rest = Vec::new();
    reply.read_to_end(&mut rest).unwrap();
    let last = started.elapsed();
    assert_eq!(n + rest.len(), 640);
    println!(
        "streamed 10 x 64 B, 200 ms apart: first byte after {} ms, last after {} ms",
        first.as_millis(),
        last.as_millis()
    );
}

/// A client that goes away mid-stream: the call is recorded as an error
/// ("client went away"), its container is removed rather than handed to
/// the next call with the rest of an answer in its pipe, and the next
/// call gets a whole answer.
#[test]
fn a_client_gone_mid_stream_leaves_no_container_behind() {
    require_images(&[IMAGE]);
    let server = TestServer::start();
    create_route(
        &server,
        "gone",
        json!({"path":"/s","image":IMAGE,"format":"http","timeout":120}),
    );
    // 1200 pieces 50 ms apart: a minute of answer, if nobody stops it.
    let (mut stream, head) = raw_get(&server, "/r/gone/s?chunks=1200&size=64&pause_ms=50");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let call_id = header(&head, "fn-call-id").unwrap().to_string();
    let mut buf = [0u8; 256];
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let call = ended_record(&server, &call_id);
    assert_eq!(call["status"], "error", "{call}");
    assert_eq!(call["error"], "client went away", "{call}");
    // The node says so in its log, with the call's id.
    let logged = server.log().lines().any(|l| {
        l.contains("streamed answer over") && l.contains(&call_id) && l.contains("client went away")
    });
    assert!(logged, "{}", server.log());
    assert!(
        eventually(Duration::from_secs(10), || containers(&server) == 0),
        "{:?}",
        node_containers(&server.node_id)
    );
    assert_eq!(calls_total(&server, "gone", "/s", "error"), 1);
    let reply = client()
        .get(format!("{}/r/gone/s?chunks=3&size=8", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().unwrap(), "chunk 1\nchunk 2\nchunk 3\n");
    assert_eq!(containers(&server), 1);
}

/// 200 MiB streamed through a node whose buffered cap is 1 MiB: the
/// server's peak resident memory grows by far less than the answer.
#[test]
fn streaming_memory_does_not_grow_with_the_answer() {
    require_images(&[IMAGE]);
    const MIB: u64 = 1024 * 1024;
    let server = TestServer::start_with_env(&[("FN_MAX_RESPONSE_BYTES", "1048576")]);
    create_route(
        &server,
        "mem",
        json!({"path":"/s","image":IMAGE,"format":"http","timeout":120,"memory":64}),
    );
    let pid = server.pid().unwrap();
    // A first call starts the container; the peak is read after it.
    let warm = client()
        .get(format!("{}/r/mem/s?chunks=1", server.url))
        .send()
        .unwrap();
    assert_eq!(warm.status(), 200);
    let before = peak_rss_kib(pid);
    let started = Instant::now();
    let mut reply = client()
        .get(format!("{}/r/mem/s?chunks=200&size={MIB}", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reply.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let took = started.elapsed();
    assert_eq!(total, 200 * MIB);
    let after = peak_rss_kib(pid);
    println!(
        "streamed 200 MiB in {} ms ({:.0} MiB/s); server peak RSS {} MiB before, {} MiB after",
        took.as_millis(),
        200.0 / took.as_secs_f64(),
        before / 1024,
        after / 1024
    );
    assert!(
        after - before < 64 * 1024,
        "peak RSS grew by {} KiB for a 200 MiB answer",
        after - before
    );
}
