//! Per-app API keys at the `/v1` gate: their tokens, and what a request
//! that presents one may reach.
//!
//! A token is `fk_<id>_<secret>`: 8 random bytes of id and 32 of secret,
//! both in hex. The store keeps the id and the SHA-256 of the secret (keys
//! are random, not passwords: a plain hash is enough), so a presented token
//! is looked up by its id and its secret's hash compared in constant time.
//!
//! The key is read from the store on every request that presents one, on
//! whichever node it reaches: a revoked key (its row deleted) is refused at
//! once everywhere, with no cache to tell. `/v1` is the management API, at
//! people's and scripts' rates, so the one read by primary key is cheap
//! beside the request it guards.
//!
//! A key reaches its app's paths (`/v1/apps/{app}` and below), the calls
//! of its app at Fn's `/v1/calls/{call}`, and `GET /v1/apps` (which then
//! lists its app alone); the methods its [`Access`] allows there. Anything
//! else (creating apps, `/v1/keys`, the node's endpoints) is the operator's.

use axum::extract::{MatchedPath, OriginalUri, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::RequestExt;
use ferrite_model::{Access, ApiError, ApiKey, Millis};
use ferrite_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every key's token starts with, so a key is told from a JWT (which
/// starts with `eyJ`) and found by people and secret scanners.
pub const TOKEN_PREFIX: &str = "fk_";
/// Random bytes of a key's id.
const ID_BYTES: usize = 8;
/// Random bytes of a key's secret.
const SECRET_BYTES: usize = 32;

/// The key a request came with, for the handlers that narrow what they
/// answer to its app (`GET /v1/apps`).
#[derive(Debug, Clone)]
pub struct KeyScope {
    /// The app the key reaches.
    pub app: String,
}

/// A new key's id, its token (shown once) and the hash of its secret (kept).
pub struct NewKey {
    pub id: String,
    pub token: String,
    pub secret_hash: [u8; 32],
}

impl NewKey {
    pub fn generate() -> Result<NewKey, ApiError> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut id)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|e| ApiError::internal(format!("cannot draw a random key: {e}")))?;
        let id = hex::encode(id);
        Ok(NewKey {
            token: format!("{TOKEN_PREFIX}{id}_{}", hex::encode(secret)),
            secret_hash: Sha256::digest(secret).into(),
            id,
        })
    }
}

/// The app key of an `Authorization: Bearer fk_...` header; `None` for no
/// header or another credential (the operator's JWT).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(TOKEN_PREFIX)).then_some(token)
}

/// A token split into its id and secret; `None` if it is not shaped as one.
fn parse(token: &str) -> Option<(&str, [u8; SECRET_BYTES])> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == 2 * ID_BYTES && id.bytes().all(|b| b.is_ascii_hexdigit());
    let mut bytes = [0u8; SECRET_BYTES];
    hex::decode_to_slice(secret, &mut bytes).ok()?;
    id_ok.then_some((id, bytes))
}

/// The key `token` proves, if it is known, its secret right and its time
/// not over: else 401, with one message for every wrong token (which part
/// was wrong is no business of the sender's).
pub async fn verify(store: &dyn Store, token: &str) -> Result<ApiKey, ApiError> {
    const REFUSED: &str = "unknown or revoked API key";
    let (id, secret) = parse(token).ok_or_else(|| ApiError::unauthorized(REFUSED))?;
    let stored = match store.get_key(id).await {
        Ok(stored) => stored,
        Err(StoreError::KeyNotFound(_)) => return Err(ApiError::unauthorized(REFUSED)),
        Err(e) => return Err(ApiError::new(e.kind(), e.to_string())),
    };
    let hash: [u8; 32] = Sha256::digest(secret).into();
    if !bool::from(hash.as_slice().ct_eq(stored.secret_hash.as_slice())) {
        tracing::info!(key = id, "refused an API key with a wrong secret");
        return Err(ApiError::unauthorized(REFUSED));
    }
    if stored.key.expired(Millis::now()) {
        return Err(ApiError::unauthorized(format!("API key {id} has expired")));
    }
    Ok(stored.key)
}

