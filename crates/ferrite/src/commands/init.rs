//! `ferrite init`: a working function in the current folder: a runtime's
//! template (code, Dockerfile, .dockerignore) and its func.yaml; or, for
//! code that is already there, only the func.yaml (and a Dockerfile when
//! there is none), with the runtime told from the files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::func::funcfile::{self, short_name, FuncFile};
use crate::func::runtime::{Runtime, CHOICES};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The function's name: its image's name without a tag (`hello`, or
    /// `localhost:5000/hello` to push there) [default: the folder's name].
    pub name: Option<String>,
    /// The language: rust, go, python or node [default: told from the
    /// files in the folder].
    #[arg(long, value_parser = ["rust", "go", "python", "node"])]
    pub runtime: Option<String>,
    /// `default`: one container per call; `http`: a hot container serving
    /// HTTP requests one after another.
    #[arg(long, default_value = "default", value_parser = ["default", "http"])]
    pub format: String,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// The function's folder [default: the current folder].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let dir = super::build::BuildArgs::folder(args.dir)?;
    let name = match args.name {
        Some(name) => name,
        None => folder_name(&dir)?,
    };
    let (runtime, files) = match &args.runtime {
        Some(runtime) => {
            let runtime = Runtime::parse(runtime).map_err(anyhow::Error::msg)?;
            (runtime, runtime.template(&args.format, short_name(&name))?)
        }
        None => {
            let runtime = Runtime::detect(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no code in {} to tell the runtime from: give --runtime ({CHOICES})",
                        dir.display()
                    )
                })?;
            // As IronFunctions' fn init: the code is the user's; only what
            // builds it is added, and a Dockerfile only when missing.
            let dockerfile = runtime.dockerfile(&args.format, short_name(&name))?;
            let files = if dir.join("Dockerfile").exists() {
                Vec::new()
            } else {
                vec![("Dockerfile".to_string(), dockerfile)]
            };
            (runtime, files)
        }
    };
    let func = FuncFile::new(&name, runtime.as_str(), &args.format);
    // The same checks as every later command's, before anything is written.
    funcfile::parse(&func.to_text()?).map_err(|e| {
        let rule = e.split_once(": ").map_or(e.as_str(), |(_, rule)| rule);
        anyhow::anyhow!("invalid NAME: {rule}")
    })?;
    let mut all = files;
    all.push((
        funcfile::FILE_NAME.to_string(),
        func.to_text()?.into_bytes(),
    ));
    if !args.force {
        if let Some((path, _)) = all.iter().find(|(path, _)| dir.join(path).exists()) {
            bail!(
                "{} exists already: nothing written (--force overwrites)",
                dir.join(path).display()
            );
        }
    }
    for (path, content) in &all {
        write(&dir, path, content)?;
    }
    let written: Vec<&str> = all.iter().map(|(path, _)| path.as_str()).collect();
    output::print(&format!(
        "Wrote a {} function {name} ({} format) in {}: {}\n\
         Next: `ferrite run` calls it once on the local Docker engine, `ferrite deploy APP` serves it",
        runtime.as_str(),
        args.format,
        dir.display(),
        written.join(", ")
    ))
}

/// The folder's name, lowercased, as a function's name.
fn folder_name(dir: &Path) -> anyhow::Result<String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if name.is_empty() {
        bail!("the folder {} has no name to use: give NAME", dir.display());
    }
    Ok(name)
}

fn write(dir: &Path, relative: &str, content: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))
}
