//! Plain `GET`s to the Engine API, for answers bollard cannot give us.
//!
//! bollard's types come from Docker's OpenAPI document, which leaves out a
//! task's `NetworksAttachments`, the only place the Swarm API says which
//! address a task has on a network (bollard drops the field while decoding).
//! Task discovery therefore reads `GET /tasks` itself, over the same
//! transport as bollard: `DOCKER_HOST` as a unix socket, plain TCP, or TLS
//! with `DOCKER_CERT_PATH`'s certificates when `DOCKER_TLS_VERIFY` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::SwarmError;
use ferrite_engine::{ConnectSettings, EngineError};

/// Longest a request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read: a task list of a big cluster is a few MiB.
const MAX_BODY: usize = 64 * 1024 * 1024;

enum Target {
    Unix(PathBuf),
    Tcp {
        /// `host:port`, for connecting and for the `Host` header.
        authority: String,
    },
    Tls {
        authority: String,
        server_name: ServerName<'static>,
        connector: TlsConnector,
    },
}

/// Makes `GET` requests to one engine, one connection each (they are rare:
/// a poll every few seconds).
pub(crate) struct EngineGet {
    target: Target,
    /// `/v1.41`: the API version bollard negotiated with the engine.
    version_prefix: String,
}

impl EngineGet {
    pub(crate) fn new(
        settings: &ConnectSettings,
        version: &bollard::ClientVersion,
    ) -> Result<EngineGet, SwarmError> {
        let host = settings.host();
        let target = if let Some(path) = host.strip_prefix("unix://") {
            Target::Unix(PathBuf::from(path))
        } else {
            let rest = ["tcp://", "http://", "https://"]
                .iter()
                .find_map(|scheme| host.strip_prefix(scheme))
                .ok_or_else(|| EngineError::BadHost(host.to_string()))?;
            let tls = settings.tls_verify || host.starts_with("https://");
            let authority = rest.trim_end_matches('/').to_string();
            let authority = if authority
                .rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                authority
            } else {
                // The docker CLI's default ports.
                format!("{authority}:{}", if tls { 2376 } else { 2375 })
            };
            if tls {
                tls_target(settings, authority)?
            } else {
                Target::Tcp { authority }
            }
        };
        Ok(EngineGet {
            target,
            version_prefix: format!("/v{}.{}", version.major_version, version.minor_version),
        })
    }

    /// `GET path?query` decoded from JSON. `query` values are encoded here.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, SwarmError> {
        let mut uri = format!("{}{path}", self.version_prefix);
        for (i, (k, v)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(k);
            uri.push('=');
            uri.push_str(&encode(v));
        }
        let failed = |reason: String| SwarmError::Transport {
            path: path.to_string(),
            reason,
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, self.get(&uri))
            .await
            .map_err(|_| failed(format!("no answer within {} s", TIMEOUT.as_secs())))?
            .map_err(failed)?;
        if !(200..300).contains(&status) {
            #[derive(serde::Deserialize)]
            struct Message {
                message: String,
            }
            let message = serde_json::from_slice::<Message>(&body)
                .map(|m| m.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(SwarmError::Api {
                path: path.to_string(),
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| failed(format!("cannot decode the answer: {e}")))
    }

    async fn get(&self, uri: &str) -> Result<(u16, Bytes), String> {
        match &self.target {
            Target::Unix(path) => {
                let io = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("connect {}: {e}", path.display()))?;
                send(io, "docker", uri).await
            }
            Target::Tcp { authority } => {
                let io = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| format!("connect {authority}: {e}"))?;
                send(io, authority, uri).await
            }
            Target::Tls {
                authority,
                server_name,
                connector,
            } => {
                let tcp = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| format!("connect {authority}: {e}"))?;
                let io = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {authority}: {e}"))?;
                send(io, authority, uri).await
            }
        }
    }
}

/// One request on a fresh connection; the whole answer, within [`MAX_BODY`].
async fn send<I>(io: I, host: &str, uri: &str) -> Result<(u16, Bytes), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection is driven until the answer is read, then dropped with
    // this task (the request says `Connection: close`).
    let driver = tokio::spawn(connection);
    let request = http::Request::get(uri)
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request {uri}: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

