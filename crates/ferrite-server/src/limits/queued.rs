//! The cap on an app's queued async calls, cheap enough for the enqueue path.
//!
//! The count is read from the store (an index of queued calls only) at most
//! once a second per app and node; in between, the node adds the calls it
//! queued itself. A refusal is decided on a count at most [`RECHECK`] old,
//! so an app whose queue drained is admitted again at once.
//!
//! How exact: one node alone overshoots by nothing (calls it admits are
//! counted at once) except calls admitted whose enqueue then failed, which
//! count until the next read. Nodes sharing a store each see the others'
//! calls at their next read, so the queue may exceed the cap by what the
//! other nodes admit within a second. Nothing queued is ever dropped.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrite_model::{ApiError, ErrorKind};
use ferrite_store::Store;

/// How long a count read from the store is used.
const FRESH: Duration = Duration::from_secs(1);
/// How old a count may be to refuse a call on it.
const RECHECK: Duration = Duration::from_millis(100);
/// `Retry-After` of a refusal: when the next read of the count is due.
const RETRY_AFTER_S: u64 = 1;

#[derive(Default)]
pub struct QueuedCount(Mutex<Count>);

#[derive(Default)]
struct Count {
    /// Queued calls of the app when last read from the store.
    read: u64,
    /// Calls this node admitted since.
    added: u64,
    /// When `read` was read; `None` before the first read.
    at: Option<Instant>,
    /// A read is under way: others use the count they have.
    reading: bool,
}

impl Count {
    fn estimate(&self) -> u64 {
        self.read.saturating_add(self.added)
    }
}

/// Clears `reading` however the read ends (the caller's future may be
/// dropped mid-read when its client goes away).
struct Reading<'a>(&'a QueuedCount);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.count().reading = false;
    }
}

impl QueuedCount {
    fn count(&self) -> std::sync::MutexGuard<'_, Count> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count one more queued call of `app`, or refuse it (429) when `max`
    /// are queued.
    pub async fn admit(&self, store: &dyn Store, app: &str, max: u64) -> Result<(), ApiError> {
        let must_read = {
            let mut count = self.count();
            let stale = match count.at.map(|at| at.elapsed()) {
                None => true,
                Some(age) => age >= FRESH || (count.estimate() >= max && age >= RECHECK),
            };
            let read = stale && !(count.reading && count.at.is_some());
            count.reading |= read;
            read
        };
        if must_read {
            let _reading = Reading(self);
            let queued = store
                .count_queued_calls(app)
                .await
                .map_err(crate::api::error::store_failure)?;
            let mut count = self.count();
            count.read = queued;
            count.added = 0;
            count.at = Some(Instant::now());
        }
        let mut count = self.count();
        let queued = count.estimate();
        if queued >= max {
            return Err(ApiError::new(
                ErrorKind::TooManyRequests {
                    retry_after_s: RETRY_AFTER_S,
                },
                format!(
                    "app {app} has {queued} async calls queued, its limit of {max} \
                     (app limits.max_queued, default FERRITE_APP_MAX_QUEUED); \
                     try again once the queue drains"
                ),
            ));
        }
        count.added += 1;
        Ok(())
    }
}
