//! The Swarm services of `ferrite services`.

use serde_json::Value;

use super::{render, table, NONE};

/// `GET /v1/services`' services, one per line: where each route runs, how
/// many replicas it has and why.
pub fn services_table(services: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or(NONE).to_string();
    let mut table = table();
    table.set_header([
        "APP",
        "PATH",
        "SERVICE",
        "REPLICAS",
        "IN FLIGHT",
        "LAST SCALING",
    ]);
    for service in services {
        let scaling = &service["last_scaling"];
        table.add_row([
            text(&service["app"]),
            text(&service["path"]),
            text(&service["service"]),
            format!("{}/{}", service["running"], service["replicas"]),
            service["in_flight"].to_string(),
            match (
                service["error"].as_str(),
                service["update_failed"].as_str(),
                scaling["reason"].as_str(),
            ) {
                // The service could not be made: why, in place of scaling.
                (Some(error), _, _) => format!("error: {error}"),
                // Its last update failed: it runs its previous definition.
                (None, Some(why), _) => format!("update failed: {why}"),
                (None, None, Some(reason)) => format!(
                    "{} -> {}: {reason}",
                    text(&scaling["at"]),
                    scaling["replicas"]
                ),
                (None, None, None) => NONE.to_string(),
            },
        ]);
    }
    render(table)
}
