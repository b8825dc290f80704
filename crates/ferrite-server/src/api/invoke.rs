//! `/r/{app}/{path}`: call a function.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferrite_model::{ApiError, App, Call, CallStatus, ErrorKind, Millis, Route, RouteType};

use super::auth::Verifier;
use super::extract::{body_error, Param};
use super::{AppState, Error};
use crate::asynchronous::{self, QueuedCall};
use crate::execute::{self, CallLog, CallRequest};
use crate::services::ServiceCall;

/// The response header carrying the call's id.
pub const CALL_ID_HEADER: &str = "fn-call-id";

/// The request is taken whole and its body read only once the route is
/// known and its `jwt_key` checked: a caller without the token must not make
/// the node read (and hold) a body of up to the call limit.
pub async fn invoke(
    State(state): State<AppState>,
    Param((app_name, rest)): Param<(String, String)>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let path = format!("/{rest}");
    let cached = match state.routes.get(&*state.store, &app_name, &path).await {
        Ok(cached) => cached,
        Err(e) => return Error::from(e).into_response(),
    };
    let (route, app) = (&cached.0, &cached.1);
    let mut response = match call(&state, route, app, uri, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    add_route_headers(&mut response, route);
    response
}

async fn call(
    state: &AppState,
    route: &Route,
    app: &App,
    uri: Uri,
    mut request: Request,
) -> Result<Response, Error> {
    if let Some(key) = &route.jwt_key {
        let auth = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Verifier::new(key).check(auth)?;
    }
    let method = request.method().clone();
    // The body extractor needs no headers: take them rather than copy them.
    let headers = std::mem::take(request.headers_mut());
    // Within the `/r` body limit (`DefaultBodyLimit`, in the request's
    // extensions): 413 beyond it.
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| body_error(&rejection, "for function calls"))?;
    let request = CallRequest {
        call_id: uuid::Uuid::now_v7().to_string(),
        request_url: execute::request_url(&headers, &uri),
        method,
        uri,
        headers,
        body,
    };
    let call_id = HeaderValue::from_str(&request.call_id).ok();
    let mut response = match route.kind {
        _ if route.service.is_some() => call_service(state, route, app, request).await,
        RouteType::Async => call_async(state, route, request).await?,
        RouteType::Sync => call_sync(state, route, app, request).await,
    };
    if let Some(value) = call_id {
        response.headers_mut().insert(CALL_ID_HEADER, value);
    }
    Ok(response)
}

/// Queue the call; the client gets its id (202) once it is durable.
async fn call_async(
    state: &AppState,
    route: &Route,
    request: CallRequest,
) -> Result<Response, Error> {
    let queued = QueuedCall {
        app: route.app_name.clone(),
        path: route.path.clone(),
        request,
    };
    asynchronous::enqueue(
        &*state.store,
        &*state.queue,
        &state.wake_workers,
        &queued,
        route.kind,
    )
    .await?;
    let body = serde_json::json!({ "call_id": queued.request.call_id });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Run the call now and answer with the function's response; the call goes
/// to the history once it has ended.
async fn call_sync(state: &AppState, route: &Route, app: &App, request: CallRequest) -> Response {
    let created = Millis::now();
    let ran = execute::run(
        &state.engine,
        state.max_response_bytes,
        app,
        route,
        &request,
    )
    .await;
    let (status, error, log, response) = match ran {
        Ok(ran) => (
            ran.status,
            ran.error,
            ran.log,
            ran.response.map(Body::from).into_response(),
        ),
        Err(e) => {
            tracing::warn!(call_id = %request.call_id, app = %route.app_name, path = %route.path, error = %e, "call failed to run");
            let error = execute::engine_error(&e);
            let message = error.message.clone();
            (
                CallStatus::Error,
                Some(message),
                CallLog::Ready(Bytes::new()),
                Error(error).into_response(),
            )
        }
    };
    let call = ended_sync_call(request.call_id, route, status, created, error);
    state.history.record(call, log).await;
    response
}

/// Forward the call to a task of the route's Swarm service; the call goes
/// to the history (its status from the task's answer) once it is answered.
async fn call_service(
    state: &AppState,
    route: &Route,
    app: &App,
    request: CallRequest,
) -> Response {
    let created = Millis::now();
    let answer = match &state.services {
        Ok(services) => {
            // The task sees the route's path and the query, not `/r/{app}`.
            let target = match request.uri.query() {
                Some(query) => format!("{}?{query}", route.path),
                None => route.path.clone(),
            };
            let mut forwarded = axum::http::Request::new(request.body);
            *forwarded.method_mut() = request.method;
            *forwarded.headers_mut() = request.headers;
            match target.parse() {
                Ok(uri) => {
                    *forwarded.uri_mut() = uri;
                    let call = ServiceCall {
                        call_id: request.call_id.clone(),
                        request_url: request.request_url,
                        request: forwarded,
                    };
                    services.call(app, route, call).await
                }
                Err(e) => Err(ApiError::bad_request(format!(
                    "request target {target:?}: {e}"
                ))),
            }
        }
        Err(reason) => Err(ApiError::new(ErrorKind::Unavailable, reason.to_string())),
    };
    let (status, error, response) = match answer {
        Ok(response) if response.status().is_success() => (CallStatus::Success, None, response),
        Ok(response) => {
            let error = format!("the service answered {}", response.status());
            (CallStatus::Error, Some(error), response)
        }
        Err(e) => {
            let status = match e.kind {
                ErrorKind::GatewayTimeout => CallStatus::Timeout,
                _ => CallStatus::Error,
            };
            (status, Some(e.message.clone()), Error(e).into_response())
        }
    };
    let call = ended_sync_call(request.call_id, route, status, created, error);
    // The task's stderr is the service's log (`docker service logs`).
    state
        .history
        .record(call, CallLog::Ready(Bytes::new()))
        .await;
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
