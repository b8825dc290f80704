//! The async queue's depth and the age of its oldest waiting call, sampled
//! by a background task: a scrape must not ask the queue (SQLite or Redis)
//! anything, and a sample every [`SAMPLE_EVERY`] is fresh enough for
//! alerts on a growing backlog.

use std::sync::Arc;
use std::time::Duration;

use ::metrics::gauge;
use ferrite_queue::Queue;
use tokio_util::sync::CancellationToken;

use super::{ASYNC_OLDEST, ASYNC_QUEUE_DEPTH};

/// How often the queue is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Sample `queue` every `every` until `cancel`. A sample that fails leaves
/// the last values (and is logged at debug: the queue's outages are told
/// by the workers).
pub async fn sample(queue: Arc<dyn Queue>, every: Duration, cancel: CancellationToken) {
    gauge!(ASYNC_QUEUE_DEPTH).set(0.0);
    gauge!(ASYNC_OLDEST).set(0.0);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sampled = async {
            let depth = queue.depth().await?;
            let oldest = queue.oldest_waiting().await?;
            Ok::<_, ferrite_queue::QueueError>((depth, oldest))
        };
        // A queue that hangs must not stop the sampling for long.
        match tokio::time::timeout(every, sampled).await {
            Ok(Ok((depth, oldest))) => {
                gauge!(ASYNC_QUEUE_DEPTH).set(depth as f64);
                gauge!(ASYNC_OLDEST).set(oldest.unwrap_or_default().as_secs_f64());
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot sample the async queue"),
            Err(_) => tracing::debug!("sampling the async queue timed out"),
        }
    }
}
