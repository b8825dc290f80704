//! `ferrite version`: the version of this client and of the server it talks to.

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Arguments of `ferrite version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Print the client's version, then the server's from `GET /version`. The
/// client's is printed even when the server cannot be reached, before the error.
pub async fn run(args: VersionArgs) -> anyhow::Result<()> {
    let server = server_version(&args.api).await;
    if args.output.json {
        let server_json = server.as_ref().ok();
        output::print_json(&json!({ "client": CLIENT_VERSION, "server": server_json }))?;
    } else {
        output::print(&format!("Client version: {CLIENT_VERSION}"))?;
        if let Ok(version) = &server {
            output::print(&format!("Server version: {version}"))?;
        }
    }
    server.map(drop)
}

async fn server_version(api: &ApiArgs) -> anyhow::Result<String> {
    let answer = Client::new(api)?.get(&["version"]).await?;
    client::take(answer, "version")?
        .as_str()
        .map(str::to_string)
        .context("unexpected answer from the server: \"version\" is not a string")
}
