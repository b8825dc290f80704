//! Engine errors: why a call could not be run at all. A function that ran
//! and failed (exit code, OOM, timeout) is an [`Outcome`](crate::Outcome), not
//! an error.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `DOCKER_HOST` names a transport we do not speak.
    #[error(
        "DOCKER_HOST {0:?} is not supported: use unix:///path/to/docker.sock or tcp://host:port"
    )]
    BadHost(String),
    /// `DOCKER_TLS_VERIFY` is set but the certificates cannot be used.
    #[error("DOCKER_CERT_PATH {path}: {reason}")]
    Tls { path: String, reason: String },
    #[error("cannot reach the Docker engine at {host}: {source}")]
    Unreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// `DOCKER_AUTH` or the docker config file does not parse.
    #[error("registry credentials: {0}")]
    Credentials(String),
    #[error("cannot pull image {image}: {reason}")]
    Pull { image: String, reason: String },
    /// The call's memory did not fit in the node's budget in time.
    #[error("node is at capacity: {needed} MiB did not become free within {waited_ms} ms (memory budget {budget} MiB)")]
    Overloaded {
        needed: u64,
        budget: u64,
        waited_ms: u64,
    },
    /// Every container of a hot route stayed busy for the whole wait.
    #[error(
        "all {containers} containers of the route stayed busy for {waited_ms} ms (max_concurrency)"
    )]
    Busy { containers: usize, waited_ms: u64 },
    /// The route asks for more memory than the node has at all.
    #[error("the route needs {needed} MiB, more than this node's memory budget of {budget} MiB")]
    TooLarge { needed: u64, budget: u64 },
    /// The engine is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The engine stopped answering (restarted, stopped, unreachable): calls
    /// are refused at once until it answers again and this node's old
    /// containers are gone.
    #[error("the Docker engine at {host} is not answering; calls are refused until it is back")]
    Down { host: String },
    #[error("Docker engine error: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// The hot socket directory cannot be made or is not Ferrite's alone.
    #[error("{0}")]
    SocketDir(String),
    /// The init could not be placed on the engine (its volume).
    #[error("cannot prepare the init for function containers: {0}")]
    Init(String),
    /// The container's output broke the init's framing.
    #[error("function container broke the init protocol: {0}")]
    Protocol(String),
}

impl EngineError {
    /// Whether the fault is the engine's availability (a retry elsewhere or
    /// later may work) rather than the request's.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. }
                | EngineError::Overloaded { .. }
                | EngineError::Busy { .. }
                | EngineError::ShuttingDown
                | EngineError::Down { .. }
                | EngineError::Docker(bollard::errors::Error::HyperResponseError { .. })
                | EngineError::Docker(bollard::errors::Error::IOError { .. })
                | EngineError::Docker(bollard::errors::Error::RequestTimeoutError)
                | EngineError::Docker(bollard::errors::Error::HyperLegacyError { .. })
        )
    }

    /// Whether the engine itself may be the cause (it failed a request, or a
    /// container's stream broke): worth a ping to tell a dead engine from a
    /// failing function or a refused request.
    pub(crate) fn may_be_engine(&self) -> bool {
        match self {
            EngineError::Docker(bollard::errors::Error::DockerResponseServerError { .. }) => false,
            EngineError::Docker(_) | EngineError::Unreachable { .. } | EngineError::Protocol(_) => {
                true
            }
            _ => false,
        }
    }
}

/// The engine's own words for a failed request or stream (a pull, a
/// build), without bollard's wrapping around them.
pub fn docker_reason(err: bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

impl From<ferrite_wire::stdio_http::HandshakeError> for EngineError {
    fn from(e: ferrite_wire::stdio_http::HandshakeError) -> EngineError {
        EngineError::Protocol(e.to_string())
    }
}
