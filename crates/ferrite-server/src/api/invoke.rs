//! `/r/{app}/{path}`: call a function.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrite_engine::{ColdCall, EngineError, HotOutcome, HotRoute, Outcome, Status};
use ferrite_model::{ApiError, ErrorKind, Format, Route, RouteType};

use super::auth::Verifier;
use super::extract::{body_error, Param};
use super::{AppState, Error};
use crate::contract::{self, CallContext};

/// The response header carrying the call's id.
pub const CALL_ID_HEADER: &str = "fn-call-id";

pub async fn invoke(
    State(state): State<AppState>,
    Param((app_name, rest)): Param<(String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let path = format!("/{rest}");
    let cached = match state.routes.get(&*state.store, &app_name, &path).await {
        Ok(cached) => cached,
        Err(e) => return Error::from(e).into_response(),
    };
    let (route, app) = (&cached.0, &cached.1);
    let mut response = match call(&state, route, app, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    add_route_headers(&mut response, route);
    response
}

async fn call(
    state: &AppState,
    route: &Route,
    app: &ferrite_model::App,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    if let Some(key) = &route.jwt_key {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Verifier::new(key).check(auth)?;
    }
    if route.kind == RouteType::Async {
        return Err(ApiError::new(
            ErrorKind::NotImplemented,
            "async routes are not supported by this version yet",
        )
        .into());
    }
    let body = body.map_err(|rejection| body_error(&rejection, "for function calls"))?;
    let call_id = uuid::Uuid::now_v7().to_string();
    let request_url = request_url(headers, uri);
    let ctx = CallContext {
        app,
        route,
        call_id: &call_id,
        method: method.as_str(),
        request_url: &request_url,
        headers,
    };
    let started = Instant::now();
    let result = match route.format {
        Format::Default => call_cold(state, &ctx, uri, body).await,
        Format::Http => call_hot(state, &ctx, uri, body).await,
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut response = result.unwrap_or_else(|e| {
        tracing::warn!(call_id = %call_id, app = %route.app_name, path = %route.path, error = %e, elapsed_ms, "call failed to run");
        Error(engine_error(e)).into_response()
    });
    if let Ok(value) = HeaderValue::from_str(&call_id) {
        response.headers_mut().insert(CALL_ID_HEADER, value);
    }
    Ok(response)
}

/// A cold call: a fresh container, the body on its stdin.
async fn call_cold(
    state: &AppState,
    ctx: &CallContext<'_>,
    uri: &axum::http::Uri,
    body: Bytes,
) -> Result<Response, EngineError> {
    let route = ctx.route;
    // IronFunctions: a GET's payload is its `payload` query parameter.
    let payload = if ctx.method == Method::GET.as_str() {
        Bytes::from(payload_parameter(uri.query().unwrap_or_default()))
    } else {
        body
    };
    let call = ColdCall {
        call_id: ctx.call_id.to_string(),
        app: route.app_name.clone(),
        path: route.path.clone(),
        image: route.image.clone(),
        memory_mib: route.memory,
        timeout: Duration::from_secs(route.timeout),
        env: contract::environment(ctx),
        body: payload,
    };
    let started = Instant::now();
    let outcome = state
        .engine
        .run_cold(&call, Duration::from_secs(route.idle_timeout))
        .await?;
    log_outcome(&call, &outcome, started.elapsed().as_secs_f64() * 1000.0);
    Ok(answer(outcome, state.max_response_bytes))
}

/// Request headers that belong to one connection, not to the message.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A hot call: the request, as HTTP/1.1, to one of the route's warm containers.
async fn call_hot(
    state: &AppState,
    ctx: &CallContext<'_>,
    uri: &axum::http::Uri,
    body: Bytes,
) -> Result<Response, EngineError> {
    let route = ctx.route;
    let hot = HotRoute {
        app: route.app_name.clone(),
        path: route.path.clone(),
        image: route.image.clone(),
        memory_mib: route.memory,
        env: contract::hot_environment(ctx.app, route),
        max_concurrency: usize::try_from(route.max_concurrency).unwrap_or(usize::MAX),
        idle_timeout: Duration::from_secs(route.idle_timeout),
    };
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = axum::http::Request::builder()
        .method(ctx.method)
        .uri(target)
        .body(body)
        .map_err(|e| EngineError::Protocol(format!("cannot build the function's request: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in ctx.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in [
        ("fn-call-id", ctx.call_id),
        ("fn-app-name", route.app_name.as_str()),
        ("fn-route", route.path.as_str()),
        ("fn-request-url", ctx.request_url),
        ("fn-method", ctx.method),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    let started = Instant::now();
    let outcome = state
        .engine
        .run_hot(&hot, request, Duration::from_secs(route.timeout))
        .await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (status, response) = match outcome {
        HotOutcome::Response(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            (
                parts.status.as_u16().to_string(),
                Response::from_parts(parts, axum::body::Body::from(body)),
            )
        }
        HotOutcome::TimedOut => (
            "timeout".into(),
            failure(ErrorKind::GatewayTimeout, "Timed out".into()),
        ),
        HotOutcome::Broken(why) => ("broken".into(), failure(ErrorKind::BadGateway, why)),
        HotOutcome::TooLarge => (
            "too_large".into(),
            failure(
                ErrorKind::BadGateway,
                format!(
                    "function response is larger than the limit of {} bytes",
                    state.max_response_bytes
                ),
            ),
        ),
    };
    tracing::info!(call_id = %ctx.call_id, app = %route.app_name, path = %route.path, status, elapsed_ms, "hot call finished");
    Ok(response)
}

fn log_outcome(call: &ColdCall, outcome: &Outcome, elapsed_ms: f64) {
    let status = format!("{:?}", outcome.status);
    tracing::info!(
        call_id = %call.call_id, app = %call.app, path = %call.path, status, elapsed_ms,
        prestarted = outcome.prestarted,
        container = %outcome.container_id.get(..12).unwrap_or_default(), "call finished"
    );
    if !outcome.log.is_empty() {
        tracing::info!(
            call_id = %call.call_id, app = %call.app, path = %call.path,
            log = %String::from_utf8_lossy(&outcome.log), dropped_bytes = outcome.log_dropped,
            "function log"
        );
    }
}

/// A function's failure as the error JSON. Built here rather than through
/// `Error`, which logs 5xx answers as faults of the node.
fn failure(kind: ErrorKind, message: String) -> Response {
    let status = StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(ApiError::new(kind, message).body())).into_response()
}

/// The HTTP answer for a call that ran.
fn answer(outcome: Outcome, max_response_bytes: usize) -> Response {
    match outcome.status {
        Status::Success => {
            let content_type = if std::str::from_utf8(&outcome.stdout).is_ok() {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, content_type)], outcome.stdout).into_response()
        }
        Status::Exited(code) => failure(ErrorKind::Internal, format!("exit code {code}")),
        Status::Signaled(signal) => {
            failure(ErrorKind::Internal, format!("killed by signal {signal}"))
        }
        Status::OutOfMemory => failure(ErrorKind::Internal, "out of memory".to_string()),
        Status::TimedOut => failure(ErrorKind::GatewayTimeout, "Timed out".to_string()),
        Status::OutputTooLarge => failure(
            ErrorKind::BadGateway,
            format!("function response is larger than the limit of {max_response_bytes} bytes"),
        ),
        Status::StartFailed(message) => failure(
            ErrorKind::Internal,
            format!("cannot start the function: {message}"),
        ),
    }
}

fn engine_error(err: EngineError) -> ApiError {
    match &err {
        EngineError::Pull { .. } => ApiError::internal(err.to_string()),
        EngineError::Protocol(_) => ApiError::new(ErrorKind::BadGateway, err.to_string()),
        EngineError::Overloaded { .. }
        | EngineError::TooLarge { .. }
        | EngineError::ShuttingDown => ApiError::new(ErrorKind::Unavailable, err.to_string()),
        _ if err.is_unavailable() => ApiError::new(ErrorKind::Unavailable, err.to_string()),
        _ => ApiError::internal(err.to_string()),
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

/// The URL as the client used it: scheme (from `X-Forwarded-Proto` behind a
/// proxy), host (from `Host`), path and query.
fn request_url(headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = text("x-forwarded-proto").unwrap_or("http");
    let host = text("host").unwrap_or("localhost");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{scheme}://{host}{path}")
}

/// The decoded `payload` query parameter, or empty.
fn payload_parameter(query: &str) -> Vec<u8> {
    let uri: axum::http::Uri = format!("/?{query}").parse().unwrap_or_default();
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_bytes())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_from_query() {
        assert_eq!(
            payload_parameter("payload=%7B%22name%22%3A%22x%22%7D"),
            br#"{"name":"x"}"#
        );
        assert_eq!(payload_parameter("a=1&payload=hi+there"), b"hi there");
        assert!(payload_parameter("").is_empty());
    }

    #[test]
    fn url_as_the_client_used_it() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com:8080".parse().unwrap());
        let uri: axum::http::Uri = "/r/app/hello?x=1".parse().unwrap();
        assert_eq!(
            request_url(&headers, &uri),
            "http://example.com:8080/r/app/hello?x=1"
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(
            request_url(&headers, &uri),
            "https://example.com:8080/r/app/hello?x=1"
        );
    }
}
