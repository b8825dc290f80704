//! The node's Prometheus metrics: every metric is named and described here,
//! and recorded through the functions below, so that adding one is one
//! place to read. Values live in process memory (the `metrics` facade and
//! its Prometheus recorder); a scrape renders them and asks nothing of the
//! store or the engine, so it answers while they are away.

use std::sync::OnceLock;

use ::metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// 1 while the store answers, 0 while this node knows it does not.
const STORE_UP: &str = "ferrite_store_up";
/// Calls answered with a route known from before the store went away.
const ROUTE_CACHE_STALE: &str = "ferrite_route_cache_stale_total";
/// Call records waiting in memory for the store.
const HISTORY_BUFFERED: &str = "ferrite_history_buffered";
/// Call records given up because the buffer was full.
const HISTORY_DROPPED: &str = "ferrite_history_dropped_total";

/// The recorder, installed at most once per process (servers started in
/// one test process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if let Err(e) = ::metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
        }
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
        // Present from the first scrape, not from the first event.
        gauge!(STORE_UP).set(1.0);
        gauge!(HISTORY_BUFFERED).set(0.0);
        counter!(ROUTE_CACHE_STALE).absolute(0);
        counter!(HISTORY_DROPPED).absolute(0);
        handle
    })
}

/// The text exposition format of every metric.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
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
