//! How client commands print: plain tables for people, and with `--json` the
//! server's objects as pretty JSON for scripts.
//!
//! Tables have no borders, only aligned columns, so they read the same in a
//! terminal and through `grep`, `awk` or `cut`.

use std::io::{ErrorKind, Write};

use anyhow::Context;
use comfy_table::{presets::NOTHING, Table};
use ferrite_model::{App, Call, Config, Headers, Millis, Route, RouteView, ServiceSpec};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The `--json` switch every client command takes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Print the server's JSON object(s) instead of a table or a message.
    #[arg(long)]
    pub json: bool,
}

/// Shown for a field that is not set.
const NONE: &str = "-";
/// Longest `K=V, ...` summary of a config in a list before it becomes a count.
const CONFIG_SUMMARY_CHARS: usize = 40;
/// Longest error in a list of calls; `ferrite calls inspect` shows all of it.
const ERROR_SUMMARY_CHARS: usize = 50;

/// Print `text` and a newline. A closed pipe (`ferrite ... | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e).context("cannot write the output"),
        _ => Ok(()),
    }
}

/// Print a JSON value as the server sent it, indented.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    print(&serde_json::to_string_pretty(value).context("cannot format the JSON output")?)
}

/// Read a server object as a model type, for a table.
pub fn parse<T: DeserializeOwned>(value: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(value)
        .with_context(|| format!("unexpected answer from the server: not {what}"))
}

/// One line per app: NAME and CONFIG.
pub fn apps_table(apps: &[App]) -> String {
    let mut table = table();
    table.set_header(["NAME", "CONFIG"]);
    for app in apps {
        table.add_row([app.name.clone(), config_summary(app.config.as_ref())]);
    }
    render(table)
}

/// Every field of one app, one per line.
pub fn app_details(app: &App) -> String {
    let mut table = table();
    table.add_row(["NAME", &app.name]);
    table.add_row(["CONFIG", &config_lines(app.config.as_ref())]);
    render(table)
}

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
    for (field, value) in [
        ("APP", route.app_name.clone()),
        ("PATH", route.path.clone()),
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
    ] {
        table.add_row([field.to_string(), value]);
    }
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
    for (field, value) in [
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
    ] {
        table.add_row([field.to_string(), value]);
    }
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
    for (field, value) in [
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
    ] {
        table.add_row([field.to_string(), value]);
    }
}

/// One line per call, in the order given (the server's: newest first).
pub fn calls_table(calls: &[Call]) -> String {
    let mut table = table();
    table.set_header([
        "ID", "PATH", "STATUS", "CREATED", "DURATION", "ATTEMPTS", "ERROR",
    ]);
    for call in calls {
        table.add_row([
            call.id.clone(),
            call.path.clone(),
            call.status.to_string(),
            to_the_second(call.created_at),
            duration(call),
            call.attempts.to_string(),
            call.error
                .as_deref()
                .map_or_else(|| NONE.to_string(), |e| one_line(e, ERROR_SUMMARY_CHARS)),
        ]);
    }
    render(table)
}

/// Every field of one call, one per line; times to the millisecond.
pub fn call_details(call: &Call) -> String {
    let time = |t: Option<Millis>| t.map_or_else(|| NONE.to_string(), |t| t.to_string());
    let mut table = table();
    for (field, value) in [
        ("ID", call.id.clone()),
        ("APP", call.app_name.clone()),
        ("PATH", call.path.clone()),
        ("TYPE", call.kind.to_string()),
        ("STATUS", call.status.to_string()),
        ("CREATED", call.created_at.to_string()),
        ("STARTED", time(call.started_at)),
        ("COMPLETED", time(call.completed_at)),
        ("DURATION", duration(call)),
        ("ATTEMPTS", call.attempts.to_string()),
        (
            "ERROR",
            call.error.clone().unwrap_or_else(|| NONE.to_string()),
        ),
    ] {
        table.add_row([field.to_string(), value]);
    }
    render(table)
}

/// `text` on one line, cut to at most `max_chars` characters and `...`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > max_chars {
        let cut: String = one_line.chars().take(max_chars).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

/// `2026-11-22T09:15:26Z`: enough to tell calls apart in a list.
fn to_the_second(time: Millis) -> String {
    let text = time.to_string();
    match text.get(..19) {
        Some(seconds) => format!("{seconds}Z"),
        None => text,
    }
}

