//! `ferrite schedules`: an app's cron schedules (each tick queues one async
//! call of a route): list, create, inspect with the next run times, update,
//! pause, resume, delete.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The `ferrite schedules` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// List an app's schedules, with each one's next run.
    List(AppArgs),
    /// Create a schedule of a route.
    Create(CreateArgs),
    /// Show a schedule and its next run times.
    Inspect(InspectArgs),
    /// Change a schedule's cron, time zone, payload or catch-up policy.
    Update(UpdateArgs),
    /// Stop a schedule's calls until it is resumed.
    Pause(OneSchedule),
    /// Start a paused schedule again, from its next tick after now.
    Resume(OneSchedule),
    /// Delete a schedule (the calls it made stay in the history).
    Delete(OneSchedule),
}

/// The arguments of `ferrite schedules list`.
#[derive(Debug, Args)]
pub struct AppArgs {
    app: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// What a schedule is made of, for `create` and `update`.
#[derive(Debug, Args)]
pub struct Fields {
    /// Five fields (minute hour day month weekday) or six (seconds first).
    #[arg(long)]
    cron: Option<String>,
    /// The IANA time zone the cron fields are read in (default UTC).
    #[arg(long = "tz")]
    timezone: Option<String>,
    /// The body of each call.
    #[arg(long)]
    payload: Option<String>,
    /// A request header of each call, `Name: value` (repeat for more);
    /// replaces the schedule's headers.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// What a tick missed while every node was down becomes: skip (none)
    /// or once (one call for the most recent).
    #[arg(long, value_parser = ["skip", "once"])]
    catch_up: Option<String>,
}

/// The arguments of `ferrite schedules create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    app: String,
    /// The route whose calls it makes (`/hello`).
    route: String,
    #[command(flatten)]
    fields: Fields,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite schedules inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    app: String,
    id: String,
    /// How many next run times to show (at most 100).
    #[arg(long, default_value_t = 5)]
    next: usize,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite schedules update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    app: String,
    id: String,
    #[command(flatten)]
    fields: Fields,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `pause`, `resume` and `delete`.
#[derive(Debug, Args)]
pub struct OneSchedule {
    app: String,
    id: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

fn schedules_path<'a>(app: &'a str, id: Option<&'a str>) -> Vec<&'a str> {
    let mut segments = vec!["v1", "apps", app, "schedules"];
    segments.extend(id);
    segments
}

/// Run one `ferrite schedules` subcommand against the server.
pub async fn run(cmd: SchedulesCommand) -> anyhow::Result<()> {
    match cmd {
        SchedulesCommand::List(args) => {
            let answer = Client::new(&args.api)?
                .get_query(&schedules_path(&args.app, None), &[("next", "1")])
                .await?;
            let schedules = client::take(answer, "schedules")?;
            if args.output.json {
                return output::print_json(&schedules);
            }
            output::print(&table(
                schedules.as_array().map(Vec::as_slice).unwrap_or_default(),
            ))
        }
        SchedulesCommand::Create(args) => {
            let mut body = fields(args.fields)?;
            body.insert("path".into(), json!(args.route));
            let answer = Client::new(&args.api)?
                .post(
                    &schedules_path(&args.app, None),
                    &json!({ "schedule": body }),
                )
                .await?;
            shown(answer, args.output)
        }
        SchedulesCommand::Inspect(args) => {
            let next = args.next.to_string();
            let answer = Client::new(&args.api)?
                .get_query(
                    &schedules_path(&args.app, Some(args.id.as_str())),
                    &[("next", next.as_str())],
                )
                .await?;
            shown(answer, args.output)
        }
        SchedulesCommand::Update(args) => {
            let body = fields(args.fields)?;
            change(&args.api, &args.app, &args.id, body, args.output).await
        }
        SchedulesCommand::Pause(args) => {
            let body = Map::from_iter([("enabled".to_string(), json!(false))]);
            change(&args.api, &args.app, &args.id, body, args.output).await
        }
        SchedulesCommand::Resume(args) => {
            let body = Map::from_iter([("enabled".to_string(), json!(true))]);
            change(&args.api, &args.app, &args.id, body, args.output).await
        }
        SchedulesCommand::Delete(args) => {
            let answer = Client::new(&args.api)?
                .delete(&schedules_path(&args.app, Some(args.id.as_str())), &[])
                .await?;
            output::print_done(
                &answer,
                args.output,
                &format!("schedule {} deleted", args.id),
            )
        }
    }
}

/// `PATCH` a schedule with `body`, and show the result.
async fn change(
    api: &ApiArgs,
    app: &str,
    id: &str,
    body: Map<String, Value>,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let answer = Client::new(api)?
        .patch(&schedules_path(app, Some(id)), &json!({ "schedule": body }))
        .await?;
    shown(answer, output)
}

/// The fields given on the command line, as the API takes them.
fn fields(fields: Fields) -> anyhow::Result<Map<String, Value>> {
    let mut body = Map::new();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            body.insert(key.to_string(), json!(value));
        }
    };
    set("cron", fields.cron);
    set("timezone", fields.timezone);
    set("payload", fields.payload);
    set("catch_up", fields.catch_up);
    if !fields.headers.is_empty() {
        let mut headers = Map::new();
        for header in fields.headers {
            let Some((name, value)) = header.split_once(':') else {
                anyhow::bail!("--header {header:?}: write it as 'Name: value'");
            };
            headers.insert(name.trim().to_string(), json!(value.trim()));
        }
        body.insert("headers".into(), Value::Object(headers));
    }
    Ok(body)
}

/// One schedule: `--json` as the server sent it, else its fields and its
/// next run times, one per line.
fn shown(answer: Value, output: OutputArgs) -> anyhow::Result<()> {
    let schedule = client::take(answer, "schedule")?;
    if output.json {
        return output::print_json(&schedule);
    }
    let text = |key: &str| schedule[key].as_str().unwrap_or("-").to_string();
    let mut lines = vec![
        format!("id:        {}", text("id")),
        format!("route:     {}", text("path")),
        format!("cron:      {}", text("cron")),
        format!("timezone:  {}", text("timezone")),
        format!("catch_up:  {}", text("catch_up")),
        format!("enabled:   {}", schedule["enabled"]),
        format!("payload:   {}", output::one_line(&text("payload"), 60)),
    ];
    if let Some(headers) = schedule["headers"].as_object() {
        for (name, value) in headers {
            lines.push(format!(
                "header:    {name}: {}",
                value.as_str().unwrap_or("")
            ));
        }
    }
    let runs = schedule["next_runs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if runs.is_empty() {
        lines.push("next runs: none".to_string());
    } else {
        lines.push("next runs:".to_string());
        lines.extend(
            runs.iter()
                .map(|r| format!("  {}", r.as_str().unwrap_or(""))),
        );
    }
    output::print(&lines.join("\n"))
}

/// An app's schedules, one per line.
fn table(schedules: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut table = output::table();
    table.set_header(["ID", "ROUTE", "CRON", "TIMEZONE", "CATCH UP", "NEXT RUN"]);
    for s in schedules {
        let next = match s["next_runs"].get(0) {
            Some(next) => text(next),
            None if s["enabled"] == Value::Bool(false) => "paused".to_string(),
            None => "-".to_string(),
        };
        table.add_row([
            text(&s["id"]),
            text(&s["path"]),
            text(&s["cron"]),
            text(&s["timezone"]),
            text(&s["catch_up"]),
            next,
        ]);
    }
    output::render(table)
}
