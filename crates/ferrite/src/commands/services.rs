//! `ferrite services`: functions as Swarm services. `image` makes a
//! function image into a service image (its command run by `ferrite
//! watchdog` behind an HTTP port) on the local Docker engine.

use std::collections::HashMap;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferrite_swarm::service_image::{self, ServiceImageSpec, DEFAULT_WATCHDOG_IMAGE};
use serde_json::json;

use super::args::{label, DockerArgs};
use crate::client::{ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// `ferrite services`: the list, or one of the subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServicesArgs {
    #[command(subcommand)]
    pub command: Option<ServicesCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

/// Arguments of `ferrite services [list]`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// List the routes that run as Swarm services on the server's node:
    /// replicas running/asked, calls in flight, the last scaling and why.
    List(ListArgs),
    /// Build a service image from a function image: the image's own command
    /// behind `ferrite watchdog`, serving HTTP on port 8080.
    Image(ImageArgs),
}

/// Arguments of `ferrite services image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The function image (on the Docker engine already).
    pub source: String,
    /// Name of the image to build (default: the source's repository with
    /// `-service` appended, same tag: `ferrite/hello-service:latest`).
    #[arg(short = 't', long)]
    pub tag: Option<String>,
    /// The function contract the image follows.
    #[arg(long, default_value = "default", value_parser = ["default", "http"])]
    pub format: String,
    /// The image holding the static `ferrite` binary at /usr/local/bin/ferrite.
    #[arg(long, env = "FERRITE_WATCHDOG_IMAGE", default_value = DEFAULT_WATCHDOG_IMAGE)]
    pub watchdog_image: String,
    /// A label for the built image, `KEY=VALUE`; may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub docker: DockerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    match args.command {
        None => list(args.list).await,
        Some(ServicesCommand::List(list_args)) => list(list_args).await,
        Some(ServicesCommand::Image(image_args)) => image(image_args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let answer = Client::new(&args.api)?.get(&["v1", "services"]).await?;
    if args.output.json {
        return output::print_json(&answer);
    }
    let services = answer["services"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        if let Some(reason) = answer["reason"].as_str() {
            return output::print(&format!("No services: {reason}"));
        }
    }
    output::print(&output::services_table(&services))
}

async fn image(args: ImageArgs) -> anyhow::Result<()> {
    let docker = args.docker.settings().connect().await?;
    let spec = ServiceImageSpec {
        tag: args
            .tag
            .clone()
            .unwrap_or_else(|| service_image::default_tag(&args.source)),
        source: args.source,
        format: args.format,
        watchdog_image: args.watchdog_image,
        labels: args.labels.into_iter().collect::<HashMap<_, _>>(),
    };
    let built = service_image::build(&docker, &spec)
        .await
        .context("cannot build the service image")?;
    if args.output.json {
        output::print_json(&json!({
            "image": built.tag,
            "id": built.id,
            "source": spec.source,
            "format": spec.format,
            "command": built.command,
        }))
    } else {
        output::print(&format!(
            "Built {} from {} ({} format): runs {:?} behind port {}",
            built.tag,
            spec.source,
            spec.format,
            built.command.join(" "),
            service_image::WATCHDOG_PORT
        ))
    }
}
