//! The conformance suite against the embedded SQLite queue, on a temp file.

mod conformance;

use std::sync::Arc;

use ferrite_queue::{sqlite::SqliteQueue, Queue, QueueError};

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
        conformance::leave_work_for_a_restart(&queue).await;
    }
    let queue = SqliteQueue::open(&url).await.expect("reopen");
    conformance::find_work_after_a_restart(&queue).await;
}

#[tokio::test]
async fn bad_url_is_a_config_error() {
    let err = SqliteQueue::open("postgres://x")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, QueueError::Config(_)), "{err:?}");
}
