//! Who may use the management API (`/v1`), and the bearer tokens that prove
//! it (also those of a route's `jwt_key`).
//!
//! Without `JWT_AUTH_KEY`, `/v1` answers only clients whose TCP peer is on
//! the loopback interface: the operator on the node itself. A request that
//! carries a proxy header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`)
//! counts as remote even from loopback, because a reverse proxy on the same
//! host would otherwise open `/v1` to whoever reaches the proxy. With a key,
//! every `/v1` request, loopback included, needs a token signed with it.
//! Either way the check runs before any handler, so before a body is read.
//!
//! A request with a per-app key (`Bearer fk_...`) is the key's, not the
//! operator's, wherever it comes from: it reaches what the key allows
//! (`key_gate`), on a node with or without `JWT_AUTH_KEY`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::prelude::{Engine as _, BASE64_STANDARD};
use ferrite_model::ApiError;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{key_gate, AppState, Error};

/// How far a token's `exp` and `nbf` may be off, for clocks that drift
/// apart between the signer and this node.
const LEEWAY_SECS: u64 = 60;

/// Headers a proxy adds to say whom it forwards for: a loopback request
/// with one of them came from elsewhere.
const PROXY_HEADERS: [&str; 3] = ["Forwarded", "X-Forwarded-For", "X-Real-IP"];

/// Who may use `/v1` on this node.
pub enum Management {
    /// No key is set: clients on the loopback interface, not through a proxy.
    LoopbackOnly,
    /// `JWT_AUTH_KEY` is set: any client with a token signed with it.
    /// Boxed: a verifier is large, and the state holds one of these.
    Token(Box<Verifier>),
}

impl Management {
    pub fn new(key: Option<&str>) -> Management {
        match key {
            Some(key) => Management::Token(Box::new(Verifier::new(key))),
            None => Management::LoopbackOnly,
        }
    }

    /// Whether `request` may use `/v1` (or, with `basic`, OpenFaaS'
    /// `/system`); the error says what would let it.
    fn admit(&self, request: &Request, basic: Credentials) -> Result<(), ApiError> {
        match self {
            Management::Token(verifier) => {
                let header = request
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match header
                    .and_then(basic_password)
                    .filter(|_| basic == Credentials::BearerOrBasic)
                {
                    Some(password) => verifier.token(&password?),
                    None => verifier.check(header),
                }
            }
            Management::LoopbackOnly => {
                let peer = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip());
                local_client(peer, request.headers())?;
                same_site_browser(request.headers())
            }
        }
    }
}

/// What a request may prove itself with, once a key is set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Credentials {
    /// `Authorization: Bearer <token>`: `/v1`.
    Bearer,
    /// Also `Authorization: Basic`, the token as the password: what
    /// `faas-cli login` makes OpenFaaS' clients send to `/system`.
    BearerOrBasic,
}

/// The password of an `Authorization: Basic` value (`None`: another
/// scheme). The user name is not looked at: the token alone is the
/// credential, whoever it was given to.
fn basic_password(value: &str) -> Option<Result<String, ApiError>> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed = || {
        ApiError::unauthorized(
            "Authorization Basic must be base64 of \"user:token\", the token signed with the \
             server's JWT_AUTH_KEY",
        )
    };
    let decoded = BASE64_STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| malformed()));
    Some(decoded.and_then(|pair| {
        pair.split_once(':')
            .map(|(_, password)| password.to_string())
            .ok_or_else(malformed)
    }))
}

