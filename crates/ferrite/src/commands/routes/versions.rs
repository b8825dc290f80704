//! `ferrite routes versions`, `version`, `traffic` and `rollback`: a route's
//! versions listed, one shown or two compared, and which of them serve its
//! calls. Traffic is a field of the route, so `traffic` and `rollback` are
//! a `PATCH` of it.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Map, Value};

use super::super::args::absolute;
use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The arguments of `ferrite routes versions`.
#[derive(Debug, Args)]
pub struct ListArgs {
    app: String,
    path: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite routes version`.
#[derive(Debug, Args)]
pub struct OneArgs {
    app: String,
    path: String,
    /// The version to show.
    version: u32,
    /// Show what differs from VERSION to this version instead.
    #[arg(long, value_name = "OTHER")]
    diff: Option<u32>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite routes traffic`.
#[derive(Debug, Args)]
pub struct TrafficArgs {
    app: String,
    path: String,
    /// Versions and their share of the calls, in percent adding up to 100,
    /// as in `3=90 4=10`.
    #[arg(value_name = "VERSION=WEIGHT", required_unless_present = "newest")]
    weights: Vec<String>,
    /// Send the calls with this request header value to a version first,
    /// whatever the weights: `VERSION:NAME=VALUE`, as in `4:X-Canary=1`.
    #[arg(long, value_name = "VERSION:NAME=VALUE")]
    header: Option<String>,
    /// Send every call to the newest version again, as a route without
    /// traffic does (later changes then serve at once).
    #[arg(long, conflicts_with_all = ["weights", "header"])]
    newest: bool,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The arguments of `ferrite routes rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    app: String,
    path: String,
    /// The version to serve every call (default: the newest one kept
    /// before the newest version).
    #[arg(long)]
    to: Option<u32>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

async fn list_of(client: &Client, app: &str, path: &str) -> anyhow::Result<Value> {
    client
        .get_query(&["v1", "apps", app, "versions"], &[("path", path)])
        .await
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let path = absolute(&args.path);
    let answer = list_of(&Client::new(&args.api)?, &args.app, &path).await?;
    output::print_shown(
        answer,
        args.output,
        "a list of versions",
        output::versions_table,
    )
}

pub async fn one(args: OneArgs) -> anyhow::Result<()> {
    let path = absolute(&args.path);
    let client = Client::new(&args.api)?;
    let number = args.version.to_string();
    let query = [("path", path.as_str())];
    match args.diff {
        None => {
            let segments = ["v1", "apps", &args.app, "versions", &number];
            let version = client::take(client.get_query(&segments, &query).await?, "version")?;
            output::print_shown(version, args.output, "a version", output::version_details)
        }
        Some(other) => {
            let other = other.to_string();
            let segments = ["v1", "apps", &args.app, "versions", &number, "diff", &other];
            let answer = client.get_query(&segments, &query).await?;
            output::print_shown(answer, args.output, "a comparison", output::version_diff)
        }
    }
}

pub async fn traffic(args: TrafficArgs) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    if let Some(rule) = &args.header {
        entries.push(header_rule(rule)?);
    }
    for split in &args.weights {
        entries.push(weight(split)?);
    }
    let traffic = if args.newest {
        Value::Null
    } else {
        Value::Array(entries)
    };
    let path = absolute(&args.path);
    let shown = if args.newest {
        "the newest version".to_string()
    } else {
        args.weights.join(" ")
    };
    let message = format!("Route {path} of app {}: traffic set to {shown}", args.app);
    set_traffic(&args.api, &args.app, &path, traffic, args.output, &message).await
}

pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let path = absolute(&args.path);
    let to = match args.to {
        Some(to) => to,
        None => {
            let answer = list_of(&Client::new(&args.api)?, &args.app, &path).await?;
            let list: output::VersionList = output::parse(answer, "a list of versions")?;
            match list
                .versions
                .iter()
                .map(|v| v.version)
                .find(|v| *v < list.newest)
            {
                Some(before) => before,
                None => bail!(
                    "route {path} has no version before its newest ({}) to roll back to",
                    list.newest
                ),
            }
        }
    };
    let traffic = json!([{ "version": to, "weight": 100 }]);
    let message = format!(
        "Route {path} of app {}: every call goes to version {to}",
        args.app
    );
    set_traffic(&args.api, &args.app, &path, traffic, args.output, &message).await
}

async fn set_traffic(
    api: &ApiArgs,
    app: &str,
    path: &str,
    traffic: Value,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let mut route = Map::new();
    route.insert("traffic".into(), traffic);
    let segments = client::route_path(app, path);
    super::super::patch_and_print(api, &segments, "route", route, output, message).await
}

/// `3=90` as a traffic entry.
fn weight(split: &str) -> anyhow::Result<Value> {
    let parsed = split
        .split_once('=')
        .and_then(|(v, w)| Some((v.trim().parse::<u32>().ok()?, w.trim().parse::<u32>().ok()?)));
    let Some((version, weight)) = parsed else {
        bail!("bad traffic {split:?}: expected VERSION=WEIGHT, as in 3=90");
    };
    Ok(json!({ "version": version, "weight": weight }))
}

/// `4:X-Canary=1` as a traffic entry with a header rule.
fn header_rule(rule: &str) -> anyhow::Result<Value> {
    let bad = || format!("bad --header {rule:?}: expected VERSION:NAME=VALUE, as in 4:X-Canary=1");
    let (version, header) = rule.split_once(':').with_context(bad)?;
    let (name, value) = header.split_once('=').with_context(bad)?;
    let version: u32 = version.trim().parse().ok().with_context(bad)?;
    Ok(json!({ "version": version, "header": { "name": name, "value": value } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_rules_parse() {
        assert_eq!(weight("3=90").unwrap(), json!({"version": 3, "weight": 90}));
        assert!(weight("3").is_err());
        assert!(weight("x=1").is_err());
        assert_eq!(
            header_rule("4:X-Canary=1").unwrap(),
            json!({"version": 4, "header": {"name": "X-Canary", "value": "1"}})
        );
        assert!(header_rule("X-Canary=1").is_err());
    }
}
