//! Service images: a function image made into one that serves HTTP on a
//! port, so it can run as a Swarm service. The derived image is the source
//! image plus Ferrite's static binary at [`WATCHDOG_PATH`], which becomes
//! the entry point (`ferrite watchdog`) and runs the source image's own
//! entrypoint and cmd per call (`default`) or as hot children (`http`).
//!
//! Built by the engine from a one-file context (the Dockerfile), with the
//! legacy builder: multi-stage `COPY --from` works there, and BuildKit is
//! not available everywhere Ferrite runs. Nothing is pulled: both the source
//! and the watchdog image must be on the engine already.

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::is_not_found;

/// Where the watchdog sits in a derived image: out of the way of any path a
/// function image might use.
pub const WATCHDOG_PATH: &str = "/.ferrite/watchdog";
/// Ferrite's own image, the default source of the watchdog binary.
pub const DEFAULT_WATCHDOG_IMAGE: &str = "ferrite/ferrite:latest";
/// Where Ferrite's image keeps its (static) binary.
const FERRITE_IN_IMAGE: &str = "/usr/local/bin/ferrite";
/// Marks a derived image; its value is the watchdog's format.
pub const LABEL_WATCHDOG: &str = "org.ferrite.watchdog";
/// The image a derived image was built from, as it was named.
pub const LABEL_SOURCE: &str = "org.ferrite.watchdog.source";
/// The port a derived image's watchdog listens on unless told otherwise.
pub const WATCHDOG_PORT: u16 = 8080;

/// What to build.
#[derive(Debug, Clone)]
pub struct ServiceImageSpec {
    /// The function image (`ferrite/hello`, `registry:5000/x/y:v1`).
    pub source: String,
    /// The derived image's name; see [`default_tag`].
    pub tag: String,
    /// `default` or `http`: the function contract the source image follows.
    pub format: String,
    /// The image to take the static `ferrite` binary from.
    pub watchdog_image: String,
    /// Extra labels for the derived image (tests mark theirs).
    pub labels: HashMap<String, String>,
}

/// A derived image that was built.
#[derive(Debug, Clone)]
pub struct ServiceImage {
    pub id: String,
    pub tag: String,
    /// The source image's entrypoint then cmd: what the watchdog runs.
    pub command: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceImageError {
    #[error("image {0} is not on the Docker engine (build or pull it first)")]
    SourceMissing(String),
    #[error("watchdog image {0} is not on the Docker engine: build Ferrite's image (scripts/deploy-images.sh ferrite) or `docker load` it, or name another with FERRITE_WATCHDOG_IMAGE")]
    WatchdogMissing(String),
    #[error(
        "image {0} has neither an entrypoint nor a cmd: the watchdog would have nothing to run"
    )]
    NoCommand(String),
    #[error("image {0} already runs Ferrite's watchdog (label {LABEL_WATCHDOG}): build from its source image instead")]
    AlreadyDerived(String),
    #[error("{0:?} is not an image reference")]
    BadReference(String),
    #[error("format must be \"default\" or \"http\", got {0:?}")]
    BadFormat(String),
    #[error("building {tag} failed: {reason}")]
    Build { tag: String, reason: String },
    #[error("Docker engine error: {0}")]
    Docker(#[from] bollard::errors::Error),
}

/// The derived image's default name: the source's repository with
/// `-service` appended, same tag (`ferrite/hello:1.2` gives
/// `ferrite/hello-service:1.2`; a digest reference gives its digest as the
/// tag, `sha256-...`). A repository of its own keeps the source's tags
/// untouched and makes every derived image easy to find.
pub fn default_tag(source: &str) -> String {
    if let Some((repo, digest)) = source.split_once('@') {
        return format!("{repo}-service:{}", digest.replace(':', "-"));
    }
    let last = source.rsplit('/').next().unwrap_or(source);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &source[..source.len() - tag.len() - 1];
            format!("{repo}-service:{tag}")
        }
        None => format!("{source}-service:latest"),
    }
}

/// Whether `reference` can only be an image reference. It is written into
/// a Dockerfile's `FROM`, so this keeps anything that could start another
/// instruction (spaces, newlines, quotes) out.
fn is_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= 512
        && reference.starts_with(|c: char| c.is_ascii_alphanumeric())
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

/// The derived image's Dockerfile. The command goes into `CMD` (JSON, so
/// `docker run IMAGE other args` still replaces it as users expect) and the
/// watchdog's own arguments into `ENTRYPOINT`.
pub fn dockerfile(spec: &ServiceImageSpec, command: &[String]) -> String {
    let entrypoint = [WATCHDOG_PATH, "watchdog", "--format", &spec.format, "--"];
    // Serializing strings cannot fail; an empty list would only make the
    // watchdog refuse to start, with a clear message.
    let entrypoint = serde_json::to_string(&entrypoint).unwrap_or_else(|_| "[]".into());
    let cmd = serde_json::to_string(command).unwrap_or_else(|_| "[]".into());
    format!(
        "# Made by `ferrite services image`: {source} as a service (docs/watchdog.md).\n\
         FROM {watchdog} AS ferrite\n\
         FROM {source}\n\
         COPY --from=ferrite {FERRITE_IN_IMAGE} {WATCHDOG_PATH}\n\
         EXPOSE {WATCHDOG_PORT}\n\
         ENTRYPOINT {entrypoint}\n\
         CMD {cmd}\n",
        source = spec.source,
        watchdog = spec.watchdog_image,
    )
}

