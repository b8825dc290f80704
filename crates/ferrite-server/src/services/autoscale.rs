//! How many replicas a service should have: the arithmetic of the
//! autoscaler, free of I/O so every rule is unit-tested with made-up time.
//!
//! The model is Knative's: the observed in-flight concurrency (calls being
//! served plus calls waiting for a replica) is averaged over a long *stable*
//! window and a short *panic* window. Normally replicas follow the stable
//! average, which rides out bursts; when the panic average asks for at least
//! twice the current replicas, the panic average rules and replicas are not
//! reduced until a whole stable window has passed without such a burst.
//! Scaling down is gradual (at most halving per decision) and to zero only
//! after a whole idle period without a single call.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the autoscaler reacts, the same for every service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoscaleSettings {
    /// Averaging window of normal operation.
    pub stable_window: Duration,
    /// Averaging window of bursts; Knative's default is a tenth of the
    /// stable window.
    pub panic_window: Duration,
    /// Panic starts when the panic average asks for this many times the
    /// current replicas.
    pub panic_threshold: f64,
    /// One decision divides the replicas by at most this.
    pub max_scale_down_rate: f64,
}

impl AutoscaleSettings {
    /// The stable window given; the rest as Knative sets it.
    pub fn with_stable_window(stable_window: Duration) -> AutoscaleSettings {
        AutoscaleSettings {
            stable_window,
            panic_window: (stable_window / 10).max(Duration::from_secs(1)),
            panic_threshold: 2.0,
            max_scale_down_rate: 2.0,
        }
    }
}

/// One service's limits, from its route's `service` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// In-flight calls per replica aimed at.
    pub target: f64,
    /// Idle time before scaling to zero (only when `min` is 0).
    pub scale_to_zero_after: Duration,
}

/// What the autoscaler wants, and why: shown by `GET /v1/services`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub replicas: u32,
    pub reason: String,
    /// The reason as one of a few causes (a metric's label).
    pub cause: Cause,
    pub stable_concurrency: f64,
    pub panic_concurrency: f64,
    pub panicking: bool,
}

/// Why the replicas are what they are, in one word: `reason` says it in
/// full, with figures that would make a label unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A call arrived while no replica ran.
    Activation,
    /// A burst: the short window's demand rules.
    Panic,
    /// The demand averaged over the stable window (or, at zero, fresh
    /// demand).
    Demand,
    /// No call for the idle period: on the way to zero.
    Idle,
    /// Held at the route's minimum or maximum.
    Bounds,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Activation => "activation",
            Cause::Panic => "panic",
            Cause::Demand => "demand",
            Cause::Idle => "idle",
            Cause::Bounds => "bounds",
        }
    }

    /// The cause [`Cause::as_str`] names.
    pub fn parse(word: &str) -> Option<Cause> {
        [
            Cause::Activation,
            Cause::Panic,
            Cause::Demand,
            Cause::Idle,
            Cause::Bounds,
        ]
        .into_iter()
        .find(|c| c.as_str() == word)
    }
}

/// The history of one service's concurrency and the state of its panic.
#[derive(Debug)]
pub struct Autoscaler {
    settings: AutoscaleSettings,
    /// (end of the sampled interval, its average concurrency), oldest first,
    /// no older than the stable window.
    samples: VecDeque<(Instant, f64)>,
    /// When the current panic started or was last renewed.
    panic_since: Option<Instant>,
    /// The highest panic decision of the current panic: replicas do not go
    /// below it while the panic lasts.
    panic_replicas: u32,
    /// The last time any call was in flight (or the autoscaler's birth, so
    /// a service adopted at start is not scaled to zero at once).
    last_active: Instant,
}

impl Autoscaler {
    pub fn new(settings: AutoscaleSettings, now: Instant) -> Autoscaler {
        Autoscaler {
            settings,
            samples: VecDeque::new(),
            panic_since: None,
            panic_replicas: 0,
            last_active: now,
        }
    }

