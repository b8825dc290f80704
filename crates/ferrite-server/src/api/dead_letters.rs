//! `/v1/apps/{app}/dead-letters`: the async calls of an app that ended in
//! error or timeout for good (their retries used up), each kept with the
//! request that made it, to be looked at and replayed.
//!
//! A replay queues the kept request again as a new call (a new id, the same
//! method, URL, headers and body) through the one way calls are queued
//! ([`invoke::enqueue`]), under the app's limits, and only then takes the
//! letter out of the list: a replay that fails leaves it there, and two
//! replays of one letter at the same moment may both queue it (never none).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use ferrite_model::{ApiError, Call};
use ferrite_store::{CallFilter, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use super::calls::{self, CallList, PageQuery};
use super::error::ErrorBody;
use super::extract::{AppParam, CallParams, Param, Query};
use super::invoke::{self, NotQueued};
use super::{AppState, Error};
use crate::asynchronous::QueuedCall;
use crate::executor::CallRequest;

/// Letters replayed by one `POST .../dead-letters/replay`, at most: a
/// larger list takes several requests, each bounded in time and work.
pub const REPLAY_BATCH: u32 = 100;

/// Request headers shown as `***`: they may carry a caller's secrets.
const HIDDEN_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// A dead letter: its call, and the request that made it.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterAnswer {
    message: &'static str,
    call: Call,
    request: KeptRequest,
}

/// The request of a dead letter, as it came in.
#[derive(Serialize, ToSchema)]
pub struct KeptRequest {
    method: String,
    /// The URL as its client used it.
    url: String,
    /// Secrets (`Authorization`, `Cookie`, ...) shown as `***`.
    headers: BTreeMap<String, Vec<String>>,
    /// The body, as text when it is UTF-8, else in base64 (`body_encoding`).
    body: String,
    /// `utf-8` or `base64`.
    body_encoding: &'static str,
}

/// The answer of a replay.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    message: &'static str,
    /// The id of the dead letter's call.
    replay_of: String,
    /// The id of the new call.
    call_id: String,
}

/// The answer of replaying an app's whole list, a batch at a time.
#[derive(Serialize, ToSchema)]
pub struct ReplayedAll {
    message: String,
    /// Each letter queued again, oldest first.
    replayed: Vec<Replayed>,
    /// Letters still in the list (more than one batch, or after a failure):
    /// send the request again to go on.
    more: bool,
    /// Why the batch stopped early, when it did.
    error: Option<String>,
}

