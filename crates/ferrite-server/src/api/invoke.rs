//! `/r/{app}/{path}`: call a function. A call is admitted here (the route's
//! token, the app's limits, the body read within its cap), then queued
//! (async routes) or handed to the executor and answered. A call turned
//! away or run here is counted and timed in its route's metrics (an async
//! call, by the worker that runs it).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferrite_model::contract::request_url;
use ferrite_model::error::text;
use ferrite_model::{ApiError, Call, CallStatus, Millis, Route, RouteType};
use tracing::Instrument;

use super::auth::Verifier;
use super::error::{CallErrorBody, ErrorBody};
use super::extract::{Param, RouteParams};
use super::{AppState, Error};
use crate::asynchronous::QueuedCall;
use crate::executor::{Answer, CallRequest};
use crate::metrics::calls::{on_written, Answering, End};
use crate::route_cache::Cached;

/// The response header carrying the call's id.
pub const CALL_ID_HEADER: &str = "fn-call-id";

/// The request is taken whole and its body read only once the route is
/// known and its `jwt_key` checked: a caller without the token must not make
/// the node read (and hold) a body of up to the call limit.
#[utoipa::path(method(get, post, put, patch, delete, head, options, trace),
    path = "/{app}/{*path}", tag = "invoke", params(RouteParams),
    security((), ("route_token" = [])),
    request_body(description = "Handed to the function as it is (at most `FN_MAX_REQUEST_BYTES`)",
        content((Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 200, description = "A sync call: what the function answered, with its status \
            (any, 200 unless an `http` function says otherwise) and headers, plus the route's `headers`; \
            a hot function's chunked answer streams as it is written, and ends without its last \
            chunk when it is cut (timeout, `FERRITE_MAX_STREAMED_BYTES`)",
            headers(("Fn-Call-Id" = String, description = "The call's id")),
            content((Vec<u8> = "application/octet-stream"))),
        (status = 202, description = "An async call: queued; its result is POSTed to \
            `X-Callback-Url` when it ends, if the call names one the server allows", body = Queued,
            headers(("Fn-Call-Id" = String, description = "The call's id"))),
        (status = 400, description = "An async call names a callback the server does not send to", body = ErrorBody),
        (status = 401, description = "The route has a `jwt_key` and the token is missing or bad", body = ErrorBody),
        (status = 404, description = "No such app or route", body = ErrorBody),
        (status = 413, description = "The body is over `FN_MAX_REQUEST_BYTES`", body = ErrorBody),
        (status = 429, description = "Over the app's limits (in flight, rate, queued)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "The function failed: a non-zero exit, a signal, out of memory, could not start", body = CallErrorBody),
        (status = 502, description = "The function's answer was too large or not HTTP", body = CallErrorBody),
        (status = 503, description = "The engine is away, or the node is full or stopping (with `request_id` once the call has an id)", body = CallErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 504, description = "The function ran past the route's timeout: `Timed out`", body = CallErrorBody),
    ))]
pub async fn invoke(
    State(state): State<AppState>,
    Param((app_name, rest)): Param<(String, String)>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let path = format!("/{rest}");
    call_route(&state, &app_name, &path, None, uri, request, Mode::AsRoute).await
}

/// Whether a call is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As its route says: its `type`, except that a service route is
    /// called now.
    AsRoute,
    /// Queued whatever the route (OpenFaaS' `/async-function`).
    Queued,
}

