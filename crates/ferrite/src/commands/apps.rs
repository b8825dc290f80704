//! `ferrite apps`: list, create, inspect, update and delete apps, and set or
//! unset one key of an app's config.

use anyhow::bail;
use clap::Subcommand;
use ferrite_model::{App, Config};
use serde_json::{json, Value};

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
    /// Change an app's config: keys are merged, `KEY=` removes one.
    Update {
        name: String,
        /// Config key to set, or to remove with an empty value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
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
            output,
            api,
        } => {
            let mut app = json!({ "name": name });
            if !config.is_empty() {
                app["config"] = json!(parse_pairs("--config", &config)?);
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
            output,
            api,
        } => {
            if config.is_empty() {
                bail!("nothing to update: give at least one --config KEY=VALUE");
            }
            let config = parse_pairs("--config", &config)?;
            let message = format!("App {name} updated");
            patch_config(&api, &name, config, output, &message).await
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