    /// Record the average concurrency of the interval that ended at `at`.
    pub fn record(&mut self, at: Instant, concurrency: f64) {
        if concurrency > 0.0 {
            self.last_active = at;
        }
        self.samples.push_back((at, concurrency.max(0.0)));
        while let Some(&(t, _)) = self.samples.front() {
            if at.saturating_duration_since(t) > self.settings.stable_window {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Note that a call is waiting now (between samples): a service at
    /// zero scales up on the first call, not on the next tick.
    pub fn note_demand(&mut self, now: Instant) {
        self.last_active = now;
    }

    fn average(&self, now: Instant, window: Duration) -> f64 {
        let (sum, n) = self
            .samples
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= window)
            .fold((0.0, 0u32), |(s, n), (_, c)| (s + c, n + 1));
        if n == 0 {
            0.0
        } else {
            sum / f64::from(n)
        }
    }

    /// The replicas wanted now, given the `current` replicas.
    pub fn decide(&mut self, now: Instant, current: u32, bounds: &Bounds) -> Decision {
        let target = bounds.target.max(f64::MIN_POSITIVE);
        let stable = self.average(now, self.settings.stable_window);
        let panic = self.average(now, self.settings.panic_window);
        let want_stable = replicas_for(stable, target);
        let want_panic = replicas_for(panic, target);

        // A burst: the short window asks for `panic_threshold` times what
        // runs. Not from zero: a first call there is an activation, and a
        // panic would hold the replica for a whole stable window.
        let bursting = current > 0
            && f64::from(want_panic) / f64::from(current) >= self.settings.panic_threshold;
        if bursting {
            if self.panic_since.is_none() {
                self.panic_replicas = 0;
            }
            self.panic_since = Some(now);
        } else if self
            .panic_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.settings.stable_window)
        {
            self.panic_since = None;
        }

        let idle = now.saturating_duration_since(self.last_active);
        let to_zero =
            self.panic_since.is_none() && bounds.min == 0 && idle >= bounds.scale_to_zero_after;
        let mut cause = Cause::Demand;
        let (mut wanted, mut reason) = if self.panic_since.is_some() {
            self.panic_replicas = self.panic_replicas.max(want_panic).max(current);
            cause = Cause::Panic;
            (
                self.panic_replicas,
                format!(
                    "panic: {panic:.1} in flight over {}s wants {want_panic} at {target} per replica, {current} running; no scale-down until {}s without a burst",
                    self.settings.panic_window.as_secs(),
                    self.settings.stable_window.as_secs()
                ),
            )
        } else if to_zero {
            // Not one call for the whole idle period: straight to zero, the
            // stable window's memory of older calls notwithstanding.
            cause = Cause::Idle;
            (
                0,
                format!("no calls for {}s: scaled to zero", idle.as_secs()),
            )
        } else if current == 0 {
            // At zero only fresh demand counts: the stable window still
            // remembers the calls before.
            match want_panic {
                0 => (0, "no calls waiting".to_string()),
                n => (
                    n,
                    format!(
                        "{panic:.1} in flight over {}s with no replica",
                        self.settings.panic_window.as_secs()
                    ),
                ),
            }
        } else {
            (
                want_stable,
                format!(
                    "stable: {stable:.1} in flight over {}s at {target} per replica",
                    self.settings.stable_window.as_secs()
                ),
            )
        };
        if !to_zero && wanted < current {
            // Gradual: never below current / rate in one step, and the
            // last replica stays until the idle period is over.
            let floor = (f64::from(current) / self.settings.max_scale_down_rate).ceil() as u32;
            if wanted < floor {
                // Only a route that may go to zero waits to: with a minimum,
                // the step down is limited like any other.
                reason = if wanted == 0 && bounds.min == 0 {
                    cause = Cause::Idle;
                    format!(
                        "idle for {}s of {}s before scaling to zero",
                        idle.as_secs(),
                        bounds.scale_to_zero_after.as_secs()
                    )
                } else {
                    format!("{reason}; scale-down limited to {floor}")
                };
                wanted = floor;
            }
        }
        let clamped = wanted.clamp(bounds.min, bounds.max.max(bounds.min));
        if clamped != wanted {
            cause = Cause::Bounds;
            reason.push_str(&format!(
                "; bounded to {}..={}",
                bounds.min,
                bounds.max.max(bounds.min)
            ));
        }
        Decision {
            replicas: clamped,
            reason,
            cause,
            stable_concurrency: stable,
            panic_concurrency: panic,
            panicking: self.panic_since.is_some(),
        }
    }
}

/// Replicas that serve `concurrency` at `target` each.
fn replicas_for(concurrency: f64, target: f64) -> u32 {
    let wanted = (concurrency / target).ceil();
    if wanted.is_finite() && wanted > 0.0 {
        wanted.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn bounds(min: u32, max: u32) -> Bounds {
        Bounds {
            min,
            max,
            target: 10.0,
            scale_to_zero_after: 30 * S,
        }
    }

    /// An autoscaler fed `concurrency` once a second for `secs` seconds from
    /// `start`, deciding each second; returns the last decision.
    fn run(
        scaler: &mut Autoscaler,
        start: Instant,
        secs: u32,
        concurrency: f64,
        replicas: &mut u32,
        b: &Bounds,
    ) -> Decision {
        let mut last = None;
        for i in 1..=secs {
            let now = start + i * S;
            scaler.record(now, concurrency);
            let d = scaler.decide(now, *replicas, b);
            *replicas = d.replicas;
            last = Some(d);
        }
        last.expect("at least one second")
    }

    fn scaler(t0: Instant) -> Autoscaler {
        Autoscaler::new(AutoscaleSettings::with_stable_window(60 * S), t0)
    }

    #[test]
    fn steady_load_gets_concurrency_over_target_replicas() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        let mut replicas = 3;
        let d = run(&mut s, t0, 120, 30.0, &mut replicas, &bounds(0, 10));
        assert_eq!(d.replicas, 3);
        assert!(!d.panicking);
        let d = run(
            &mut s,
            t0 + 120 * S,
            120,
            45.0,
            &mut replicas,
            &bounds(0, 10),
        );
        assert_eq!(d.replicas, 5);
    }

    #[test]
    fn a_burst_panics_at_once_and_holds_the_replicas_for_a_stable_window() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        let mut replicas = 1;
        run(&mut s, t0, 60, 5.0, &mut replicas, &bounds(0, 20));
        assert_eq!(replicas, 1);
        // Two seconds of 100 in flight: the panic window sees 100/6*2 ~ 33.
        let d = run(&mut s, t0 + 60 * S, 2, 100.0, &mut replicas, &bounds(0, 20));
        assert!(d.panicking, "{d:?}");
        assert!(d.replicas >= 4, "{d:?}");
        assert_eq!(d.cause, Cause::Panic);
        let peak = d.replicas;
        // The burst ends: replicas stay at the peak while the panic lasts.
        let d = run(&mut s, t0 + 62 * S, 30, 5.0, &mut replicas, &bounds(0, 20));
        assert!(d.panicking);
        assert!(d.replicas >= peak, "{d:?}");
        // A stable window later, the panic is over and replicas come down,
        // at most halving per decision.
        for i in 0..120u32 {
            let now = t0 + (92 + i) * S;
            s.record(now, 5.0);
            let d = s.decide(now, replicas, &bounds(0, 20));
            assert!(d.replicas * 2 >= replicas, "{replicas} -> {d:?}");
            replicas = d.replicas;
        }
        assert_eq!(replicas, 1);
    }

