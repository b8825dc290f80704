//! The node's Prometheus metrics. Every metric is named and described
//! (HELP) in this file, so that the whole set is one place to read; what
//! records them lives beside it:
//!
//! - [`calls`]: the handles of one route's call metrics, registered once
//!   and kept with the cached route, so a call records without a lookup;
//! - [`api`]: the management API's requests (a middleware);
//! - [`queue`]: the async queue's depth and age, sampled in the background;
//! - [`scrape`]: what is read at scrape time (containers per route from the
//!   engine's pools, the process's figures).
//!
//! Values live in process memory (the `metrics` facade and its Prometheus
//! recorder); a scrape renders them and asks nothing of the store, the
//! queue or the Docker engine, so it answers while they are away.

pub(crate) mod api;
pub(crate) mod calls;
pub(crate) mod queue;
mod scrape;

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

pub use scrape::render;

/// Calls that ended, by how: `kind` sync|async|service, `status`
/// success|error|timeout|killed|rejected.
pub(crate) const CALLS: &str = "ferrite_calls_total";
/// Calls that ran, by the version of their route that served them: one
/// series per version a route's traffic named while this node read it (at
/// most a few at a time), not per call.
pub(crate) const VERSION_CALLS: &str = "ferrite_route_version_calls_total";
/// Whole calls, from admission to the answer written (async: from the
/// worker taking the call to its result recorded).
pub(crate) const CALL_DURATION: &str = "ferrite_call_duration_seconds";
/// The phases of calls that ran: admission, container, run, answer.
pub(crate) const CALL_PHASE: &str = "ferrite_call_phase_seconds";
/// Calls that waited for a container (or a service's first task) started
/// for them.
pub(crate) const COLD_STARTS: &str = "ferrite_cold_starts_total";
/// Containers per route and state: prestarted|hot_idle|hot_busy.
pub(crate) const CONTAINERS: &str = "ferrite_containers";
/// Tasks in the async queue, leased or not.
pub(crate) const ASYNC_QUEUE_DEPTH: &str = "ferrite_async_queue_depth";
/// How long the task waiting longest for a worker has waited.
pub(crate) const ASYNC_OLDEST: &str = "ferrite_async_oldest_queued_seconds";
/// Runs of async calls by this node's workers, first or again.
pub(crate) const ASYNC_ATTEMPTS: &str = "ferrite_async_attempts_total";
/// Async calls put back in the queue to run again.
pub(crate) const ASYNC_RETRIES: &str = "ferrite_async_retries_total";
/// Tries of callbacks, by outcome: delivered|retried|given_up.
const CALLBACKS: &str = "ferrite_callbacks_total";
/// Replicas of a route's service: wanted|running.
pub(crate) const SERVICE_REPLICAS: &str = "ferrite_service_replicas";
/// Scaling decisions of the autoscaler, by direction and reason.
pub(crate) const AUTOSCALER_DECISIONS: &str = "ferrite_autoscaler_decisions_total";
/// The autoscaler's lease coming to this node or leaving it.
pub(crate) const AUTOSCALER_LEASE: &str = "ferrite_autoscaler_lease_changes_total";
/// Management API requests, by method, route template and status.
pub(crate) const API_REQUESTS: &str = "ferrite_api_requests_total";
/// Management API request durations.
pub(crate) const API_DURATION: &str = "ferrite_api_request_duration_seconds";
/// 1 while the store answers, 0 while this node knows it does not.
const STORE_UP: &str = "ferrite_store_up";
/// Calls answered with a route known from before the store went away.
const ROUTE_CACHE_STALE: &str = "ferrite_route_cache_stale_total";
/// Call records waiting in memory for the store.
const HISTORY_BUFFERED: &str = "ferrite_history_buffered";
/// Call records given up because the buffer was full.
const HISTORY_DROPPED: &str = "ferrite_history_dropped_total";

/// Upper bounds of every histogram's buckets, in seconds: from half a
/// millisecond (a hot call's own overhead) to a minute (a slow cold start or
/// a long function).
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// How often histogram samples are folded into their buckets. The
/// recorder keeps each sample until then, so without this (and without
/// scrapes) its memory would grow with every call.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Fold histogram samples into their buckets every `every`, until `cancel`.
pub async fn upkeep(every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => handle().run_upkeep(),
        }
    }
}

/// The recorder, installed at most once per process (servers started in
/// one test process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets(&BUCKETS) {
            Ok(builder) => builder,
            // Only an empty list is refused, and the list is not empty.
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; summaries instead");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = ::metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        // Present from the first scrape, not from the first event.
        gauge!(STORE_UP).set(1.0);
        gauge!(HISTORY_BUFFERED).set(0.0);
        counter!(ROUTE_CACHE_STALE).absolute(0);
        counter!(HISTORY_DROPPED).absolute(0);
        for outcome in Callback::ALL {
            counter!(CALLBACKS, "outcome" => outcome.as_str()).absolute(0);
        }
        handle
    })
}

