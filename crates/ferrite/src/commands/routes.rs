//! `ferrite routes`: list, create, inspect, update and delete the routes of an
//! app, and set or unset one key of a route's config.

use anyhow::bail;
use clap::{Args, Subcommand};
use ferrite_model::{Config, Headers, Route};
use serde_json::{json, Map, Value};

use super::apps::{parse_pairs, split_pair};
use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The `ferrite routes` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// List the routes of an app.
    List {
        app: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create a route: run IMAGE when PATH of APP is called.
    Create {
        app: String,
        /// Path of the route, as in /hello or /a/b.
        path: String,
        /// Docker image of the function.
        image: String,
        #[command(flatten)]
        fields: RouteFields,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one route.
    Inspect {
        app: String,
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change a route: only the options given change; config and headers are merged.
    Update {
        app: String,
        path: String,
        /// Docker image of the function.
        #[arg(long)]
        image: Option<String>,
        #[command(flatten)]
        fields: RouteFields,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a route.
    Delete {
        app: String,
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set or unset one config key of a route.
    #[command(subcommand)]
    Config(RouteConfigCommand),
}

/// The `ferrite routes config` subcommands.
#[derive(Debug, Subcommand)]
pub enum RouteConfigCommand {
    /// Set one config key of a route.
    Set {
        app: String,
        path: String,
        key: String,
        value: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove one config key of a route.
    Unset {
        app: String,
        path: String,
        key: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// The optional settings of a route, shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct RouteFields {
    /// Memory limit of the function's container in MiB [server default: 128].
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    /// Whether callers wait for the answer (sync) or get a call id (async) [server default: sync].
    #[arg(long = "type", value_name = "TYPE", value_parser = ["sync", "async"])]
    kind: Option<String>,
    /// One container per call (default) or a hot container speaking HTTP (http).
    #[arg(long, value_parser = ["default", "http"])]
    format: Option<String>,
    /// Most hot containers of the route per node [server default: 1].
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u64>,
    /// Time limit of one call in seconds [server default: 30].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Seconds a hot container waits for work before it stops [server default: 30].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Header added to every answer (repeatable; in an update, `NAME=` removes it).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Config given to the function as an environment variable (repeatable;
    /// in an update, `KEY=` removes it).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Require calls to carry an HS256 bearer token signed with this key
    /// (in an update, an empty key removes the requirement).
    #[arg(long, value_name = "KEY")]
    jwt_key: Option<String>,
}

impl RouteFields {
    /// The given settings as fields of a `"route"` object; `None` leaves a
    /// field out so that the server's default or the current value holds.
    fn into_json(self) -> anyhow::Result<Map<String, Value>> {
        let mut route = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                route.insert(key.to_string(), value);
            }
        };
        put("memory", self.memory.map(Value::from));
        put("type", self.kind.map(Value::from));
        put("format", self.format.map(Value::from));
        put("max_concurrency", self.max_concurrency.map(Value::from));
        put("timeout", self.timeout.map(Value::from));
        put("idle_timeout", self.idle_timeout.map(Value::from));
        if !self.headers.is_empty() {
            put("headers", Some(json!(parse_headers(&self.headers)?)));
        }
        if !self.config.is_empty() {
            put(
                "config",
                Some(json!(parse_pairs("--config", &self.config)?)),
            );
        }
        put("jwt_key", self.jwt_key.map(Value::from));
        Ok(route)
    }
}

/// Run one `ferrite routes` subcommand against the server.
pub async fn run(cmd: RoutesCommand) -> anyhow::Result<()> {
    match cmd {
        RoutesCommand::List { app, output, api } => {
            let routes = client::take(
                Client::new(&api)?
                    .get(&["v1", "apps", &app, "routes"])
                    .await?,
                "routes",
            )?;
            if output.json {
                return output::print_json(&routes);
            }
            output::print(&output::routes_table(&output::parse::<Vec<Route>>(
                routes,
                "a list of routes",
            )?))
        }
        RoutesCommand::Create {
            app,
            path,
            image,
            fields,
            output,
            api,
        } => {
            let path = absolute(&path);
            let mut route = fields.into_json()?;
            route.insert("path".into(), json!(path));
            route.insert("image".into(), json!(image));
            let answer = Client::new(&api)?
                .post(&["v1", "apps", &app, "routes"], &json!({ "route": route }))
                .await?;
            print_route(
                answer,
                output,
                &format!("Route {path} of app {app} created"),
            )
        }
        RoutesCommand::Inspect {
            app,
            path,
            output,
            api,
        } => {
            let route = client::take(
                Client::new(&api)?
                    .get(&client::route_path(&app, &path))
                    .await?,
                "route",
            )?;
            if output.json {
                return output::print_json(&route);
            }
            output::print(&output::route_details(&output::parse(route, "a route")?))
        }
        RoutesCommand::Update {
            app,
            path,
            image,
            fields,
            output,
            api,
        } => {
            let mut route = fields.into_json()?;
            if let Some(image) = image {
                route.insert("image".into(), json!(image));
            }
            if route.is_empty() {
                bail!("nothing to update: give at least one option, such as --image or --memory");
            }
            let message = format!("Route {} of app {app} updated", absolute(&path));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Delete {
            app,
            path,
            output,
            api,
        } => {
            let answer = Client::new(&api)?
                .delete(&client::route_path(&app, &path), &[])
                .await?;
            if output.json {
                return output::print_json(&answer);
            }
            output::print(&format!("Route {} of app {app} deleted", absolute(&path)))
        }
        RoutesCommand::Config(RouteConfigCommand::Set {
            app,
            path,
            key,
            value,
            output,
            api,
        }) => {
            if key.is_empty() || key.contains('=') {
                bail!("invalid config key {key:?}: it must be non-empty and without '='");
            }
            if value.is_empty() {
                bail!("the value of {key:?} is empty; to remove the key, use `ferrite routes config unset`");
            }
            let message = format!("Route {} of app {app}: config {key} set", absolute(&path));
            let route = config_patch(Config::from([(key, value)]));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Config(RouteConfigCommand::Unset {
            app,
            path,
            key,
            output,
            api,
        }) => {
            if key.is_empty() || key.contains('=') {
                bail!("invalid config key {key:?}: it must be non-empty and without '='");
            }
            let message = format!("Route {} of app {app}: config {key} unset", absolute(&path));
            let route = config_patch(Config::from([(key, String::new())]));
            patch(&api, &app, &path, route, output, &message).await
        }
    }
}

async fn patch(
    api: &ApiArgs,
    app: &str,
    path: &str,
    route: Map<String, Value>,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let answer = Client::new(api)?
        .patch(&client::route_path(app, path), &json!({ "route": route }))
        .await?;
    print_route(answer, output, message)
}

fn config_patch(config: Config) -> Map<String, Value> {
    Map::from_iter([("config".to_string(), json!(config))])
}

fn print_route(answer: Value, output: OutputArgs, message: &str) -> anyhow::Result<()> {
    let route = client::take(answer, "route")?;
    if output.json {
        output::print_json(&route)
    } else {
        output::print(message)
    }
}

/// Route paths are absolute; `hello` is taken to mean `/hello`.
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// `NAME=VALUE` arguments as the API's header map: a repeated name gets
/// several values, and `NAME=` alone an empty list (removal in an update).
fn parse_headers(args: &[String]) -> anyhow::Result<Headers> {
    let mut headers = Headers::new();
    for arg in args {
        let (name, value) = split_pair("--header", "NAME=VALUE", arg)?;
        let values = headers.entry(name).or_default();
        if !value.is_empty() {
            values.push(value);
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_group_by_name() {
        let args = ["X-A=1", "X-A=2", "X-B="].map(String::from);
        let headers = parse_headers(&args).unwrap();
        assert_eq!(headers["X-A"], ["1", "2"]);
        assert!(headers["X-B"].is_empty());
        let err = parse_headers(&["X-A: 1".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --header \"X-A: 1\": expected NAME=VALUE"
        );
    }
}
