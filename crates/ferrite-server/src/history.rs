//! The call history of sync calls, and its retention.
//!
//! A sync call is recorded once it has ended. Writing each record in its own
//! transaction would cost more than a whole hot call, so calls go through a
//! channel to one writer that stores them in batches: the call only pays for
//! a channel send. When the writer falls behind, the channel fills and calls
//! wait for room rather than lose their records.
//!
//! While the store is unavailable the writer keeps taking records and holds
//! them in memory, up to `FERRITE_HISTORY_BUFFER`; beyond it the oldest are
//! dropped (counted in `ferrite_history_dropped_total`, logged once per
//! outage). It writes them, oldest first, once the store answers again. A
//! batch the store refuses for another reason is tried a few times, then
//! given up and logged, so that one bad record cannot stall the history.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ferrite_model::{Call, Millis};
use ferrite_store::{RecordedCall, Store, StoreError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::executor::CallLog;

/// Records waiting for the writer, at most.
const BACKLOG: usize = 16_384;
/// Records per transaction, at most.
const BATCH: usize = 1_000;
/// How long the writer waits before trying a failed batch again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Attempts at one batch the store refuses (not unavailable) before its
/// records are given up (and logged).
const WRITE_ATTEMPTS: u32 = 5;
/// Bytes of logs and records the buffer holds at most, whatever
/// `FERRITE_HISTORY_BUFFER` says: functions that log much must not make an
/// outage cost the node its memory.
const BUFFER_BYTES: usize = 256 * 1024 * 1024;
/// What a record costs besides its log, roughly (ids, path, times).
const RECORD_BYTES: usize = 256;
/// At shutdown, how long records still buffered wait for the store.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The sending end: cheap to clone, one per handler.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<RecordedCall>,
    /// Where records wait for their hot call's log.
    tracker: TaskTracker,
}

