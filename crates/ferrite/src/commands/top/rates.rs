//! What each route did between two scrapes of a node's `/metrics`: how much
//! its counters and duration buckets grew, over the time between the two.
//!
//! Only the per-route series are read (`ferrite_calls_total`,
//! `ferrite_call_duration_seconds`, `ferrite_cold_starts_total`,
//! `ferrite_containers`); their label values are app names and route paths,
//! which hold none of the characters (`,`, `=`, `}`, escapes) that the
//! text-format parser does not handle. Lines it cannot read, such as the
//! API's route templates with braces, are skipped by it, and none of them
//! is needed here.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use prometheus_parse::{Labels, Value};
use serde::Serialize;

const CALLS: &str = "ferrite_calls_total";
const DURATION: &str = "ferrite_call_duration_seconds";
const COLD_STARTS: &str = "ferrite_cold_starts_total";
const CONTAINERS: &str = "ferrite_containers";

/// A route, as its series label it.
type RouteKey = (String, String);

/// The per-route series of one scrape, every kind of call added together.
#[derive(Debug, Default)]
pub struct Scrape {
    routes: BTreeMap<RouteKey, Totals>,
}

/// One route's series at one scrape.
#[derive(Debug, Default, Clone)]
struct Totals {
    calls: f64,
    /// Calls that ended otherwise than `success`.
    errors: f64,
    cold_starts: f64,
    /// Cumulative duration buckets, `(le, count)` sorted by `le`, the last
    /// one `+Inf` (all calls).
    buckets: Vec<(f64, f64)>,
    /// Hot containers running a call right now.
    busy: f64,
    /// Containers of the route in every state (started ahead, hot idle, hot busy).
    containers: f64,
}

/// One line of `ferrite top`: a route over one interval.
#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub app: String,
    pub route: String,
    pub calls_per_s: f64,
    /// Calls per second that ended as error, timeout, killed or rejected.
    pub errors_per_s: f64,
    /// Median call duration in seconds, estimated from the buckets as
    /// Prometheus' `histogram_quantile` does; none without calls.
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    /// Calls that had to start a container, in the interval.
    pub cold_starts: u64,
    /// Hot containers running a call at the second scrape.
    pub busy: u64,
    /// The route's containers at the second scrape.
    pub containers: u64,
}

impl Scrape {
    /// Read a scrape in the Prometheus text format.
    pub fn parse(text: &str) -> anyhow::Result<Scrape> {
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .context("cannot read the metrics")?;
        let mut scrape = Scrape::default();
        for sample in parsed.samples {
            let Some(totals) = scrape.route(&sample.labels) else {
                continue;
            };
            match (sample.metric.as_str(), sample.value) {
                (CALLS, Value::Counter(n)) => {
                    totals.calls += n;
                    if sample.labels.get("status") != Some("success") {
                        totals.errors += n;
                    }
                }
                (COLD_STARTS, Value::Counter(n)) => totals.cold_starts += n,
                (CONTAINERS, Value::Gauge(n)) => {
                    totals.containers += n;
                    if sample.labels.get("state") == Some("hot_busy") {
                        totals.busy += n;
                    }
                }
                (DURATION, Value::Histogram(buckets)) => {
                    for bucket in buckets {
                        add_bucket(&mut totals.buckets, bucket.less_than, bucket.count);
                    }
                }
                _ => {}
            }
        }
        Ok(scrape)
    }

    /// The totals of the route a series is about; none for series of no route.
    fn route(&mut self, labels: &Labels) -> Option<&mut Totals> {
        let key = (
            labels.get("app")?.to_string(),
            labels.get("route")?.to_string(),
        );
        Some(self.routes.entry(key).or_default())
    }
}

