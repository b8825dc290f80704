//! `ferrite apps`: list, create, inspect, update and delete apps, set or
//! unset one key of an app's config, and set an app's call limits.

use anyhow::bail;
use clap::Subcommand;
use ferrite_model::{App, Config};
use serde_json::{json, Map, Value};

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
    Create {
        /// Name of the app: 1 to 30 of A-Z a-z 0-9 _ -.
        name: String,
        /// Config given to every function of the app as an environment variable (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        #[command(flatten)]
        limits: LimitFlags,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
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
    Update {
        name: String,
        /// Config key to set, or to remove with an empty value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        #[command(flatten)]
        limits: LimitFlags,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
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
        let mut limits = Map::new();
        for (key, value) in [
            ("max_in_flight", self.max_in_flight),
            ("rate", self.rate),
            ("burst", self.burst),
            ("max_queued", self.max_queued),
        ] {
            if let Some(value) = value {
                limits.insert(key.to_string(), value);
            }
        }
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
        key: String,
        value: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove one config key of an app.
    Unset {
        name: String,
        key: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Run one `ferrite apps` subcommand against the server.
pub async fn run(cmd: AppsCommand) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::List { output, api } => {
            let apps = client::take(Client::new(&api)?.get(&["v1", "apps"]).await?, "apps")?;
            if output.json {
                return output::print_json(&apps);
            }
            output::print(&output::apps_table(&output::parse::<Vec<App>>(
                apps,
                "a list of apps",
            )?))
        }
        AppsCommand::Create {
            name,
            config,
            limits,
            output,
            api,
        } => {
            let mut app = json!({ "name": name });
            if !config.is_empty() {
                app["config"] = json!(parse_pairs("--config", &config)?);
            }
            if let Some(limits) = limits.into_json() {
                app["limits"] = limits;
            }
            let answer = Client::new(&api)?
                .post(&["v1", "apps"], &json!({ "app": app }))
                .await?;
            print_app(answer, output, &format!("App {name} created"))
        }
        AppsCommand::Inspect { name, output, api } => {
            let app = client::take(
                Client::new(&api)?.get(&client::app_path(&name)).await?,
                "app",
            )?;
            if output.json {
                return output::print_json(&app);
            }
            output::print(&output::app_details(&output::parse(app, "an app")?))
        }
        AppsCommand::Update {
            name,
            config,
            limits,
            output,
            api,
        } => {
            let mut app = Map::new();
            if !config.is_empty() {
                app.insert("config".into(), json!(parse_pairs("--config", &config)?));
            }
            if let Some(limits) = limits.into_json() {
                app.insert("limits".into(), limits);
            }
            if app.is_empty() {
                bail!("nothing to update: give at least one --config KEY=VALUE or a limit flag");
            }
            let answer = Client::new(&api)?
                .patch(&client::app_path(&name), &json!({ "app": app }))
                .await?;
            print_app(answer, output, &format!("App {name} updated"))
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
                .await?;
            if output.json {
                return output::print_json(&answer);
            }
            output::print(&format!("App {name} deleted"))
        }
        AppsCommand::Config(AppConfigCommand::Set {
            name,
            key,
            value,
            output,
            api,
        }) => {
            check_config_key(&key)?;
            if value.is_empty() {
                bail!("the value of {key:?} is empty; to remove the key, use `ferrite apps config unset`");
            }
            let message = format!("App {name}: config {key} set");
            patch_config(&api, &name, Config::from([(key, value)]), output, &message).await
        }
        AppsCommand::Config(AppConfigCommand::Unset {
            name,
            key,
            output,
            api,
        }) => {
            check_config_key(&key)?;
            let message = format!("App {name}: config {key} unset");
            patch_config(
                &api,
                &name,
                Config::from([(key, String::new())]),
                output,
                &message,
            )
            .await
        }
    }
}

/// PATCH an app's config; a key set to `""` is removed by the server.
async fn patch_config(
    api: &ApiArgs,
    name: &str,
    config: Config,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let answer = Client::new(api)?
        .patch(
            &client::app_path(name),
            &json!({ "app": { "config": config } }),
        )
        .await?;
    print_app(answer, output, message)
}

fn print_app(answer: Value, output: OutputArgs, message: &str) -> anyhow::Result<()> {
    let app = client::take(answer, "app")?;
    if output.json {
        output::print_json(&app)
    } else {
        output::print(message)
    }
}

fn check_config_key(key: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.contains('=') {
        bail!("invalid config key {key:?}: it must be non-empty and without '='");
    }
    Ok(())
}

/// Parse repeated `KEY=VALUE` arguments of `flag`; a later key wins.
pub(super) fn parse_pairs(flag: &str, args: &[String]) -> anyhow::Result<Config> {
    args.iter()
        .map(|arg| split_pair(flag, "KEY=VALUE", arg))
        .collect()
}

/// Split one `KEY=VALUE` argument of `flag` at the first `=`; `form` names the
/// expected shape in the error. The value may be empty, which removes the key
/// in an update.
pub(super) fn split_pair(flag: &str, form: &str, arg: &str) -> anyhow::Result<(String, String)> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        Some(_) => bail!("invalid {flag} {arg:?}: the key before '=' is empty"),
        None => bail!("invalid {flag} {arg:?}: expected {form}"),
    }
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

    #[test]
    fn pairs() {
        let args = ["A=1".to_string(), "B=x=y".to_string(), "C=".to_string()];
        let parsed = parse_pairs("--config", &args).unwrap();
        assert_eq!(parsed["B"], "x=y");
        assert_eq!(parsed["C"], "");
        let err = parse_pairs("--config", &["nope".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --config \"nope\": expected KEY=VALUE"
        );
        assert!(parse_pairs("--config", &["=1".to_string()]).is_err());
    }
}
