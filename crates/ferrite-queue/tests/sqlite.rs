//! The conformance suite against the embedded SQLite queue, on a temp file.

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use ferrite_queue::{sqlite::SqliteQueue, Queue, QueueError, Task};

async fn make() -> (Arc<dyn Queue>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("data/queue.db").display());
    let queue = SqliteQueue::open(&url).await.expect("open sqlite queue");
    (Arc::new(queue), dir)
}

conformance::queue_conformance_tests!(make());

/// Unacknowledged tasks survive a restart, leased ones included: a lease
/// held by the old process runs out and the task is delivered again.
#[tokio::test]
async fn reopening_keeps_unacknowledged_tasks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    {
        let queue = SqliteQueue::open(&url).await.expect("open");
        for id in ["a", "b", "c"] {
            let task = Task {
                id: id.into(),
                payload: id.as_bytes().to_vec(),
            };
            queue.push(&task).await.expect("push");
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
    let queue = SqliteQueue::open(&url).await.expect("reopen");
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
    got.sort();
    assert_eq!(got, [("b".to_string(), 2), ("c".to_string(), 1)]);
}

#[tokio::test]
async fn bad_url_is_a_config_error() {
    let err = SqliteQueue::open("postgres://x")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, QueueError::Config(_)), "{err:?}");
}