/// Add `count` calls to the bucket `le` (the kinds of call share bounds).
fn add_bucket(buckets: &mut Vec<(f64, f64)>, le: f64, count: f64) {
    match buckets.iter_mut().find(|(bound, _)| *bound == le) {
        Some((_, total)) => *total += count,
        None => {
            buckets.push((le, count));
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
}

/// The rows of every route of the later scrape, busiest first.
pub fn rows(before: &Scrape, after: &Scrape, elapsed: Duration) -> Vec<Row> {
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let none = Totals::default();
    let mut rows: Vec<Row> = after
        .routes
        .iter()
        .map(|((app, route), now)| {
            let then = before
                .routes
                .get(&(app.clone(), route.clone()))
                .unwrap_or(&none);
            let buckets = bucket_growth(&then.buckets, &now.buckets);
            Row {
                app: app.clone(),
                route: route.clone(),
                calls_per_s: growth(then.calls, now.calls) / seconds,
                errors_per_s: growth(then.errors, now.errors) / seconds,
                p50_s: quantile(0.5, &buckets),
                p95_s: quantile(0.95, &buckets),
                cold_starts: growth(then.cold_starts, now.cold_starts).round() as u64,
                busy: now.busy.max(0.0).round() as u64,
                containers: now.containers.max(0.0).round() as u64,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.calls_per_s
            .total_cmp(&a.calls_per_s)
            .then_with(|| (&a.app, &a.route).cmp(&(&b.app, &b.route)))
    });
    rows
}

/// How much a counter grew; a counter that went down belongs to a node that
/// restarted, and all of its value is new.
fn growth(before: f64, after: f64) -> f64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// The buckets of the calls of the interval alone.
fn bucket_growth(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let total = |buckets: &[(f64, f64)]| buckets.last().map_or(0.0, |b| b.1);
    if total(after) < total(before) {
        return after.to_vec();
    }
    after
        .iter()
        .map(|&(le, count)| {
            let earlier = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, growth(earlier, count))
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, by linear interpolation inside
/// the bucket that holds it; the highest finite bound when that bucket is
/// `+Inf`.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            if count <= below {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / (count - below));
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's scrape: two kinds of call on one route, another route with
    /// containers and no call, and an API series whose route template the
    /// parser cannot read.
    fn exposition(calls: u32, errors: u32, fast: u32, slow: u32, cold: u32) -> String {
        let all = fast + slow;
        format!(
            r#"# TYPE ferrite_calls_total counter
ferrite_calls_total{{app="a",route="/hot",kind="sync",status="success"}} {calls}
ferrite_calls_total{{app="a",route="/hot",kind="async",status="timeout"}} {errors}
ferrite_calls_total{{app="a",route="/hot",kind="sync",status="rejected"}} 0
# TYPE ferrite_cold_starts_total counter
ferrite_cold_starts_total{{app="a",route="/hot"}} {cold}
# TYPE ferrite_containers gauge
ferrite_containers{{app="a",route="/hot",state="hot_busy"}} 2
ferrite_containers{{app="a",route="/hot",state="hot_idle"}} 1
ferrite_containers{{app="b",route="/idle",state="prestarted"}} 1
# TYPE ferrite_api_requests_total counter
ferrite_api_requests_total{{method="GET",route="/v1/apps/{{app}}",status="200"}} 7
# TYPE ferrite_store_up gauge
ferrite_store_up 1
# TYPE ferrite_call_duration_seconds histogram
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="sync",le="0.01"}} {fast}
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="sync",le="0.1"}} {all}
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="sync",le="+Inf"}} {all}
ferrite_call_duration_seconds_sum{{app="a",route="/hot",kind="sync"}} 1
ferrite_call_duration_seconds_count{{app="a",route="/hot",kind="sync"}} {all}
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="async",le="0.01"}} 0
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="async",le="0.1"}} 0
ferrite_call_duration_seconds_bucket{{app="a",route="/hot",kind="async",le="+Inf"}} {errors}
"#
        )
    }

    fn scrape(calls: u32, errors: u32, fast: u32, slow: u32, cold: u32) -> Scrape {
        Scrape::parse(&exposition(calls, errors, fast, slow, cold)).unwrap()
    }

    #[test]
    fn rates_and_quantiles_come_from_the_growth_in_the_interval() {
        // Before: 10 calls, all fast. Then 20 more in 2 s: 10 fast and 10
        // taking 10..100 ms, and 2 timeouts beyond every bound.
        let before = scrape(10, 0, 10, 0, 1);
        let after = scrape(28, 2, 20, 10, 4);
        let rows = rows(&before, &after, Duration::from_secs(2));
        assert_eq!(rows.len(), 2, "{rows:?}");
        let hot = &rows[0];
        assert_eq!((hot.app.as_str(), hot.route.as_str()), ("a", "/hot"));
        assert_eq!(hot.calls_per_s, 10.0);
        assert_eq!(hot.errors_per_s, 1.0);
        // 22 calls: 10 at most 10 ms, 10 more at most 100 ms, 2 above.
        // The median (rank 11) is 1/10 of the way into 10..100 ms.
        let p50 = hot.p50_s.unwrap();
        assert!((p50 - 0.019).abs() < 1e-9, "{p50}");
        // The 95th (rank 20.9) is past the last finite bound: that bound.
        assert_eq!(hot.p95_s, Some(0.1));
        assert_eq!((hot.cold_starts, hot.busy, hot.containers), (3, 2, 3));
        let idle = &rows[1];
        assert_eq!((idle.app.as_str(), idle.calls_per_s), ("b", 0.0));
        assert_eq!((idle.p50_s, idle.containers), (None, 1));
    }

    #[test]
    fn a_restarted_node_counts_from_zero() {
        let before = scrape(50, 5, 50, 5, 9);
        let after = scrape(4, 0, 4, 0, 1);
        let hot = &rows(&before, &after, Duration::from_secs(1))[0];
        assert_eq!(
            (hot.calls_per_s, hot.errors_per_s, hot.cold_starts),
            (4.0, 0.0, 1)
        );
        assert!(hot.p50_s.unwrap() <= 0.01);
    }

    #[test]
    fn a_route_new_in_the_interval_counts_all_its_calls() {
        let hot = &rows(
            &Scrape::default(),
            &scrape(3, 0, 3, 0, 1),
            Duration::from_secs(3),
        )[0];
        assert_eq!(hot.calls_per_s, 1.0);
    }

    #[test]
    fn quantiles_of_no_calls_are_none() {
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.5, &[(0.1, 4.0), (f64::INFINITY, 4.0)]),
            Some(0.05)
        );
    }
}