/// The HELP line of every metric (and its unit).
fn describe() {
    describe_counter!(
        CALLS,
        "function calls that ended, by route, kind (sync, async, service) and status (success, \
         error, timeout, killed, rejected)"
    );
    describe_histogram!(
        CALL_DURATION,
        Unit::Seconds,
        "whole function calls, from admission to the answer written (async: from a worker \
         taking the call to its result recorded)"
    );
    describe_histogram!(
        CALL_PHASE,
        Unit::Seconds,
        "phases of function calls that ran: admission (waiting for memory or a slot), container \
         (taking or starting a container), run (the function), answer (writing the answer)"
    );
    describe_counter!(
        VERSION_CALLS,
        "calls that ran, by route and the version of it that served them"
    );
    describe_counter!(
        COLD_STARTS,
        "calls that waited for a container (or a service's first task) started for them"
    );
    describe_gauge!(
        CONTAINERS,
        "function containers on this node by route and state (prestarted, hot_idle, hot_busy)"
    );
    describe_gauge!(
        ASYNC_QUEUE_DEPTH,
        "async calls in the queue, waiting or running (sampled every few seconds)"
    );
    describe_gauge!(
        ASYNC_OLDEST,
        Unit::Seconds,
        "how long the async call waiting longest for a worker has waited (sampled)"
    );
    describe_counter!(
        ASYNC_ATTEMPTS,
        "runs of async calls started by this node's workers"
    );
    describe_counter!(
        ASYNC_RETRIES,
        "async calls that failed and went back to the queue to run again"
    );
    describe_counter!(
        CALLBACKS,
        "tries of async calls' callbacks by outcome: delivered, retried (failed, tried again \
         later), given_up (failed the last try)"
    );
    describe_gauge!(
        SERVICE_REPLICAS,
        "replicas of a route's Swarm service: wanted (set by this node) and running"
    );
    describe_counter!(
        AUTOSCALER_DECISIONS,
        "scaling decisions of the autoscaler by direction (up, down) and reason"
    );
    describe_counter!(
        AUTOSCALER_LEASE,
        "the autoscaler's lease (one node scales every service) taken by this node or lost by it"
    );
    describe_counter!(
        API_REQUESTS,
        "management API requests by method, route template and HTTP status"
    );
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "management API requests, from received to answered"
    );
    describe_gauge!(STORE_UP, "1 while the store answers, 0 while it does not");
    describe_counter!(
        ROUTE_CACHE_STALE,
        "calls served with a cached route while the store was unavailable"
    );
    describe_gauge!(
        HISTORY_BUFFERED,
        "call records kept in memory until the store takes them"
    );
    describe_counter!(
        HISTORY_DROPPED,
        "call records dropped because the history buffer was full"
    );
    scrape::describe_process();
}

/// How one try of a callback went.
#[derive(Debug, Clone, Copy)]
pub enum Callback {
    Delivered,
    Retried,
    GivenUp,
}

impl Callback {
    const ALL: [Callback; 3] = [Callback::Delivered, Callback::Retried, Callback::GivenUp];

    fn as_str(self) -> &'static str {
        match self {
            Callback::Delivered => "delivered",
            Callback::Retried => "retried",
            Callback::GivenUp => "given_up",
        }
    }
}

pub fn callback(outcome: Callback) {
    counter!(CALLBACKS, "outcome" => outcome.as_str()).increment(1);
}

pub fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn route_served_stale() {
    counter!(ROUTE_CACHE_STALE).increment(1);
}

pub fn history_buffered(records: usize) {
    gauge!(HISTORY_BUFFERED).set(records as f64);
}

pub fn history_dropped(records: u64) {
    counter!(HISTORY_DROPPED).increment(records);
}

/// The replicas of `app`'s `route` that its service wants and runs.
pub fn service_replicas(app: &str, route: &str, wanted: u32, running: usize) {
    let labels = |state: &'static str| {
        [
            ("app", app.to_string()),
            ("route", route.to_string()),
            ("state", state.to_string()),
        ]
    };
    gauge!(SERVICE_REPLICAS, &labels("wanted")).set(f64::from(wanted));
    gauge!(SERVICE_REPLICAS, &labels("running")).set(running as f64);
}

/// The autoscaler took `app`'s `route` from `from` to `to` replicas, for
/// `reason` (one of a few words, never the decision's free text).
pub fn autoscaler_decision(app: &str, route: &str, from: u32, to: u32, reason: &'static str) {
    let direction = if to > from { "up" } else { "down" };
    counter!(
        AUTOSCALER_DECISIONS,
        "app" => app.to_string(),
        "route" => route.to_string(),
        "direction" => direction,
        "reason" => reason
    )
    .increment(1);
}

/// The autoscaler's lease was `change` (`taken`, `lost`) by this node.
pub fn autoscaler_lease(change: &'static str) {
    counter!(AUTOSCALER_LEASE, "change" => change).increment(1);
}
