//! A function's image on the Docker engine, through the Engine API only (no
//! docker CLI): build it from the folder, tag it, push it to its registry.
//!
//! Builds use the legacy builder, as `ferrite services image` does: it is
//! there on every engine, and its output is plain lines (`Step 3/7 : ...`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use bollard::query_parameters::{BuildImageOptions, PushImageOptions, TagImageOptions};
use bollard::Docker;
use ferrite_engine::{ConnectSettings, Credentials};
use futures_util::StreamExt;

use super::funcfile::{short_name, FuncFile};
use super::progress::Progress;
use super::runtime::Runtime;
use super::{context, FORMAT_DEFAULT};

/// Marks the images `ferrite build` makes; its value is the function's name.
pub const LABEL_FUNC: &str = "org.ferrite.func";

/// The engine, answering: a connection that fails is said now, in one
/// line, rather than as the first request's error.
pub async fn connect(settings: &ConnectSettings) -> anyhow::Result<Docker> {
    let unreachable = |reason: String| {
        anyhow::anyhow!(
            "cannot reach the Docker engine at {}: {reason} (start Docker, or set DOCKER_HOST)",
            settings.host()
        )
    };
    let docker = settings
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unreachable(ferrite_engine::docker_reason(e)))?;
    Ok(docker)
}

/// Whether `image` is on the engine.
pub async fn exists(docker: &Docker, image: &str) -> anyhow::Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(anyhow::anyhow!(
            "cannot look up image {image}: {}",
            ferrite_engine::docker_reason(e)
        )),
    }
}

/// Build `func`'s image from `dir` as `name:version`, also tagged
/// `name:latest`, with `labels` besides [`LABEL_FUNC`].
pub async fn build(
    docker: &Docker,
    dir: &Path,
    func: &FuncFile,
    labels: &[(String, String)],
) -> anyhow::Result<()> {
    let image = func.image();
    let dockerfile = if dir.join("Dockerfile").is_file() {
        None
    } else {
        let Some(runtime) = &func.runtime else {
            bail!(
                "{} has no Dockerfile and func.yaml no runtime: add a Dockerfile, or `runtime:` ({})",
                dir.display(),
                super::runtime::CHOICES
            );
        };
        let runtime =
            Runtime::parse(runtime).map_err(|e| anyhow::anyhow!("func.yaml: runtime: {e}"))?;
        let format = func.format.as_deref().unwrap_or(FORMAT_DEFAULT);
        Some(runtime.dockerfile(format, short_name(&func.name))?)
    };
    let tar = context::tar(dir, dockerfile.as_deref())?;
    let mut all_labels: HashMap<String, String> = labels.iter().cloned().collect();
    all_labels.insert(LABEL_FUNC.to_string(), func.name.clone());
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".to_string(),
        t: Some(image.clone()),
        rm: true,
        forcerm: true,
        labels: Some(all_labels),
        ..Default::default()
    };
    let mut progress = Progress::new();
    progress.step(&format!(
        "Building {image} ({} KiB of context)",
        tar.len() / 1024
    ));
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(bytes::Bytes::from(tar))),
    );
    while let Some(item) = stream.next().await {
        let info = checked(
            item,
            |i| stream_error(&i.error_detail, &i.error),
            &mut progress,
        )
        .map_err(|m| {
            anyhow::anyhow!("building {image} failed: {m} (the build's output is above)")
        })?;
        for line in info.stream.iter().flat_map(|s| s.lines()) {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            progress.output(line);
            if line.starts_with("Step ") {
                progress.step(line);
            }
        }
    }
    progress.done();
    docker
        .tag_image(
            &image,
            Some(TagImageOptions {
                repo: Some(func.name.clone()),
                tag: Some("latest".to_string()),
            }),
        )
        .await
        .with_context(|| format!("cannot tag {image} as {}:latest", func.name))?;
    Ok(())
}

/// An item of an engine stream (a build's, a push's), or its failure on
/// one line after the output so far: the stream's own error, or the error
/// its item `reported`.
fn checked<T>(
    item: Result<T, bollard::errors::Error>,
    reported: impl FnOnce(&T) -> Option<String>,
    progress: &mut Progress,
) -> Result<T, String> {
    let failure = match item {
        Ok(info) => match reported(&info) {
            None => return Ok(info),
            Some(message) => message,
        },
        Err(e) => ferrite_engine::docker_reason(e),
    };
    progress.fail();
    Err(crate::output::one_line(&failure, 300))
}

/// The error an item of an engine stream reports, if any.
fn stream_error(
    detail: &Option<bollard::models::ErrorDetail>,
    error: &Option<String>,
) -> Option<String> {
    detail
        .as_ref()
        .and_then(|d| d.message.clone())
        .or_else(|| error.clone())
}

/// The registry `func`'s image is pushed to: the host its name starts
/// with. A name without one is refused before anything is built.
pub fn registry(func: &FuncFile) -> anyhow::Result<String> {
    let registry = ferrite_engine::registry_of(&func.name);
    if registry == "docker.io" && !func.name.starts_with("docker.io/") {
        bail!(
            "image {} names no registry to push to: name it REGISTRY/NAME in func.yaml, as in localhost:5000/{}",
            func.name,
            short_name(&func.name)
        );
    }
    Ok(registry)
}

/// Push `func`'s `name:version` to its [`registry`], with the credentials
/// of the docker config (as the server's pulls use).
pub async fn push(docker: &Docker, func: &FuncFile) -> anyhow::Result<()> {
    let image = func.image();
    let registry = registry(func)?;
    let credentials = Credentials::load(None)
        .map_err(|e| anyhow::anyhow!("cannot read the registry credentials: {e}"))?
        .for_image(&func.name);
    let mut progress = Progress::new();
    progress.step(&format!("Pushing {image} to {registry}"));
    let mut stream = docker.push_image(
        &func.name,
        Some(PushImageOptions {
            tag: Some(func.version().to_string()),
            ..Default::default()
        }),
        credentials,
    );
    while let Some(item) = stream.next().await {
        let info = checked(
            item,
            |i| stream_error(&i.error_detail, &i.error),
            &mut progress,
        )
        .map_err(|m| anyhow::anyhow!("pushing {image} to {registry} failed: {m}"))?;
        if let Some(status) = info.status {
            // A byte count comes with a bar: shown on a terminal only, so
            // that a log gets one line per layer state.
            let counting = info.progress.is_some();
            let line = match info.progress {
                Some(bar) => format!("Pushing {image}: {status} {bar}"),
                None => format!("Pushing {image}: {status}"),
            };
            progress.output(&line);
            if !counting || progress.is_terminal() {
                progress.step(&line);
            }
        }
    }
    progress.done();
    Ok(())
}
