//! Call records: one invocation of a route, its lifecycle and its times.
//!
//! A call moves through named states ([`CallStatus`]) along the transitions
//! [`CallStatus::can_become`] allows, and nowhere else: [`Call::advance`] is
//! the one place a record changes state, so every store applies the same
//! rules. Times are [`Millis`] (what the tables hold) and show as RFC 3339 in
//! JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Millis, RouteType};

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// Accepted, waiting for a worker (async) or for admission (sync).
    Queued,
    /// A container is running it.
    Running,
    /// The function exited 0.
    Success,
    /// The function failed, or could not be started.
    Error,
    /// The function did not finish within the route's timeout.
    Timeout,
    /// Withdrawn before it ran.
    Cancelled,
}

impl CallStatus {
    pub const ALL: [CallStatus; 6] = [
        CallStatus::Queued,
        CallStatus::Running,
        CallStatus::Success,
        CallStatus::Error,
        CallStatus::Timeout,
        CallStatus::Cancelled,
    ];

    /// Whether a call in this state may move to `next`. Queued calls start or
    /// are cancelled; running calls end, go back to the queue for a retry, or
    /// start again: a worker whose node died loses its lease without ever
    /// writing a result, so the worker that takes the call over moves it from
    /// running straight to running (a new attempt). Final states are final.
    pub fn can_become(self, next: CallStatus) -> bool {
        use CallStatus::*;
        matches!(
            (self, next),
            (Queued, Running | Cancelled) | (Running, Running | Success | Error | Timeout | Queued)
        )
    }

    /// No transition leaves this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Success | CallStatus::Error | CallStatus::Timeout | CallStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Running => "running",
            CallStatus::Success => "success",
            CallStatus::Error => "error",
            CallStatus::Timeout => "timeout",
            CallStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `value` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(value: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition [`CallStatus::can_become`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} call cannot become {to}")]
pub struct IllegalTransition {
    pub from: CallStatus,
    pub to: CallStatus,
}

/// One invocation of a route, as the call history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Call {
    /// A UUIDv7, so that ordering by id is ordering by creation time.
    pub id: String,
    pub app_name: String,
    pub path: String,
    /// The route's type when the call was made (the route may change later).
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub status: CallStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    /// When the latest attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Millis>,
    /// When the call reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<Millis>,
    /// Why the call failed (or why its last attempt was retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times it has started running; above 1 after retries or after
    /// a worker took it over from one that lost its lease.
    pub attempts: u32,
    /// Which version of its route served it (its latest attempt); left out
    /// until it ran, and for calls made before routes had versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

impl Call {
    /// A new call, queued at `created_at`, not yet attempted.
    pub fn new(
        id: impl Into<String>,
        app_name: impl Into<String>,
        path: impl Into<String>,
        kind: RouteType,
        created_at: Millis,
    ) -> Call {
        Call {
            id: id.into(),
            app_name: app_name.into(),
            path: path.into(),
            kind,
            status: CallStatus::Queued,
            created_at,
            started_at: None,
            completed_at: None,
            error: None,
            attempts: 0,
            version: None,
        }
    }

    /// Move to `next` at time `at`, or refuse and change nothing. Becoming
    /// running starts an attempt (`started_at`, `attempts + 1`), also when
    /// the call was already running (taken over after a lost lease); a final
    /// state sets `completed_at`. `error` replaces the previous one, so a
    /// call that succeeds on retry carries no error.
    pub fn advance(
        &mut self,
        next: CallStatus,
        at: Millis,
        error: Option<&str>,
    ) -> Result<(), IllegalTransition> {
        if !self.status.can_become(next) {
            return Err(IllegalTransition {
                from: self.status,
                to: next,
            });
        }
        if next == CallStatus::Running {
            self.started_at = Some(at);
            self.attempts = self.attempts.saturating_add(1);
        }
        if next.is_final() {
            self.completed_at = Some(at);
        }
        self.status = next;
        self.error = error.map(str::to_string);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallStatus::*;

    #[test]
    fn transitions() {
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Running),
            (Running, Success),
            (Running, Error),
            (Running, Timeout),
            (Running, Queued),
        ];
        for from in CallStatus::ALL {
            for to in CallStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        let finals: Vec<_> = CallStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, [Success, Error, Timeout, Cancelled]);
        for s in finals {
            assert!(CallStatus::ALL.iter().all(|&to| !s.can_become(to)));
        }
    }

    #[test]
    fn status_names() {
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(CallStatus::parse("Running"), None);
    }

    #[test]
    fn advance_keeps_times_and_attempts() {
        let mut call = Call::new("id", "app", "/p", RouteType::Async, Millis(10));
        call.advance(Running, Millis(20), None).unwrap();
        assert_eq!((call.started_at, call.attempts), (Some(Millis(20)), 1));
        call.advance(Queued, Millis(30), Some("node lost")).unwrap();
        assert_eq!(call.error.as_deref(), Some("node lost"));
        assert_eq!(call.completed_at, None);
        call.advance(Running, Millis(40), None).unwrap();
        assert_eq!((call.started_at, call.attempts), (Some(Millis(40)), 2));
        assert_eq!(call.error, None);
        // Taken over by another worker after a lost lease: a new attempt.
        call.advance(Running, Millis(45), None).unwrap();
        assert_eq!(
            (call.status, call.started_at, call.attempts),
            (Running, Some(Millis(45)), 3)
        );
        assert_eq!(call.completed_at, None);
        call.advance(Timeout, Millis(50), Some("timed out"))
            .unwrap();
        assert_eq!(call.completed_at, Some(Millis(50)));
        let before = call.clone();
        let err = call.advance(Running, Millis(60), None).unwrap_err();
        assert_eq!(
            err,
            IllegalTransition {
                from: Timeout,
                to: Running
            }
        );
        assert_eq!(call, before, "a refused transition changes nothing");
        assert_eq!(err.to_string(), "a timeout call cannot become running");
    }

    #[test]
    fn call_json() {
        let mut call = Call::new("0190", "app", "/p", RouteType::Sync, Millis(0));
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"0190","app_name":"app","path":"/p","type":"sync",
                "status":"queued","created_at":"1970-01-01T00:00:00.000Z","attempts":0})
        );
        call.advance(Running, Millis(1), None).unwrap();
        call.advance(Error, Millis(2), Some("exit 1")).unwrap();
        let json = serde_json::to_string(&call).unwrap();
        assert!(
            json.contains(r#""completed_at":"1970-01-01T00:00:00.002Z""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
    }
}
