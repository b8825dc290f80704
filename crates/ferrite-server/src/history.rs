//! The call history of sync calls, and its retention.
//!
//! A sync call is recorded once it has ended. Writing each record in its own
//! transaction would cost more than a whole hot call, so calls go through a
//! channel to one writer that stores them in batches: the call only pays for
//! a channel send. When the writer falls behind, the channel fills and calls
//! wait for room rather than lose their records.

use std::sync::Arc;
use std::time::Duration;

use ferrite_model::{Call, Millis};
use ferrite_store::{RecordedCall, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::execute::CallLog;

/// Records waiting for the writer, at most.
const BACKLOG: usize = 16_384;
/// Records per transaction, at most.
const BATCH: usize = 1_000;
/// How long the writer waits before trying a failed batch again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Attempts at one batch before its records are given up (and logged).
const WRITE_ATTEMPTS: u32 = 5;

/// The sending end: cheap to clone, one per handler.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<RecordedCall>,
    /// Where records wait for their hot call's log.
    tracker: TaskTracker,
}

impl Recorder {
    /// Start the writer on `tracker`. It stops once every `Recorder` is
    /// dropped and the backlog is written.
    pub fn start(store: Arc<dyn Store>, tracker: &TaskTracker) -> Recorder {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tracker.spawn(write_batches(store, receiver));
        Recorder {
            sender,
            tracker: tracker.clone(),
        }
    }

    /// Queue a finished call for the history, once its log is complete.
    pub async fn record(&self, call: Call, log: CallLog) {
        match log {
            CallLog::Ready(bytes) => send(&self.sender, call, bytes).await,
            CallLog::Pending(_) => {
                let sender = self.sender.clone();
                self.tracker
                    .spawn(async move { send(&sender, call, log.bytes().await).await });
            }
        }
    }
}

async fn send(sender: &mpsc::Sender<RecordedCall>, call: Call, log: bytes::Bytes) {
    let log = (!log.is_empty()).then(|| log.to_vec());
    if sender.send(RecordedCall { call, log }).await.is_err() {
        tracing::warn!("call history writer has stopped; a call record was dropped");
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<RecordedCall>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut attempt = 1;
        loop {
            match store.record_calls(&batch).await {
                Ok(_) => break,
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(error = %e, calls = batch.len(), attempt, "cannot write call records; trying again");
                    attempt += 1;
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, calls = batch.len(), "cannot write call records; they are lost from the history");
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Delete final calls older than `retention`, now and then every `every`,
/// until `cancel`.
pub async fn purge_loop(
    store: Arc<dyn Store>,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        let cutoff = Millis::now()
            .0
            .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        match store.purge_calls(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "old call records purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge old call records"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
