//! Workers: take queued async calls, run them, record how they ended.
//!
//! One dispatcher per node reserves tasks while it has a free slot; each
//! task then runs on its own, holding memory from the share of the node's
//! budget that async calls may use, so sync calls always keep the rest
//! (a call to a service route holds none: its task runs in the Swarm).
//!
//! Delivery is at-least-once. A task is acknowledged only once its call
//! record is final; while it runs its lease is extended, so a task outlives
//! its lease only when its node died (or stalled), and then it is delivered
//! again. A redelivered call that is already final is acknowledged without
//! running again: only a node that dies mid-call causes a second run.
//!
//! A call that names a callback keeps its task until the callback is
//! delivered or given up ([`callback`](super::callback)): the task goes back
//! to the queue between tries, and a redelivered final call tries again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrite_engine::Timings;
use ferrite_model::{CallStatus, Millis};
use ferrite_queue::{Lease, Queue, QueueError};
use ferrite_store::{CallUpdate, DeadLetter, Store, StoreError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::callback::{self, Callbacks};
use super::task::QueuedCall;
use crate::executor::{Answer, Arm, Executor, Outcome};
use crate::metrics::calls::{End, Phase};
use crate::metrics::Callback;
use crate::route_cache::RouteCache;

/// First wait before a failed call runs again; it doubles per attempt.
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How long a task goes back to the queue when its record cannot be written.
const STORE_TROUBLE_DELAY: Duration = Duration::from_secs(5);
/// How long a worker holding a call (and its lease) waits for an
/// unavailable store to take the call's new state, trying every
/// [`STORE_RETRY_EVERY`]: an outage shorter than this costs no second run of
/// a call that has run. Beyond it the task goes back to the queue.
const STORE_WAIT: Duration = Duration::from_secs(60);
const STORE_RETRY_EVERY: Duration = Duration::from_secs(1);
/// Polling of an empty queue starts at this interval and slows down to
/// `IDLE_POLL_MAX` (a push on this node wakes the dispatcher at once).
const IDLE_POLL_MIN: Duration = Duration::from_millis(20);
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);
/// Longest wait after the queue itself fails.
const QUEUE_TROUBLE_MAX: Duration = Duration::from_secs(5);

/// How this node's workers behave.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Names this node's leases, for diagnostics.
    pub node: String,
    /// Async calls running at once on this node, at most.
    pub concurrency: usize,
    /// Memory async calls may hold at once, in MiB.
    pub memory_share_mib: u64,
    /// How long a reserved task stays hidden without news from its worker.
    pub lease: Duration,
}

/// What the workers share.
pub struct Workers {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    /// Runs the calls (its largest response is the largest output kept).
    pub executor: Executor,
    pub routes: Arc<RouteCache>,
    pub settings: WorkerSettings,
    /// Woken when this node enqueues a call.
    pub wake: Arc<Notify>,
    /// Where calls that name a callback have their results sent.
    callbacks: Arc<Callbacks>,
    slots: Arc<Semaphore>,
    memory: Arc<Semaphore>,
}

/// What to do with a task once its call has been handled.
enum Settle {
    /// The call record is gone, or was cancelled: delete the task.
    Ack,
    /// The call record is final: tell its callback, if it names one, then
    /// delete the task. With the call as it was queued (decoded once).
    Ended(Box<QueuedCall>),
    /// Run it again after this delay.
    Release(Duration),
}

