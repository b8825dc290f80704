//! The `service` section of a route: run the function as a Docker Swarm
//! service that Ferrite places, scales and routes to, instead of containers
//! started per call or per node.
//!
//! This module owns the section's fields, their defaults and their rules, and
//! how a PATCH merges into them; `placement` holds the rules of its Swarm
//! placement constraints and labels. It runs nothing: the engine and the
//! autoscaler read [`ServiceSpec`] from [`Route::service`](crate::Route::service).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ApiError;

mod placement;

pub use placement::{
    constraint, label, MAX_CONSTRAINTS, MAX_CONSTRAINT_LEN, MAX_LABELS, MAX_LABEL_KEY_LEN,
    MAX_LABEL_VALUE_LEN, RESERVED_LABEL_PREFIXES,
};

/// Port the function's image serves HTTP on when the section does not say
/// (the usual port of HTTP images and of OpenFaaS' watchdog).
pub const DEFAULT_PORT: u16 = 8080;
/// Scale to zero is allowed unless asked otherwise: an idle route costs nothing.
pub const DEFAULT_MIN_REPLICAS: u32 = 0;
/// Default ceiling; raised to `min_replicas` when a creation asks for more.
pub const DEFAULT_MAX_REPLICAS: u32 = 10;
pub const DEFAULT_TARGET_CONCURRENCY: u32 = 10;
pub const DEFAULT_SCALE_TO_ZERO_AFTER_S: u64 = 300;

/// Most replicas of one route's service: far above what one route of these
/// clusters needs, low enough that a typo cannot ask Swarm for a million tasks.
pub const MAX_REPLICAS: u32 = 100;
/// Most in-flight requests per replica the autoscaler may aim at.
pub const MAX_TARGET_CONCURRENCY: u32 = 1000;
/// Longest idle time before scaling to zero: one day.
pub const MAX_SCALE_TO_ZERO_AFTER_S: u64 = 24 * 3600;
/// How a route runs as a Swarm service, as stored and as the API shows it.
///
/// Every field is always present in the JSON. Reading a stored section that
/// lacks a field (one written before the field existed) gives its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ServiceSpec {
    /// Port the function's tasks serve HTTP on; Ferrite proxies calls there.
    pub port: u16,
    /// Replicas kept even when idle; 0 lets the route scale to zero.
    pub min_replicas: u32,
    /// Most replicas the autoscaler may run (`>= max(1, min_replicas)`).
    pub max_replicas: u32,
    /// In-flight requests per replica the autoscaler aims at: replicas are
    /// added when the route's concurrency goes above this times the replicas.
    pub target_concurrency: u32,
    /// Seconds without a call before the service is scaled to zero. Only
    /// used when `min_replicas` is 0.
    pub scale_to_zero_after: u64,
    /// Swarm placement constraints (`node.role==worker`), all of which a
    /// node must meet to run a task.
    pub constraints: Vec<String>,
    /// Extra labels of the Swarm service, next to Ferrite's own.
    pub labels: BTreeMap<String, String>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            port: DEFAULT_PORT,
            min_replicas: DEFAULT_MIN_REPLICAS,
            max_replicas: DEFAULT_MAX_REPLICAS,
            target_concurrency: DEFAULT_TARGET_CONCURRENCY,
            scale_to_zero_after: DEFAULT_SCALE_TO_ZERO_AFTER_S,
            constraints: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// The `service` object of a route creation or PATCH. Every field is
/// optional: absent or `null` means "not given" (the default, or the current
/// value). Unlike the route's own numbers, 0 is a value here, not "not given":
/// no IronFunctions client sends this section, and `min_replicas: 0` means 0.
/// Numbers are signed so that a negative one gets a message about the rule.
///
/// Unknown fields are refused (unlike in the route itself, which ignores
/// them for IronFunctions' sake): this section is new, and a misspelt
/// `max_replica` silently left at its default would be worse than an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub port: Option<i64>,
    pub min_replicas: Option<i64>,
    pub max_replicas: Option<i64>,
    pub target_concurrency: Option<i64>,
    pub scale_to_zero_after: Option<i64>,
    /// Replaces the whole list when given (`[]` clears it).
    pub constraints: Option<Vec<String>>,
    /// Merged into the current labels: a key set to `""` is removed.
    pub labels: Option<BTreeMap<String, String>>,
}