impl Recorder {
    /// Start the writer on `tracker`, holding up to `buffer` records while
    /// the store is unavailable. It stops once every `Recorder` is dropped
    /// and the backlog is written (or, the store being away, after
    /// [`SHUTDOWN_WAIT`]).
    pub fn start(store: Arc<dyn Store>, buffer: usize, tracker: &TaskTracker) -> Recorder {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tracker.spawn(write_batches(store, receiver, buffer));
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

impl Recorder {
    /// Queue a call for the history once `ended` gives its final record
    /// and log (a sync call whose answer streams ends after its handler
    /// has returned).
    pub fn record_when<F>(&self, ended: F)
    where
        F: std::future::Future<Output = (Call, CallLog)> + Send + 'static,
    {
        let sender = self.sender.clone();
        self.tracker.spawn(async move {
            let (call, log) = ended.await;
            send(&sender, call, log.bytes().await).await;
        });
    }
}

async fn send(sender: &mpsc::Sender<RecordedCall>, call: Call, log: bytes::Bytes) {
    let log = (!log.is_empty()).then(|| log.to_vec());
    if sender.send(RecordedCall { call, log }).await.is_err() {
        tracing::warn!("call history writer has stopped; a call record was dropped");
    }
}

/// Records taken from the channel and not written yet, oldest first, at
/// most `capacity` and [`BUFFER_BYTES`].
struct Buffer {
    records: VecDeque<RecordedCall>,
    capacity: usize,
    /// What the records hold, in bytes (see [`size`]).
    bytes: usize,
    /// Dropped since the store last took a batch (for one log line).
    dropped: u64,
}

fn size(record: &RecordedCall) -> usize {
    RECORD_BYTES + record.log.as_ref().map_or(0, Vec::len)
}

impl Buffer {
    fn new(capacity: usize) -> Buffer {
        Buffer {
            records: VecDeque::new(),
            capacity: capacity.max(BATCH),
            bytes: 0,
            dropped: 0,
        }
    }

    /// Keep `record`, dropping the oldest one when full.
    fn push(&mut self, record: RecordedCall) {
        let bytes = size(&record);
        while !self.records.is_empty()
            && (self.records.len() >= self.capacity || self.bytes + bytes > BUFFER_BYTES)
        {
            if self.dropped == 0 {
                tracing::error!(capacity = self.capacity, bytes = self.bytes, "the call history buffer is full while the store is unavailable: the oldest records are dropped (FERRITE_HISTORY_BUFFER)");
            }
            self.consume(1);
            self.dropped += 1;
            crate::metrics::history_dropped(1);
        }
        self.bytes += bytes;
        self.records.push_back(record);
    }

    /// The oldest records, at most [`BATCH`].
    fn batch(&mut self) -> &[RecordedCall] {
        let n = self.records.len().min(BATCH);
        &self.records.make_contiguous()[..n]
    }

    /// The oldest `n` records are written (or given up).
    fn consume(&mut self, n: usize) {
        let gone: usize = self
            .records
            .drain(..n.min(self.records.len()))
            .map(|r| size(&r))
            .sum();
        self.bytes -= gone;
    }
}

/// The writer: takes records from `receiver` into a buffer and writes them
/// in batches, oldest first.
async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<RecordedCall>,
    capacity: usize,
) {
    let mut buffer = Buffer::new(capacity);
    let mut taking = true;
    let mut attempt = 1;
    // Since when the store is unavailable to the writer.
    let mut away: Option<Instant> = None;
    let mut stopped_at: Option<Instant> = None;
    loop {
        if buffer.records.is_empty() && !receive(&mut receiver, &mut buffer, &mut taking).await {
            return;
        }
        // Take what else waits, without waiting.
        while let Ok(record) = receiver.try_recv() {
            buffer.push(record);
        }
        crate::metrics::history_buffered(buffer.records.len());
        let batch = buffer.batch();
        let n = batch.len();
        match store.record_calls(batch).await {
            Ok(_) => {
                buffer.consume(n);
                attempt = 1;
                if let Some(since) = away.take() {
                    let away_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    tracing::info!(
                        away_ms,
                        still_buffered = buffer.records.len(),
                        dropped = buffer.dropped,
                        "the store takes call records again; writing those kept meanwhile"
                    );
                    buffer.dropped = 0;
                }
            }
            Err(e) if e.is_unavailable() => {
                if away.is_none() {
                    tracing::warn!(error = %e, buffered = buffer.records.len(), "cannot write call records: the store is unavailable; keeping them in memory");
                    away = Some(Instant::now());
                }
            }
            Err(e) => refused(&e, &mut buffer, n, &mut attempt),
        }
        crate::metrics::history_buffered(buffer.records.len());
        if buffer.records.is_empty() {
            continue;
        }
        if !taking {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= SHUTDOWN_WAIT {
                tracing::error!(calls = buffer.records.len(), "shutting down with call records the store did not take; they are lost from the history");
                return;
            }
        }
        if away.is_some() || attempt > 1 {
            take_for(&mut receiver, &mut buffer, &mut taking, RETRY_AFTER).await;
        }
    }
}

/// A batch the store refused for a reason other than being away: try it a
/// few times, then give it up.
fn refused(error: &StoreError, buffer: &mut Buffer, n: usize, attempt: &mut u32) {
    if *attempt < WRITE_ATTEMPTS {
        tracing::warn!(error = %error, calls = n, attempt, "cannot write call records; trying again");
        *attempt += 1;
    } else {
        tracing::error!(error = %error, calls = n, "cannot write call records; they are lost from the history");
        buffer.consume(n);
        *attempt = 1;
    }
}

/// Wait for records; false once every sender is gone and none is left.
async fn receive(
    receiver: &mut mpsc::Receiver<RecordedCall>,
    buffer: &mut Buffer,
    taking: &mut bool,
) -> bool {
    if !*taking {
        return false;
    }
    let mut batch = Vec::with_capacity(BATCH);
    if receiver.recv_many(&mut batch, BATCH).await == 0 {
        *taking = false;
        return false;
    }
    batch.into_iter().for_each(|r| buffer.push(r));
    true
}

/// Keep taking records for `wait` (so that callers never wait on a full
/// channel while the store is away).
async fn take_for(
    receiver: &mut mpsc::Receiver<RecordedCall>,
    buffer: &mut Buffer,
    taking: &mut bool,
    wait: Duration,
) {
    let until = Instant::now() + wait;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            n = receiver.recv_many(&mut batch, BATCH), if *taking => {
                if n == 0 {
                    *taking = false;
                }
                batch.drain(..).for_each(|r| buffer.push(r));
                crate::metrics::history_buffered(buffer.records.len());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_model::RouteType;
    use ferrite_store::sqlite::SqliteStore;

    fn record(n: usize) -> RecordedCall {
        let call = Call::new(format!("c{n}"), "app", "/p", RouteType::Sync, Millis(0));
        RecordedCall { call, log: None }
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_them() {
        let mut buffer = Buffer::new(BATCH);
        for n in 0..BATCH + 5 {
            buffer.push(record(n));
        }
        assert_eq!(buffer.records.len(), BATCH);
        assert_eq!(buffer.dropped, 5);
        assert_eq!(buffer.batch()[0].call.id, "c5", "the oldest went first");
        buffer.consume(BATCH - 1);
        assert_eq!(buffer.batch().len(), 1);
        assert_eq!(buffer.batch()[0].call.id, format!("c{}", BATCH + 4));
        assert_eq!(buffer.bytes, RECORD_BYTES);
    }

    #[test]
    fn logs_count_against_the_byte_bound() {
        let mut buffer = Buffer::new(BATCH);
        let big = |n| RecordedCall {
            log: Some(vec![b'x'; BUFFER_BYTES / 4]),
            ..record(n)
        };
        for n in 0..5 {
            buffer.push(big(n));
        }
        assert_eq!(buffer.records.len(), 3, "four would pass the byte bound");
        assert_eq!(buffer.dropped, 2);
        assert!(buffer.bytes <= BUFFER_BYTES);
    }

    /// Records sent while the store is away wait for it, and are written
    /// once it answers again.
    #[tokio::test]
    async fn records_wait_for_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let inner = Arc::new(SqliteStore::open(&url).await.unwrap());
        let app = ferrite_model::App::create(ferrite_model::AppInput {
            name: Some("app".into()),
            ..Default::default()
        })
        .unwrap();
        inner.create_app(&app).await.unwrap();
        let circuit = crate::store_circuit::StoreCircuit::new(inner.clone());
        circuit.open_for_test();
        let tracker = TaskTracker::new();
        let recorder = Recorder::start(circuit.clone(), 100, &tracker);
        for n in 0..10 {
            let log = CallLog::Ready(bytes::Bytes::new());
            recorder.record(record(n).call, log).await;
        }
        // Nothing can be written yet: the circuit refuses every write.
        tokio::task::yield_now().await;
        let listed = |store: Arc<SqliteStore>| async move {
            store
                .list_calls("app", ferrite_store::CallFilter::default())
                .await
                .unwrap()
                .len()
        };
        assert_eq!(listed(inner.clone()).await, 0);
        let cancel = CancellationToken::new();
        tracker.spawn(circuit.clone().probe(cancel.clone()));
        drop(recorder);
        tracker.close();
        // The writer ends once it has written everything (or given up).
        let mut waited = 0;
        while listed(inner.clone()).await < 10 && waited < 300 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        cancel.cancel();
        tracker.wait().await;
        assert_eq!(listed(inner).await, 10, "every record written");
    }
}
