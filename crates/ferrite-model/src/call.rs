//! Call records: one invocation of a route, its lifecycle and its times.
//!
//! A call moves through named states ([`CallStatus`]) along the transitions
//! [`CallStatus::can_become`] allows, and nowhere else: [`Call::advance`] is
//! the one place a record changes state, so every store applies the same
//! rules. Times are [`Millis`] (what the tables hold) and show as RFC 3339 in
//! JSON.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RouteType;

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub struct Call {
    /// A UUIDv7, so that ordering by id is ordering by creation time.
    pub id: String,
    pub app_name: String,
    pub path: String,
    /// The route's type when the call was made (the route may change later).
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub status: CallStatus,
    pub created_at: Millis,
    /// When the latest attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// When the call reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Millis>,
    /// Why the call failed (or why its last attempt was retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times it has started running; above 1 after retries or after
    /// a worker took it over from one that lost its lease.
    pub attempts: u32,
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

/// Milliseconds since the Unix epoch (UTC), the time unit of every table.
/// Shows as RFC 3339 with millisecond precision: `2026-11-22T09:15:26.123Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Millis {
    /// The current time, per the system clock.
    pub fn now() -> Millis {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Millis(ms)
    }

    /// Parse an RFC 3339 date-time (`Z` or a `±hh:mm` offset, any number of
    /// fraction digits, of which milliseconds are kept).
    pub fn parse_rfc3339(text: &str) -> Option<Millis> {
        let b = text.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<i64> {
            let part = text.get(from..to)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut rest = &text[19..];
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let kept = &frac[..digits.min(3)];
            ms = kept.parse::<i64>().ok()? * 10_i64.pow(3 - kept.len() as u32);
            rest = &frac[digits..];
        }
        let offset_min = match rest.as_bytes() {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let digits = [*h1, *h2, *m1, *m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let [h1, h2, m1, m2] = digits.map(|d| i64::from(d - b'0'));
                let (h, m) = (h1 * 10 + h2, m1 * 10 + m2);
                if h > 23 || m > 59 {
                    return None;
                }
                let total = h * 60 + m;
                if *sign == b'-' {
                    -total
                } else {
                    total
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
        Some(Millis(secs * 1_000 + ms))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (secs, ms) = (in_day / 1_000, in_day % 1_000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            secs / 3_600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
        let text = String::deserialize(deserializer)?;
        Millis::parse_rfc3339(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an RFC 3339 date-time"))
        })
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's
/// `civil_from_days`, on eras of 400 years).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
    fn time_format() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_795_338_926_123, "2026-11-22T09:15:26.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(Millis(ms).to_string(), text, "{ms}");
            assert_eq!(Millis::parse_rfc3339(text), Some(Millis(ms)), "{text}");
        }
    }

    #[test]
    fn time_parse() {
        let p = Millis::parse_rfc3339;
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(Millis(0)));
        assert_eq!(p("1970-01-01T00:00:00.5Z"), Some(Millis(500)));
        assert_eq!(p("1970-01-01T00:00:00.123456789Z"), Some(Millis(123)));
        assert_eq!(p("1970-01-01T01:00:00+01:00"), Some(Millis(0)));
        assert_eq!(p("1969-12-31T23:30:00-00:30"), Some(Millis(0)));
        for bad in [
            "",
            "1970-01-01",
            "1970-01-01T00:00:00",
            "1970-13-01T00:00:00Z",
            "1970-02-29T00:00:00Z",
            "1970-01-01T24:00:00Z",
            "1970-01-01T00:00:00.Z",
            "1970-01-01T00:00:00+1:00",
            "197a-01-01T00:00:00Z",
            "1970-01-01T00:00:00Zjunk",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
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

    proptest! {
        #[test]
        fn time_round_trips(ms in -62_135_596_800_000_i64..253_402_300_800_000) {
            let text = Millis(ms).to_string();
            prop_assert_eq!(text.len(), 24);
            prop_assert_eq!(Millis::parse_rfc3339(&text), Some(Millis(ms)));
        }
    }
}
