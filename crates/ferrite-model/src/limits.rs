//! An app's call limits: how many of its calls may be in flight, how many
//! per second, and how many async calls may wait in the queue.
//!
//! An app's `limits` section overrides the server's defaults field by field
//! (a field left out uses the default); `0` means "no limit" for this app,
//! whatever the default. [`AppLimits::resolve`] gives the limits in force.

use serde::{Deserialize, Serialize};

use crate::decode::absent_or_null;
use crate::ApiError;

/// Upper bounds: far above real use, low enough that the rate fits the
/// limiter's 32-bit quota and counts cannot overflow.
pub const MAX_IN_FLIGHT: u64 = 1_000_000;
pub const MAX_RATE: u64 = 1_000_000;
pub const MAX_BURST: u64 = 1_000_000;
pub const MAX_QUEUED: u64 = 100_000_000;

/// The `limits` section of an app as stored and shown. Fields left out are
/// the server's defaults; `0` is "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppLimits {
    /// Calls of the app being answered at once on one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u64>,
    /// Calls of the app per second on one node, on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Calls accepted at once above the rate, after a quiet spell (the size
    /// of the token bucket); by default one second's worth of the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Async calls of the app waiting in the queue, across nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u64>,
}

/// The `limits` object of an app creation or PATCH. Absent: keep (on
/// creation: the default); `null`: back to the server's default; a number:
/// this app's value (`0`: no limit). Numbers are signed so that a negative
/// one gets a message about the rule. Unknown fields are refused: a
/// misspelt limit silently not applied would be worse than an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    #[serde(default, deserialize_with = "absent_or_null")]
    pub max_in_flight: Option<Option<i64>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub rate: Option<Option<i64>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub burst: Option<Option<i64>>,
    #[serde(default, deserialize_with = "absent_or_null")]
    pub max_queued: Option<Option<i64>>,
}

/// The limits in force for an app: its own, else the server's defaults.
/// `None` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_in_flight: Option<u64>,
    /// Calls per second and the burst above it.
    pub rate: Option<(u64, u64)>,
    pub max_queued: Option<u64>,
}

/// Apply one field of a PATCH: absent keeps, `null` removes, a number in
/// `min..=max` is set.
fn set(
    field: &str,
    given: Option<Option<i64>>,
    slot: &mut Option<u64>,
    min: u64,
    max: u64,
    unit: &str,
) -> Result<(), ApiError> {
    match given {
        None => {}
        Some(None) => *slot = None,
        Some(Some(value)) => *slot = Some(number(field, value, min, max, unit)?),
    }
    Ok(())
}

/// `min..=max` for `app limits.<field>` (the burst alone must be at least 1).
fn number(field: &str, value: i64, min: u64, max: u64, unit: &str) -> Result<u64, ApiError> {
    u64::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            let lowest = match min {
                0 => "0 (no limit)".to_string(),
                n => n.to_string(),
            };
            ApiError::bad_request(format!(
                "app limits.{field} must be a whole number of {unit} from {lowest} to {max}, got {value}"
            ))
        })
}

impl AppLimits {
    /// Apply a creation or PATCH `input` to these limits, field by field;
    /// `None` when no field is left (the section is then left out).
    pub fn merge(
        current: Option<AppLimits>,
        input: LimitsInput,
    ) -> Result<Option<AppLimits>, ApiError> {
        let mut limits = current.unwrap_or_default();
        set(
            "max_in_flight",
            input.max_in_flight,
            &mut limits.max_in_flight,
            0,
            MAX_IN_FLIGHT,
            "calls",
        )?;
        set(
            "rate",
            input.rate,
            &mut limits.rate,
            0,
            MAX_RATE,
            "calls per second",
        )?;
        set(
            "burst",
            input.burst,
            &mut limits.burst,
            1,
            MAX_BURST,
            "calls",
        )?;
        set(
            "max_queued",
            input.max_queued,
            &mut limits.max_queued,
            0,
            MAX_QUEUED,
            "calls",
        )?;
        Ok((limits != AppLimits::default()).then_some(limits))
    }

    /// The limits in force with these overrides over `defaults` (the
    /// server's settings, where `0` is also "no limit").
    pub fn resolve(this: Option<&AppLimits>, defaults: &AppLimits) -> Limits {
        let pick = |own: Option<u64>, default: Option<u64>| own.or(default).filter(|v| *v > 0);
        let own = this.cloned().unwrap_or_default();
        let rate = pick(own.rate, defaults.rate);
        Limits {
            max_in_flight: pick(own.max_in_flight, defaults.max_in_flight),
            rate: rate.map(|rate| {
                let burst = pick(own.burst, defaults.burst).unwrap_or(rate);
                (rate, burst)
            }),
            max_queued: pick(own.max_queued, defaults.max_queued),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn input(json: &str) -> LimitsInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_sets_keeps_and_removes() {
        let limits = AppLimits::merge(None, input(r#"{"rate": 50, "burst": 100}"#))
            .unwrap()
            .unwrap();
        assert_eq!(limits.rate, Some(50));
        assert_eq!(limits.burst, Some(100));
        let limits = AppLimits::merge(Some(limits), input(r#"{"max_queued": 0, "burst": null}"#))
            .unwrap()
            .unwrap();
        assert_eq!(
            limits,
            AppLimits {
                rate: Some(50),
                max_queued: Some(0),
                ..AppLimits::default()
            }
        );
        let gone = AppLimits::merge(Some(limits), input(r#"{"rate": null, "max_queued": null}"#));
        assert_eq!(gone, Ok(None));
        assert_eq!(AppLimits::merge(None, input("{}")), Ok(None));
    }

    #[test]
    fn bad_values_name_the_field() {
        for (json, field) in [
            (r#"{"rate": -1}"#, "limits.rate"),
            (r#"{"max_in_flight": 1000001}"#, "limits.max_in_flight"),
            (r#"{"burst": 0}"#, "limits.burst"),
            (r#"{"max_queued": -5}"#, "limits.max_queued"),
        ] {
            let err = AppLimits::merge(None, input(json)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest);
            assert!(err.message.contains(field), "{}", err.message);
        }
        assert!(serde_json::from_str::<LimitsInput>(r#"{"rates": 1}"#).is_err());
        assert!(serde_json::from_str::<LimitsInput>(r#"{"rate": 1.5}"#).is_err());
    }

    #[test]
    fn resolve_prefers_the_app_and_zero_is_no_limit() {
        let defaults = AppLimits {
            max_in_flight: Some(0),
            rate: Some(10),
            burst: None,
            max_queued: Some(10_000),
        };
        assert_eq!(
            AppLimits::resolve(None, &defaults),
            Limits {
                max_in_flight: None,
                rate: Some((10, 10)),
                max_queued: Some(10_000),
            }
        );
        let own = AppLimits {
            max_in_flight: Some(3),
            rate: Some(0),
            burst: Some(7),
            max_queued: Some(0),
        };
        assert_eq!(
            AppLimits::resolve(Some(&own), &defaults),
            Limits {
                max_in_flight: Some(3),
                rate: None,
                max_queued: None,
            }
        );
        let own = AppLimits {
            rate: Some(5),
            burst: Some(20),
            ..AppLimits::default()
        };
        assert_eq!(
            AppLimits::resolve(Some(&own), &defaults).rate,
            Some((5, 20))
        );
    }
}
