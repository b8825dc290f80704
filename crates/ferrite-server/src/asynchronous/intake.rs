//! Group commit of async calls: the way every async call is accepted.
//!
//! A caller hands its call to the [`Intake`] and waits. One loop takes
//! everything already waiting (at most [`MAX_BATCH`] calls; no timer: a
//! batch is whatever arrived while the previous one was being written),
//! records the lot in the store with one atomic write
//! ([`Store::insert_calls`]), queues it with one atomic write
//! ([`Queue::push_many`]), and only then answers each caller. So many calls
//! share one commit (one disk flush) where each used to pay two, and no
//! caller is told its call id before its call is durable in both places.
//!
//! Failures are each caller's as before: when the store refuses a batch,
//! every caller gets the store's error (after a retry call by call when the
//! refusal is about one call, so that one call of a deleted app cannot fail
//! the others); when the queue refuses it, the batch's calls are recorded as
//! cancelled, with why, and every caller gets 503.

use std::sync::Arc;

use ferrite_model::{ApiError, Call, CallStatus, ErrorKind, Millis, RouteType};
use ferrite_queue::{Queue, Task};
use ferrite_store::{CallUpdate, Store, StoreError};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::task::TaskTracker;

use super::QueuedCall;

/// The most calls one batch holds: large enough that a burst is one commit,
/// small enough that one batch's transaction stays short.
pub const MAX_BATCH: usize = 256;
/// Calls waiting for a writer; beyond this, callers wait to hand theirs over
/// (backpressure rather than unbounded memory).
const BACKLOG: usize = 4 * MAX_BATCH;

/// One call waiting to be written, and who to tell.
struct Entry {
    call: Call,
    task: Task,
    answer: oneshot::Sender<Result<(), ApiError>>,
}

/// Hands async calls to the group-commit writer. Cheap to clone; the writer
/// stops (after writing and answering what it holds) once every clone is
/// gone.
#[derive(Clone)]
pub struct Intake {
    sender: mpsc::Sender<Entry>,
}

/// How many batches may be written at once, for a store at `db_url` and a
/// queue at `mq_url`.
///
/// A batch goes through two stages, the store then the queue, each with its
/// own lock when it is SQLite (one writer per file). Two batches in flight
/// make a pipeline: one is recorded while the one before it is queued
/// (at 64 clients, 4,412 calls/s against 3,370 with one batch in flight;
/// at 8, the same within the noise). More would only wait for those
/// locks, and take calls the next batch could have carried. A networked
/// store and queue (PostgreSQL, Redis) spend most of a batch's time on
/// round trips, which overlap: with one batch in flight, PostgreSQL + Redis
/// at 8 clients fell from ~380 to ~115 calls/s. Four there.
pub fn writers_for(db_url: &str, mq_url: &str) -> usize {
    if db_url.starts_with("sqlite:") || mq_url.starts_with("sqlite:") {
        2
    } else {
        4
    }
}

impl Intake {
    /// Start the writer on `tracker`, with at most `writers` batches in
    /// flight (see [`writers_for`]); it wakes the workers through `wake`.
    pub fn start(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        wake: Arc<Notify>,
        writers: usize,
        tracker: &TaskTracker,
    ) -> Intake {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let writer = Writer {
            store,
            queue,
            wake,
            tracker: tracker.clone(),
        };
        tracker.spawn(writer.run(receiver, writers.max(1)));
        Intake { sender }
    }