fn tls_target(settings: &ConnectSettings, authority: String) -> Result<Target, SwarmError> {
    let dir = settings.cert_dir();
    let tls_error = |reason: String| {
        SwarmError::Connect(EngineError::Tls {
            path: dir.display().to_string(),
            reason,
        })
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::pem_file_iter(dir.join("ca.pem"))
        .map_err(|e| tls_error(format!("ca.pem: {e}")))?;
    for cert in ca {
        let cert = cert.map_err(|e| tls_error(format!("ca.pem: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| tls_error(format!("ca.pem: {e}")))?;
    }
    let certs = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(format!("cert.pem: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem"))
        .map_err(|e| tls_error(format!("key.pem: {e}")))?;
    // ring, explicitly: the tree's one provider, whatever is installed
    // process-wide.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(e.to_string()))?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .map_err(|e| tls_error(e.to_string()))?;
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&authority)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let server_name =
        ServerName::try_from(host).map_err(|e| tls_error(format!("server name: {e}")))?;
    Ok(Target::Tls {
        authority,
        server_name,
        connector: TlsConnector::from(Arc::new(config)),
    })
}

/// Percent-encode a query value (everything but RFC 3986's unreserved bytes).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode(r#"{"service":["a b"]}"#),
            "%7B%22service%22%3A%5B%22a%20b%22%5D%7D"
        );
    }

    /// Run openssl (test set-up only), failing loudly.
    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed for this test");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate,
    /// as `DOCKER_CERT_PATH` holds them (ca.pem, cert.pem, key.pem).
    fn certificates(dir: &std::path::Path) {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca = vec![
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ferrite-test-ca",
        ];
        ca.extend(ec);
        ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
        openssl(dir, &ca);
        for (name, usage, san) in [
            ("server", "serverAuth", "subjectAltName=IP:127.0.0.1\n"),
            ("client", "clientAuth", ""),
        ] {
            let key = format!("{name}-key.pem");
            let csr = format!("{name}.csr");
            let mut req = vec!["req", "-nodes", "-subj", "/CN=ferrite-test"];
            req.extend(ec);
            req.extend(["-keyout", key.as_str(), "-out", csr.as_str()]);
            openssl(dir, &req);
            let ext = format!("{name}.ext");
            std::fs::write(dir.join(&ext), format!("{san}extendedKeyUsage={usage}\n")).unwrap();
            let cert = format!("{name}.pem");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-extfile",
                    &ext,
                    "-out",
                    &cert,
                ],
            );
        }
        std::fs::copy(dir.join("client.pem"), dir.join("cert.pem")).unwrap();
        std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
    }

    /// An engine over TLS that verifies its clients: the request line it got
    /// comes back as the JSON answer.
    async fn tls_engine(dir: &std::path::Path) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let body = serde_json::to_string(&[line]).unwrap();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn tls_engines_are_reached_with_the_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        certificates(dir.path());
        let addr = tls_engine(dir.path()).await;
        let version = bollard::ClientVersion {
            major_version: 1,
            minor_version: 41,
        };
        let settings = ConnectSettings {
            host: Some(format!("tcp://{addr}")),
            tls_verify: true,
            cert_path: Some(dir.path().to_path_buf()),
        };
        let get = EngineGet::new(&settings, &version).unwrap();
        let answer: Vec<String> = get
            .get_json("/tasks", &[("filters", r#"{"service":["s"]}"#)])
            .await
            .unwrap();
        assert_eq!(
            answer,
            vec![
                "GET /v1.41/tasks?filters=%7B%22service%22%3A%5B%22s%22%5D%7D HTTP/1.1".to_string()
            ]
        );

        // Without a client certificate the engine refuses the connection.
        std::fs::copy(dir.path().join("server.pem"), dir.path().join("cert.pem")).unwrap();
        std::fs::copy(
            dir.path().join("server-key.pem"),
            dir.path().join("key.pem"),
        )
        .unwrap();
        let wrong = EngineGet::new(&settings, &version).unwrap();
        let err = wrong
            .get_json::<Vec<String>>("/tasks", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, SwarmError::Transport { .. }), "{err}");
    }

    #[test]
    fn tcp_hosts_get_the_default_port() {
        let v = bollard::ClientVersion {
            major_version: 1,
            minor_version: 41,
        };
        let get = |host: &str| {
            EngineGet::new(
                &ConnectSettings {
                    host: Some(host.into()),
                    ..Default::default()
                },
                &v,
            )
        };
        match get("tcp://10.0.0.1").map(|g| g.target) {
            Ok(Target::Tcp { authority }) => assert_eq!(authority, "10.0.0.1:2375"),
            _ => panic!("expected plain TCP"),
        }
        match get("tcp://h:1234/").map(|g| g.target) {
            Ok(Target::Tcp { authority }) => assert_eq!(authority, "h:1234"),
            _ => panic!("expected plain TCP"),
        }
        assert!(get("ssh://h").is_err());
    }
}
