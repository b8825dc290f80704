//! `ferrite calls`: an app's call history, one call's fields, its log and
//! output as the function wrote them, and cancelling a queued async call.

use std::io::ErrorKind;

use anyhow::bail;
use clap::{Args, Subcommand};
use ferrite_model::{Call, CallStatus};
use serde_json::Value;

use super::args::absolute;
use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// Most calls the server sends in one page (its `per_page` limit).
const MAX_PAGE: i64 = 1000;

/// The `ferrite calls` subcommands.
#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// List the calls of an app, newest first.
    List(ListArgs),
    /// Show one call.
    Inspect(OneCall),
    /// Print what a call's function wrote to stderr, byte for byte.
    Logs {
        app: String,
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print an async call's output, byte for byte.
    ///
    /// The output is the function's stdout (a hot function's HTTP body). It is
    /// empty until the call has ended, and for a sync call, whose answer went
    /// to its caller.
    Output {
        app: String,
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Cancel a queued async call, so that it never runs.
    Cancel(OneCall),
}

/// The arguments of `ferrite calls inspect` and `cancel`.
#[derive(Debug, Args)]
pub struct OneCall {
    app: String,
    /// The call's id (`fn-call-id` of a sync call, `call_id` of an async one).
    id: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite calls list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    app: String,
    /// Only the calls of this route, as in /hello.
    #[arg(long)]
    path: Option<String>,
    /// Only the calls in this state: queued, running, success, error, timeout
    /// or cancelled.
    #[arg(long, value_parser = parse_status)]
    status: Option<CallStatus>,
    #[command(flatten)]
    pages: Pages,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// Run one `ferrite calls` subcommand against the server.
pub async fn run(cmd: CallsCommand) -> anyhow::Result<()> {
    match cmd {
        CallsCommand::List(args) => list(args).await,
        CallsCommand::Inspect(OneCall {
            app,
            id,
            output,
            api,
        }) => {
            let call = client::take(
                Client::new(&api)?
                    .get(&client::call_path(&app, &id, None))
                    .await?,
                "call",
            )?;
            output::print_shown(call, output, "a call", output::call_details)
        }
        CallsCommand::Logs { app, id, api } => print_raw(&api, &app, &id, "log").await,
        CallsCommand::Output { app, id, api } => print_raw(&api, &app, &id, "output").await,
        CallsCommand::Cancel(OneCall {
            app,
            id,
            output,
            api,
        }) => {
            let answer = Client::new(&api)?
                .delete(&client::call_path(&app, &id, None), &[])
                .await?;
            let message = format!("call {id} cancelled");
            output::print_done(&client::take(answer, "call")?, output, &message)
        }
    }
}

/// `ferrite calls list`: one page, or with `--all` every page from the
/// cursor on. When a page is left, a `more:` line on stderr says how to get
/// it, so that stdout stays the table (or the JSON list) alone.
async fn list(args: ListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let path = args.path.as_deref().map(absolute);
    let mut filters = Vec::new();
    if let Some(path) = &path {
        filters.push(("path", path.as_str()));
    }
    if let Some(status) = args.status {
        filters.push(("status", status.as_str()));
    }
    print_pages(
        &client,
        &client::calls_path(&args.app),
        &filters,
        args.pages,
        args.output,
    )
    .await
}

/// Which pages of a listing of calls to print (`calls list`,
/// `dead-letters list`).
#[derive(Debug, Args)]
pub(crate) struct Pages {
    /// Calls per page, 1 to 1000 [server default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_PAGE))]
    limit: Option<u32>,
    /// Start after this call: the id a previous page named in its `more:` line.
    #[arg(long, value_name = "ID")]
    cursor: Option<String>,
    /// Follow the pages to the last one.
    #[arg(long)]
    all: bool,
}

/// Print the calls listed at `segments` (with `filters`): one page, or with
/// `all` every page from the cursor on, then a `more:` line on stderr when
/// a page is left.
pub(crate) async fn print_pages(
    client: &Client,
    segments: &[&str],
    filters: &[(&str, &str)],
    pages: Pages,
    output: OutputArgs,
) -> anyhow::Result<()> {
    let per_page = pages.limit.map(|n| n.to_string());
    let mut cursor = pages.cursor.filter(|c| !c.is_empty());
    let mut calls = Vec::new();
    let more = loop {
        let mut query = filters.to_vec();
        if let Some(per_page) = &per_page {
            query.push(("per_page", per_page.as_str()));
        }
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let mut answer = client.get_query(segments, &query).await?;
        let next = match answer.get_mut("next_cursor").map(Value::take) {
            None | Some(Value::Null) => None,
            Some(Value::String(next)) => Some(next),
            Some(other) => bail!("unexpected answer from the server: next_cursor is {other}"),
        };
        let Value::Array(page) = client::take(answer, "calls")? else {
            bail!("unexpected answer from the server: \"calls\" is not a list");
        };
        let empty = page.is_empty();
        calls.extend(page);
        match next {
            // A cursor that does not move would page forever.
            Some(next) if pages.all && !empty && cursor.as_ref() != Some(&next) => {
                cursor = Some(next);
            }
            _ if pages.all => break None,
            next => break next,
        }
    };
    if output.json {
        output::print_json(&Value::Array(calls))?;
    } else {
        let calls: Vec<Call> = output::parse(Value::Array(calls), "a list of calls")?;
        output::print(&output::calls_table(&calls))?;
    }
    if let Some(next) = more {
        eprintln!("more: --cursor {next}");
    }
    Ok(())
}

/// Copy a call's `log` or `output` to stdout as the server sends it. A
/// closed pipe (`ferrite calls logs ... | head`) is not an error.
async fn print_raw(api: &ApiArgs, app: &str, id: &str, part: &str) -> anyhow::Result<()> {
    let client = Client::new(api)?;
    let response = client
        .get_raw(&client::call_path(app, id, Some(part)))
        .await?;
    match client.write_body(response, &mut std::io::stdout()).await {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        result => result,
    }
}

/// A `--status` value; the error lists the states, as the one line shown.
fn parse_status(text: &str) -> Result<CallStatus, String> {
    CallStatus::parse(text).ok_or_else(|| {
        let names: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status("queued"), Ok(CallStatus::Queued));
        assert_eq!(
            parse_status("done"),
            Err("expected one of queued, running, success, error, timeout, cancelled".into())
        );
    }
}
