//! A route's versions as a list, one in detail, two compared, and which
//! serve its calls.

use ferrite_model::{FieldDiff, RouteVersion, TrafficEntry};
use serde::Deserialize;

use super::routes::header_lines;
use super::{add_rows, config_lines, render, table};

/// The answer of `GET /v1/apps/{app}/versions`, as the CLI reads it.
#[derive(Debug, Deserialize)]
pub struct VersionList {
    pub newest: u32,
    pub serving: Vec<TrafficEntry>,
    pub versions: Vec<RouteVersion>,
}

/// The answer of a comparison of two versions, as the CLI reads it.
#[derive(Debug, Deserialize)]
pub struct VersionDiff {
    pub from: u32,
    pub to: u32,
    pub changes: Vec<FieldDiff>,
}

/// Which versions serve, in one line: `3 (90%), 4 (10%), 4 if X-Canary: 1`.
pub fn serving_line(serving: &[TrafficEntry]) -> String {
    serving
        .iter()
        .map(|e| match (&e.weight, &e.header) {
            (_, Some(rule)) => format!("{} if {}: {}", e.version, rule.name, rule.value),
            (Some(weight), None) => format!("{} ({weight}%)", e.version),
            (None, None) => e.version.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per version, newest first, with the share each serves.
pub fn versions_table(list: &VersionList) -> String {
    let mut table = table();
    table.set_header(["VERSION", "CREATED", "IMAGE", "MEMORY", "SERVES"]);
    for v in &list.versions {
        let serves: Vec<String> = list
            .serving
            .iter()
            .filter(|e| e.version == v.version)
            .map(|e| match (&e.weight, &e.header) {
                (_, Some(rule)) => format!("if {}: {}", rule.name, rule.value),
                (Some(weight), None) => format!("{weight}%"),
                (None, None) => String::new(),
            })
            .collect();
        table.add_row([
            v.version.to_string(),
            v.created_at.to_string(),
            v.definition.image.clone(),
            format!("{} MiB", v.definition.memory),
            if serves.is_empty() {
                "-".to_string()
            } else {
                serves.join(", ")
            },
        ]);
    }
    render(table)
}

/// Every field of one version, one per line.
pub fn version_details(v: &RouteVersion) -> String {
    let d = &v.definition;
    let mut table = table();
    add_rows(
        &mut table,
        [
            ("APP", v.app_name.clone()),
            ("PATH", v.path.clone()),
            ("VERSION", v.version.to_string()),
            ("CREATED", v.created_at.to_string()),
            ("IMAGE", d.image.clone()),
            ("TYPE", d.kind.to_string()),
            ("FORMAT", d.format.to_string()),
            ("MEMORY", format!("{} MiB", d.memory)),
            ("TIMEOUT", format!("{}s", d.timeout)),
            ("IDLE TIMEOUT", format!("{}s", d.idle_timeout)),
            ("MAX CONCURRENCY", d.max_concurrency.to_string()),
            ("MAX RETRIES", d.max_retries.to_string()),
            ("HEADERS", header_lines(d.headers.as_ref())),
            ("CONFIG", config_lines(d.config.as_ref())),
        ],
    );
    render(table)
}

/// One line per field that differs, with its value in each version.
pub fn version_diff(diff: &VersionDiff) -> String {
    if diff.changes.is_empty() {
        return format!("Versions {} and {} are the same", diff.from, diff.to);
    }
    let mut table = table();
    table.set_header([
        "FIELD".to_string(),
        format!("VERSION {}", diff.from),
        format!("VERSION {}", diff.to),
    ]);
    for change in &diff.changes {
        table.add_row([
            change.field.clone(),
            change.from.to_string(),
            change.to.to_string(),
        ]);
    }
    render(table)
}
