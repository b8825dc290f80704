//! `ferrite dead-letters`: an app's async calls that failed for good, the
//! request each was made with, replaying them (one, or all) as new calls,
//! and dropping them.

use anyhow::bail;
use clap::{Args, Subcommand};
use ferrite_model::Call;
use serde_json::Value;

use super::calls::{print_pages, Pages};
use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The `ferrite dead-letters` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List an app's dead letters, newest first.
    List(ListArgs),
    /// Show a dead letter: its call, and the request it was made with.
    Inspect(OneLetter),
    /// Queue a dead letter's request again, as a new call (--all: every
    /// dead letter of the app, oldest first).
    Replay(ReplayArgs),
    /// Take a dead letter out of the list without replaying it.
    Delete(OneLetter),
}

/// The arguments of `ferrite dead-letters list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    app: String,
    #[command(flatten)]
    pages: Pages,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite dead-letters inspect` and `delete`.
#[derive(Debug, Args)]
pub struct OneLetter {
    app: String,
    /// The id of the failed call.
    id: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite dead-letters replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    app: String,
    /// The id of the failed call to replay.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Replay every dead letter of the app.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The URL segments of an app's dead letters, then `rest` (an id, `replay`).
fn letters_path<'a>(app: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut segments = vec!["v1", "apps", app, "dead-letters"];
    segments.extend(rest);
    segments
}

/// Run one `ferrite dead-letters` subcommand against the server.
pub async fn run(cmd: DeadLettersCommand) -> anyhow::Result<()> {
    match cmd {
        DeadLettersCommand::List(args) => {
            let client = Client::new(&args.api)?;
            let path = letters_path(&args.app, &[]);
            print_pages(&client, &path, &[], args.pages, args.output).await
        }
        DeadLettersCommand::Inspect(OneLetter {
            app,
            id,
            output,
            api,
        }) => {
            let answer = Client::new(&api)?.get(&letters_path(&app, &[&id])).await?;
            if output.json {
                return output::print_json(&answer);
            }
            let call: Call = output::parse(client::take(answer.clone(), "call")?, "a call")?;
            let request = client::take(answer, "request")?;
            output::print(&format!(
                "{}\n{}",
                output::call_details(&call),
                request_details(&request)
            ))
        }
        DeadLettersCommand::Replay(args) => replay(args).await,
        DeadLettersCommand::Delete(OneLetter {
            app,
            id,
            output,
            api,
        }) => {
            let answer = Client::new(&api)?
                .delete(&letters_path(&app, &[&id]), &[])
                .await?;
            output::print_done(&answer, output, &format!("dead letter {id} deleted"))
        }
    }
}

/// `ferrite dead-letters replay`: one letter, or `--all` in batches until
/// none is left; one line per new call.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let Some(id) = args.id else {
        let mut replayed = Vec::new();
        loop {
            let mut answer = client
                .post(&letters_path(&args.app, &["replay"]), &Value::Null)
                .await?;
            if let Some(Value::Array(batch)) = answer.get_mut("replayed").map(Value::take) {
                replayed.extend(batch);
            }
            if let Some(error) = answer.get("error").and_then(Value::as_str) {
                print_replayed(&replayed, &args.output)?;
                bail!("replay stopped: {error}");
            }
            if answer.get("more") != Some(&Value::Bool(true)) {
                break;
            }
        }
        return print_replayed(&replayed, &args.output);
    };
    let answer = client
        .post(&letters_path(&args.app, &[&id, "replay"]), &Value::Null)
        .await?;
    print_replayed(&[answer], &args.output)
}

fn print_replayed(replayed: &[Value], output: &OutputArgs) -> anyhow::Result<()> {
    if output.json {
        return output::print_json(&Value::Array(replayed.to_vec()));
    }
    let lines: Vec<String> = replayed
        .iter()
        .map(|r| {
            format!(
                "{} replayed as {}",
                r["replay_of"].as_str().unwrap_or("-"),
                r["call_id"].as_str().unwrap_or("-")
            )
        })
        .collect();
    if lines.is_empty() {
        return output::print("no dead letters");
    }
    output::print(&lines.join("\n"))
}

/// The request part of `inspect`: method and URL, headers, body.
fn request_details(request: &Value) -> String {
    let mut lines = vec![format!(
        "request: {} {}",
        request["method"].as_str().unwrap_or("-"),
        request["url"].as_str().unwrap_or("-")
    )];
    if let Some(headers) = request["headers"].as_object() {
        for (name, values) in headers {
            for value in values.as_array().into_iter().flatten() {
                lines.push(format!("  {name}: {}", value.as_str().unwrap_or_default()));
            }
        }
    }
    let body = request["body"].as_str().unwrap_or_default();
    let encoding = request["body_encoding"].as_str().unwrap_or("utf-8");
    lines.push(format!(
        "body ({encoding}): {}",
        output::one_line(body, 200)
    ));
    lines.join("\n")
}
