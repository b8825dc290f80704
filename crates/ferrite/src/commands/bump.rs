//! `ferrite bump`: raise func.yaml's version (the image's tag), changing
//! only its `version:` line so that comments and layout stay.

use anyhow::Context;

use super::build::BuildArgs;
use crate::func::funcfile::{self, Part};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct BumpArgs {
    /// Raise the major version (1.2.3 to 2.0.0).
    #[arg(long, group = "part")]
    pub major: bool,
    /// Raise the minor version (1.2.3 to 1.3.0).
    #[arg(long, group = "part")]
    pub minor: bool,
    /// Raise the patch version (1.2.3 to 1.2.4), the default.
    #[arg(long, group = "part")]
    pub patch: bool,
    /// The function's folder [default: the current folder].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

pub fn run(args: BumpArgs) -> anyhow::Result<()> {
    let dir = BuildArgs::folder(args.dir)?;
    let loaded = funcfile::load(&dir)?;
    let part = match (args.major, args.minor) {
        (true, _) => Part::Major,
        (_, true) => Part::Minor,
        _ => Part::Patch,
    };
    let current = loaded.func.version();
    let (text, next) = funcfile::bump(&loaded.text, current, part)?;
    std::fs::write(&loaded.path, text)
        .with_context(|| format!("cannot write {}", loaded.path.display()))?;
    output::print(&format!(
        "{}: version {current} to {next}",
        loaded.func.name
    ))
}
