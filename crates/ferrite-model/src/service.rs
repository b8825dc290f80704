//! The `service` section of a route: run the function as a Docker Swarm
//! service that Ferrite places, scales and routes to, instead of containers
//! started per call or per node.
//!
//! This module owns the section's fields, their defaults and their rules, and
//! how a PATCH merges into them. It runs nothing: the engine and the
//! autoscaler read [`ServiceSpec`] from [`Route::service`](crate::Route::service).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ApiError;

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
/// Most placement constraints, and the longest one.
pub const MAX_CONSTRAINTS: usize = 20;
pub const MAX_CONSTRAINT_LEN: usize = 256;
/// Most extra labels, and the longest key and value (Swarm keeps labels in
/// its Raft store, replicated to every manager: they are kept small).
pub const MAX_LABELS: usize = 50;
pub const MAX_LABEL_KEY_LEN: usize = 128;
pub const MAX_LABEL_VALUE_LEN: usize = 1024;

/// Label key prefixes a route may not set: Ferrite's own (it finds the
/// services it owns by them, so a user label must not forge or hide them)
/// and the namespaces Docker reserves for itself. Compared without case.
pub const RESERVED_LABEL_PREFIXES: [&str; 4] = [
    "org.ferrite.",
    "com.docker.",
    "io.docker.",
    "org.dockerproject.",
];

/// Constraint keys Swarm knows (`node.labels.<name>` and
/// `engine.labels.<name>` aside). Swarm accepts any key when the service is
/// created and then never places a task whose constraint names an unknown
/// one, so a typo is refused here instead of leaving the route without replicas.
const CONSTRAINT_KEYS: [&str; 6] = [
    "node.id",
    "node.hostname",
    "node.ip",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
];
const CONSTRAINT_LABEL_PREFIXES: [&str; 2] = ["node.labels.", "engine.labels."];

/// How a route runs as a Swarm service, as stored and as the API shows it.
///
/// Every field is always present in the JSON. Reading a stored section that
/// lacks a field (one written before the field existed) gives its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A placement constraint as Swarm parses it: `key==value` or `key!=value`
/// (spaces around the operator allowed), a key Swarm knows, and a value of
/// the characters Swarm accepts (which exclude operators, so a second `==`
/// is refused).
pub fn constraint(text: &str) -> Result<(), ApiError> {
    let bad = |why: String| {
        Err(ApiError::bad_request(format!(
            "route service.constraints entry {text:?} {why}"
        )))
    };
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "route service.constraints entries must not be empty; write them as \
             key==value or key!=value, as in node.role==worker",
        ));
    }
    if text.len() > MAX_CONSTRAINT_LEN {
        return bad(format!("is longer than {MAX_CONSTRAINT_LEN} characters"));
    }
    // Swarm looks for `==` first, then `!=`; the same order gives the same split.
    let Some((key, value)) = text.split_once("==").or_else(|| text.split_once("!=")) else {
        return bad(
            "has no operator: write key==value or key!=value, as in node.role==worker".into(),
        );
    };
    let (key, value) = (key.trim(), value.trim());
    let lower = key.to_ascii_lowercase();
    let known = CONSTRAINT_KEYS.contains(&lower.as_str())
        || CONSTRAINT_LABEL_PREFIXES.iter().any(|prefix| {
            lower.strip_prefix(prefix).is_some_and(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            })
        });
    if !known {
        return bad(format!(
            "has an unknown key {key:?}: use one of {}, node.labels.<name> or engine.labels.<name>",
            CONSTRAINT_KEYS.join(", ")
        ));
    }
    let value_char = |c: char| c.is_ascii_alphanumeric() || ":-_ .*()?+[]\\^$|/".contains(c);
    if value.is_empty() || !value.chars().all(value_char) {
        return bad(
            "has an invalid value: letters, digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | / \
             are accepted, and it must not be empty"
                .into(),
        );
    }
    Ok(())
}