/// A whole number in `min..=max`, named `route service.<field>` in the
/// message; `unit` (may be empty) follows the bounds.
fn number<T: TryFrom<i64>>(
    field: &str,
    value: i64,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<T, ApiError> {
    (min..=max)
        .contains(&value)
        .then(|| T::try_from(value).ok())
        .flatten()
        .ok_or_else(|| {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            ApiError::bad_request(format!(
                "route service.{field} must be between {min} and {max}{unit}, got {value}"
            ))
        })
}

fn replicas(field: &str, value: i64, min: i64) -> Result<u32, ApiError> {
    number(field, value, min, i64::from(MAX_REPLICAS), "replicas")
}

impl ServiceSpec {
    /// A new section from `input`, with defaults for what it does not give.
    /// `max_replicas` not given follows a larger `min_replicas`, so that
    /// `{"min_replicas": 20}` alone is valid.
    pub fn create(input: ServiceInput) -> Result<ServiceSpec, ApiError> {
        let mut spec = ServiceSpec::default();
        if input.max_replicas.is_none() {
            if let Some(min) = input
                .min_replicas
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| *m <= MAX_REPLICAS)
            {
                spec.max_replicas = spec.max_replicas.max(min);
            }
        }
        spec.apply(input)?;
        Ok(spec)
    }

    /// Merge `patch` into this section, field by field: numbers given
    /// replace, `constraints` given replace the list, `labels` are merged
    /// (`""` removes a key). Nothing changes when an error is returned.
    pub fn apply(&mut self, patch: ServiceInput) -> Result<(), ApiError> {
        let mut next = self.clone();
        if let Some(v) = patch.port {
            next.port = number("port", v, 1, i64::from(u16::MAX), "")?;
        }
        if let Some(v) = patch.min_replicas {
            next.min_replicas = replicas("min_replicas", v, 0)?;
        }
        if let Some(v) = patch.max_replicas {
            next.max_replicas = replicas("max_replicas", v, 1)?;
        }
        if let Some(v) = patch.target_concurrency {
            next.target_concurrency = number(
                "target_concurrency",
                v,
                1,
                i64::from(MAX_TARGET_CONCURRENCY),
                "requests per replica",
            )?;
        }
        if let Some(v) = patch.scale_to_zero_after {
            next.scale_to_zero_after = number(
                "scale_to_zero_after",
                v,
                1,
                i64::try_from(MAX_SCALE_TO_ZERO_AFTER_S).unwrap_or(i64::MAX),
                "seconds",
            )?;
        }
        if next.max_replicas < next.min_replicas {
            // Name the field the client gave: raising min_replicas alone
            // above the current max_replicas is the likely mistake of a PATCH.
            return Err(ApiError::bad_request(if patch.max_replicas.is_some() {
                format!(
                    "route service.max_replicas must be at least min_replicas ({}), got {}",
                    next.min_replicas, next.max_replicas
                )
            } else {
                format!(
                    "route service.min_replicas must be at most max_replicas ({}), got {}; \
                     give service.max_replicas too to raise both",
                    next.max_replicas, next.min_replicas
                )
            }));
        }
        if let Some(constraints) = patch.constraints {
            if constraints.len() > MAX_CONSTRAINTS {
                return Err(ApiError::bad_request(format!(
                    "route service.constraints may hold at most {MAX_CONSTRAINTS} constraints, got {}",
                    constraints.len()
                )));
            }
            constraints.iter().try_for_each(|c| constraint(c))?;
            next.constraints = constraints;
        }
        if let Some(labels) = patch.labels {
            for (key, value) in labels {
                label(&key, &value)?;
                if value.is_empty() {
                    next.labels.remove(&key);
                } else {
                    next.labels.insert(key, value);
                }
            }
            if next.labels.len() > MAX_LABELS {
                return Err(ApiError::bad_request(format!(
                    "route service.labels may hold at most {MAX_LABELS} labels, got {}",
                    next.labels.len()
                )));
            }
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::assert_refused;

    pub(super) fn input(json: &str) -> ServiceInput {
        serde_json::from_str(json).unwrap()
    }

    pub(super) fn create(json: &str) -> Result<ServiceSpec, ApiError> {
        ServiceSpec::create(input(json))
    }

    #[track_caller]
    pub(super) fn refused(json: &str, needle: &str) {
        assert_refused(create(json), needle);
    }

    #[test]
    fn empty_section_gives_defaults() {
        let spec = create("{}").unwrap();
        assert_eq!(spec, ServiceSpec::default());
        assert_eq!(spec.port, 8080);
        assert_eq!(spec.min_replicas, 0);
        assert_eq!(spec.max_replicas, 10);
        assert_eq!(spec.target_concurrency, 10);
        assert_eq!(spec.scale_to_zero_after, 300);
        assert!(spec.constraints.is_empty() && spec.labels.is_empty());
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"port":8080,"min_replicas":0,"max_replicas":10,
                "target_concurrency":10,"scale_to_zero_after":300,
                "constraints":[],"labels":{}})
        );
        assert_eq!(
            create(
                r#"{"port":null,"min_replicas":null,"max_replicas":null,"target_concurrency":null,
                "scale_to_zero_after":null,"constraints":null,"labels":null}"#
            )
            .unwrap(),
            ServiceSpec::default(),
            "null is not given"
        );
    }

    #[test]
    fn every_field_is_taken() {
        let spec = create(
            r#"{"port":9000,"min_replicas":2,"max_replicas":5,"target_concurrency":50,
                "scale_to_zero_after":60,"constraints":["node.role==worker","node.labels.zone != b"],
                "labels":{"team":"a","example.com/tier":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            ServiceSpec {
                port: 9000,
                min_replicas: 2,
                max_replicas: 5,
                target_concurrency: 50,
                scale_to_zero_after: 60,
                constraints: vec!["node.role==worker".into(), "node.labels.zone != b".into()],
                labels: [("example.com/tier", "x"), ("team", "a")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        );
        let back: ServiceSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bounds_are_inclusive() {
        for ok in [
            r#"{"port":1}"#,
            r#"{"port":65535}"#,
            r#"{"min_replicas":0}"#,
            r#"{"min_replicas":100}"#,
            r#"{"max_replicas":1}"#,
            r#"{"max_replicas":100}"#,
            r#"{"target_concurrency":1}"#,
            r#"{"target_concurrency":1000}"#,
            r#"{"scale_to_zero_after":1}"#,
            r#"{"scale_to_zero_after":86400}"#,
        ] {
            assert!(create(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn numbers_out_of_range_name_the_rule() {
        for (json, needle) in [
            (r#"{"port":0}"#, "service.port must be between 1 and 65535"),
            (
                r#"{"port":65536}"#,
                "service.port must be between 1 and 65535",
            ),
            (
                r#"{"port":-80}"#,
                "route service.port must be between 1 and 65535, got -80",
            ),
            (
                r#"{"min_replicas":-1}"#,
                "service.min_replicas must be between 0 and 100 replicas, got -1",
            ),
            (r#"{"min_replicas":101}"#, "service.min_replicas"),
            (
                r#"{"max_replicas":0}"#,
                "service.max_replicas must be between 1 and 100 replicas, got 0",
            ),
            (r#"{"max_replicas":-3}"#, "service.max_replicas"),
            (
                r#"{"max_replicas":9223372036854775807}"#,
                "service.max_replicas",
            ),
            (
                r#"{"target_concurrency":0}"#,
                "service.target_concurrency must be between 1 and 1000",
            ),
            (r#"{"target_concurrency":-1}"#, "service.target_concurrency"),
            (
                r#"{"target_concurrency":1001}"#,
                "service.target_concurrency",
            ),
            (
                r#"{"scale_to_zero_after":0}"#,
                "service.scale_to_zero_after must be between 1 and 86400 seconds",
            ),
            (
                r#"{"scale_to_zero_after":-300}"#,
                "service.scale_to_zero_after",
            ),
            (
                r#"{"scale_to_zero_after":86401}"#,
                "service.scale_to_zero_after",
            ),
        ] {
            refused(json, needle);
        }
    }

    #[test]
    fn max_must_cover_min() {
        refused(
            r#"{"min_replicas":3,"max_replicas":2}"#,
            "route service.max_replicas must be at least min_replicas (3), got 2",
        );
        assert!(create(r#"{"min_replicas":3,"max_replicas":3}"#).is_ok());
        // Not given, the default ceiling follows a larger floor.
        let spec = create(r#"{"min_replicas":20}"#).unwrap();
        assert_eq!((spec.min_replicas, spec.max_replicas), (20, 20));
        let spec = create(r#"{"min_replicas":4}"#).unwrap();
        assert_eq!((spec.min_replicas, spec.max_replicas), (4, 10));
        // A floor out of range is refused for itself, not for the ceiling.
        refused(
            r#"{"min_replicas":500}"#,
            "service.min_replicas must be between",
        );
    }

    #[test]
    fn patch_merges_field_by_field() {
        let mut spec = create(
            r#"{"port":9000,"min_replicas":1,"constraints":["node.role==worker"],
                "labels":{"a":"1","b":"2"}}"#,
        )
        .unwrap();
        spec.apply(input(r#"{"max_replicas":4,"labels":{"a":"","c":"3"}}"#))
            .unwrap();
        assert_eq!(spec.port, 9000, "not given, kept");
        assert_eq!((spec.min_replicas, spec.max_replicas), (1, 4));
        assert_eq!(spec.constraints, ["node.role==worker"]);
        assert_eq!(spec.labels.keys().collect::<Vec<_>>(), ["b", "c"]);
        spec.apply(input(
            r#"{"constraints":["node.hostname!=x","node.role==manager"]}"#,
        ))
        .unwrap();
        assert_eq!(
            spec.constraints,
            ["node.hostname!=x", "node.role==manager"],
            "replaced"
        );
        spec.apply(input(r#"{"constraints":[]}"#)).unwrap();
        assert!(spec.constraints.is_empty(), "[] clears");
        spec.apply(input(r#"{"min_replicas":0}"#)).unwrap();
        assert_eq!(spec.min_replicas, 0, "an explicit 0 is a value");
        spec.apply(input("{}")).unwrap();
        assert_eq!(spec.max_replicas, 4);
    }

    #[test]
    fn patch_checks_min_against_the_current_max() {
        let mut spec = create(r#"{"max_replicas":5}"#).unwrap();
        let before = spec.clone();
        let err = spec.apply(input(r#"{"min_replicas":8}"#)).unwrap_err();
        assert_eq!(
            err.message,
            "route service.min_replicas must be at most max_replicas (5), got 8; \
             give service.max_replicas too to raise both"
        );
        let err = spec.apply(input(r#"{"max_replicas":0}"#)).unwrap_err();
        assert!(
            err.message.contains("service.max_replicas"),
            "{}",
            err.message
        );
        assert_eq!(spec, before);
        spec.apply(input(r#"{"min_replicas":8,"max_replicas":8}"#))
            .unwrap();
        let err = spec.apply(input(r#"{"max_replicas":7}"#)).unwrap_err();
        assert_eq!(
            err.message,
            "route service.max_replicas must be at least min_replicas (8), got 7"
        );
    }

    #[test]
    fn patch_is_all_or_nothing() {
        let mut spec = create(r#"{"labels":{"a":"1"}}"#).unwrap();
        let before = spec.clone();
        for bad in [
            r#"{"port":7000,"target_concurrency":0}"#,
            r#"{"labels":{"b":"2","org.ferrite.x":"y"}}"#,
            r#"{"port":7000,"constraints":["nope"]}"#,
        ] {
            assert!(spec.apply(input(bad)).is_err(), "{bad}");
            assert_eq!(spec, before, "{bad}");
        }
    }

    #[test]
    fn unknown_and_mistyped_fields_are_refused() {
        let err = serde_json::from_str::<ServiceInput>(r#"{"max_replica":3}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_replica`"),
            "{err}"
        );
        assert!(serde_json::from_str::<ServiceInput>(r#"{"port":"80"}"#).is_err());
        assert!(serde_json::from_str::<ServiceInput>(r#"{"constraints":"a==b"}"#).is_err());
        assert!(serde_json::from_str::<ServiceInput>(r#"{"labels":{"a":1}}"#).is_err());
    }

    #[test]
    fn stored_sections_missing_fields_get_defaults() {
        let spec: ServiceSpec = serde_json::from_str(r#"{"port":9000}"#).unwrap();
        assert_eq!(
            spec,
            ServiceSpec {
                port: 9000,
                ..ServiceSpec::default()
            }
        );
    }
}
