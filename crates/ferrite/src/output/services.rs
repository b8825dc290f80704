//! The Swarm services of `ferrite services`.

use serde_json::Value;

use super::{render, table, NONE};

/// `GET /v1/services`' services, one per line: where each route runs, how
/// many replicas it has, who decides them and why.
pub fn services_table(services: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or(NONE).to_string();
    let mut table = table();
    table.set_header([
        "APP",
        "PATH",
        "SERVICE",
        "REPLICAS",
        "IN FLIGHT",
        "SCALED BY",
        "LAST SCALING",
    ]);
    for service in services {
        let scaling = &service["last_scaling"];
        let shared = &service["shared"];
        let missing: Vec<&str> = service["missing_image_on"]
            .as_array()
            .map(|nodes| nodes.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        table.add_row([
            text(&service["app"]),
            text(&service["path"]),
            text(&service["service"]),
            format!("{}/{}", service["running"], service["replicas"]),
            in_flight(service),
            // Nodes sharing the load leave the decision to the lease's
            // holder: say which node that is.
            match (shared.is_object(), shared["deciding"].as_bool()) {
                (false, _) | (true, Some(true)) => "this node".to_string(),
                (true, _) => shared["holder"]
                    .as_str()
                    .map_or_else(|| "nobody yet".to_string(), str::to_string),
            },
            match (
                service["error"].as_str(),
                service["update_failed"].as_str(),
                scaling["reason"].as_str(),
            ) {
                // The service could not be made: why, in place of scaling.
                (Some(error), _, _) => format!("error: {error}"),
                // Its last update failed: it runs its previous definition.
                (None, Some(why), _) => format!("update failed: {why}"),
                // Its tasks cannot start on some nodes: which.
                _ if !missing.is_empty() => format!("image missing on {}", missing.join(", ")),
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

/// This node's calls in flight, and the total over the nodes when they
/// share the load (what the decision is made from).
fn in_flight(service: &Value) -> String {
    let here = service["in_flight"].to_string();
    match service["shared"]["total_concurrency"].as_f64() {
        Some(total) => format!(
            "{here} (all {} nodes: {total:.1})",
            service["shared"]["nodes"]
        ),
        None => here,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "app": "shop", "path": "/pay", "service": "ferrite-shop-pay",
            "running": 2, "replicas": 3, "in_flight": 4,
            "last_scaling": {"at": "2026-12-04T10:00:00Z", "replicas": 3, "reason": "load 5.1"},
        })
    }

    #[test]
    fn a_node_deciding_alone_scales_its_services_itself() {
        let out = services_table(&[base()]);
        assert!(out.contains("2/3"), "{out}");
        assert!(out.contains("this node"), "{out}");
        assert!(out.contains("-> 3: load 5.1"), "{out}");
        assert!(!out.contains("all"), "{out}");
    }

    #[test]
    fn a_shared_service_names_the_holder_and_the_total() {
        let mut service = base();
        service["shared"] = json!({
            "holder": "node-b", "deciding": false,
            "node_concurrency": 3.5, "total_concurrency": 7.25, "nodes": 2,
        });
        let out = services_table(&[service.clone()]);
        assert!(out.contains("4 (all 2 nodes: 7.2)"), "{out}");
        assert!(out.contains("node-b"), "{out}");
        service["shared"]["holder"] = Value::Null;
        assert!(services_table(&[service]).contains("nobody yet"));
    }

    #[test]
    fn missing_images_come_before_the_last_scaling() {
        let mut service = base();
        service["missing_image_on"] = json!(["worker-1", "worker-2"]);
        let out = services_table(&[service.clone()]);
        assert!(out.contains("image missing on worker-1, worker-2"), "{out}");
        service["error"] = json!("no such image");
        assert!(services_table(&[service]).contains("error: no such image"));
    }
}
