//! Per-app call limits: calls in flight and calls per second on this node,
//! and async calls queued across nodes (see [`queued`]), each answered with
//! 429 and `Retry-After` when reached.
//!
//! Every app has one [`Gate`] on a node, holding its limits (the app's own
//! `limits` over the server's defaults) and its counts. The route cache
//! keeps the gate with the route and its app, so a call reaches its gate
//! without a lock or a lookup of its own; the map of gates is read only when
//! the cache reads the app again (at most once per TTL).
//!
//! In flight and per second are counted per node: a call is admitted on the
//! node it reached, without asking the others, so the hot path stays a few
//! atomic operations. With N nodes behind a balancer an app gets up to N
//! times its limits; set them per node.

mod queued;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrite_model::{ApiError, App, AppLimits, ErrorKind, Limits};
use ferrite_store::Store;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use queued::QueuedCount;

/// Gates kept at most; past it the map starts over (counts start from zero
/// again, which errs on the side of admitting).
const CAPACITY: usize = 10_000;
/// `Retry-After` when too many calls are in flight: a call's end cannot be
/// foreseen, and a second is a short wait for a client.
const IN_FLIGHT_RETRY_AFTER_S: u64 = 1;

/// The gates of this node's apps.
pub struct Limiter {
    /// The server's settings, under every app's own limits.
    defaults: AppLimits,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

impl Limiter {
    pub fn new(defaults: AppLimits) -> Limiter {
        Limiter {
            defaults,
            gates: Mutex::default(),
        }
    }

    /// The gate of `app` under its current limits: the same gate while they
    /// stay the same, so counts carry over when the route cache reads the
    /// app again; a new one when they changed.
    pub fn gate(&self, app: &App) -> Arc<Gate> {
        let limits = AppLimits::resolve(app.limits.as_ref(), &self.defaults);
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = gates.get(&app.name).filter(|g| g.limits == limits) {
            return gate.clone();
        }
        if gates.len() >= CAPACITY {
            gates.clear();
        }
        let gate = Arc::new(Gate::new(&app.name, limits));
        gates.insert(app.name.clone(), gate.clone());
        gate
    }
}

/// One app's limits and counts on this node.
pub struct Gate {
    app: String,
    limits: Limits,
    /// Calls being answered now (only counted when there is a limit).
    in_flight: AtomicU64,
    /// The token bucket of the rate limit.
    rate: Option<DefaultDirectRateLimiter>,
    /// The app's queued async calls, as this node knows them.
    queued: QueuedCount,
}

/// A call admitted by a gate: counted in flight until dropped.
pub struct InFlight<'a>(Option<&'a AtomicU64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(count) = self.0 {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Gate {
    fn new(app: &str, limits: Limits) -> Gate {
        let rate = limits.rate.map(|(rate, burst)| {
            let rate = non_zero(rate);
            RateLimiter::direct(Quota::per_second(rate).allow_burst(non_zero(burst)))
        });
        Gate {
            app: app.to_string(),
            limits,
            in_flight: AtomicU64::new(0),
            rate,
            queued: QueuedCount::default(),
        }
    }

    /// Admit one call now, or say why not (429): too many of the app's calls
    /// in flight on this node, or over its rate here.
    pub fn admit(&self) -> Result<InFlight<'_>, ApiError> {
        let admitted = match self.limits.max_in_flight {
            None => InFlight(None),
            Some(max) => {
                let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
                let admitted = InFlight(Some(&self.in_flight));
                if before >= max {
                    return Err(too_many(
                        format!(
                            "app {} has {max} calls in flight on this node, its limit \
                             (app limits.max_in_flight, default FERRITE_APP_MAX_IN_FLIGHT); \
                             try again later",
                            self.app
                        ),
                        IN_FLIGHT_RETRY_AFTER_S,
                    ));
                }
                admitted
            }
        };
        if let (Some(bucket), Some((rate, burst))) = (&self.rate, self.limits.rate) {
            if let Err(not_until) = bucket.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(too_many(
                    format!(
                        "app {} is over its rate of {rate} calls per second (burst {burst}) \
                         on this node (app limits.rate and limits.burst, default FERRITE_APP_RATE \
                         and FERRITE_APP_BURST); try again later",
                        self.app
                    ),
                    whole_seconds(wait),
                ));
            }
        }
        Ok(admitted)
    }

    /// Admit one async call into the queue, or say why not (429): the app
    /// has as many calls queued as its limit.
    pub async fn admit_queued(&self, store: &dyn Store) -> Result<(), ApiError> {
        match self.limits.max_queued {
            Some(max) => self.queued.admit(store, &self.app, max).await,
            None => Ok(()),
        }
    }
}

/// A 429 that may be tried again after `retry_after_s` seconds.
fn too_many(message: String, retry_after_s: u64) -> ApiError {
    ApiError::new(ErrorKind::TooManyRequests { retry_after_s }, message)
}

/// `Retry-After` is in whole seconds: round up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Limits are validated to fit (`ferrite_model::limits::MAX_RATE`).
fn non_zero(value: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(value).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(limits: Option<AppLimits>) -> App {
        App {
            name: "a".into(),
            config: None,
            limits,
        }
    }

    fn status(result: Result<InFlight<'_>, ApiError>) -> Option<ErrorKind> {
        result.err().map(|e| e.kind)
    }

    #[test]
    fn in_flight_is_counted_and_released() {
        let limiter = Limiter::new(AppLimits::default());
        let gate = limiter.gate(&app(Some(AppLimits {
            max_in_flight: Some(2),
            ..AppLimits::default()
        })));
        let first = gate.admit().unwrap();
        let _second = gate.admit().unwrap();
        assert_eq!(
            status(gate.admit()),
            Some(ErrorKind::TooManyRequests { retry_after_s: 1 })
        );
        drop(first);
        let _third = gate.admit().unwrap();
        assert_eq!(gate.in_flight.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn rate_allows_the_burst_then_refuses_with_a_wait() {
        let limiter = Limiter::new(AppLimits {
            rate: Some(1),
            burst: Some(3),
            ..AppLimits::default()
        });
        let gate = limiter.gate(&app(None));
        for _ in 0..3 {
            gate.admit().unwrap();
        }
        let err = gate.admit().err().unwrap();
        assert!(
            err.message.contains("rate of 1 calls per second"),
            "{}",
            err.message
        );
        assert_eq!(err.kind, ErrorKind::TooManyRequests { retry_after_s: 1 });
    }

    #[test]
    fn gates_are_kept_while_limits_stay() {
        let limiter = Limiter::new(AppLimits::default());
        let limited = app(Some(AppLimits {
            max_in_flight: Some(1),
            ..AppLimits::default()
        }));
        let gate = limiter.gate(&limited);
        let _held = gate.admit().unwrap();
        assert!(Arc::ptr_eq(&gate, &limiter.gate(&limited)));
        let changed = limiter.gate(&app(Some(AppLimits {
            max_in_flight: Some(5),
            ..AppLimits::default()
        })));
        assert!(!Arc::ptr_eq(&gate, &changed));
        assert!(
            limiter.gate(&app(None)).admit().is_ok(),
            "no limit by default"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }
}