/// Without a key: the peer must be on loopback, and not a proxy speaking
/// for someone else. A request whose peer is unknown counts as remote.
fn local_client(peer: Option<IpAddr>, headers: &HeaderMap) -> Result<(), ApiError> {
    const OPEN_IT: &str = "set JWT_AUTH_KEY (or JWT_AUTH_KEY_FILE) on the server and send \
                           `Authorization: Bearer <token>` signed with it";
    if !peer.is_some_and(is_loopback) {
        return Err(ApiError::unauthorized(format!(
            "the management API answers only clients on the server's own machine while no key \
             is set: {OPEN_IT}"
        )));
    }
    if let Some(header) = PROXY_HEADERS
        .iter()
        .find(|name| headers.contains_key(**name))
    {
        return Err(ApiError::unauthorized(format!(
            "this request came through a proxy (it has a {header} header), so it counts as \
             remote, and the management API answers only clients on the server's own machine \
             while no key is set: {OPEN_IT}"
        )));
    }
    Ok(())
}

/// Without a key: refuse what a browser sends for another site's page to a
/// loopback node (see the module's docs). Clients that are not browsers
/// send neither `Origin` nor `Sec-Fetch-Site`, and name the node as they
/// reached it.
fn same_site_browser(headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !host.is_empty() && !loopback_host(host) {
        return Err(ApiError::unauthorized(format!(
            "while no key is set the management API answers only requests that name the node              as localhost or by its address, not {host:?} (a page of another site can rebind              its name to this machine): use http://127.0.0.1:<port>, or set JWT_AUTH_KEY"
        )));
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let foreign_origin = origin.is_some_and(|origin| {
        let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        !authority.eq_ignore_ascii_case(host)
    });
    if cross_site || foreign_origin {
        return Err(ApiError::unauthorized(
            "a browser sent this request for a page of another site; while no key is set the              management API answers only its own pages (the dashboard) and clients that are              not browsers",
        ));
    }
    Ok(())
}

/// A `Host` value that names this machine without DNS: `localhost` (and
/// names under it, RFC 6761) or an IP address, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8080`: an IPv6 address in brackets.
        Some(rest) => {
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<IpAddr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok()
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (`::ffff:127.0.0.1`, as a
/// dual-stack socket reports an IPv4 client).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks HS256 tokens against one key: `exp` is required, `nbf` is checked
/// when present, both with [`LEEWAY_SECS`].
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Check the `Authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<(), ApiError> {
        let Some(value) = header else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: expected \"Bearer <token>\"",
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be \"Bearer <token>\"")
            })?;
        self.token(token)
    }

    /// Check a token itself.
    pub fn token(&self, token: &str) -> Result<(), ApiError> {
        jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map(|_| ())
            .map_err(|e| {
                ApiError::unauthorized(match e.kind() {
                    JwtErrorKind::ExpiredSignature => "token has expired".to_string(),
                    JwtErrorKind::ImmatureSignature => {
                        "token is not valid yet (its nbf is in the future)".to_string()
                    }
                    JwtErrorKind::InvalidSignature => "token signature is invalid".to_string(),
                    JwtErrorKind::MissingRequiredClaim(claim) => {
                        format!("token lacks the {claim:?} claim")
                    }
                    _ => format!("token is invalid: {e}"),
                })
            })
    }
}

/// The `/v1` gate, before the handler runs: an app key's reach
/// ([`key_gate::admit`]), else [`Management::admit`].
pub async fn guard_management(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let admitted = match key_gate::presented(request.headers()).map(str::to_string) {
        Some(token) => key_gate::admit(&*state.store, &token, &mut request)
            .await
            .map(|scope| {
                request.extensions_mut().insert(scope);
            }),
        None => state.management.admit(&request, Credentials::Bearer),
    };
    if let Err(err) = admitted {
        return Error(err).into_response();
    }
    next.run(request).await
}

/// The gate of OpenFaaS' `/system` endpoints: `/v1`'s, with HTTP Basic
/// accepted too (see [`Credentials`]); refusals in plain text, as OpenFaaS'
/// gateway answers them.
pub async fn guard_openfaas(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(err) = state.management.admit(&request, Credentials::BearerOrBasic) {
        return Error(err).as_text();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn expiring(secret: &str, exp_offset: i64) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        token(secret, json!({ "exp": now + exp_offset, "sub": "test" }))
    }

    #[test]
    fn checks_signature_expiry_and_shape() {
        let v = Verifier::new("secret");
        let bearer = |t: String| format!("Bearer {t}");
        assert!(v.check(Some(&bearer(expiring("secret", 600)))).is_ok());
        assert!(v.check(None).unwrap_err().message.contains("missing"));
        assert!(v.check(Some("Basic abc")).is_err());
        assert!(v
            .check(Some(&bearer(expiring("other", 600))))
            .unwrap_err()
            .message
            .contains("signature"));
        assert!(v
            .check(Some(&bearer(expiring("secret", -3600))))
            .unwrap_err()
            .message
            .contains("expired"));
        assert!(v.check(Some("Bearer not.a.jwt")).is_err());
        let now = jsonwebtoken::get_current_timestamp();
        let no_exp = token("secret", json!({ "sub": "test" }));
        assert!(v
            .check(Some(&bearer(no_exp)))
            .unwrap_err()
            .message
            .contains("\"exp\""));
        let later = token("secret", json!({ "exp": now + 7200, "nbf": now + 3600 }));
        assert!(v
            .check(Some(&bearer(later)))
            .unwrap_err()
            .message
            .contains("not valid yet"));
        let skewed = token("secret", json!({ "exp": now + 7200, "nbf": now + 30 }));
        assert!(v.check(Some(&bearer(skewed))).is_ok(), "within the leeway");
    }

    #[test]
    fn basic_credentials_carry_the_token_as_password() {
        let encoded = BASE64_STANDARD.encode("admin:tok.en:with:colons");
        assert_eq!(
            basic_password(&format!("Basic {encoded}")).map(Result::unwrap),
            Some("tok.en:with:colons".to_string())
        );
        assert_eq!(
            basic_password(&format!("basic {}", BASE64_STANDARD.encode(":t"))).map(Result::unwrap),
            Some("t".to_string())
        );
        assert!(basic_password("Bearer x").is_none());
        assert!(basic_password("Basic !!!").is_some_and(|r| r.is_err()));
        let no_colon = format!("Basic {}", BASE64_STANDARD.encode("token"));
        assert!(basic_password(&no_colon).is_some_and(|r| r.is_err()));
    }

    #[test]
    fn loopback_without_proxy_headers_only() {
        let none = HeaderMap::new();
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(
                local_client(Some(local.parse().unwrap()), &none).is_ok(),
                "{local}"
            );
        }
        for remote in [
            "192.0.2.2",
            "172.17.0.1",
            "0.0.0.0",
            "fd00::2",
            "::ffff:10.0.0.1",
        ] {
            let err = local_client(Some(remote.parse().unwrap()), &none).unwrap_err();
            assert!(err.message.contains("JWT_AUTH_KEY"), "{remote}");
        }
        assert!(
            local_client(None, &none).is_err(),
            "an unknown peer is remote"
        );
        for header in PROXY_HEADERS {
            let mut headers = HeaderMap::new();
            let name = HeaderName::from_bytes(header.as_bytes()).unwrap();
            headers.insert(name, HeaderValue::from_static("for=192.0.2.9"));
            let err = local_client(Some("127.0.0.1".parse().unwrap()), &headers).unwrap_err();
            assert!(err.message.contains(header), "{header}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn browsers_reach_a_keyless_node_only_from_its_own_pages() {
        for ok in [
            vec![],
            vec![("host", "127.0.0.1:8080")],
            vec![("host", "localhost:8080")],
            vec![("host", "[::1]:8080")],
            vec![("host", "app.localhost")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![
                ("host", "localhost:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert!(same_site_browser(&headers(&ok)).is_ok(), "{ok:?}");
        }
        for refused in [
            vec![("host", "evil.example:8080")],
            vec![("host", "localhost.evil.example")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9999"),
            ],
            vec![("host", "127.0.0.1:8080"), ("origin", "null")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(
                same_site_browser(&headers(&refused)).is_err(),
                "{refused:?}"
            );
        }
    }
}