/// A service label: a key of `[A-Za-z0-9._/-]` starting with a letter or a
/// digit, outside the reserved prefixes, and a value without control
/// characters. An empty value is allowed here (it means "remove").
pub fn label(key: &str, value: &str) -> Result<(), ApiError> {
    let key_ok = !key.is_empty()
        && key.len() <= MAX_LABEL_KEY_LEN
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !key_ok {
        return Err(ApiError::bad_request(format!(
            "route service.labels key {key:?} is not valid: 1 to {MAX_LABEL_KEY_LEN} letters, \
             digits, '.', '_', '-' or '/', starting with a letter or a digit"
        )));
    }
    let lower = key.to_ascii_lowercase();
    if let Some(prefix) = RESERVED_LABEL_PREFIXES
        .iter()
        .find(|p| lower.starts_with(*p))
    {
        return Err(ApiError::bad_request(format!(
            "route service.labels key {key:?} is reserved: keys starting with {prefix:?} \
             belong to {}",
            if *prefix == "org.ferrite." {
                "Ferrite"
            } else {
                "Docker"
            }
        )));
    }
    if value.len() > MAX_LABEL_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "route service.labels value of {key:?} is not valid: at most {MAX_LABEL_VALUE_LEN} \
             bytes, without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn input(json: &str) -> ServiceInput {
        serde_json::from_str(json).unwrap()
    }

    fn create(json: &str) -> Result<ServiceSpec, ApiError> {
        ServiceSpec::create(input(json))
    }

    #[track_caller]
    fn refused(json: &str, needle: &str) {
        let err = create(json).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(err.message.contains(needle), "{json}: {}", err.message);
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
    fn constraints() {
        for ok in [
            "node.role==worker",
            "node.role == manager",
            "node.hostname!=box-1",
            "NODE.ROLE==worker",
            "node.labels.zone==eu-west",
            "engine.labels.storage != ssd",
            "node.platform.os==linux",
            "node.platform.arch==x86_64",
            "node.id==abc123",
            "node.ip!=10.0.0.0/8",
        ] {
            assert!(constraint(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("node.role=worker", "has no operator"),
            ("node.role", "has no operator"),
            ("node.role>=worker", "has no operator"),
            ("==worker", "unknown key"),
            ("role==worker", "unknown key"),
            ("node.rol==worker", "unknown key"),
            ("node.labels.==x", "unknown key"),
            ("node.labels.a b==x", "unknown key"),
            ("node.role==", "invalid value"),
            ("node.role==a==b", "invalid value"),
            ("node.role!=a!=b", "invalid value"),
            ("node.role==a\nb", "invalid value"),
            ("node.role==\"worker\"", "invalid value"),
        ] {
            let err = constraint(bad).unwrap_err();
            assert!(err.message.contains(needle), "{bad:?}: {}", err.message);
            assert!(
                err.message.starts_with("route service.constraints"),
                "{}",
                err.message
            );
        }
        let long = format!("node.labels.x=={}", "a".repeat(MAX_CONSTRAINT_LEN));
        assert!(constraint(&long)
            .unwrap_err()
            .message
            .contains("longer than"));

        let twenty: Vec<String> = (0..20).map(|i| format!("node.labels.k{i}==v")).collect();
        let json = serde_json::json!({ "constraints": twenty }).to_string();
        assert_eq!(create(&json).unwrap().constraints.len(), 20);
        let many: Vec<String> = (0..21).map(|i| format!("node.labels.k{i}==v")).collect();
        let json = serde_json::json!({ "constraints": many }).to_string();
        refused(&json, "at most 20 constraints, got 21");
        refused(
            r#"{"constraints":["node.role==worker","bogus"]}"#,
            "\"bogus\"",
        );
    }

    #[test]
    fn labels() {
        for (key, value) in [
            ("team", "a"),
            ("com.example.team", "a b/c"),
            ("example.com/tier", ""),
            ("9lives", "x"),
            ("org.ferrite", "not the reserved prefix itself"),
        ] {
            assert!(label(key, value).is_ok(), "{key}={value}");
        }
        for (key, value, needle) in [
            ("org.ferrite.app", "x", "reserved"),
            ("ORG.Ferrite.managed", "x", "reserved"),
            ("com.docker.stack.namespace", "x", "reserved"),
            ("io.docker.x", "x", "reserved"),
            ("org.dockerproject.x", "x", "reserved"),
            ("", "x", "not valid"),
            (".team", "x", "not valid"),
            ("a b", "x", "not valid"),
            ("a=b", "x", "not valid"),
            ("é", "x", "not valid"),
            ("team", "a\nb", "value of \"team\""),
            ("team", "a\0b", "value of \"team\""),
        ] {
            let err = label(key, value).unwrap_err();
            assert!(err.message.contains(needle), "{key:?}: {}", err.message);
            assert!(
                err.message.starts_with("route service.labels"),
                "{}",
                err.message
            );
        }
        assert!(label(&"k".repeat(MAX_LABEL_KEY_LEN), "v").is_ok());
        assert!(label(&"k".repeat(MAX_LABEL_KEY_LEN + 1), "v").is_err());
        assert!(label("k", &"v".repeat(MAX_LABEL_VALUE_LEN)).is_ok());
        assert!(label("k", &"v".repeat(MAX_LABEL_VALUE_LEN + 1)).is_err());
        refused(r#"{"labels":{"org.ferrite.route":"/x"}}"#, "reserved");

        let fifty: BTreeMap<String, String> = (0..50)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let mut spec = ServiceSpec::create(ServiceInput {
            labels: Some(fifty),
            ..ServiceInput::default()
        })
        .unwrap();
        assert_eq!(spec.labels.len(), 50);
        let before = spec.clone();
        let err = spec
            .apply(input(r#"{"labels":{"one-more":"v"}}"#))
            .unwrap_err();
        assert!(
            err.message.contains("at most 50 labels, got 51"),
            "{}",
            err.message
        );
        assert_eq!(spec, before);
        // Removing one makes room for another in the same PATCH.
        spec.apply(input(r#"{"labels":{"k0":"","one-more":"v"}}"#))
            .unwrap();
        assert_eq!(spec.labels.len(), 50);
        // An empty value at creation stores nothing.
        assert!(create(r#"{"labels":{"a":""}}"#).unwrap().labels.is_empty());
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
