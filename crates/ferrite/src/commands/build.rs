//! `ferrite build`: the function's `build:` commands, then its image
//! (`name:version`, also `name:latest`) through the Docker Engine API;
//! `--push` sends it to its registry. What `run` and `deploy` do first.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};

use super::args::label;
use super::args::DockerArgs;
use crate::func::funcfile::{self, Loaded};
use crate::func::image;
use crate::output;

/// What every verb that builds takes.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The function's folder [default: the current folder].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A label for the built image, `KEY=VALUE`; may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// Arguments of `ferrite build`.
#[derive(Debug, clap::Args)]
pub struct BuildCommand {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Push the image to the registry its name starts with
    /// (`localhost:5000/hello`), with the docker config's credentials.
    #[arg(long)]
    pub push: bool,
}

impl BuildArgs {
    /// `--dir`, else the current folder.
    pub fn folder(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
        match dir {
            Some(dir) => Ok(dir),
            None => std::env::current_dir().context("cannot tell the current folder"),
        }
    }

    /// Read func.yaml and connect to the engine; build the image unless
    /// `skip`, in which case it must be there already; then `push` it.
    pub async fn prepare(&self, skip: bool, push: bool) -> anyhow::Result<Loaded> {
        let dir = Self::folder(self.dir.clone())?;
        let loaded = funcfile::load(&dir)?;
        let func = &loaded.func;
        if push {
            image::registry(func)?;
        }
        let docker = image::connect(&self.docker.settings()).await?;
        if skip {
            if !image::exists(&docker, &func.image()).await? {
                bail!(
                    "image {} is not on the Docker engine: build it with `ferrite build`",
                    func.image()
                );
            }
        } else {
            run_build_commands(&dir, func.build.as_deref().unwrap_or_default()).await?;
            image::build(&docker, &dir, func, &self.labels).await?;
        }
        if push {
            image::push(&docker, func).await?;
        }
        Ok(loaded)
    }
}

/// func.yaml's `build:` commands, in order, by `sh -c` in the folder, their
/// output shown on stderr; the first to fail stops the build.
async fn run_build_commands(dir: &Path, commands: &[String]) -> anyhow::Result<()> {
    for command in commands {
        eprintln!("Running {command:?}");
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .stdin(Stdio::null())
            // Its output is progress too: stdout may be a function's answer.
            .stdout(std::io::stderr())
            .status()
            .await
            .with_context(|| format!("cannot run the build command {command:?}"))?;
        if !status.success() {
            bail!("the build command {command:?} of func.yaml failed ({status}): fix it, or remove it from build:");
        }
    }
    Ok(())
}

pub async fn run(args: BuildCommand) -> anyhow::Result<()> {
    let image = args.build.prepare(false, args.push).await?.func.image();
    match args.push {
        true => output::print(&format!("Built and pushed {image}")),
        false => output::print(&format!("Built {image}")),
    }
}
