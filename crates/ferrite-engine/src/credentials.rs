//! Registry credentials for pulls and pushes: `DOCKER_AUTH` (the content of a docker
//! config file, as IronFunctions read it) or else the docker CLI's own
//! `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`).
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run: they are
//! programs on the client's machine, and a server node should be given its
//! credentials explicitly.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

use crate::EngineError;

/// The registry key Docker Hub images are looked up under.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Credentials by registry host (`registry.example.com:5000`, `docker.io`).
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    by_registry: HashMap<String, DockerCredentials>,
}

/// `https://host:port/v1/` and `host:port` both name `host:port`; Docker Hub's
/// many spellings name `docker.io`.
fn normalize(registry: &str) -> String {
    let host = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

/// The registry an image reference pulls from: its first component when it
/// looks like a host (has `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

impl Credentials {
    /// Read `DOCKER_AUTH` if given, else the docker config file if present.
    pub fn load(docker_auth: Option<&str>) -> Result<Credentials, EngineError> {
        if let Some(text) = docker_auth.filter(|t| !t.trim().is_empty()) {
            return Self::parse(text)
                .map_err(|e| EngineError::Credentials(format!("DOCKER_AUTH: {e}")));
        }
        let path = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .map(|dir| dir.join("config.json"));
        match path.map(|p| (std::fs::read_to_string(&p), p)) {
            Some((Ok(text), path)) => Self::parse(&text)
                .map_err(|e| EngineError::Credentials(format!("{}: {e}", path.display()))),
            _ => Ok(Credentials::default()),
        }
    }

    /// Parse a docker config document: `{"auths":{...}}`, or the legacy
    /// form where the registries are the top-level keys.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let auths = match value.get("auths") {
            Some(auths) => auths.clone(),
            None => value,
        };
        // serde's message would quote the offending value, which may be a
        // password: say only what was expected.
        let entries: HashMap<String, Entry> = serde_json::from_value(auths).map_err(|_| {
            "unexpected shape: expected {\"auths\":{\"REGISTRY\":{\"auth\":\"base64 of user:password\"}}}"
                .to_string()
        })?;
        let mut by_registry = HashMap::new();
        for (registry, entry) in entries {
            let (mut username, mut password) = (entry.username, entry.password);
            if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| format!("auth of {registry:?} is not base64: {e}"))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| format!("auth of {registry:?} is not UTF-8"))?;
                let (user, pass) = decoded
                    .split_once(':')
                    .ok_or_else(|| format!("auth of {registry:?} is not user:password"))?;
                username = Some(user.to_string());
                password = Some(pass.to_string());
            }
            let server = if normalize(&registry) == "docker.io" {
                DOCKER_HUB.to_string()
            } else {
                normalize(&registry)
            };
            by_registry.insert(
                normalize(&registry),
                DockerCredentials {
                    username,
                    password,
                    identitytoken: entry.identitytoken,
                    serveraddress: Some(server),
                    ..Default::default()
                },
            );
        }
        Ok(Credentials { by_registry })
    }

    /// Credentials for pulling `image`, if any are known for its registry.
    pub fn for_image(&self, image: &str) -> Option<DockerCredentials> {
        self.by_registry.get(&registry_of(image)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_images() {
        assert_eq!(registry_of("ferrite/hello"), "docker.io");
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(
            registry_of("127.0.0.1:5000/ferrite/hello:1"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(registry_of("quay.io/a/b"), "quay.io");
    }

    #[test]
    fn parses_both_config_shapes() {
        // "user:pass" in base64
        let modern = r#"{"auths":{"https://127.0.0.1:5000/v1/":{"auth":"dXNlcjpwYXNz"}}}"#;
        let creds = Credentials::parse(modern).unwrap();
        let c = creds.for_image("127.0.0.1:5000/x").unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("user"), Some("pass"))
        );
        assert!(creds.for_image("other.io/x").is_none());

        let legacy = r#"{"https://index.docker.io/v1/":{"username":"u","password":"p"}}"#;
        let c = Credentials::parse(legacy)
            .unwrap()
            .for_image("ferrite/hello")
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.serveraddress.as_deref(), Some(DOCKER_HUB));
    }

    #[test]
    fn bad_documents_say_why() {
        assert!(Credentials::parse("nope").unwrap_err().contains("JSON"));
        assert!(Credentials::parse(r#"{"auths":{"r":{"auth":"!!"}}}"#)
            .unwrap_err()
            .contains("base64"));
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        let doc = format!(r#"{{"auths":{{"r":{{"auth":"{no_colon}"}}}}}}"#);
        assert!(Credentials::parse(&doc)
            .unwrap_err()
            .contains("user:password"));
    }
}