/// How long the last attempt of a finished call ran; `-` until it has ended.
fn duration(call: &Call) -> String {
    let (Some(started), Some(completed)) = (call.started_at, call.completed_at) else {
        return NONE.to_string();
    };
    let ms = (completed.0 - started.0).max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1_000.0),
        _ => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
    }
}

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
            match scaling["reason"].as_str() {
                Some(reason) => format!(
                    "{} -> {}: {reason}",
                    text(&scaling["at"]),
                    scaling["replicas"]
                ),
                None => NONE.to_string(),
            },
        ]);
    }
    render(table)
}

fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table
}

/// Columns two spaces apart with no leading space, and no trailing spaces.
fn render(mut table: Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

fn config_summary(config: Option<&Config>) -> String {
    let Some(config) = config.filter(|c| !c.is_empty()) else {
        return NONE.to_string();
    };
    let joined = config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if joined.chars().count() <= CONFIG_SUMMARY_CHARS && !joined.contains('\n') {
        joined
    } else if config.len() == 1 {
        "1 key".to_string()
    } else {
        format!("{} keys", config.len())
    }
}

fn config_lines(config: Option<&Config>) -> String {
    match config.filter(|c| !c.is_empty()) {
        None => NONE.to_string(),
        Some(config) => config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn header_lines(headers: Option<&Headers>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_table_is_aligned_and_plain() {
        let apps = [
            App {
                name: "myapp".into(),
                config: None,
            },
            App {
                name: "b".into(),
                config: Some([("A".into(), "1".into()), ("B".into(), "2".into())].into()),
            },
            App {
                name: "c".into(),
                config: Some([("LONG".into(), "x".repeat(60))].into()),
            },
        ];
        assert_eq!(
            apps_table(&apps),
            "NAME   CONFIG\nmyapp  -\nb      A=1, B=2\nc      1 key"
        );
    }

    fn call(id: &str, started: Option<i64>, completed: Option<i64>, error: Option<&str>) -> Call {
        Call {
            id: id.into(),
            app_name: "myapp".into(),
            path: "/hello".into(),
            kind: ferrite_model::RouteType::Sync,
            status: ferrite_model::CallStatus::Success,
            created_at: Millis(1_700_000_000_123),
            started_at: started.map(Millis),
            completed_at: completed.map(Millis),
            error: error.map(str::to_string),
            attempts: u32::from(started.is_some()),
        }
    }

    #[test]
    fn calls_table_shows_durations_and_short_errors() {
        let calls = [
            call("a", Some(0), Some(250), None),
            call("b", Some(0), Some(1_250), Some("exit\ncode 3")),
            call("c", Some(0), Some(125_000), Some(&"x".repeat(80))),
            call("d", None, None, None),
        ];
        let table = calls_table(&calls);
        let rows: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["ID", "PATH", "STATUS", "CREATED", "DURATION", "ATTEMPTS", "ERROR"]
        );
        assert_eq!(
            rows[1],
            [
                "a",
                "/hello",
                "success",
                "2023-11-14T22:13:20Z",
                "250ms",
                "1",
                "-"
            ]
        );
        assert_eq!(rows[2][4..], ["1.2s", "1", "exit", "code", "3"]);
        assert_eq!(rows[3][4], "2m05s");
        assert_eq!(rows[3][6], format!("{}...", "x".repeat(50)));
        assert_eq!(rows[4][4..], ["-", "0", "-"]);
    }

    #[test]
    fn call_details_show_every_field() {
        let details = call_details(&call("b", Some(1_700_000_001_000), None, Some("boom")));
        let lines: Vec<&str> = details.lines().collect();
        assert_eq!(lines[0], "ID         b");
        assert!(
            lines.contains(&"CREATED    2023-11-14T22:13:20.123Z"),
            "{details}"
        );
        assert!(
            lines.contains(&"STARTED    2023-11-14T22:13:21.000Z"),
            "{details}"
        );
        assert!(lines.contains(&"COMPLETED  -"), "{details}");
        assert!(lines.contains(&"DURATION   -"), "{details}");
        assert!(lines.contains(&"ERROR      boom"), "{details}");
    }

    #[test]
    fn app_details_lists_config_lines() {
        let app = App {
            name: "b".into(),
            config: Some([("A".into(), "1".into()), ("B".into(), "2".into())].into()),
        };
        assert_eq!(app_details(&app), "NAME    b\nCONFIG  A=1\n        B=2");
    }
}
