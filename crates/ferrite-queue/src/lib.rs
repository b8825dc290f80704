//! The durable queue of async calls. One [`Queue`] trait, one implementation
//! per backend (embedded [`sqlite`], [`redis`] for production), and one
//! conformance suite (in `tests/`) that every implementation must pass. Nodes
//! of one installation also share a [`bus`] to tell each other about changes,
//! over their Redis or, without one, their PostgreSQL database, and through
//! the same server what they need to scale services as one ([`shared`]: each
//! node's load, a lease, the holder's decisions).
//!
//! It must not know what a task means: payloads are opaque bytes that the
//! server encodes; nothing here knows calls, apps, the store or containers.
//!
//! Delivery is at-least-once: [`Queue::reserve`] hands a task out under a
//! time-limited [`Lease`]; only [`Queue::ack`] removes it. A worker that dies
//! (or stalls past its lease) loses the task, which becomes visible again and
//! is delivered to someone else with its `attempts` counted up.
//!
//! It must not know HTTP, the store or what a task's payload means: tasks
//! are opaque bytes under an id, and failures are [`QueueError`]s for the
//! server to handle.
#![forbid(unsafe_code)]

pub mod bus;
mod error;
pub mod redis;
pub mod shared;
pub mod sqlite;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use error::QueueError;

/// One unit of work: an async call waiting for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Unique while queued (the call id), so a retried push cannot enqueue
    /// the same call twice.
    pub id: String,
    /// Opaque to the queue; the caller encodes the call.
    pub payload: Vec<u8>,
}

/// A reserved task, held by one worker until the lease expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub task: Task,
    /// Deliveries so far, this one included (1 on the first delivery), so a
    /// worker can give up on a task that keeps failing.
    pub attempts: u32,
    /// Names this reservation: after the lease expires and the task is
    /// reserved again, the old token no longer acknowledges or extends it.
    pub token: String,
}

impl Lease {
    /// The lease of a task a backend just reserved, from the row it
    /// returned (`attempts` saturates: a count that large is never read).
    pub(crate) fn reserved(id: String, payload: Vec<u8>, attempts: i64, token: String) -> Lease {
        Lease {
            task: Task { id, payload },
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            token,
        }
    }
}

/// Durable, at-least-once queue of tasks. Every method is atomic.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Enqueue a task, visible at once; durable when this returns.
    /// [`QueueError::Duplicate`] if a task with this id is still queued.
    /// A batch of one: [`Queue::push_many`] is the one way in.
    async fn push(&self, task: &Task) -> Result<(), QueueError> {
        self.push_many(std::slice::from_ref(task)).await
    }

    /// Enqueue tasks in order, all visible at once, in one atomic write
    /// (one transaction, one disk flush): all of them or, on any error,
    /// none. [`QueueError::Duplicate`] names a task whose id is still queued
    /// or appears twice in `tasks`.
    async fn push_many(&self, tasks: &[Task]) -> Result<(), QueueError>;

    /// Take the oldest visible task (by visibility time, then push order),
    /// hiding it from others for `lease` and counting one more attempt.
    /// `None` when no task is visible. `worker` names the holder, for
    /// diagnostics.
    async fn reserve(&self, worker: &str, lease: Duration) -> Result<Option<Lease>, QueueError>;

    /// Keep holding a long task: its lease now ends `by` from now.
    /// [`QueueError::LeaseLost`] if the task is no longer held by this lease.
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError>;

    /// The task is done: delete it. Only the current lease holder may;
    /// [`QueueError::LeaseLost`] otherwise (the task stays queued).
    async fn ack(&self, lease: &Lease) -> Result<(), QueueError>;

    /// Give the task back, visible again after `delay` (retry with backoff).
    /// [`QueueError::LeaseLost`] if the task is no longer held by this lease.
    async fn release(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError>;

    /// Remove a task that is queued and not currently leased. `false` when
    /// there is no such task or a worker holds it (a lease still running).
    async fn cancel(&self, id: &str) -> Result<bool, QueueError>;

    /// Tasks in the queue, leased or not.
    async fn depth(&self) -> Result<u64, QueueError>;

    /// How long the task that has waited longest for a worker has been
    /// waiting: visible and not leased, measured from when it became visible
    /// (pushed, or released after its delay). `None` when no task waits.
    async fn oldest_waiting(&self) -> Result<Option<Duration>, QueueError>;
}

/// Open the queue named by an `MQ_URL`: `sqlite://path/to/queue.db` (the
/// embedded default) or `redis://host:port/prefix`, whose every operation
/// gives up after `redis_timeout`.
pub async fn open(url: &str, redis_timeout: Duration) -> Result<Arc<dyn Queue>, QueueError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteQueue::open(url).await?))
    } else if url.starts_with("redis://") {
        Ok(Arc::new(redis::RedisQueue::open(url, redis_timeout).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(QueueError::Config(format!(
            "MQ_URL {:?}: unsupported queue {scheme:?}; use sqlite://path/to/queue.db or redis://host:port/prefix",
            ferrite_model::redact::url(url)
        )))
    }
}

/// Milliseconds since the Unix epoch, the time unit of the tables.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A fresh lease token: unique across processes and hosts in practice
/// (process id, nanoseconds since the epoch, and a per-process counter),
/// without a random-number dependency.
pub(crate) fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{nanos:x}-{n:x}", std::process::id())
}
