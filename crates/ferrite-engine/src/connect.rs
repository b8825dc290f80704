//! Connecting to the Docker engine exactly as the docker CLI does:
//! `DOCKER_HOST` (`unix://` or `tcp://`), `DOCKER_TLS_VERIFY` (any non-empty
//! value turns TLS with verification on) and `DOCKER_CERT_PATH` (`ca.pem`,
//! `cert.pem`, `key.pem`; default `~/.docker`).

use std::path::PathBuf;

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::EngineError;

/// Seconds a single Engine API request may take until its answer's head
/// (connecting included): the longest a hung engine can hold a call before
/// this node notices. Streams (attach, pull) are not covered by it, and call
/// deadlines are enforced by us.
const REQUEST_TIMEOUT_S: u64 = 30;
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// `DOCKER_HOST`; the local socket when unset.
    pub host: Option<String>,
    /// `DOCKER_TLS_VERIFY`: verify the engine with `ca.pem` and present
    /// `cert.pem`/`key.pem`.
    pub tls_verify: bool,
    /// `DOCKER_CERT_PATH`; `~/.docker` when unset.
    pub cert_path: Option<PathBuf>,
}

impl ConnectSettings {
    /// The engine's address, for messages.
    pub fn host(&self) -> &str {
        self.host
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or(DEFAULT_HOST)
    }

    /// `DOCKER_CERT_PATH`, or `~/.docker` when unset.
    pub fn cert_dir(&self) -> PathBuf {
        self.cert_path.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".docker")
        })
    }

    /// Open a client and agree on an API version with the engine.
    pub async fn connect(&self) -> Result<Docker, EngineError> {
        let host = self.host();
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)?
        } else if host.starts_with("tcp://")
            || host.starts_with("http://")
            || host.starts_with("https://")
        {
            if self.tls_verify {
                let dir = self.cert_dir();
                for file in ["ca.pem", "cert.pem", "key.pem"] {
                    if !dir.join(file).is_file() {
                        return Err(EngineError::Tls {
                            path: dir.display().to_string(),
                            reason: format!("{file} is missing (DOCKER_TLS_VERIFY is set)"),
                        });
                    }
                }
                let address = host.replacen("http://", "tcp://", 1);
                Docker::connect_with_ssl(
                    &address,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    REQUEST_TIMEOUT_S,
                    API_DEFAULT_VERSION,
                )
                .map_err(|e| EngineError::Tls {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?
            } else {
                Docker::connect_with_http(host, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)?
            }
        } else {
            return Err(EngineError::BadHost(host.to_string()));
        };
        docker
            .negotiate_version()
            .await
            .map_err(|source| EngineError::Unreachable {
                host: host.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_scheme_is_refused() {
        let settings = ConnectSettings {
            host: Some("ssh://somewhere".into()),
            ..Default::default()
        };
        assert!(matches!(
            settings.connect().await,
            Err(EngineError::BadHost(_))
        ));
    }

    #[tokio::test]
    async fn tls_without_certificates_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ConnectSettings {
            host: Some("tcp://127.0.0.1:1".into()),
            tls_verify: true,
            cert_path: Some(dir.path().to_path_buf()),
        };
        let err = settings.connect().await.unwrap_err();
        assert!(err.to_string().contains("ca.pem is missing"), "{err}");
    }
}