impl Workers {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        executor: Executor,
        routes: Arc<RouteCache>,
        wake: Arc<Notify>,
        callbacks: Arc<Callbacks>,
        settings: WorkerSettings,
    ) -> Arc<Workers> {
        let memory = usize::try_from(settings.memory_share_mib)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Arc::new(Workers {
            store,
            queue,
            executor,
            routes,
            wake,
            callbacks,
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            memory: Arc::new(Semaphore::new(memory)),
            settings,
        })
    }

    /// Reserve and run tasks until `cancel`; each task runs on `tracker`.
    pub async fn dispatch(self: Arc<Self>, tracker: TaskTracker, cancel: CancellationToken) {
        if self.settings.concurrency == 0 {
            tracing::info!("async workers are off on this node (concurrency 0)");
            return;
        }
        let mut idle = IDLE_POLL_MIN;
        loop {
            let slot = tokio::select! {
                () = cancel.cancelled() => return,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let wait = match self
                .queue
                .reserve(&self.settings.node, self.settings.lease)
                .await
            {
                Ok(Some(lease)) => {
                    idle = IDLE_POLL_MIN;
                    // Every line about the task, the engine's included, names its call.
                    let span = tracing::info_span!("async_call", call_id = %lease.task.id);
                    tracker.spawn(self.clone().handle(lease, slot).instrument(span));
                    continue;
                }
                Ok(None) => {
                    let wait = idle;
                    idle = (idle * 2).min(IDLE_POLL_MAX);
                    wait
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reserve from the queue; trying again");
                    idle = (idle * 2).clamp(IDLE_POLL_MAX, QUEUE_TROUBLE_MAX);
                    idle
                }
            };
            drop(slot);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => idle = IDLE_POLL_MIN,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Run one task while keeping its lease, then settle it with the queue.
    async fn handle(self: Arc<Self>, lease: Lease, _slot: OwnedSemaphorePermit) {
        let id = lease.task.id.clone();
        let settle = tokio::select! {
            settle = self.run_and_tell(&lease) => settle,
            lost = self.keep(&lease) => {
                tracing::warn!(call_id = %id, error = %lost, "lease lost while the call ran; another worker has it now");
                return;
            }
        };
        let settled = match settle {
            Ok(Settle::Ack | Settle::Ended(_)) => self.queue.ack(&lease).await,
            Ok(Settle::Release(delay)) => self.queue.release(&lease, delay).await,
            Err(e) => {
                tracing::warn!(call_id = %id, error = %e, "cannot record the call; it goes back to the queue");
                self.queue.release(&lease, STORE_TROUBLE_DELAY).await
            }
        };
        if let Err(e) = settled {
            // The lease ran out: the task is delivered again, and the next
            // worker finds its record final (or runs it again).
            tracing::warn!(call_id = %id, error = %e, "cannot settle the task with the queue");
        }
    }

    /// Extend the lease every third of its length; returns only when it is lost.
    async fn keep(&self, lease: &Lease) -> QueueError {
        let every = self.settings.lease / 3;
        let mut failures = 0;
        loop {
            tokio::time::sleep(every).await;
            match self.queue.extend(lease, self.settings.lease).await {
                Ok(()) => failures = 0,
                Err(e @ QueueError::LeaseLost(_)) => return e,
                // The queue may be back before the lease ends.
                Err(e) if failures < 2 => {
                    failures += 1;
                    tracing::warn!(call_id = %lease.task.id, error = %e, "cannot extend a lease");
                }
                Err(e) => return e,
            }
        }
    }

    /// Run the call of `lease` (see [`Workers::process`]), then tell its
    /// callback if it has ended.
    async fn run_and_tell(&self, lease: &Lease) -> Result<Settle, StoreError> {
        match self.process(lease).await? {
            Settle::Ended(queued) => Ok(self.tell(lease, &queued).await),
            settle => Ok(settle),
        }
    }

    /// Run the call of `lease` unless it is already settled, and record how
    /// it ended.
    async fn process(&self, lease: &Lease) -> Result<Settle, StoreError> {
        let began = Instant::now();
        let id = &lease.task.id;
        let queued = match QueuedCall::decode(&lease.task.payload) {
            Ok(queued) => queued,
            Err(e) => {
                tracing::error!(call_id = %id, error = %e, "dropping a task that cannot be read");
                self.fail_unrun(id, &e.to_string(), None).await?;
                return Ok(Settle::Ack);
            }
        };
        let call = match self.store.get_call(&queued.app, id).await {
            Ok(call) => call,
            // Its app was deleted, and its calls with it.
            Err(StoreError::CallNotFound(_)) => return Ok(Settle::Ack),
            Err(e) => return Err(e),
        };
        if call.status.is_final() {
            return Ok(Settle::Ended(Box::new(queued)));
        }
        let entry = match self
            .routes
            .get(&*self.store, &queued.app, &queued.path)
            .await
        {
            Ok(entry) => entry,
            Err(e @ (StoreError::RouteNotFound { .. } | StoreError::AppNotFound(_))) => {
                self.fail_unrun(id, &e.to_string(), Some(&lease.task.payload))
                    .await?;
                return Ok(Settle::Ended(Box::new(queued)));
            }
            Err(e) => return Err(e),
        };
        // The version that serves it: the same on every node and attempt
        // while the route's traffic stays as it is.
        let route = entry.serves(&queued.request.call_id, &queued.request.headers);
        let (app, metrics) = (&entry.app, &entry.metrics);
        // What a call that fails for good keeps in the dead-letter list.
        let dead_letter = Some(&lease.task.payload[..]);
        let start = CallUpdate {
            version: Some(route.version),
            ..CallUpdate::new(CallStatus::Running, Millis::now().0)
        };
        let started = match self.write(id, &start).await {
            Ok(call) => call,
            // Cancelled since it was read.
            Err(StoreError::IllegalTransition { .. }) => return Ok(Settle::Ack),
            Err(e) => return Err(e),
        };
        let waiting = Instant::now();
        // A service route's call runs in a Swarm task, whose memory Swarm
        // reserves on the node it placed the task on: it holds none of
        // this node's share.
        let _memory = match Arm::of(route) {
            Arm::Service => None,
            Arm::Cold | Arm::Hot => {
                let Some(memory) = self.memory_for(route.memory).await else {
                    let message = format!(
                        "route memory {} MiB is more than async calls may use on this node ({} MiB)",
                        route.memory, self.settings.memory_share_mib
                    );
                    self.update(
                        id,
                        CallStatus::Error,
                        Some(&message),
                        None,
                        None,
                        dead_letter,
                    )
                    .await?;
                    metrics.ended(End::Rejected, began.elapsed());
                    return Ok(Settle::Ended(Box::new(queued)));
                };
                Some(memory)
            }
        };
        let memory_wait = waiting.elapsed();
        metrics.attempt();
        let Outcome {
            mut status,
            mut error,
            answer,
            log,
            mut end,
            timings,
            // Never set: `run` reads every answer whole, within the cap.
            streamed: _,
        } = self.executor.run(app, route, &queued.request).await;
        if let Some(timings) = timings {
            metrics.served(route.version);
            metrics.ran(&Timings {
                admission: timings.admission + memory_wait,
                ..timings
            });
        }
        // The answer phase: the output read and recorded (each run has its
        // phases; the call, its end and duration once, when final).
        let answering = Instant::now();
        let output = match answer {
            Answer::NotRun { again: true, .. } => {
                let delay = backoff(lease.attempts);
                let why = error.unwrap_or_default();
                tracing::warn!(call_id = %id, error = %why, delay_ms = delay.as_millis(), "async call could not run; it will run again");
                self.update(
                    id,
                    CallStatus::Queued,
                    Some(&format!("could not run, will try again: {why}")),
                    None,
                    None,
                    None,
                )
                .await?;
                metrics.retry();
                return Ok(Settle::Release(delay));
            }
            Answer::NotRun { again: false, .. } => {
                let dead_letter = dead_letter.filter(|_| status != CallStatus::Success);
                self.update(id, status, error.as_deref(), None, None, dead_letter)
                    .await?;
                metrics.ended(end, began.elapsed());
                return Ok(Settle::Ended(Box::new(queued)));
            }
            // Read whole here: a service's task streams its answer.
            Answer::Response(response) => {
                let limit = self.executor.max_response_bytes;
                match axum::body::to_bytes(response.into_body(), limit).await {
                    Ok(output) => output,
                    Err(e) => {
                        status = CallStatus::Error;
                        end = End::Error;
                        error = Some(format!("cannot read the function's response: {e}"));
                        Bytes::new()
                    }
                }
            }
            // The error JSON its client would have had.
            Answer::Failed(error) => {
                Bytes::from(crate::api::error::call_body(&error.message, id).to_string())
            }
        };
        let log = log.bytes().await;
        if status != CallStatus::Success && started.attempts <= route.max_retries {
            let delay = backoff(started.attempts);
            tracing::info!(call_id = %id, attempts = started.attempts, error = ?error, delay_ms = delay.as_millis(), "async call failed; it will run again");
            self.update(
                id,
                CallStatus::Queued,
                error.as_deref(),
                None,
                Some(&log),
                None,
            )
            .await?;
            if timings.is_some() {
                metrics.phase(Phase::Answer, answering.elapsed());
            }
            metrics.retry();
            return Ok(Settle::Release(delay));
        }
        let dead_letter = dead_letter.filter(|_| status != CallStatus::Success);
        self.update(
            id,
            status,
            error.as_deref(),
            Some(&output),
            Some(&log),
            dead_letter,
        )
        .await?;
        if timings.is_some() {
            metrics.phase(Phase::Answer, answering.elapsed());
        }
        metrics.ended(end, began.elapsed());
        Ok(Settle::Ended(Box::new(queued)))
    }

    /// Tell the callback of `lease`'s ended call, if it names one: `Ack` once
    /// it is delivered, given up or not wanted, else `Release` for the next
    /// try. Tries are counted by deliveries of the task that ran nothing
    /// (those past the call's own runs).
    async fn tell(&self, lease: &Lease, queued: &QueuedCall) -> Settle {
        let id = &lease.task.id;
        let url = match self.callbacks.receiver(&queued.request.headers) {
            Ok(Some(url)) => url,
            Ok(None) => return Settle::Ack,
            // Allowed when it was queued; the operator has closed it since.
            Err(e) => {
                tracing::warn!(call_id = %id, error = %e.message, "callback not sent");
                return Settle::Ack;
            }
        };
        let found = match self.store.get_call(&queued.app, id).await {
            Ok(call) => self
                .store
                .call_output(&queued.app, id)
                .await
                .map(|output| (call, output.unwrap_or_default())),
            Err(e) => Err(e),
        };
        let (call, output) = match found {
            Ok(found) => found,
            Err(StoreError::CallNotFound(_)) => return Settle::Ack,
            Err(e) => {
                tracing::warn!(call_id = %id, error = %e, "cannot read the call for its callback; trying later");
                return Settle::Release(STORE_TROUBLE_DELAY);
            }
        };
        if call.status == CallStatus::Cancelled {
            return Settle::Ack;
        }
        let attempt = lease
            .attempts
            .saturating_sub(call.attempts)
            .saturating_add(1);
        match self.callbacks.deliver(url, &call, output).await {
            Ok(()) => {
                tracing::info!(call_id = %id, attempt, "callback delivered");
                crate::metrics::callback(Callback::Delivered);
                Settle::Ack
            }
            Err(e) if attempt >= callback::ATTEMPTS => {
                tracing::warn!(call_id = %id, attempt, error = %e, "callback failed its last try; given up");
                crate::metrics::callback(Callback::GivenUp);
                Settle::Ack
            }
            Err(e) => {
                let delay = backoff(attempt);
                tracing::warn!(call_id = %id, attempt, error = %e, delay_ms = delay.as_millis(), "callback failed; it will be tried again");
                crate::metrics::callback(Callback::Retried);
                Settle::Release(delay)
            }
        }
    }

    /// Memory from the async share; `None` if the share can never hold it.
    async fn memory_for(&self, mib: u64) -> Option<OwnedSemaphorePermit> {
        let permits = u32::try_from(mib).ok()?;
        if mib > self.settings.memory_share_mib {
            return None;
        }
        self.memory.clone().acquire_many_owned(permits).await.ok()
    }

    /// End a call that cannot run (its task is unreadable or its route is gone).
    async fn fail_unrun(
        &self,
        id: &str,
        message: &str,
        dead_letter: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let result = match self
            .update(id, CallStatus::Running, None, None, None, None)
            .await
        {
            Ok(_) => {
                self.update(
                    id,
                    CallStatus::Error,
                    Some(message),
                    None,
                    None,
                    dead_letter,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) | Err(StoreError::CallNotFound(_) | StoreError::IllegalTransition { .. }) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn update(
        &self,
        id: &str,
        next: CallStatus,
        error: Option<&str>,
        output: Option<&Bytes>,
        log: Option<&Bytes>,
        dead_letter: Option<&[u8]>,
    ) -> Result<ferrite_model::Call, StoreError> {
        let update = CallUpdate {
            next,
            at_ms: Millis::now().0,
            error,
            output: output.map(|b| &b[..]),
            log: log.filter(|l| !l.is_empty()).map(|b| &b[..]),
            version: None,
            dead_letter: dead_letter.map(DeadLetter::new),
        };
        self.write(id, &update).await
    }

    /// Write `update` of call `id`, waiting up to [`STORE_WAIT`] for the
    /// store while it is unavailable.
    async fn write(
        &self,
        id: &str,
        update: &CallUpdate<'_>,
    ) -> Result<ferrite_model::Call, StoreError> {
        let waiting = tokio::time::Instant::now();
        loop {
            match self.store.update_call(id, update).await {
                Err(e) if e.is_unavailable() && waiting.elapsed() < STORE_WAIT => {
                    tracing::debug!(call_id = %id, error = %e, "the store is unavailable; waiting to record the call");
                    tokio::time::sleep(STORE_RETRY_EVERY).await;
                }
                result => return result,
            }
        }
    }
}

/// The wait before attempt `attempts + 1`: doubling from [`RETRY_BASE`].
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_BASE * 2u32.pow(doublings)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(30), RETRY_MAX);
    }
}
