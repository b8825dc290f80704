//! The registry service images go through, so that every node of the Swarm
//! can pull the image a route's service runs: the node that makes the
//! service image tags it under the registry and pushes it, and the service
//! names it there by digest (every node runs the same bytes).
//!
//! The credentials go with the push and with the service's create and
//! update requests: Swarm keeps them with the service (never in its spec
//! as `docker service inspect` shows it) and hands them to the nodes that
//! pull its tasks' image.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use bollard::Docker;
use futures_util::StreamExt;

/// Where service images are pushed, and with which credentials.
#[derive(Clone)]
pub struct ServiceRegistry {
    /// `host[:port]`, optionally with a path prefix (`host:5000/team`).
    pub address: String,
    pub credentials: Option<DockerCredentials>,
}

// By hand, so that the credentials never reach a log through `{:?}`.
impl std::fmt::Debug for ServiceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRegistry")
            .field("address", &self.address)
            .field("credentials", &self.credentials.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Why an image could not be pushed; never holds the credentials.
#[derive(Debug, thiserror::Error)]
#[error("pushing service image {image} to registry {registry} failed: {reason}")]
pub struct PushError {
    pub image: String,
    pub registry: String,
    pub reason: String,
}

/// Whether `address` can name a registry (and a path in it): the reference
/// it makes is given to the engine as is.
pub fn is_address(address: &str) -> bool {
    let (host, prefix) = address.split_once('/').unwrap_or((address, ""));
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    let prefix_ok = prefix.split('/').all(|part| {
        !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
    }) || prefix.is_empty();
    host_ok && prefix_ok && address.len() <= 255 && !address.ends_with('/')
}

/// `image` (`name:tag`) as named under `registry`: its own registry host,
/// when it has one, replaced (`127.0.0.1:5000/team` and
/// `ferrite/hello-service:latest-1a2b` give
/// `127.0.0.1:5000/team/ferrite/hello-service:latest-1a2b`). A reference
/// already under the registry is kept.
pub fn reference(registry: &str, image: &str) -> String {
    if image.starts_with(&format!("{registry}/")) {
        return image.to_string();
    }
    let path = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => image,
    };
    format!("{registry}/{path}")
}

/// `name:tag` split at the tag's colon (`latest` when there is none).
fn split_tag(reference: &str) -> (&str, &str) {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.rsplit_once(':') {
        Some((_, tag)) => (&reference[..reference.len() - tag.len() - 1], tag),
        None => (reference, "latest"),
    }
}

impl ServiceRegistry {
    /// Tag `image` (on the engine) under the registry and push it; the
    /// reference the services name: `repo:tag@sha256:...` once the engine
    /// knows the pushed digest, `repo:tag` otherwise.
    pub async fn push(&self, docker: &Docker, image: &str) -> Result<String, PushError> {
        let image = image.split_once('@').map_or(image, |(named, _)| named);
        let target = reference(&self.address, image);
        let (repo, tag) = split_tag(&target);
        let failed = |reason: String| PushError {
            image: image.to_string(),
            registry: self.address.clone(),
            reason,
        };
        if target != image {
            docker
                .tag_image(
                    image,
                    Some(TagImageOptions {
                        repo: Some(repo.to_string()),
                        tag: Some(tag.to_string()),
                    }),
                )
                .await
                .map_err(|e| failed(ferrite_engine::docker_reason(e)))?;
        }
        let mut stream = docker.push_image(
            repo,
            Some(PushImageOptions {
                tag: Some(tag.to_string()),
                ..Default::default()
            }),
            self.credentials.clone(),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(ferrite_engine::docker_reason(e)))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message).or(info.error) {
                return Err(failed(
                    message.split_whitespace().collect::<Vec<_>>().join(" "),
                ));
            }
        }
        let digest = docker
            .inspect_image(&target)
            .await
            .map_err(|e| failed(ferrite_engine::docker_reason(e)))?
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string));
        tracing::info!(image, reference = %target, digest = ?digest, "service image pushed to the registry");
        Ok(match digest {
            Some(digest) => format!("{target}@{digest}"),
            None => target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_under_the_registry() {
        assert_eq!(
            reference("127.0.0.1:5000", "ferrite/hello-service:latest-1a"),
            "127.0.0.1:5000/ferrite/hello-service:latest-1a"
        );
        assert_eq!(
            reference("reg.example.com/team", "other.io:443/x/y-service:v1-2b"),
            "reg.example.com/team/x/y-service:v1-2b"
        );
        assert_eq!(
            reference("127.0.0.1:5000", "127.0.0.1:5000/x:v1"),
            "127.0.0.1:5000/x:v1"
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x/y:v1"),
            ("127.0.0.1:5000/x/y", "v1")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x", "latest")
        );
    }

    #[test]
    fn addresses() {
        for good in ["127.0.0.1:5000", "reg.example.com/team/a", "localhost:5000"] {
            assert!(is_address(good), "{good}");
        }
        for bad in ["", "reg/", "reg/Team", "reg /x", "reg//x", "http://reg"] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let registry = ServiceRegistry {
            address: "r:1".into(),
            credentials: Some(DockerCredentials {
                password: Some("sekret".into()),
                ..Default::default()
            }),
        };
        assert!(!format!("{registry:?}").contains("sekret"));
    }
}