/// A build context holding only `Dockerfile`.
fn context(dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    builder.into_inner()
}

/// Build the derived image of `spec` on the engine.
pub async fn build(
    docker: &Docker,
    spec: &ServiceImageSpec,
) -> Result<ServiceImage, ServiceImageError> {
    for reference in [&spec.source, &spec.tag, &spec.watchdog_image] {
        if !is_reference(reference) {
            return Err(ServiceImageError::BadReference(reference.clone()));
        }
    }
    if !matches!(spec.format.as_str(), "default" | "http") {
        return Err(ServiceImageError::BadFormat(spec.format.clone()));
    }
    let source = match docker.inspect_image(&spec.source).await {
        Ok(inspect) => inspect,
        Err(e) if is_not_found(&e) => {
            return Err(ServiceImageError::SourceMissing(spec.source.clone()))
        }
        Err(e) => return Err(e.into()),
    };
    match docker.inspect_image(&spec.watchdog_image).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {
            return Err(ServiceImageError::WatchdogMissing(
                spec.watchdog_image.clone(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let config = source.config.unwrap_or_default();
    if config
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(LABEL_WATCHDOG))
    {
        return Err(ServiceImageError::AlreadyDerived(spec.source.clone()));
    }
    let mut command = config.entrypoint.unwrap_or_default();
    command.extend(config.cmd.unwrap_or_default());
    if command.is_empty() {
        return Err(ServiceImageError::NoCommand(spec.source.clone()));
    }

    let dockerfile = dockerfile(spec, &command);
    let failed = |reason: String| ServiceImageError::Build {
        tag: spec.tag.clone(),
        reason,
    };
    let context = context(&dockerfile).map_err(|e| failed(format!("build context: {e}")))?;
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_WATCHDOG.to_string(), spec.format.clone());
    labels.insert(LABEL_SOURCE.to_string(), spec.source.clone());
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".to_string(),
        t: Some(spec.tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some(labels),
        ..Default::default()
    };
    tracing::info!(source = %spec.source, tag = %spec.tag, format = %spec.format, "building service image");
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(bytes::Bytes::from(context))),
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| failed(ferrite_engine::docker_reason(e)))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message).or(info.error) {
            // One line: the CLI prints the error on one.
            return Err(failed(
                message.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
        }
        if let Some(line) = info
            .stream
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            tracing::debug!(tag = %spec.tag, "{line}");
        }
    }
    // The build's own report of the id depends on bollard's features; ask.
    let id = docker
        .inspect_image(&spec.tag)
        .await?
        .id
        .ok_or_else(|| failed("the engine reports no image id".to_string()))?;
    Ok(ServiceImage {
        id,
        tag: spec.tag.clone(),
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        assert_eq!(default_tag("ferrite/hello"), "ferrite/hello-service:latest");
        assert_eq!(
            default_tag("ferrite/hello:1.2"),
            "ferrite/hello-service:1.2"
        );
        assert_eq!(
            default_tag("127.0.0.1:5000/x/y"),
            "127.0.0.1:5000/x/y-service:latest"
        );
        assert_eq!(
            default_tag("127.0.0.1:5000/x/y:v1"),
            "127.0.0.1:5000/x/y-service:v1"
        );
        assert_eq!(default_tag("x@sha256:ab"), "x-service:sha256-ab");
    }

    #[test]
    fn references_cannot_smuggle_instructions() {
        assert!(is_reference("ferrite/hello:latest"));
        assert!(is_reference("127.0.0.1:5000/x/y@sha256:ab12"));
        assert!(!is_reference(""));
        assert!(!is_reference("ferrite/hello\nRUN rm -rf /"));
        assert!(!is_reference("a b"));
        assert!(!is_reference("-x"));
        assert!(!is_reference("\"x\""));
    }

    #[test]
    fn dockerfile_runs_the_source_command_under_the_watchdog() {
        let spec = ServiceImageSpec {
            source: "ferrite/hello".into(),
            tag: "ferrite/hello-service:latest".into(),
            format: "http".into(),
            watchdog_image: DEFAULT_WATCHDOG_IMAGE.into(),
            labels: HashMap::new(),
        };
        let command = vec!["/bin/sh".to_string(), "-c".into(), "echo \"$X\" \\".into()];
        let text = dockerfile(&spec, &command);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "FROM ferrite/ferrite:latest AS ferrite",
                "FROM ferrite/hello",
                "COPY --from=ferrite /usr/local/bin/ferrite /.ferrite/watchdog",
                "EXPOSE 8080",
                r#"ENTRYPOINT ["/.ferrite/watchdog","watchdog","--format","http","--"]"#,
                r#"CMD ["/bin/sh","-c","echo \"$X\" \\"]"#,
            ]
        );
    }

    #[test]
    fn context_is_a_tar_with_the_dockerfile() {
        let bytes = context("FROM scratch\n").unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("Dockerfile"));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "FROM scratch\n");
    }
}
