//! The `--service*`, replica, scaling and placement flags of `ferrite routes
//! create|update`: a route's `service` section.

use clap::Args;
use serde_json::{json, Value};

use crate::commands::args::{given_fields, parse_pairs, parse_seconds};

/// The ids of the `--service*` flags, which `--no-service` excludes.
pub(super) const SERVICE_FLAGS: [&str; 8] = [
    "service",
    "service_port",
    "min_replicas",
    "max_replicas",
    "target_concurrency",
    "scale_to_zero_after",
    "constraints",
    "service_labels",
];

/// The route's `service` section (docs/services.md). Any of these flags
/// implies `--service`; in an update, the ones given are merged into the
/// current section (created with the server's defaults when missing).
#[derive(Debug, Args)]
pub struct ServiceFields {
    /// Run the route as a Docker Swarm service that Ferrite scales (the
    /// server's defaults for what is not given). Sync routes only.
    #[arg(long)]
    service: bool,
    /// Port the service's tasks serve HTTP on [server default: 8080].
    #[arg(long, value_name = "PORT")]
    service_port: Option<u64>,
    /// Replicas kept when idle; 0 lets the service scale to zero [server default: 0].
    #[arg(long, value_name = "N")]
    min_replicas: Option<u64>,
    /// Most replicas the autoscaler may run (at most 100) [server default: 10,
    /// or --min-replicas when larger].
    #[arg(long, value_name = "N")]
    max_replicas: Option<u64>,
    /// In-flight requests per replica the autoscaler aims at [server default: 10].
    #[arg(long, value_name = "N")]
    target_concurrency: Option<u64>,
    /// Idle time before scaling to zero, as seconds or as 90s, 5m, 1h
    /// (used when --min-replicas is 0) [server default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    scale_to_zero_after: Option<u64>,
    /// Swarm placement constraint, as node.role==worker or
    /// node.labels.zone!=b (repeatable; in an update, the constraints given
    /// replace the current ones, and `--constraint ''` clears them).
    #[arg(long = "constraint", value_name = "EXPR")]
    constraints: Vec<String>,
    /// Label of the Swarm service (repeatable; in an update, `KEY=` removes it).
    #[arg(long = "service-label", value_name = "KEY=VALUE")]
    service_labels: Vec<String>,
}

impl ServiceFields {
    /// The `service` object the flags ask for, `None` when no service flag
    /// was given. Empty `--constraint` values are dropped, so that
    /// `--constraint ''` alone sends an empty list.
    pub(super) fn into_json(self) -> anyhow::Result<Option<Value>> {
        let given = self.service
            || self.service_port.is_some()
            || self.min_replicas.is_some()
            || self.max_replicas.is_some()
            || self.target_concurrency.is_some()
            || self.scale_to_zero_after.is_some()
            || !self.constraints.is_empty()
            || !self.service_labels.is_empty();
        if !given {
            return Ok(None);
        }
        let mut service = given_fields([
            ("port", self.service_port.map(Value::from)),
            ("min_replicas", self.min_replicas.map(Value::from)),
            ("max_replicas", self.max_replicas.map(Value::from)),
            (
                "target_concurrency",
                self.target_concurrency.map(Value::from),
            ),
            (
                "scale_to_zero_after",
                self.scale_to_zero_after.map(Value::from),
            ),
        ]);
        if !self.constraints.is_empty() {
            let constraints: Vec<&String> =
                self.constraints.iter().filter(|c| !c.is_empty()).collect();
            service.insert("constraints".into(), json!(constraints));
        }
        if !self.service_labels.is_empty() {
            service.insert(
                "labels".into(),
                json!(parse_pairs("--service-label", &self.service_labels)?),
            );
        }
        Ok(Some(Value::Object(service)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_json(args: &[&str]) -> Option<Value> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            service: ServiceFields,
        }
        let cli = Cli::try_parse_from([&["ferrite"], args].concat()).unwrap();
        cli.service.into_json().unwrap()
    }

    #[test]
    fn service_flags() {
        assert_eq!(service_json(&[]), None);
        assert_eq!(service_json(&["--service"]), Some(json!({})));
        assert_eq!(
            service_json(&["--min-replicas", "0"]),
            Some(json!({"min_replicas": 0})),
            "any service flag implies --service"
        );
        assert_eq!(
            service_json(&[
                "--service-port",
                "9000",
                "--max-replicas",
                "4",
                "--target-concurrency",
                "20",
                "--scale-to-zero-after",
                "2m",
                "--constraint",
                "node.role==worker",
                "--constraint",
                "node.labels.zone!=b",
                "--service-label",
                "team=a",
                "--service-label",
                "old=",
            ]),
            Some(json!({
                "port": 9000, "max_replicas": 4, "target_concurrency": 20,
                "scale_to_zero_after": 120,
                "constraints": ["node.role==worker", "node.labels.zone!=b"],
                "labels": {"team": "a", "old": ""},
            }))
        );
        assert_eq!(
            service_json(&["--constraint", ""]),
            Some(json!({"constraints": []})),
            "--constraint '' clears"
        );
    }
}
