//! How many calls are in flight to one service, averaged over time: what
//! the autoscaler samples each tick.

use std::sync::Mutex;
use std::time::Instant;

/// Calls in flight to one service, and their integral over time, so the
/// autoscaler samples the true average concurrency of each interval rather
/// than whatever happened to be in flight at the sampling instant.
#[derive(Debug)]
pub struct ConcurrencyMeter {
    state: Mutex<MeterState>,
}

#[derive(Debug)]
struct MeterState {
    in_flight: u64,
    /// Since when `in_flight` has had its value.
    since: Instant,
    /// Start of the interval being sampled.
    interval_start: Instant,
    /// ∫ in_flight dt over the interval so far, in call-seconds.
    area: f64,
}

impl MeterState {
    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        self.area += self.in_flight as f64 * dt;
        self.since = now;
    }
}

impl ConcurrencyMeter {
    pub fn new(now: Instant) -> ConcurrencyMeter {
        ConcurrencyMeter {
            state: Mutex::new(MeterState {
                in_flight: 0,
                since: now,
                interval_start: now,
                area: 0.0,
            }),
        }
    }

    fn change(&self, now: Instant, up: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.advance(now);
        state.in_flight = if up {
            state.in_flight + 1
        } else {
            state.in_flight.saturating_sub(1)
        };
    }

    /// Count a call as in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.change(Instant::now(), true);
        InFlight { meter: self }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight
    }

    /// The average concurrency since the last call of this function (or the
    /// meter's creation), starting a new interval.
    pub fn take_average(&self, now: Instant) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.advance(now);
        let length = now
            .saturating_duration_since(state.interval_start)
            .as_secs_f64();
        let average = if length > 0.0 {
            state.area / length
        } else {
            state.in_flight as f64
        };
        state.area = 0.0;
        state.interval_start = now;
        average
    }
}

/// One call in flight; see [`ConcurrencyMeter::enter`].
#[derive(Debug)]
pub struct InFlight<'a> {
    meter: &'a ConcurrencyMeter,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.meter.change(Instant::now(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_meter_integrates_in_flight_calls_over_time() {
        let t0 = Instant::now();
        let meter = ConcurrencyMeter::new(t0);
        meter.change(t0, true);
        meter.change(t0 + S / 2, true);
        meter.change(t0 + S, false);
        // 1 call for 0.5 s, then 2 for 0.5 s: 1.5 on average.
        assert!((meter.take_average(t0 + S) - 1.5).abs() < 1e-9);
        // One call stays in flight the whole next second.
        assert!((meter.take_average(t0 + 2 * S) - 1.0).abs() < 1e-9);
        let guard = meter.enter();
        assert_eq!(meter.in_flight(), 2);
        drop(guard);
        assert_eq!(meter.in_flight(), 1);
    }
}
