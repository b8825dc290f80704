//! Routes as a list and one route in detail, with the service and
//! confinement its containers get.

use comfy_table::Table;
use ferrite_model::{Headers, Route, RouteView, ServiceSpec};

use super::{add_rows, config_lines, render, table, NONE};

/// One line per route.
pub fn routes_table(routes: &[Route]) -> String {
    let mut table = table();
    table.set_header(["PATH", "IMAGE", "TYPE", "FORMAT", "MEMORY", "TIMEOUT"]);
    for route in routes {
        table.add_row([
            route.path.clone(),
            route.image.clone(),
            route.kind.to_string(),
            route.format.to_string(),
            format!("{} MiB", route.memory),
            format!("{}s", route.timeout),
        ]);
    }
    render(table)
}

/// Every field of one route, one per line. The server never shows a
/// route's JWT key, only whether it has one.
pub fn route_details(shown: &RouteView) -> String {
    let route = &shown.route;
    let mut table = table();
    add_rows(
        &mut table,
        [
            ("APP", route.app_name.clone()),
            ("PATH", route.path.clone()),
            ("VERSION", route.version.to_string()),
            ("SERVING", super::serving_line(&shown.serving)),
            ("IMAGE", route.image.clone()),
            ("TYPE", route.kind.to_string()),
            ("FORMAT", route.format.to_string()),
            ("MEMORY", format!("{} MiB", route.memory)),
            ("TIMEOUT", format!("{}s", route.timeout)),
            ("IDLE TIMEOUT", format!("{}s", route.idle_timeout)),
            ("MAX CONCURRENCY", route.max_concurrency.to_string()),
            ("MAX RETRIES", route.max_retries.to_string()),
            ("HEADERS", header_lines(route.headers.as_ref())),
            ("CONFIG", config_lines(route.config.as_ref())),
            (
                "JWT KEY",
                if shown.has_jwt_key() { "set" } else { NONE }.to_string(),
            ),
        ],
    );
    service_rows(&mut table, route.service.as_ref());
    confinement_rows(&mut table, route);
    render(table)
}

/// What the route's containers get: its confinement section resolved
/// against the defaults, so a route without one shows them too.
fn confinement_rows(table: &mut Table, route: &Route) {
    let c = route.confinement();
    let root = if c.read_only {
        format!("read-only, /tmp writable ({} MiB)", c.tmp_size_mib)
    } else {
        "writable".to_string()
    };
    let cpu = match c.cpus {
        Some(cpus) => format!("weight {}, at most {cpus} CPUs", c.cpu_weight),
        None => format!("weight {} (from memory)", c.cpu_weight),
    };
    add_rows(
        table,
        [
            ("ROOT FILESYSTEM", root),
            (
                "NETWORK",
                if c.network_none { "none" } else { "default" }.to_string(),
            ),
            (
                "CAPABILITIES",
                if c.cap_add.is_empty() {
                    NONE.to_string()
                } else {
                    c.cap_add.join(", ")
                },
            ),
            ("PIDS LIMIT", c.pids_limit.to_string()),
            ("OPEN FILES", c.nofile.to_string()),
            ("CPU", cpu),
        ],
    );
}

/// The service section of a route: one `SERVICE  -` row when it has none,
/// else one row per setting.
fn service_rows(table: &mut Table, service: Option<&ServiceSpec>) {
    let Some(service) = service else {
        table.add_row(["SERVICE", NONE]);
        return;
    };
    let lines = |items: Vec<String>| {
        if items.is_empty() {
            NONE.to_string()
        } else {
            items.join("\n")
        }
    };
    let scale_to_zero = if service.min_replicas == 0 {
        format!("after {}s idle", service.scale_to_zero_after)
    } else {
        format!("no (min replicas {})", service.min_replicas)
    };
    add_rows(
        table,
        [
            ("SERVICE", format!("swarm, port {}", service.port)),
            (
                "REPLICAS",
                format!("{} to {}", service.min_replicas, service.max_replicas),
            ),
            (
                "TARGET CONCURRENCY",
                format!("{} per replica", service.target_concurrency),
            ),
            ("SCALE TO ZERO", scale_to_zero),
            ("CONSTRAINTS", lines(service.constraints.clone())),
            (
                "SERVICE LABELS",
                lines(
                    service
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                ),
            ),
        ],
    );
}

pub(super) fn header_lines(headers: Option<&Headers>) -> String {
    let lines: Vec<String> = headers
        .into_iter()
        .flatten()
        .flat_map(|(name, values)| values.iter().map(move |v| format!("{name}: {v}")))
        .collect();
    if lines.is_empty() {
        NONE.to_string()
    } else {
        lines.join("\n")
    }
}