/// An app's dead letters, newest first, a page at a time.
#[utoipa::path(get, path = "/apps/{app}/dead-letters", tag = "dead letters",
    params(AppParam, PageQuery),
    responses(
        (status = 200, description = "A page of calls in the dead-letter list", body = CallList),
        (status = 400, description = "A bad `cursor` or `per_page`", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<CallList>, Error> {
    let filter = CallFilter {
        dead_letters: true,
        ..CallFilter::default()
    };
    calls::page(&state, &app, query, filter).await
}

/// One dead letter: its call and its request.
#[utoipa::path(get, path = "/apps/{app}/dead-letters/{id}", tag = "dead letters",
    params(CallParams),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterAnswer),
        (status = 404, description = "No such dead letter in this app", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Json<DeadLetterAnswer>, Error> {
    let queued = kept(&state, &app, &id).await?;
    let call = state.store.get_call(&app, &id).await?;
    let request = &queued.request;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        let shown = if HIDDEN_HEADERS.contains(&name.as_str()) {
            ferrite_model::redact::MASK.to_string()
        } else {
            value.to_str().unwrap_or_default().to_string()
        };
        headers.entry(name.to_string()).or_default().push(shown);
    }
    let (body, body_encoding) = match std::str::from_utf8(&request.body) {
        Ok(text) => (text.to_string(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&request.body),
            "base64",
        ),
    };
    Ok(Json(DeadLetterAnswer {
        message: "Dead letter loaded",
        call,
        request: KeptRequest {
            method: request.method.to_string(),
            url: request.request_url.clone(),
            headers,
            body,
            body_encoding,
        },
    }))
}

/// Take a dead letter out of the list without replaying it (its call
/// record stays in the history).
#[utoipa::path(delete, path = "/apps/{app}/dead-letters/{id}", tag = "dead letters",
    params(CallParams),
    responses(
        (status = 200, description = "Taken out of the list", body = ErrorBody),
        (status = 404, description = "No such dead letter in this app", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Json<serde_json::Value>, Error> {
    state.store.delete_dead_letter(&app, &id).await?;
    tracing::info!(call_id = %id, app = %app, "dead letter deleted");
    Ok(Json(
        serde_json::json!({ "message": "Dead letter deleted" }),
    ))
}

/// Queue a dead letter's request again, as a new call.
#[utoipa::path(post, path = "/apps/{app}/dead-letters/{id}/replay", tag = "dead letters",
    params(CallParams),
    responses(
        (status = 202, description = "Queued again as a new call", body = Replayed),
        (status = 400, description = "Its callback is one this server no longer sends", body = ErrorBody),
        (status = 404, description = "No such dead letter in this app, or its route is gone", body = ErrorBody),
        (status = 429, description = "The app has as many calls queued as its limit", body = ErrorBody),
        (status = 503, description = "The queue is unavailable", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Response {
    match replay_one(&state, &app, &id).await {
        Ok(replayed) => (StatusCode::ACCEPTED, Json(replayed)).into_response(),
        Err(Refusal::Gone(e) | Refusal::Api(e)) => e.into_response(),
        Err(Refusal::Queue(e)) => e.into_response(),
    }
}

/// Queue an app's dead letters again, oldest first, up to 100 a request.
#[utoipa::path(post, path = "/apps/{app}/dead-letters/replay", tag = "dead letters",
    params(AppParam),
    responses(
        (status = 200, description = "What was queued again, and whether letters remain", body = ReplayedAll),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn replay_all(
    State(state): State<AppState>,
    Param(app): Param<String>,
) -> Result<Json<ReplayedAll>, Error> {
    let letters = state
        .store
        .list_calls(
            &app,
            CallFilter {
                dead_letters: true,
                limit: REPLAY_BATCH,
                ..CallFilter::default()
            },
        )
        .await?;
    let mut replayed = Vec::with_capacity(letters.len());
    let mut error = None;
    // The page is newest first; the oldest go first.
    for letter in letters.iter().rev() {
        match replay_one(&state, &app, &letter.id).await {
            Ok(one) => replayed.push(one),
            // Taken meanwhile (another replay, a delete): nothing to do.
            Err(Refusal::Gone(_)) => {}
            Err(refusal) => {
                error = Some(format!("{}: {}", letter.id, refusal.message()));
                break;
            }
        }
    }
    let more = !state
        .store
        .list_calls(
            &app,
            CallFilter {
                dead_letters: true,
                limit: 1,
                ..CallFilter::default()
            },
        )
        .await?
        .is_empty();
    tracing::info!(app = %app, replayed = replayed.len(), more, "dead letters replayed");
    Ok(Json(ReplayedAll {
        message: format!("{} dead letters replayed", replayed.len()),
        replayed,
        more,
        error,
    }))
}

/// Why a replay did not happen.
enum Refusal {
    /// No such letter (any more).
    Gone(Error),
    Api(Error),
    Queue(NotQueued),
}

impl Refusal {
    fn message(&self) -> &str {
        match self {
            Refusal::Gone(Error(e)) | Refusal::Api(Error(e)) => &e.message,
            Refusal::Queue(e) => &e.error().message,
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Api(e.into())
    }
}

/// Queue the letter `id` of `app` again, then take it out of the list.
async fn replay_one(state: &AppState, app: &str, id: &str) -> Result<Replayed, Refusal> {
    let bytes = state
        .store
        .dead_letter(app, id)
        .await
        .map_err(|e| match e {
            StoreError::DeadLetterNotFound(_) => Refusal::Gone(e.into()),
            e => Refusal::Api(e.into()),
        })?;
    let queued = decoded(id, &bytes).map_err(Refusal::Api)?;
    let cached = state
        .routes
        .get(&*state.store, &queued.app, &queued.path)
        .await?;
    cached
        .gate
        .admit_queued(&*state.store)
        .await
        .map_err(|e| Refusal::Api(e.into()))?;
    let request = CallRequest {
        call_id: uuid::Uuid::now_v7().to_string(),
        ..queued.request
    };
    let call_id = invoke::enqueue(state, &cached, request)
        .await
        .map_err(Refusal::Queue)?;
    // Queued: the letter goes. Gone already (a replay at the same moment)
    // is not this replay's failure.
    match state.store.delete_dead_letter(app, id).await {
        Ok(()) | Err(StoreError::DeadLetterNotFound(_)) => {}
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "replayed, but the dead letter stays listed")
        }
    }
    tracing::info!(replay_of = %id, call_id = %call_id, app = %app, "dead letter replayed");
    Ok(Replayed {
        message: "Dead letter replayed",
        replay_of: id.to_string(),
        call_id,
    })
}

/// The request kept with letter `id` of `app`, decoded.
async fn kept(state: &AppState, app: &str, id: &str) -> Result<QueuedCall, Error> {
    decoded(id, &state.store.dead_letter(app, id).await?)
}

/// Letter `id`'s kept request, decoded.
fn decoded(id: &str, bytes: &[u8]) -> Result<QueuedCall, Error> {
    QueuedCall::decode(bytes).map_err(|e| {
        tracing::error!(call_id = %id, error = %e, "a dead letter cannot be read");
        Error(ApiError::internal(ferrite_model::error::text::INTERNAL))
    })
}
