//! Calls as a list and one call in detail.

use ferrite_model::{Call, Millis};

use super::{add_rows, one_line, render, table, NONE};

/// Longest error in a list of calls; `ferrite calls inspect` shows all of it.
const ERROR_SUMMARY_CHARS: usize = 50;

/// One line per call, in the order given (the server's: newest first).
pub fn calls_table(calls: &[Call]) -> String {
    let mut table = table();
    table.set_header([
        "ID", "PATH", "VERSION", "STATUS", "CREATED", "DURATION", "ATTEMPTS", "ERROR",
    ]);
    for call in calls {
        table.add_row([
            call.id.clone(),
            call.path.clone(),
            version(call),
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
    add_rows(
        &mut table,
        [
            ("ID", call.id.clone()),
            ("APP", call.app_name.clone()),
            ("PATH", call.path.clone()),
            ("VERSION", version(call)),
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
        ],
    );
    render(table)
}

/// The version of its route that served the call; `-` before it ran.
fn version(call: &Call) -> String {
    call.version
        .map_or_else(|| NONE.to_string(), |v| v.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

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
            version: started.map(|_| 2),
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
            ["ID", "PATH", "VERSION", "STATUS", "CREATED", "DURATION", "ATTEMPTS", "ERROR"]
        );
        assert_eq!(
            rows[1],
            [
                "a",
                "/hello",
                "2",
                "success",
                "2023-11-14T22:13:20Z",
                "250ms",
                "1",
                "-"
            ]
        );
        assert_eq!(rows[2][5..], ["1.2s", "1", "exit", "code", "3"]);
        assert_eq!(rows[3][5], "2m05s");
        assert_eq!(rows[3][7], format!("{}...", "x".repeat(50)));
        assert_eq!(rows[4][5..], ["-", "0", "-"]);
        assert_eq!(rows[4][2], "-", "no version before it ran");
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
        assert!(lines.contains(&"VERSION    2"), "{details}");
        assert!(lines.contains(&"DURATION   -"), "{details}");
        assert!(lines.contains(&"ERROR      boom"), "{details}");
    }
}
