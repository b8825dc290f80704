//! Why a Swarm operation failed. Forwarding a request to a task has its
//! own error, [`ForwardError`](super::ForwardError): it is about one request,
//! not about the cluster.

use ferrite_engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// Connecting to the engine failed (host, TLS, unreachable).
    #[error(transparent)]
    Connect(#[from] EngineError),
    /// The engine is not part of a Swarm at all.
    #[error("the Docker engine at {host} is not in a Swarm (state: {state}): run `docker swarm init` on it, or point DOCKER_HOST at a manager")]
    NotActive { host: String, state: String },
    /// The engine is in a Swarm but cannot manage services.
    #[error("the Docker engine at {host} is a Swarm worker: services are managed only through a manager (point DOCKER_HOST at one)")]
    NotManager { host: String },
    /// The definition cannot become a Swarm service.
    #[error("invalid service definition: {0}")]
    Invalid(String),
    /// A service of that name exists but another owner (or nobody we know)
    /// created it: it is never changed or adopted.
    #[error("service {name} exists but is not owned by {owner} (its owner label: {found:?})")]
    NotOwned {
        name: String,
        owner: String,
        found: Option<String>,
    },
    /// The operating system gave no random bytes for a service's key.
    #[error("cannot make the service's key: {0}")]
    Key(String),
    #[error("no such service: {0}")]
    NotFound(String),
    /// The service kept changing under us (another node or the autoscaler
    /// updated it) even after a retry with the fresh version.
    #[error("service {0} changed while it was being updated; try again")]
    Conflict(String),
    /// A network of the wanted name exists but cannot carry services.
    #[error("network {name} exists with driver {driver:?} and scope {scope:?}; services need a swarm-scoped overlay network")]
    NetworkNotOverlay {
        name: String,
        driver: Option<String>,
        scope: Option<String>,
    },
    /// The image the service would run cannot be made from the route's.
    #[error("the route's service image cannot be made: {0}")]
    Image(#[from] crate::service_image::ServiceImageError),
    /// The service image could not be pushed to the registry nodes pull from.
    #[error(transparent)]
    Push(#[from] crate::registry::PushError),
    #[error("Docker engine error: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// A request bollard cannot make for us (see `engine_get`) failed on the
    /// way: connection, TLS, HTTP.
    #[error("Docker engine request {path}: {reason}")]
    Transport { path: String, reason: String },
    /// Such a request was answered with an error status.
    #[error("Docker engine request {path} answered {status}: {message}")]
    Api {
        path: String,
        status: u16,
        message: String,
    },
}

impl SwarmError {
    /// Whether retrying later (or on another node) may help: the engine was
    /// unreachable or busy, or the service changed under us.
    pub fn is_transient(&self) -> bool {
        match self {
            SwarmError::Connect(e) => e.is_unavailable(),
            SwarmError::Conflict(_) | SwarmError::Transport { .. } => true,
            SwarmError::Api { status, .. } => *status >= 500,
            SwarmError::Docker(e) => matches!(
                e,
                bollard::errors::Error::HyperResponseError { .. }
                    | bollard::errors::Error::IOError { .. }
                    | bollard::errors::Error::RequestTimeoutError
            ),
            _ => false,
        }
    }
}

/// Whether the engine answered 404 (no such service, network, ...).
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether the engine refused an update because the version we sent is no
/// longer the service's: someone else updated it in between. Swarm reports
/// it as a 500 (or 409 with some engines) saying "update out of sequence".
pub(crate) fn is_out_of_sequence(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 409 || message.contains("out of sequence"),
        _ => false,
    }
}

/// Whether a create failed because the name is taken (another node created
/// the same service at the same moment).
pub(crate) fn is_conflict(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 409 || message.contains("already exists"),
        _ => false,
    }
}
