//! How client commands print: plain tables for people, and with `--json` the
//! server's objects as pretty JSON for scripts. One file per resource shown.
//!
//! Tables have no borders, only aligned columns, so they read the same in a
//! terminal and through `grep`, `awk` or `cut`.

mod apps;
mod calls;
mod keys;
mod routes;
mod services;
mod versions;

use std::io::{ErrorKind, Write};

use anyhow::Context;
use comfy_table::{presets::NOTHING, Table};
use ferrite_model::Config;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::apps::{app_details, apps_table};
pub use self::calls::{call_details, calls_table};
pub use self::keys::keys_table;
pub use self::routes::{route_details, routes_table};
pub use self::services::services_table;
pub use self::versions::{
    serving_line, version_details, version_diff, versions_table, VersionList,
};

/// The `--json` switch every client command takes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Print the server's JSON object(s) instead of a table or a message.
    #[arg(long, short = 'j')]
    pub json: bool,
}

/// Shown for a field that is not set.
const NONE: &str = "-";

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

/// Print what a command did: with `--json` the server's `object`, else `message`.
pub fn print_done(object: &Value, output: OutputArgs, message: &str) -> anyhow::Result<()> {
    if output.json {
        print_json(object)
    } else {
        print(message)
    }
}

/// Print a server object that was asked for: with `--json` as it came, else
/// read as a `T` (`what` names it in the error) and shown by `render`.
pub fn print_shown<T: DeserializeOwned>(
    object: Value,
    output: OutputArgs,
    what: &str,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if output.json {
        return print_json(&object);
    }
    print(&render(&parse(object, what)?))
}

/// Read a server object as a model type, for a table.
pub fn parse<T: DeserializeOwned>(value: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(value)
        .with_context(|| format!("unexpected answer from the server: not {what}"))
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

pub fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table
}

/// Columns two spaces apart with no leading space, and no trailing spaces.
pub fn render(mut table: Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

/// `FIELD  value` rows of a details view, in the order given.
fn add_rows<const N: usize>(table: &mut Table, rows: [(&str, String); N]) {
    for (field, value) in rows {
        table.add_row([field.to_string(), value]);
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
