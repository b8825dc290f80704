//! The conformance suite against the Redis queue, on a real `redis-server`
//! that each test starts on a free port (with a temp dir) and kills when it
//! ends.

mod conformance;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_queue::bus::{ChangeBus, Heard};
use ferrite_queue::{redis::RedisQueue, Queue, QueueError, Task};

/// Every operation's bound, as a node's default.
const TIMEOUT: Duration = ferrite_queue::redis::DEFAULT_TIMEOUT;

/// A `redis-server` child process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    /// Start a server persisting to `dir`: append-only with an fsync per
    /// write when `aof`, no persistence at all otherwise.
    fn start(dir: &Path, aof: bool) -> Server {
        let which = Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .output()
            .expect("run sh");
        assert!(
            which.status.success(),
            "redis-server not found: install Debian's redis-server package (scripts/test.sh does)"
        );
        // The port may be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", ""])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if aof {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            } else {
                cmd.args(["--appendonly", "no"]);
            }
            let child = cmd.spawn().expect("start redis-server");
            let mut server = Server { child, port };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    /// Until the server answers PING (or exits, or 10 s pass).
    fn wait_ready(&mut self) -> bool {
        let url = format!("redis://127.0.0.1:{}", self.port);
        let client = redis::Client::open(url.as_str()).expect("client");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A queue URL with a key prefix of its own.
    fn url(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!(
            "redis://127.0.0.1:{}/test-{}-{n}",
            self.port,
            std::process::id()
        )
    }
}

async fn make() -> (Arc<dyn Queue>, (Server, tempfile::TempDir)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), false);
    let queue = RedisQueue::open(&server.url(), TIMEOUT)
        .await
        .expect("open redis queue");
    (Arc::new(queue), (server, dir))
}

conformance::queue_conformance_tests!(make());

fn task(id: &str) -> Task {
    Task {
        id: id.into(),
        payload: id.as_bytes().to_vec(),
    }
}

/// Unacknowledged tasks survive a server crash (SIGKILL) with an fsync'd
/// append-only file, leased ones included: the lease runs out and the task
/// is delivered again.
#[tokio::test]
async fn tasks_survive_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), true);
    let url = server.url();
    let prefix = url.rsplit_once('/').expect("a prefix").1.to_string();
    {
        let queue = RedisQueue::open(&url, TIMEOUT).await.expect("open");
        for id in ["a", "b", "c"] {
            queue.push(&task(id)).await.expect("push");
        }
        let done = queue
            .reserve("old", Duration::from_secs(60))
            .await
            .expect("reserve")
            .expect("a");
        queue.ack(&done).await.expect("ack");
        queue
            .reserve("old", Duration::from_millis(100))
            .await
            .expect("reserve")
            .expect("b, never acknowledged");
    }
    drop(server); // SIGKILL: no shutdown save, only the AOF.
    let server = Server::start(dir.path(), true);
    let url = format!("redis://127.0.0.1:{}/{prefix}", server.port);
    let queue = RedisQueue::open(&url, TIMEOUT).await.expect("reopen");
    assert_eq!(queue.depth().await.expect("depth"), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut got = Vec::new();
    while let Some(lease) = queue
        .reserve("new", Duration::from_secs(60))
        .await
        .expect("reserve")
    {
        got.push((lease.task.id.clone(), lease.attempts));
        queue.ack(&lease).await.expect("ack");
    }
    // c was visible from its push, b only once the old lease ran out.
    assert_eq!(got, [("c".to_string(), 1), ("b".to_string(), 2)]);
}

/// Two prefixes on one server are two separate queues.
#[tokio::test]
async fn prefixes_are_separate_queues() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), false);
    let one = RedisQueue::open(&server.url(), TIMEOUT)
        .await
        .expect("open");
    let two = RedisQueue::open(&server.url(), TIMEOUT)
        .await
        .expect("open");
    one.push(&task("x")).await.expect("push");
    two.push(&task("x")).await.expect("same id, other queue");
    assert_eq!(one.depth().await.expect("depth"), 1);
    let lease = two
        .reserve("w", Duration::from_secs(60))
        .await
        .expect("reserve")
        .expect("x");
    two.ack(&lease).await.expect("ack");
    assert_eq!(one.depth().await.expect("depth"), 1);
    assert_eq!(two.depth().await.expect("depth"), 0);
}

#[tokio::test]
async fn bad_url_is_a_config_error() {
    let err = RedisQueue::open("sqlite://queue.db", TIMEOUT)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, QueueError::Config(_)), "{err:?}");
    // Nothing listens on port 1.
    let err = RedisQueue::open("redis://127.0.0.1:1/x", TIMEOUT)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, QueueError::Config(_)), "{err:?}");
}

/// Send `signal` (`STOP`, `CONT`) to the server.
fn signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// A hung server (SIGSTOP: connections stay open, nothing answers) costs
/// each operation its timeout, then an error; the queue and the bus work
/// again once it resumes, and the subscription notices the hang and
/// subscribes again.
#[tokio::test]
async fn a_hung_server_costs_a_bounded_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), false);
    let limit = Duration::from_secs(1);
    let url = server.url();
    let queue = RedisQueue::open(&url, limit).await.expect("open");
    let bus = Arc::new(ChangeBus::open(&url, limit).await.expect("bus"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = {
        let bus = bus.clone();
        tokio::spawn(async move {
            loop {
                let tx = tx.clone();
                let ended = bus.listen(move |heard| tx.send(heard).is_ok()).await;
                if ended.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    assert_eq!(rx.recv().await, Some(Heard::Subscribed));
    queue.push(&task("before")).await.expect("push");

    signal(&server, "STOP");
    let mut slowest = Duration::ZERO;
    for id in ["hung-1", "hung-2"] {
        let began = Instant::now();
        let err = queue.push(&task(id)).await.expect_err("no answer");
        slowest = slowest.max(began.elapsed());
        assert!(matches!(err, QueueError::Timeout(_)), "{err:?}");
    }
    let began = Instant::now();
    let err = bus.publish("lost").await.expect_err("no answer");
    slowest = slowest.max(began.elapsed());
    assert!(matches!(err, QueueError::Timeout(_)), "{err:?}");
    println!("a hung Redis: the slowest operation gave up after {slowest:?} (timeout {limit:?})");
    assert!(slowest < limit * 3, "{slowest:?}");
    tokio::time::sleep(limit * 2).await;
    signal(&server, "CONT");

    // The queue answers again; the subscription was found dead and renewed.
    let resumed = Instant::now();
    let mut answered = false;
    while resumed.elapsed() < Duration::from_secs(30) && !answered {
        answered = queue.depth().await.is_ok();
    }
    assert!(answered, "the queue did not answer again");
    let mut heard = Vec::new();
    let renewed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(h) = rx.recv().await {
            heard.push(h.clone());
            if h == Heard::Subscribed {
                return;
            }
        }
    })
    .await;
    assert!(renewed.is_ok(), "no new subscription; heard {heard:?}");
    println!(
        "queue and bus back {:?} after SIGCONT; heard meanwhile: {heard:?}",
        resumed.elapsed()
    );
    queue.push(&task("after")).await.expect("push after");
    listener.abort();
}