/// Whether `key` may make `request`: 403 for another app, an endpoint of
/// the operator's, or a method beyond its access.
pub async fn authorize(
    store: &dyn Store,
    key: &ApiKey,
    request: &mut Request,
) -> Result<(), ApiError> {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let template = template.strip_prefix("/v1").unwrap_or(&template);
    let params = request
        .extract_parts::<RawPathParams>()
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid URL path: {e}")))?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    let method = request.method().clone();
    // The whole path: a nested router's request has lost its `/v1`.
    let path = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_string(),
        |uri| uri.path().to_string(),
    );
    let target = match Target::of(template, &method) {
        Target::Operator => {
            return Err(ApiError::forbidden(format!(
                "{method} {path} is the operator's: an API key reaches only its app's paths \
                 (/v1/apps/{}/...)",
                key.app
            )))
        }
        Target::AppList => return Ok(()),
        Target::App(needs) => (param("app").unwrap_or_default(), needs),
        Target::Call(needs) => {
            let id = param("call").unwrap_or_default();
            match store.find_call(&id).await {
                Ok(call) => (call.app_name, needs),
                // Unknown to everyone: the handler says so.
                Err(StoreError::CallNotFound(_)) => return Ok(()),
                Err(e) => return Err(ApiError::new(e.kind(), e.to_string())),
            }
        }
    };
    let (app, needs) = target;
    if app != key.app {
        return Err(ApiError::forbidden(format!(
            "API key {} is for app {:?}, not {app:?}",
            key.id, key.app
        )));
    }
    if key.access < needs {
        return Err(ApiError::forbidden(format!(
            "API key {} has {} access to app {:?}; {method} {path} needs {}",
            key.id,
            key.access.as_str(),
            key.app,
            needs.as_str()
        )));
    }
    Ok(())
}

/// What a `/v1` endpoint (its route template, without `/v1`) is to a key.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Not for keys.
    Operator,
    /// `GET /apps`: answered with the key's app alone.
    AppList,
    /// A path of the app in `{app}`, with the access the method needs.
    App(Access),
    /// A call in `{call}`, whichever app it is of.
    Call(Access),
}

impl Target {
    fn of(template: &str, method: &Method) -> Target {
        let reads = method == Method::GET || method == Method::HEAD;
        let needs = |acting: bool| match (reads, acting) {
            (true, _) => Access::Read,
            (false, true) => Access::Call,
            (false, false) => Access::Manage,
        };
        if template == "/apps" {
            return if reads {
                Target::AppList
            } else {
                Target::Operator
            };
        }
        if template == "/apps/{app}" || template.starts_with("/apps/{app}/") {
            // Acting on calls: cancelling a queued one, replaying dead letters.
            let acting = (method == Method::DELETE && template == "/apps/{app}/calls/{id}")
                || (method == Method::POST
                    && template.starts_with("/apps/{app}/dead-letters/")
                    && template.ends_with("/replay"));
            return Target::App(needs(acting));
        }
        if reads && (template == "/calls/{call}" || template.starts_with("/calls/{call}/")) {
            return Target::Call(Access::Read);
        }
        Target::Operator
    }
}

/// The presented key of `request`, checked and allowed: its scope, to put
/// in the request for the handlers.
pub async fn admit(
    store: &dyn Store,
    token: &str,
    request: &mut Request,
) -> Result<KeyScope, ApiError> {
    let key = verify(store, token).await?;
    authorize(store, &key, request).await?;
    tracing::debug!(key = %key.id, app = %key.app, "admitted with an API key");
    Ok(KeyScope { app: key.app })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_to_their_id_and_secret() {
        let key = NewKey::generate().unwrap();
        let (id, secret) = parse(&key.token).unwrap();
        assert_eq!(id, key.id);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(secret)), key.secret_hash);
        assert_ne!(NewKey::generate().unwrap().token, key.token);
        for bad in [
            "fk_",
            "fk_abc_def",
            "eyJhbGciOi.x.y",
            &key.token[..key.token.len() - 2],
            &key.token.replace("fk_", "fk_zz"),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            format!("Bearer {}", key.token).parse().unwrap(),
        );
        assert_eq!(presented(&headers), Some(key.token.as_str()));
        headers.insert(AUTHORIZATION, "Bearer eyJ.a.b".parse().unwrap());
        assert_eq!(presented(&headers), None);
    }

    #[test]
    fn endpoints_need_the_access_their_method_does() {
        use Target::*;
        let cases = [
            ("/apps", Method::GET, AppList),
            ("/apps", Method::POST, Operator),
            ("/apps/{app}", Method::GET, App(Access::Read)),
            ("/apps/{app}", Method::PATCH, App(Access::Manage)),
            ("/apps/{app}/routes", Method::POST, App(Access::Manage)),
            ("/apps/{app}/calls/{id}", Method::DELETE, App(Access::Call)),
            (
                "/apps/{app}/dead-letters/{id}/replay",
                Method::POST,
                App(Access::Call),
            ),
            (
                "/apps/{app}/dead-letters/replay",
                Method::POST,
                App(Access::Call),
            ),
            (
                "/apps/{app}/dead-letters/{id}",
                Method::DELETE,
                App(Access::Manage),
            ),
            ("/calls/{call}/log", Method::GET, Call(Access::Read)),
            ("/keys", Method::GET, Operator),
            ("/keys/{id}", Method::DELETE, Operator),
            ("/services", Method::GET, Operator),
            ("/metrics", Method::GET, Operator),
            ("/appsx", Method::GET, Operator),
        ];
        for (template, method, expected) in cases {
            assert_eq!(
                Target::of(template, &method),
                expected,
                "{method} {template}"
            );
        }
    }
}
