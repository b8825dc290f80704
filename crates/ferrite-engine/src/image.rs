//! Images: present locally, or pulled once (with credentials) when missing;
//! the command an image runs, which the init needs to start it; and which
//! image each name used by a route names now, as the image events last
//! told (see `engine/images.rs`), so that containers made from an image a
//! name no longer names are not handed to calls.

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
    /// Image id per name (normalized), learnt after an image event; a name
    /// not here is taken to name what it named when its containers started.
    current: Mutex<HashMap<String, String>>,
    /// Names followed for others than this node's containers (the source
    /// images of service routes), normalized, with the spelling given.
    followed: Mutex<HashMap<String, String>>,
    /// Told when a followed name moves to another image.
    moves: tokio::sync::broadcast::Sender<ImageMoved>,
}

/// A followed image name now names another image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMoved {
    /// The name as it was given to [`Images::follow`].
    pub name: String,
    /// The id it names now.
    pub id: String,
}

/// Moves not yet read by a slow listener; an older one is dropped (the
/// listener is told it lagged and checks everything it follows).
const MOVES_BUFFER: usize = 64;

/// What an image was resolved to when a container was made from it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The argv the image runs (`Entrypoint` then `Cmd`).
    pub argv: Vec<String>,
    /// The image's id (`sha256:...`): the container is created from this,
    /// not from the name, so it runs exactly the image recorded here.
    pub id: String,
}

/// One spelling per name: `busybox`, `docker.io/library/busybox` and
/// `busybox:latest` are the same name to the engine and in its events.
pub fn normalize(name: &str) -> String {
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
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
            current: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashMap::new()),
            moves: tokio::sync::broadcast::channel(MOVES_BUFFER).0,
        }
    }

    fn followed(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.followed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follow exactly `names` (besides the images of this node's
    /// containers): their moves are sent to [`Images::moves`] listeners.
    pub fn follow(&self, names: impl IntoIterator<Item = String>) {
        *self.followed() = names.into_iter().map(|n| (normalize(&n), n)).collect();
    }

    /// The names followed, as given.
    pub fn followed_names(&self) -> Vec<String> {
        self.followed().values().cloned().collect()
    }

    /// Hear when a followed name moves.
    pub fn moves(&self) -> tokio::sync::broadcast::Receiver<ImageMoved> {
        self.moves.subscribe()
    }

    /// Tell the listeners that `name` names `id` now, if it is followed.
    pub fn moved(&self, name: &str, id: &str) {
        let followed = self.followed().get(&normalize(name)).cloned();
        if let Some(name) = followed {
            // No listener is not an error: nothing follows the moves yet.
            let _ = self.moves.send(ImageMoved {
                name,
                id: id.to_string(),
            });
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a container made from image `id` for `name` may still serve
    /// calls: `name` names `id` as far as the image events told. In memory
    /// only: cheap enough for every call.
    pub fn is_current(&self, name: &str, id: &str) -> bool {
        self.current()
            .get(&normalize(name))
            .is_none_or(|now| now == id)
    }

    /// `name` names `id` now (an image event said so).
    pub fn set_current(&self, name: &str, id: String) {
        self.current().insert(normalize(name), id);
    }

    /// Forget names no route uses any more (keeps the map bounded).
    pub fn keep_only(&self, names: &std::collections::HashSet<String>) {
        self.current().retain(|name, _| names.contains(name));
    }

    /// The id `name` names on the engine now; `None` when it names nothing.
    pub async fn id_of(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(name).await {
            Ok(inspect) => Ok(inspect.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The image's argv and id, pulling the image first if the engine does
    /// not have it.
    pub async fn resolve(&self, image: &str) -> Result<Resolved, EngineError> {
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
        Ok(Resolved {
            argv,
            // The engine always gives an id; the name is the fallback that
            // behaves as before (the container is made from the name).
            id: inspect.id.unwrap_or_else(|| image.to_string()),
        })
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
    use super::{normalize, split_reference};

    #[test]
    fn names() {
        assert_eq!(normalize("ferrite/hello"), "ferrite/hello:latest");
        assert_eq!(normalize("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(normalize("docker.io/x/y:1"), "x/y:1");
        assert_eq!(normalize("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(normalize("x@sha256:ab"), "x@sha256:ab");
    }

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
