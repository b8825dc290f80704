//! When a schedule ticks: its cron expression read in its time zone.
//!
//! Expressions have five fields (minute to day of week) or six, the first
//! being seconds; `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly`
//! stand for their five fields. Times cross the store as milliseconds since
//! the Unix epoch; a tick is always a whole second.
//!
//! Daylight saving time (croner's rules, checked in the tests below): a
//! wall-clock time that a spring-forward skips ticks once, at the first
//! instant after the gap (02:30 on a day without 02:00-03:00 ticks at
//! 03:00); a time that a fall-back repeats ticks once, at its first
//! occurrence; an expression over every hour or minute follows the real
//! clock: the repeated hour ticks twice, the skipped one not at all.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use ferrite_model::{ApiError, ErrorKind};

/// The most run times one answer shows.
pub const MAX_SHOWN: usize = 100;

/// A parsed cron expression and its time zone.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: Cron,
    tz: Tz,
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

impl Timing {
    /// Parse `cron` (five or six fields) in IANA time zone `tz`.
    pub fn parse(cron: &str, tz: &str) -> Result<Timing, ApiError> {
        let tz = Tz::from_str(tz).map_err(|_| {
            bad(format!(
                "timezone {tz:?} is not an IANA time zone name (such as UTC or Europe/Paris)"
            ))
        })?;
        let fields = cron.split_whitespace().count();
        if !cron.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(bad(format!(
                "cron {cron:?} has {fields} fields: give 5 (minute hour day month weekday) \
                 or 6 (seconds first)"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| bad(format!("cron {cron:?}: {e}")))?;
        Ok(Timing { cron, tz })
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.tz))
    }

    /// The first tick strictly after `ms`; `None` if there is none.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let from = self.at(ms)?;
        self.cron
            .find_next_occurrence(&from, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The last tick at or before `ms`; `None` if there is none.
    pub fn last_until(&self, ms: i64) -> Option<i64> {
        let until = self.at(ms)?;
        self.cron
            .find_previous_occurrence(&until, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The next `n` ticks after `ms`, in the schedule's time zone.
    pub fn upcoming(&self, ms: i64, n: usize) -> Vec<DateTime<Tz>> {
        let mut shown = Vec::with_capacity(n.min(MAX_SHOWN));
        let mut from = ms;
        while shown.len() < n.min(MAX_SHOWN) {
            let Some(next) = self.next_after(from).and_then(|t| self.at(t)) else {
                break;
            };
            from = next.timestamp_millis();
            shown.push(next);
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn shown(timing: &Timing, from: &str, n: usize) -> Vec<String> {
        timing
            .upcoming(ms(from), n)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn five_or_six_fields_and_a_real_zone() {
        assert!(Timing::parse("*/5 * * * *", "UTC").is_ok());
        assert!(Timing::parse("*/2 * * * * *", "Europe/Paris").is_ok());
        assert!(Timing::parse("@daily", "UTC").is_ok());
        let e = Timing::parse("* * * *", "UTC").unwrap_err();
        assert!(e.message.contains("4 fields"), "{}", e.message);
        assert!(Timing::parse("0 0 0 1 1 * 2030", "UTC").is_err());
        assert!(Timing::parse("61 * * * *", "UTC").is_err());
        let e = Timing::parse("* * * * *", "Mars/Olympus").unwrap_err();
        assert!(e.message.contains("IANA"), "{}", e.message);
    }

    #[test]
    fn ticks_are_read_in_the_zone() {
        let nine = Timing::parse("0 9 * * *", "Asia/Tokyo").unwrap();
        assert_eq!(
            shown(&nine, "2026-12-04T12:00:00Z", 2),
            ["2026-12-05T09:00:00+09:00", "2026-12-06T09:00:00+09:00"]
        );
        assert_eq!(
            nine.next_after(ms("2026-12-04T12:00:00Z")),
            Some(ms("2026-12-05T00:00:00Z"))
        );
        assert_eq!(
            nine.last_until(ms("2026-12-05T00:00:00Z")),
            Some(ms("2026-12-05T00:00:00Z"))
        );
        let seconds = Timing::parse("*/2 * * * * *", "UTC").unwrap();
        assert_eq!(
            seconds.next_after(ms("2026-12-04T12:00:00.500Z")),
            Some(ms("2026-12-04T12:00:02Z"))
        );
    }

    /// Europe/Paris springs forward on 2026-03-29 (02:00 -> 03:00) and falls
    /// back on 2026-10-25 (03:00 -> 02:00).
    #[test]
    fn daylight_saving_time() {
        let half_past_two = Timing::parse("30 2 * * *", "Europe/Paris").unwrap();
        assert_eq!(
            shown(&half_past_two, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
            "a skipped time ticks once, just after the gap"
        );
        assert_eq!(
            shown(&half_past_two, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
            "a repeated time ticks once, the first time"
        );
        let hourly = Timing::parse("0 * * * *", "Europe/Paris").unwrap();
        assert_eq!(
            shown(&hourly, "2026-10-24T23:30:00Z", 4),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T04:00:00+01:00"
            ],
            "every hour is every real hour"
        );
    }
}
