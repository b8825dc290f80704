//! The conformance suite against the Redis queue, on a real `redis-server`
//! that each test starts ([`ferrite_testkit::redis`]) and kills when it ends.

mod conformance;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_queue::bus::{ChangeBus, Heard};
use ferrite_queue::{redis::RedisQueue, Queue, QueueError, Task};
use ferrite_testkit::redis::RedisServer;

/// Every operation's bound, as a node's default.
const TIMEOUT: Duration = ferrite_queue::redis::DEFAULT_TIMEOUT;

/// A queue URL of `server` with a key prefix of its own.
fn url(server: &RedisServer) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    server.url(&format!("test-{}-{n}", std::process::id()))
}

async fn make() -> (Arc<dyn Queue>, RedisServer) {
    let server = RedisServer::start_in_memory();
    let queue = RedisQueue::open(&url(&server), TIMEOUT)
        .await
        .expect("open redis queue");
    (Arc::new(queue), server)
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
    let mut server = RedisServer::start();
    let url = url(&server);
    {
        let queue = RedisQueue::open(&url, TIMEOUT).await.expect("open");
        conformance::leave_work_for_a_restart(&queue).await;
    }
    server.kill(); // SIGKILL: no shutdown save, only the AOF.
    server.restart();
    let queue = RedisQueue::open(&url, TIMEOUT).await.expect("reopen");
    conformance::find_work_after_a_restart(&queue).await;
}

/// Two prefixes on one server are two separate queues.
#[tokio::test]
async fn prefixes_are_separate_queues() {
    let server = RedisServer::start_in_memory();
    let one = RedisQueue::open(&url(&server), TIMEOUT)
        .await
        .expect("open");
    let two = RedisQueue::open(&url(&server), TIMEOUT)
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

/// A hung server (SIGSTOP: connections stay open, nothing answers) costs
/// each operation its timeout, then an error; the queue and the bus work
/// again once it resumes, and the subscription notices the hang and
/// subscribes again.
#[tokio::test]
async fn a_hung_server_costs_a_bounded_wait() {
    let server = RedisServer::start_in_memory();
    let limit = Duration::from_secs(1);
    let url = url(&server);
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

    server.pause();
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
    server.resume();

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
