//! The call metrics of one route: every handle it records into is
//! registered once, when the route cache reads the route, and kept beside
//! the route. A call then records with a few atomic operations on its own
//! route's handles: no label lookup, no allocation, no lock shared with
//! other routes' calls.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::metrics::{counter, histogram, Counter, Histogram};
use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;
use ferrite_engine::Timings;
use ferrite_model::{CallStatus, Route, RouteType};
use http_body::{Frame, SizeHint};

use super::{
    ASYNC_ATTEMPTS, ASYNC_RETRIES, CALLS, CALL_DURATION, CALL_PHASE, COLD_STARTS, VERSION_CALLS,
};

/// How a route's calls are run, as the `kind` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sync,
    Async,
    Service,
}

impl Kind {
    /// The kind of `route`'s calls: a route with a service is called now
    /// whatever its type.
    pub fn of(route: &Route) -> Kind {
        match route.kind {
            _ if route.service.is_some() => Kind::Service,
            RouteType::Async => Kind::Async,
            RouteType::Sync => Kind::Sync,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Sync => "sync",
            Kind::Async => "async",
            Kind::Service => "service",
        }
    }
}

/// How a call ended, as the `status` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Success,
    /// The function failed (exit code, 5xx, broken answer) or could not be
    /// run for a reason other than admission.
    Error,
    Timeout,
    /// Killed by a signal or the OOM killer.
    Killed,
    /// Turned away before running: the route's token, the app's limits, the
    /// body cap, or the node's admission (memory or a hot slot).
    Rejected,
}

impl End {
    const ALL: [End; 5] = [
        End::Success,
        End::Error,
        End::Timeout,
        End::Killed,
        End::Rejected,
    ];

    fn as_str(self) -> &'static str {
        match self {
            End::Success => "success",
            End::Error => "error",
            End::Timeout => "timeout",
            End::Killed => "killed",
            End::Rejected => "rejected",
        }
    }
}

impl From<CallStatus> for End {
    fn from(status: CallStatus) -> End {
        match status {
            CallStatus::Success => End::Success,
            CallStatus::Timeout => End::Timeout,
            _ => End::Error,
        }
    }
}

/// A phase of a call that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Admission,
    Container,
    Run,
    Answer,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Admission,
        Phase::Container,
        Phase::Run,
        Phase::Answer,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Phase::Admission => "admission",
            Phase::Container => "container",
            Phase::Run => "run",
            Phase::Answer => "answer",
        }
    }
}

/// The registered handles of one route's call metrics.
pub struct RouteMetrics {
    /// One counter per [`End`], in its order.
    calls: [Counter; 5],
    duration: Histogram,
    /// One histogram per [`Phase`], in its order.
    phases: [Histogram; 4],
    cold_starts: Counter,
    /// Async routes only: runs, and returns to the queue.
    attempts: Option<(Counter, Counter)>,
    /// Calls each serving version ran, by version number.
    versions: Vec<(u32, Counter)>,
}

impl RouteMetrics {
    /// Register the handles of `app`'s route at `path` (its template, as
    /// stored), whose calls are of `kind` and served by `versions`.
    pub fn new(app: &str, path: &str, kind: Kind, versions: &[u32]) -> RouteMetrics {
        let (app, path) = (app.to_string(), path.to_string());
        let route = || [("app", app.clone()), ("route", path.clone())];
        let with = |name: &'static str, value: &'static str| {
            let [a, r] = route();
            [
                a,
                r,
                ("kind", kind.as_str().to_string()),
                (name, value.to_string()),
            ]
        };
        let [a, r] = route();
        let of_kind = [a, r, ("kind", kind.as_str().to_string())];
        RouteMetrics {
            calls: End::ALL.map(|end| counter!(CALLS, &with("status", end.as_str()))),
            duration: histogram!(CALL_DURATION, &of_kind),
            phases: Phase::ALL.map(|phase| histogram!(CALL_PHASE, &with("phase", phase.as_str()))),
            cold_starts: counter!(COLD_STARTS, &route()),
            attempts: (kind == Kind::Async).then(|| {
                (
                    counter!(ASYNC_ATTEMPTS, &route()),
                    counter!(ASYNC_RETRIES, &route()),
                )
            }),
            versions: versions
                .iter()
                .map(|v| {
                    let [a, r] = route();
                    (
                        *v,
                        counter!(VERSION_CALLS, &[a, r, ("version", v.to_string())]),
                    )
                })
                .collect(),
        }
    }

    /// Version `version` of the route ran a call.
    pub fn served(&self, version: u32) {
        if let Some((_, counter)) = self.versions.iter().find(|(v, _)| *v == version) {
            counter.increment(1);
        }
    }

    /// A call ended `end` after `took`.
    pub fn ended(&self, end: End, took: Duration) {
        self.calls[end as usize].increment(1);
        self.duration.record(took.as_secs_f64());
    }

    pub fn phase(&self, phase: Phase, took: Duration) {
        self.phases[phase as usize].record(took.as_secs_f64());
    }

    /// The engine's (or a service's) share of a call that ran.
    pub fn ran(&self, timings: &Timings) {
        self.phase(Phase::Admission, timings.admission);
        self.phase(Phase::Container, timings.container);
        self.phase(Phase::Run, timings.run);
        if timings.cold_start {
            self.cold_starts.increment(1);
        }
    }

    /// A worker starts running an async call.
    pub fn attempt(&self) {
        if let Some((attempts, _)) = &self.attempts {
            attempts.increment(1);
        }
    }

    /// A failed async call goes back to the queue.
    pub fn retry(&self) {
        if let Some((_, retries)) = &self.attempts {
            retries.increment(1);
        }
    }
}

/// A call whose answer is being written: on drop (the server has written
/// the body, or the client went away), its answer phase, duration and end
/// are recorded.
pub struct Answering {
    metrics: Arc<RouteMetrics>,
    end: End,
    /// When the call was admitted to be run.
    began: Instant,
    /// When its answer was ready.
    answering: Instant,
    /// Whether it ran (a call turned away by admission has no phases).
    ran: bool,
}

impl Answering {
    pub fn new(metrics: Arc<RouteMetrics>, end: End, began: Instant, ran: bool) -> Self {
        Answering {
            metrics,
            end,
            began,
            answering: Instant::now(),
            ran,
        }
    }
}

impl Answering {
    /// The call ended otherwise than its answer's head said (a streamed
    /// answer cut or abandoned).
    pub fn end(&mut self, end: End) {
        self.end = end;
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let metrics = &self.metrics;
        if self.ran {
            metrics.phase(Phase::Answer, self.answering.elapsed());
        }
        metrics.ended(self.end, self.began.elapsed());
    }
}

/// `response` with its call recorded once its body has been written.
pub fn on_written(response: Response, answering: Answering) -> Response {
    response.map(|inner| {
        Body::new(Timed {
            inner,
            _answering: answering,
        })
    })
}

/// A body that records its call when dropped.
struct Timed {
    inner: Body,
    _answering: Answering,
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_in_the_order_of_the_arrays() {
        for (i, end) in End::ALL.iter().enumerate() {
            assert_eq!(*end as usize, i);
        }
        for (i, phase) in Phase::ALL.iter().enumerate() {
            assert_eq!(*phase as usize, i);
        }
    }
}
