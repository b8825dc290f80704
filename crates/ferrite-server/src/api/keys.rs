//! `/v1/keys`: the operator issues, lists and revokes per-app API keys
//! (docs/keys.md). A key's token is in the creation answer alone; the
//! store keeps the hash of its secret. Keys never reach these endpoints
//! (`key_gate`): only the operator manages keys.

use axum::extract::State;
use axum::Json;
use ferrite_model::{ApiKey, KeyInput, Millis};
use ferrite_store::KeyBounds;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::extract::{Body, KeyBody, Param};
use super::key_gate::NewKey;
use super::{AppState, Error, Message};

/// How many keys there may be: enough for a team per app and its scripts,
/// few enough that the list stays one page.
pub const KEY_BOUNDS: KeyBounds = KeyBounds {
    per_app: 32,
    total: 1024,
};

/// A key just made, with its token: the only answer that shows it.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    message: &'static str,
    key: ApiKey,
    /// Send as `Authorization: Bearer <token>`. Shown this once: the
    /// server keeps only its hash.
    token: String,
}

/// The answer about one key.
#[derive(Serialize, ToSchema)]
pub struct KeyAnswer {
    message: &'static str,
    key: ApiKey,
}

/// The answer of `GET /v1/keys`.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    message: &'static str,
    /// Every key, by app, then oldest first.
    keys: Vec<ApiKey>,
}

/// `{id}` of a key in a URL.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyParam {
    /// The key's id (`id` of its listing, the hex after `fk_` in its token).
    id: String,
}

/// Issue a key for one app.
#[utoipa::path(post, path = "/keys", tag = "keys", request_body = KeyBody,
    responses(
        (status = 200, description = "The key and its token, shown this once", body = CreatedKey),
        (status = 400, description = "A field breaks its rule, or the body is not JSON", body = ErrorBody),
        (status = 403, description = "An app key asked: keys are the operator's", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app (or the server) has as many keys as it may", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Body(input): Body<KeyInput>,
) -> Result<Json<CreatedKey>, Error> {
    let new = NewKey::generate()?;
    let key = ApiKey::create(new.id, input, Millis::now())?;
    state
        .store
        .create_key(&key, &new.secret_hash, KEY_BOUNDS)
        .await?;
    tracing::info!(key = %key.id, app = %key.app, access = key.access.as_str(), "API key issued");
    Ok(Json(CreatedKey {
        message: "API key successfully created",
        key,
        token: new.token,
    }))
}

/// List every key (never their tokens).
#[utoipa::path(get, path = "/keys", tag = "keys",
    responses(
        (status = 200, description = "Every key", body = KeyList),
        (status = 403, description = "An app key asked: keys are the operator's", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<KeyList>, Error> {
    Ok(Json(KeyList {
        message: "Successfully listed API keys",
        keys: state.store.list_keys().await?,
    }))
}

/// Load one key (never its token).
#[utoipa::path(get, path = "/keys/{id}", tag = "keys", params(KeyParam),
    responses(
        (status = 200, description = "The key", body = KeyAnswer),
        (status = 403, description = "An app key asked: keys are the operator's", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param(KeyParam { id }): Param<KeyParam>,
) -> Result<Json<KeyAnswer>, Error> {
    Ok(Json(KeyAnswer {
        message: "Successfully loaded API key",
        key: state.store.get_key(&id).await?.key,
    }))
}

/// Revoke a key: every node refuses it from the next request on.
#[utoipa::path(delete, path = "/keys/{id}", tag = "keys", params(KeyParam),
    responses(
        (status = 200, description = "The key is revoked", body = Message),
        (status = 403, description = "An app key asked: keys are the operator's", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Param(KeyParam { id }): Param<KeyParam>,
) -> Result<Json<Message>, Error> {
    state.store.delete_key(&id).await?;
    tracing::info!(key = %id, "API key revoked");
    Ok(Json(Message {
        message: "API key revoked",
    }))
}