/// A call of route `path` of app `app_name`, admitted, run or queued
/// (`mode`) and answered: the one way every call path takes (`/r`,
/// OpenFaaS' `/function` and `/async-function`). A service's task is sent
/// `task_path`, or the route's path without it.
pub async fn call_route(
    state: &AppState,
    app_name: &str,
    path: &str,
    task_path: Option<String>,
    uri: Uri,
    request: Request,
    mode: Mode,
) -> Response {
    let cached = match state.routes.get(&*state.store, app_name, path).await {
        Ok(cached) => cached,
        // IronFunctions' words for a route the app does not have (a
        // missing app is `App not found`, from the store).
        Err(ferrite_store::StoreError::RouteNotFound { .. }) => {
            return Error(ApiError::not_found(text::CALLED_ROUTE_NOT_FOUND)).into_response()
        }
        Err(e) => return Error::from(e).into_response(),
    };
    let began = Instant::now();
    let mut response = match call(state, &cached, (uri, task_path), request, began, mode).await {
        Ok(response) => response,
        Err(e) => {
            cached.metrics.ended(End::Rejected, began.elapsed());
            e.into_response()
        }
    };
    add_route_headers(&mut response, &cached.route);
    response
}

/// Admit and run or queue the call; `Err` when it was turned away before
/// running.
async fn call(
    state: &AppState,
    cached: &Cached,
    (uri, task_path): (Uri, Option<String>),
    mut request: Request,
    began: Instant,
    mode: Mode,
) -> Result<Response, Error> {
    let (route, gate) = (&cached.route, &cached.gate);
    // An async call is queued whatever runs it (a worker hands it to the
    // executor, which picks the arm: its service, for a service route), as
    // is any call whose caller asked for the queue.
    let queued = match mode {
        Mode::Queued => true,
        Mode::AsRoute => route.kind == RouteType::Async,
    };
    if let Some(key) = &route.jwt_key {
        let auth = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Verifier::new(key).check(auth)?;
    }
    // The app's limits, before its body is read; counted in flight until
    // the answer is ready.
    let _in_flight = gate.admit()?;
    if queued {
        gate.admit_queued(&*state.store).await?;
    }
    let method = request.method().clone();
    // The body extractor needs no headers: take them rather than copy them.
    let headers = std::mem::take(request.headers_mut());
    // Within the `/r` body cap (`body_cap`, on the body itself): 413 beyond it.
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| state.call_body.body_error(&rejection))?;
    let request = CallRequest {
        call_id: uuid::Uuid::now_v7().to_string(),
        request_url: request_url(&headers, uri.path_and_query().map_or("/", |p| p.as_str())),
        method,
        uri,
        task_path,
        headers,
        body,
    };
    let call_id = HeaderValue::from_str(&request.call_id).ok();
    super::request_id::record_call_id(&request.call_id);
    let mut response = if queued {
        call_async(state, cached, request, began).await
    } else {
        call_now(state, cached, request, began).await
    };
    if let Some(value) = call_id {
        response.headers_mut().insert(CALL_ID_HEADER, value);
    }
    Ok(response)
}

/// The answer of an async call.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // never built: it describes the JSON `call_async` writes
pub struct Queued {
    /// The call's id: `/v1/calls/{call_id}` follows it.
    call_id: String,
}

