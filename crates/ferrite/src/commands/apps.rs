//! `ferrite apps`: list, create, inspect, update and delete apps, set or
//! unset one key of an app's config, and set an app's call limits.

use anyhow::bail;
use clap::Subcommand;
use ferrite_model::App;
use serde_json::{json, Map, Value};

use super::args::{config_change, given_fields, parse_pairs, ConfigSet, ConfigUnset};
use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The `ferrite apps` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List all apps.
    List {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create an app.
    Create(AppWrite),
    /// Show one app.
    Inspect {
        name: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change an app's config (keys are merged, `KEY=` removes one) or its
    /// limits (each one given is set; `default` goes back to the server's).
    Update(AppWrite),
    /// Delete an app.
    Delete {
        name: String,
        /// Delete the app's routes too; without it an app with routes is kept.
        #[arg(long)]
        cascade: bool,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set or unset one config key of an app.
    #[command(subcommand)]
    Config(AppConfigCommand),
}

/// The arguments of `ferrite apps create` and `update`.
#[derive(Debug, clap::Args)]
pub struct AppWrite {
    /// Name of the app: 1 to 30 of A-Z a-z 0-9 _ -.
    name: String,
    #[command(flatten)]
    fields: AppFields,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// The settings of an app, shared by `create` and `update`.
#[derive(Debug, clap::Args)]
pub struct AppFields {
    /// Config given to every function of the app as an environment variable
    /// (repeatable; in an update, `KEY=` removes it).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    #[command(flatten)]
    limits: LimitFlags,
}

impl AppFields {
    /// The given settings as fields of an `"app"` object.
    fn into_json(self) -> anyhow::Result<Map<String, Value>> {
        let config = if self.config.is_empty() {
            None
        } else {
            Some(json!(parse_pairs("--config", &self.config)?))
        };
        Ok(given_fields([
            ("config", config),
            ("limits", self.limits.into_json()),
        ]))
    }
}

/// The app's `limits` section (docs/api.md). Each flag takes a number (0:
/// no limit for this app) or `default` (the server's setting applies).
#[derive(Debug, clap::Args)]
pub struct LimitFlags {
    /// Calls of the app answered at once on one node [server default: FERRITE_APP_MAX_IN_FLIGHT].
    #[arg(long, value_name = "N|default", value_parser = limit_value)]
    max_in_flight: Option<Value>,
    /// Calls of the app per second on one node [server default: FERRITE_APP_RATE].
    #[arg(long, value_name = "N|default", value_parser = limit_value)]
    rate: Option<Value>,
    /// Calls accepted at once above the rate [server default: FERRITE_APP_BURST, else the rate].
    #[arg(long, value_name = "N|default", value_parser = limit_value)]
    burst: Option<Value>,
    /// Async calls of the app waiting in the queue [server default: FERRITE_APP_MAX_QUEUED].
    #[arg(long, value_name = "N|default", value_parser = limit_value)]
    max_queued: Option<Value>,
}

impl LimitFlags {
    /// The `limits` object the flags ask for; `None` when none is given.
    fn into_json(self) -> Option<Value> {
        let limits = given_fields([
            ("max_in_flight", self.max_in_flight),
            ("rate", self.rate),
            ("burst", self.burst),
            ("max_queued", self.max_queued),
        ]);
        (!limits.is_empty()).then_some(Value::Object(limits))
    }
}

/// A limit flag's value: a whole number, or `default` (JSON `null`: the
/// server's setting). The server checks the bounds and says which.
fn limit_value(value: &str) -> Result<Value, String> {
    if value == "default" {
        return Ok(Value::Null);
    }
    value
        .parse::<u64>()
        .map(Value::from)
        .map_err(|_| "expected a whole number, or `default`".to_string())
}

/// The `ferrite apps config` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppConfigCommand {
    /// Set one config key of an app.
    Set {
        name: String,
        #[command(flatten)]
        set: ConfigSet,
    },
    /// Remove one config key of an app.
    Unset {
        name: String,
        #[command(flatten)]
        unset: ConfigUnset,
    },
}

/// Run one `ferrite apps` subcommand against the server.
pub async fn run(cmd: AppsCommand) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::List { output, api } => {
            let apps = client::take(Client::new(&api)?.get(&["v1", "apps"]).await?, "apps")?;
            output::print_shown(apps, output, "a list of apps", |apps: &Vec<App>| {
                output::apps_table(apps)
            })
        }
        AppsCommand::Create(AppWrite {
            name,
            fields,
            output,
            api,
        }) => {
            let mut app = Map::from_iter([("name".to_string(), json!(name))]);
            app.extend(fields.into_json()?);
            let answer = Client::new(&api)?
                .post(&["v1", "apps"], &json!({ "app": app }))
                .await?;
            let message = format!("App {name} created");
            output::print_done(&client::take(answer, "app")?, output, &message)
        }
        AppsCommand::Inspect { name, output, api } => {
            let app = client::take(
                Client::new(&api)?.get(&client::app_path(&name)).await?,
                "app",
            )?;
            output::print_shown(app, output, "an app", output::app_details)
        }
        AppsCommand::Update(AppWrite {
            name,
            fields,
            output,
            api,
        }) => {
            let app = fields.into_json()?;
            if app.is_empty() {
                bail!("nothing to update: give at least one --config KEY=VALUE or a limit flag");
            }
            patch(&api, &name, app, output, &format!("App {name} updated")).await
        }
        AppsCommand::Delete {
            name,
            cascade,
            output,
            api,
        } => {
            let query: &[(&str, &str)] = if cascade { &[("cascade", "true")] } else { &[] };
            let answer = Client::new(&api)?
                .delete(&client::app_path(&name), query)
                .await
                .map_err(|e| {
                    // The server keeps IronFunctions' words; the CLI says
                    // what to do about them.
                    let has_routes = matches!(
                        e.downcast_ref::<client::ClientError>(),
                        Some(client::ClientError::Status { message, .. })
                            if message == ferrite_model::error::text::APP_HAS_ROUTES
                    );
                    if has_routes {
                        anyhow::anyhow!(
                            "{e}; delete its routes first, or delete the app with them (--cascade)"
                        )
                    } else {
                        e
                    }
                })?;
            output::print_done(&answer, output, &format!("App {name} deleted"))
        }
        AppsCommand::Config(AppConfigCommand::Set { name, set }) => {
            let message = format!("App {name}: config {} set", set.key);
            let app = config_change("apps", set.key, Some(set.value))?;
            patch(&set.api, &name, app, set.output, &message).await
        }
        AppsCommand::Config(AppConfigCommand::Unset { name, unset }) => {
            let message = format!("App {name}: config {} unset", unset.key);
            let app = config_change("apps", unset.key, None)?;
            patch(&unset.api, &name, app, unset.output, &message).await
        }
    }
}

/// PATCH an app with the fields of `app`.
async fn patch(
    api: &ApiArgs,
    name: &str,
    app: Map<String, Value>,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let path = client::app_path(name);
    super::patch_and_print(api, &path, "app", app, output, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_values() {
        assert_eq!(limit_value("10"), Ok(json!(10)));
        assert_eq!(limit_value("0"), Ok(json!(0)));
        assert_eq!(limit_value("default"), Ok(Value::Null));
        assert!(limit_value("-1").is_err());
        assert!(limit_value("ten").is_err());
    }
}
