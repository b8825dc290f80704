//! `ferrite routes`: list, create, inspect, update and delete the routes of an
//! app, set or unset one key of a route's config, call a route's function,
//! and see its versions and share its calls between them (`versions`).
//! The flags that make a route's settings live in `fields` and its two
//! sections' files; `call` is the one verb that is not a `/v1` request.

mod call;
mod confinement_flags;
mod fields;
mod service_flags;
mod versions;

use anyhow::bail;
use clap::{Args, Subcommand};
use ferrite_model::Route;
use serde_json::{json, Map, Value};

use self::confinement_flags::CONFINEMENT_FLAGS;
use self::fields::RouteFields;
use self::service_flags::SERVICE_FLAGS;
use super::args::{absolute, config_change, ConfigSet, ConfigUnset};
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
    Inspect(OneRoute),
    /// Change a route: only the options given change; config, headers and
    /// service labels are merged.
    Update {
        app: String,
        path: String,
        /// Docker image of the function.
        #[arg(long, short = 'i')]
        image: Option<String>,
        #[command(flatten)]
        fields: RouteFields,
        /// Stop running the route as a Swarm service: remove its service
        /// section, so that it runs in containers again.
        #[arg(long, conflicts_with_all = SERVICE_FLAGS)]
        no_service: bool,
        /// Remove the route's confinement section: its containers get the
        /// defaults again.
        #[arg(long, conflicts_with_all = CONFINEMENT_FLAGS)]
        no_confinement: bool,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a route.
    Delete(OneRoute),
    /// Set or unset one config key of a route.
    #[command(subcommand)]
    Config(RouteConfigCommand),
    /// Call the function of a route: stdin is the request body, and the
    /// answer's body goes to stdout as it is.
    Call(call::CallArgs),
    /// List the versions of a route, newest first, with those that serve.
    Versions(versions::ListArgs),
    /// Show one version of a route, or (--diff) what differs from another.
    Version(versions::OneArgs),
    /// Share a route's calls between its versions by weight (3=90 4=10),
    /// optionally sending a header's calls to one first.
    Traffic(versions::TrafficArgs),
    /// Send every call of a route to one version (default: the one before
    /// the newest).
    Rollback(versions::RollbackArgs),
}

/// The arguments of `ferrite routes inspect` and `delete`.
#[derive(Debug, Args)]
pub struct OneRoute {
    app: String,
    path: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The `ferrite routes config` subcommands.
#[derive(Debug, Subcommand)]
pub enum RouteConfigCommand {
    /// Set one config key of a route.
    Set {
        app: String,
        path: String,
        #[command(flatten)]
        set: ConfigSet,
    },
    /// Remove one config key of a route.
    Unset {
        app: String,
        path: String,
        #[command(flatten)]
        unset: ConfigUnset,
    },
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
            output::print_shown(routes, output, "a list of routes", |routes: &Vec<Route>| {
                output::routes_table(routes)
            })
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
            let message = format!("Route {path} of app {app} created");
            output::print_done(&client::take(answer, "route")?, output, &message)
        }
        RoutesCommand::Inspect(OneRoute {
            app,
            path,
            output,
            api,
        }) => {
            let route = client::take(
                Client::new(&api)?
                    .get(&client::route_path(&app, &path))
                    .await?,
                "route",
            )?;
            output::print_shown(route, output, "a route", output::route_details)
        }
        RoutesCommand::Update {
            app,
            path,
            image,
            fields,
            no_service,
            no_confinement,
            output,
            api,
        } => {
            let mut route = fields.into_json()?;
            if let Some(image) = image {
                route.insert("image".into(), json!(image));
            }
            if no_service {
                route.insert("service".into(), Value::Null);
            }
            if no_confinement {
                route.insert("confinement".into(), Value::Null);
            }
            if route.is_empty() {
                bail!("nothing to update: give at least one option, such as --image or --memory");
            }
            let message = format!("Route {} of app {app} updated", absolute(&path));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Delete(OneRoute {
            app,
            path,
            output,
            api,
        }) => {
            let answer = Client::new(&api)?
                .delete(&client::route_path(&app, &path), &[])
                .await?;
            let message = format!("Route {} of app {app} deleted", absolute(&path));
            output::print_done(&answer, output, &message)
        }
        RoutesCommand::Config(RouteConfigCommand::Set { app, path, set }) => {
            let path = absolute(&path);
            let message = format!("Route {path} of app {app}: config {} set", set.key);
            let route = config_change("routes", set.key, Some(set.value))?;
            patch(&set.api, &app, &path, route, set.output, &message).await
        }
        RoutesCommand::Config(RouteConfigCommand::Unset { app, path, unset }) => {
            let path = absolute(&path);
            let message = format!("Route {path} of app {app}: config {} unset", unset.key);
            let route = config_change("routes", unset.key, None)?;
            patch(&unset.api, &app, &path, route, unset.output, &message).await
        }
        RoutesCommand::Call(args) => call::run(args).await,
        RoutesCommand::Versions(args) => versions::list(args).await,
        RoutesCommand::Version(args) => versions::one(args).await,
        RoutesCommand::Traffic(args) => versions::traffic(args).await,
        RoutesCommand::Rollback(args) => versions::rollback(args).await,
    }
}

/// PATCH a route with the fields of `route`.
async fn patch(
    api: &ApiArgs,
    app: &str,
    path: &str,
    route: Map<String, Value>,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let path = client::route_path(app, path);
    super::patch_and_print(api, &path, "route", route, output, message).await
}
