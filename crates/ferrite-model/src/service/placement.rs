//! Where a service's tasks may run and how they are labelled: the rules of
//! Swarm placement constraints and of the service's extra labels, checked
//! here so that Swarm never receives what it would refuse or ignore.

use crate::ApiError;

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
    use std::collections::BTreeMap;

    use super::super::tests::{create, input, refused};
    use super::*;
    use crate::service::{ServiceInput, ServiceSpec};

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
}