    #[test]
    fn from_zero_any_demand_scales_to_one_or_more_at_once() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        s.record(t0 + S, 0.0);
        assert_eq!(s.decide(t0 + S, 0, &bounds(0, 5)).replicas, 0);
        s.record(t0 + 2 * S, 0.5);
        let d = s.decide(t0 + 2 * S, 0, &bounds(0, 5));
        assert_eq!(d.replicas, 1, "{d:?}");
        // An activation, not a panic: the replica may go after the idle
        // period, not only after a stable window.
        assert!(!d.panicking, "{d:?}");
        s.record(t0 + 3 * S, 35.0);
        assert!(s.decide(t0 + 3 * S, 1, &bounds(0, 5)).replicas >= 2);
    }

    #[test]
    fn the_last_replica_goes_only_after_the_idle_period() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        let mut replicas = 1;
        run(&mut s, t0, 5, 3.0, &mut replicas, &bounds(0, 5));
        assert_eq!(replicas, 1);
        // Idle: the stable window still remembers the calls for 60 s, and
        // the idle period (30 s) counts from the last call.
        let d = run(&mut s, t0 + 5 * S, 29, 0.0, &mut replicas, &bounds(0, 5));
        assert_eq!(d.replicas, 1, "{d:?}");
        let d = run(&mut s, t0 + 34 * S, 1, 0.0, &mut replicas, &bounds(0, 5));
        assert_eq!(d.replicas, 0, "{d:?}");
        assert!(d.reason.contains("scaled to zero"), "{d:?}");
        assert_eq!(d.cause, Cause::Idle);
        // And stays there: the stable window's older calls do not bring
        // a replica back.
        let d = run(&mut s, t0 + 74 * S, 10, 0.0, &mut replicas, &bounds(0, 5));
        assert_eq!(d.replicas, 0, "{d:?}");
    }

    #[test]
    fn a_route_with_a_minimum_never_waits_to_scale_to_zero() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        let mut replicas = 3;
        run(&mut s, t0, 60, 30.0, &mut replicas, &bounds(1, 5));
        assert_eq!(replicas, 3);
        // The calls stop: the steps down say why, and none speaks of zero.
        let d = run(&mut s, t0 + 60 * S, 61, 0.0, &mut replicas, &bounds(1, 5));
        assert!(!d.reason.contains("zero"), "{d:?}");
        let d = run(&mut s, t0 + 121 * S, 60, 0.0, &mut replicas, &bounds(1, 5));
        assert_eq!(d.replicas, 1, "{d:?}");
        assert!(!d.reason.contains("zero"), "{d:?}");
    }

    #[test]
    fn min_and_max_bound_every_decision() {
        let t0 = Instant::now();
        let mut s = scaler(t0);
        let mut replicas = 2;
        let d = run(&mut s, t0, 100, 0.0, &mut replicas, &bounds(2, 4));
        assert_eq!(d.replicas, 2);
        let d = run(
            &mut s,
            t0 + 100 * S,
            100,
            500.0,
            &mut replicas,
            &bounds(2, 4),
        );
        assert_eq!(d.replicas, 4);
        assert!(d.reason.contains("bounded"), "{d:?}");
        assert_eq!(d.cause, Cause::Bounds);
    }
}
