//! Images: present locally, or pulled once (with credentials) when missing;
//! and the command an image runs, which the init needs to start it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

use crate::credentials::Credentials;
use crate::EngineError;

/// Pulls images on demand, one pull per image at a time.
pub struct Images {
    docker: Docker,
    credentials: Credentials,
    /// Concurrent calls needing the same missing image wait for one pull.
    pulling: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Split `repo[:tag]` (or `repo@digest`) as the pull API wants it.
fn split_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => (
            image[..image.len() - tag.len() - 1].to_string(),
            tag.to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Images {
    pub fn new(docker: Docker, credentials: Credentials) -> Images {
        Images {
            docker,
            credentials,
            pulling: Mutex::new(HashMap::new()),
        }
    }

    /// The argv the image runs (`Entrypoint` then `Cmd`), pulling the image
    /// first if the engine does not have it.
    pub async fn command(&self, image: &str) -> Result<Vec<String>, EngineError> {
        let inspect = match self.docker.inspect_image(image).await {
            Ok(inspect) => inspect,
            Err(e) if is_not_found(&e) => {
                self.pull(image).await?;
                self.docker.inspect_image(image).await?
            }
            Err(e) => return Err(e.into()),
        };
        let config = inspect.config.unwrap_or_default();
        let mut argv = config.entrypoint.unwrap_or_default();
        argv.extend(config.cmd.unwrap_or_default());
        Ok(argv)
    }

    async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let lock = {
            let mut pulling = self.pulling.lock().unwrap_or_else(|p| p.into_inner());
            pulling.entry(image.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(()); // pulled by the call we waited for
        }
        let (repo, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(repo),
            tag: (!tag.is_empty()).then_some(tag),
            ..Default::default()
        };
        tracing::info!(image, "pulling image");
        let mut stream =
            self.docker
                .create_image(Some(options), None, self.credentials.for_image(image));
        let failed = |reason: String| EngineError::Pull {
            image: image.to_string(),
            reason,
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(crate::docker_reason(e)))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(detail));
            }
        }
        tracing::info!(image, "image pulled");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references() {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            split_reference("ferrite/hello"),
            s("ferrite/hello", "latest")
        );
        assert_eq!(
            split_reference("ferrite/hello:1.2"),
            s("ferrite/hello", "1.2")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/x/y"),
            s("127.0.0.1:5000/x/y", "latest")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/x/y:v1"),
            s("127.0.0.1:5000/x/y", "v1")
        );
        assert_eq!(split_reference("x@sha256:ab"), s("x@sha256:ab", ""));
    }
}