    /// Record `queued` as a new queued call and enqueue it; `Ok` once both
    /// are durable, which is when the client may be told the call id. A call
    /// that cannot be enqueued is recorded as cancelled, with why.
    pub async fn enqueue(&self, queued: &QueuedCall, kind: RouteType) -> Result<(), ApiError> {
        let id = &queued.request.call_id;
        let (answer, answered) = oneshot::channel();
        let entry = Entry {
            call: Call::new(id, &queued.app, &queued.path, kind, Millis::now()),
            task: Task {
                id: id.clone(),
                payload: queued.encode(),
            },
            answer,
        };
        let stopped = || {
            ApiError::new(
                ErrorKind::Unavailable,
                "the server is shutting down; the call was not queued",
            )
        };
        self.sender.send(entry).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// What a batch is written with.
#[derive(Clone)]
struct Writer {
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    wake: Arc<Notify>,
    /// Owns the batches in flight, so shutdown waits for them.
    tracker: TaskTracker,
}

impl Writer {
    /// Take batches until every sender is gone and the channel is empty.
    async fn run(self, mut receiver: mpsc::Receiver<Entry>, writers: usize) {
        let turns = Arc::new(Semaphore::new(writers));
        // A turn first, then the calls: while every writer is busy, calls
        // pile up in the channel and the next batch takes them all.
        while let Ok(turn) = turns.clone().acquire_owned().await {
            let Some(first) = receiver.recv().await else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
            let writer = self.clone();
            self.tracker.spawn(async move {
                writer.write(batch).await;
                drop(turn);
            });
        }
    }

    /// Make `batch` durable (or fail it), then answer its callers.
    async fn write(&self, batch: Vec<Entry>) {
        let calls: Vec<Call> = batch.iter().map(|e| e.call.clone()).collect();
        let recorded = match self.store.insert_calls(&calls).await {
            Ok(()) => batch,
            Err(e) if batch.len() > 1 && about_one_call(&e) => self.one_by_one(batch).await,
            Err(e) => {
                tracing::warn!(calls = batch.len(), error = %e, "cannot record async calls");
                let error = crate::api::error::store_failure(e);
                for entry in batch {
                    let _ = entry.answer.send(Err(error.clone()));
                }
                return;
            }
        };
        if recorded.is_empty() {
            return;
        }
        let tasks: Vec<Task> = recorded.iter().map(|e| e.task.clone()).collect();
        match self.queue.push_many(&tasks).await {
            Ok(()) => {
                self.wake.notify_one();
                for entry in recorded {
                    tracing::debug!(call_id = %entry.call.id, "async call queued");
                    let _ = entry.answer.send(Ok(()));
                }
            }
            Err(e) => {
                let message = format!("the call could not be queued: {e}");
                for entry in recorded {
                    self.cancel(&entry.call.id, &message).await;
                    let _ = entry
                        .answer
                        .send(Err(ApiError::new(ErrorKind::Unavailable, message.clone())));
                }
            }
        }
    }

    /// Record each call on its own, after the store refused the batch over
    /// one of them; answers the callers it fails, returns the rest.
    async fn one_by_one(&self, batch: Vec<Entry>) -> Vec<Entry> {
        let mut recorded = Vec::with_capacity(batch.len());
        for entry in batch {
            match self.store.insert_call(&entry.call).await {
                Ok(()) => recorded.push(entry),
                Err(e) => {
                    tracing::warn!(call_id = %entry.call.id, error = %e, "cannot record an async call");
                    let _ = entry.answer.send(Err(crate::api::error::store_failure(e)));
                }
            }
        }
        recorded
    }

    /// Record a call that could not be queued as cancelled, with why.
    async fn cancel(&self, id: &str, message: &str) {
        let update = CallUpdate {
            error: Some(message),
            ..CallUpdate::new(CallStatus::Cancelled, Millis::now().0)
        };
        if let Err(e) = self.store.update_call(id, &update).await {
            tracing::warn!(call_id = %id, error = %e, "cannot mark an unqueued call as cancelled");
        }
        tracing::warn!(call_id = %id, error = %message, "async call refused");
    }
}

/// Whether the store refused a batch over one of its calls (an app deleted
/// meanwhile, an id taken) rather than over the store itself.
fn about_one_call(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::AppNotFound(_) | StoreError::CallExists(_)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use ferrite_queue::sqlite::SqliteQueue;
    use ferrite_queue::{Lease, QueueError};
    use ferrite_store::sqlite::SqliteStore;

    use super::*;
    use crate::executor::CallRequest;

    /// A queue that refuses every push: the batch must come back cancelled.
    struct Refusing;

    #[async_trait]
    impl Queue for Refusing {
        async fn push_many(&self, _: &[Task]) -> Result<(), QueueError> {
            Err(QueueError::Timeout(Duration::from_secs(1)))
        }
        async fn reserve(&self, _: &str, _: Duration) -> Result<Option<Lease>, QueueError> {
            Ok(None)
        }
        async fn extend(&self, _: &Lease, _: Duration) -> Result<(), QueueError> {
            Ok(())
        }
        async fn ack(&self, _: &Lease) -> Result<(), QueueError> {
            Ok(())
        }
        async fn release(&self, _: &Lease, _: Duration) -> Result<(), QueueError> {
            Ok(())
        }
        async fn cancel(&self, _: &str) -> Result<bool, QueueError> {
            Ok(false)
        }
        async fn depth(&self) -> Result<u64, QueueError> {
            Ok(0)
        }
        async fn oldest_waiting(&self) -> Result<Option<Duration>, QueueError> {
            Ok(None)
        }
    }

    fn queued(app: &str, n: usize) -> QueuedCall {
        QueuedCall {
            app: app.to_string(),
            path: "/p".to_string(),
            request: CallRequest {
                call_id: format!("01900000-0000-7000-8000-{n:012}"),
                method: axum::http::Method::POST,
                uri: format!("/r/{app}/p").parse().unwrap(),
                request_url: format!("http://localhost/r/{app}/p"),
                task_path: None,
                headers: axum::http::HeaderMap::new(),
                body: bytes::Bytes::from_static(b"{}"),
            },
        }
    }

    async fn store_with_app(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let store = Arc::new(SqliteStore::open(&url).await.unwrap());
        let app = ferrite_model::App::create(ferrite_model::AppInput {
            name: Some("app".into()),
            ..Default::default()
        })
        .unwrap();
        store.create_app(&app).await.unwrap();
        store
    }

    /// Many callers at once: each is answered once its call is in the store
    /// and in the queue; a call of a missing app fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_calls_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_app(&dir).await;
        let url = format!("sqlite://{}", dir.path().join("q.db").display());
        let queue: Arc<dyn Queue> = Arc::new(SqliteQueue::open(&url).await.unwrap());
        let tracker = TaskTracker::new();
        let intake = Intake::start(store.clone(), queue.clone(), Arc::default(), 1, &tracker);
        let callers: Vec<_> = (0..600)
            .map(|n| {
                let intake = intake.clone();
                let app = if n == 300 { "missing" } else { "app" };
                tokio::spawn(async move { intake.enqueue(&queued(app, n), RouteType::Async).await })
            })
            .collect();
        for (n, caller) in callers.into_iter().enumerate() {
            let answer = caller.await.unwrap();
            if n == 300 {
                assert_eq!(answer.unwrap_err().kind, ErrorKind::NotFound);
            } else {
                answer.unwrap();
                let id = &queued("app", n).request.call_id;
                let call = store.get_call("app", id).await.unwrap();
                assert_eq!(call.status, CallStatus::Queued);
            }
        }
        assert_eq!(queue.depth().await.unwrap(), 599);
        drop(intake);
        tracker.close();
        tracker.wait().await;
    }

    /// A batch the queue refuses: every caller gets 503, every call is
    /// recorded as cancelled with why.
    #[tokio::test]
    async fn refused_batch_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_app(&dir).await;
        let tracker = TaskTracker::new();
        let intake = Intake::start(
            store.clone(),
            Arc::new(Refusing),
            Arc::default(),
            1,
            &tracker,
        );
        let callers: Vec<_> = (0..20)
            .map(|n| {
                let intake = intake.clone();
                tokio::spawn(
                    async move { intake.enqueue(&queued("app", n), RouteType::Async).await },
                )
            })
            .collect();
        for (n, caller) in callers.into_iter().enumerate() {
            let err = caller.await.unwrap().unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unavailable);
            let call = store
                .get_call("app", &queued("app", n).request.call_id)
                .await
                .unwrap();
            assert_eq!(call.status, CallStatus::Cancelled);
            assert!(call
                .error
                .is_some_and(|e| e.contains("could not be queued")));
        }
    }

    #[test]
    fn two_writers_on_sqlite() {
        assert_eq!(writers_for("sqlite://f.db", "redis://r/x"), 2);
        assert_eq!(writers_for("postgres://h/db", "sqlite://q.db"), 2);
        assert_eq!(writers_for("postgres://h/db", "redis://r/x"), 4);
    }
}