/// Queue the call; the client gets its id (202) once it is durable.
async fn call_async(
    state: &AppState,
    cached: &Cached,
    request: CallRequest,
    began: Instant,
) -> Response {
    match enqueue(state, cached, request).await {
        Ok(call_id) => {
            let body = serde_json::json!({ "call_id": call_id });
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(e) => {
            let end = match e {
                NotQueued::Refused(_) => End::Rejected,
                NotQueued::Failed { .. } => End::Error,
            };
            cached.metrics.ended(end, began.elapsed());
            e.into_response()
        }
    }
}

/// Why a call was not queued.
pub(crate) enum NotQueued {
    /// Refused before it had a record (a callback this node may not send).
    Refused(ApiError),
    /// Its record says why (cancelled, with the reason): the answer names it.
    Failed { error: ApiError, call_id: String },
}

impl NotQueued {
    pub(crate) fn error(&self) -> &ApiError {
        match self {
            NotQueued::Refused(error) | NotQueued::Failed { error, .. } => error,
        }
    }
}

impl IntoResponse for NotQueued {
    fn into_response(self) -> Response {
        match self {
            NotQueued::Refused(error) => Error(error).into_response(),
            NotQueued::Failed { error, call_id } => Error(error).for_call(&call_id),
        }
    }
}

/// Put `request` in the queue for `cached`'s route: the one way a call gets
/// there (a call, or a dead letter replayed). Its callback is checked first;
/// the call id once the call is durable.
pub(crate) async fn enqueue(
    state: &AppState,
    cached: &Cached,
    request: CallRequest,
) -> Result<String, NotQueued> {
    let route = &cached.route;
    state
        .callbacks
        .receiver(&request.headers)
        .map_err(NotQueued::Refused)?;
    let queued = QueuedCall {
        app: route.app_name.clone(),
        path: route.path.clone(),
        request,
    };
    // Recorded as async: that is how it was taken, whatever the route's type.
    match state.intake.enqueue(&queued, RouteType::Async).await {
        Ok(()) => Ok(queued.request.call_id),
        Err(error) => Err(NotQueued::Failed {
            error,
            call_id: queued.request.call_id,
        }),
    }
}

/// Run the call now and answer with what it answered; the call goes to the
/// history once it has ended.
async fn call_now(
    state: &AppState,
    cached: &Cached,
    request: CallRequest,
    began: Instant,
) -> Response {
    let route = cached.serves(&request.call_id, &request.headers);
    let app = &cached.app;
    let created = Millis::now();
    let outcome = state.executor().run_sync(app, route, &request).await;
    if let Some(timings) = &outcome.timings {
        cached.metrics.ran(timings);
        cached.metrics.served(route.version);
    }
    // The answer phase starts now: the history, then the answer written.
    let answering = Answering::new(
        cached.metrics.clone(),
        outcome.end,
        began,
        outcome.timings.is_some(),
    );
    let call = ended_sync_call(
        request.call_id.clone(),
        route,
        outcome.status,
        created,
        outcome.error,
    );
    let response = match outcome.answer {
        Answer::Response(response) => response.into_response(),
        Answer::Failed(error) | Answer::NotRun { error, .. } => {
            Error(error).for_call(&request.call_id)
        }
    };
    let Some(streamed) = outcome.streamed else {
        state.history.record(call, outcome.log).await;
        return on_written(response, answering);
    };
    // The answer streams: the call ends, and is counted and recorded, when
    // its body is over (whole, cut, or abandoned by the client).
    let mut answering = answering;
    let (mut call, log) = (call, outcome.log);
    let ended = async move {
        if let Some((status, error)) = streamed.failure().await {
            call.status = status;
            call.error = Some(error);
            answering.end(End::from(status));
        }
        drop(answering);
        call.completed_at = Some(Millis::now());
        tracing::info!(call_id = %call.id, app = %call.app_name, path = %call.path, status = %call.status, error = call.error.as_deref(), "streamed answer over");
        (call, log)
    };
    // Its log line carries the request's id, as the call's others do.
    state
        .history
        .record_when(ended.instrument(tracing::Span::current()));
    response
}

/// The history record of a sync call that ended now: it started when it
/// was created (a sync call never waits in a queue) and ran once.
fn ended_sync_call(
    id: String,
    route: &Route,
    status: CallStatus,
    created: Millis,
    error: Option<String>,
) -> Call {
    Call {
        id,
        app_name: route.app_name.clone(),
        path: route.path.clone(),
        kind: route.kind,
        status,
        created_at: created,
        started_at: Some(created),
        completed_at: Some(Millis::now()),
        error,
        attempts: 1,
        version: Some(route.version),
    }
}

/// Route `headers` go on every answer of the route, each value.
fn add_route_headers(response: &mut Response, route: &Route) {
    for (name, values) in route.headers.iter().flatten() {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if !values.is_empty() {
            response.headers_mut().remove(&name);
        }
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().append(name.clone(), value);
            }
        }
    }
}
