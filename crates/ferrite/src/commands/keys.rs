//! `ferrite keys`: the operator's per-app API keys (docs/keys.md). `create`
//! prints the new key's token alone on stdout, so that a script can keep it
//! (`TOKEN=$(ferrite keys create ...)`): the server shows it this once. A
//! team then uses the CLI with it as `FERRITE_TOKEN`.

use clap::{Args, Subcommand, ValueEnum};
use ferrite_model::ApiKey;
use serde_json::{json, Map};

use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// The `ferrite keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key for one app and print its token (shown this once).
    Create(CreateArgs),
    /// List every key: id, app, access, name, times (never tokens).
    List {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a key: every node refuses it from the next request on.
    Revoke {
        /// The key's id, as `ferrite keys list` shows it.
        id: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// What a key may do in its app; each includes the ones before.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccessArg {
    /// Read the app, its routes, calls, logs and dead letters.
    Read,
    /// Also cancel queued calls and replay dead letters.
    Call,
    /// Also change the app and its routes, or delete it.
    Manage,
}

/// The arguments of `ferrite keys create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The app the key is for.
    app: String,
    #[arg(long, value_enum)]
    access: AccessArg,
    /// Whom the key is for (up to 64 characters), shown in the list.
    #[arg(long)]
    name: Option<String>,
    /// When the key stops working, in RFC 3339 (2027-01-31T12:00:00Z)
    /// [default: never; revoke it].
    #[arg(long)]
    expires_at: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// Run one `ferrite keys` subcommand against the server.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(args) => create(args).await,
        KeysCommand::List { output, api } => {
            let keys = client::take(Client::new(&api)?.get(&["v1", "keys"]).await?, "keys")?;
            output::print_shown(keys, output, "a list of keys", |keys: &Vec<ApiKey>| {
                output::keys_table(keys)
            })
        }
        KeysCommand::Revoke { id, output, api } => {
            let answer = Client::new(&api)?.delete(&["v1", "keys", &id], &[]).await?;
            output::print_done(&answer, output, &format!("key {id} revoked"))
        }
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let access = match args.access {
        AccessArg::Read => "read",
        AccessArg::Call => "call",
        AccessArg::Manage => "manage",
    };
    let mut key = Map::from_iter([
        ("app".to_string(), json!(args.app)),
        ("access".to_string(), json!(access)),
    ]);
    if let Some(name) = args.name {
        key.insert("name".into(), json!(name));
    }
    if let Some(at) = args.expires_at {
        key.insert("expires_at".into(), json!(at));
    }
    let answer = Client::new(&args.api)?
        .post(&["v1", "keys"], &json!({ "key": key }))
        .await?;
    if args.output.json {
        return output::print_json(&answer);
    }
    let token = client::take(answer.clone(), "token")?;
    let id = client::take(answer, "key")?["id"].clone();
    eprintln!(
        "key {} for app {}: keep this token, it is not shown again",
        id.as_str().unwrap_or("-"),
        args.app
    );
    output::print(token.as_str().unwrap_or_default())
}
