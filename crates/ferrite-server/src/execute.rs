//! Running one call of a route on the engine, whatever its format, and
//! turning how it ended into a call status and an HTTP answer. Sync calls
//! send the answer to their client; async workers keep its body as the
//! call's output. Both record the status.

use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri};
use bytes::Bytes;
use ferrite_engine::{ColdCall, Engine, EngineError, HotRoute, Outcome, PendingLog, Status};
use ferrite_model::contract::{fact_headers, output_content_type, payload_parameter, CallFacts};
use ferrite_model::{ApiError, App, CallStatus, ErrorKind, Format, Route};
use ferrite_wire::{hop_by_hop, HotOutcome};

use crate::contract::{self, CallContext};

/// A call as its client made it, owned so that it can wait in the queue.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub call_id: String,
    pub method: Method,
    /// The request's URI on this node (`/r/app/path?query`).
    pub uri: Uri,
    /// The URL as the client used it (`scheme://host/r/app/path?query`).
    pub request_url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How a call that reached its function ended.
#[derive(Debug)]
pub struct Ran {
    /// `Success`, `Error` or `Timeout`.
    pub status: CallStatus,
    /// Why it failed, for the call record.
    pub error: Option<String>,
    /// What a sync client gets: the function's answer, or the error JSON.
    pub response: Response<Bytes>,
    /// The function's stderr, capped by the engine.
    pub log: CallLog,
}

/// A call's stderr: at hand for cold calls; for hot calls, complete a
/// moment after the response (the engine's stream is slower than the call's
/// socket), so waiting for it never delays an answer.
#[derive(Debug)]
pub enum CallLog {
    Ready(Bytes),
    Pending(PendingLog),
}

impl CallLog {
    pub async fn bytes(self) -> Bytes {
        match self {
            CallLog::Ready(bytes) => bytes,
            CallLog::Pending(pending) => pending.wait().await.bytes,
        }
    }
}

/// Run `call` of `route` on the engine. An [`EngineError`] means the
/// function did not run to an end through no fault of its own (engine
/// unreachable, node overloaded or shutting down, image not pulled).
pub async fn run(
    engine: &Engine,
    max_response_bytes: usize,
    app: &App,
    route: &Route,
    call: &CallRequest,
) -> Result<Ran, EngineError> {
    let ctx = CallContext {
        app,
        route,
        call_id: &call.call_id,
        method: call.method.as_str(),
        request_url: &call.request_url,
        headers: &call.headers,
    };
    match route.format {
        Format::Default => run_cold(engine, max_response_bytes, &ctx, call).await,
        Format::Http => run_hot(engine, max_response_bytes, &ctx, call).await,
    }
}

/// A cold call: a fresh container, the body on its stdin.
async fn run_cold(
    engine: &Engine,
    max_response_bytes: usize,
    ctx: &CallContext<'_>,
    call: &CallRequest,
) -> Result<Ran, EngineError> {
    let route = ctx.route;
    // IronFunctions: a GET's payload is its `payload` query parameter.
    let payload = if call.method == Method::GET {
        Bytes::from(payload_parameter(call.uri.query().unwrap_or_default()))
    } else {
        call.body.clone()
    };
    let cold = ColdCall {
        call_id: call.call_id.clone(),
        app: route.app_name.clone(),
        path: route.path.clone(),
        image: route.image.clone(),
        memory_mib: route.memory,
        confinement: route.confinement(),
        timeout: Duration::from_secs(route.timeout),
        env: contract::environment(ctx),
        body: payload,
    };
    let started = Instant::now();
    let outcome = engine
        .run_cold(&cold, Duration::from_secs(route.idle_timeout))
        .await?;
    log_outcome(&cold, &outcome, started.elapsed().as_secs_f64() * 1000.0);
    Ok(cold_answer(outcome, max_response_bytes))
}

/// A hot call: the request, as HTTP/1.1, to one of the route's warm containers.
async fn run_hot(
    engine: &Engine,
    max_response_bytes: usize,
    ctx: &CallContext<'_>,
    call: &CallRequest,
) -> Result<Ran, EngineError> {
    let route = ctx.route;
    let hot = HotRoute {
        app: route.app_name.clone(),
        path: route.path.clone(),
        image: route.image.clone(),
        memory_mib: route.memory,
        confinement: route.confinement(),
        env: contract::hot_environment(ctx.app, route),
        max_concurrency: usize::try_from(route.max_concurrency).unwrap_or(usize::MAX),
        idle_timeout: Duration::from_secs(route.idle_timeout),
    };
    let target = call.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = Request::builder()
        .method(call.method.clone())
        .uri(target)
        .body(call.body.clone())
        .map_err(|e| EngineError::Protocol(format!("cannot build the function's request: {e}")))?;
    let headers = request.headers_mut();
    *headers = call.headers.clone();
    hop_by_hop::strip(headers);
    headers.remove(header::CONTENT_LENGTH);
    let facts = CallFacts {
        call_id: ctx.call_id,
        method: ctx.method,
        request_url: ctx.request_url,
    };
    for (name, value) in fact_headers(&route.app_name, &route.path, &facts) {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    let started = Instant::now();
    let call = engine
        .run_hot(&hot, request, Duration::from_secs(route.timeout))
        .await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut ran = match call.outcome {
        HotOutcome::Response(response) => {
            let (mut parts, body) = response.into_parts();
            hop_by_hop::strip(&mut parts.headers);
            parts.headers.remove(header::CONTENT_LENGTH);
            // The function chose its status; a 5xx is its own failure.
            let (status, error) = if parts.status.is_server_error() {
                (
                    CallStatus::Error,
                    Some(format!("function answered {}", parts.status)),
                )
            } else {
                (CallStatus::Success, None)
            };
            Ran {
                status,
                error,
                response: Response::from_parts(parts, body),
                log: CallLog::Ready(Bytes::new()),
            }
        }
        HotOutcome::TimedOut => failed(CallStatus::Timeout, ErrorKind::GatewayTimeout, "Timed out"),
        HotOutcome::Broken(why) => failed(CallStatus::Error, ErrorKind::BadGateway, &why),
        HotOutcome::TooLarge => failed(
            CallStatus::Error,
            ErrorKind::BadGateway,
            &too_large(max_response_bytes),
        ),
    };
    ran.log = CallLog::Pending(call.log);
    tracing::info!(call_id = %ctx.call_id, app = %route.app_name, path = %route.path, status = %ran.status, http_status = ran.response.status().as_u16(), elapsed_ms, "hot call finished");
    Ok(ran)
}

fn too_large(max_response_bytes: usize) -> String {
    format!("function response is larger than the limit of {max_response_bytes} bytes")
}

fn log_outcome(call: &ColdCall, outcome: &Outcome, elapsed_ms: f64) {
    let status = format!("{:?}", outcome.status);
    tracing::info!(
        call_id = %call.call_id, app = %call.app, path = %call.path, status, elapsed_ms,
        prestarted = outcome.prestarted,
        container = %outcome.container_id.get(..12).unwrap_or_default(), "call finished"
    );
    if !outcome.log.is_empty() {
        tracing::debug!(
            call_id = %call.call_id, app = %call.app, path = %call.path,
            log_bytes = outcome.log.len(), dropped_bytes = outcome.log_dropped,
            "function wrote to stderr"
        );
    }
}

/// The error JSON with the status of `kind`.
pub fn error_response(kind: ErrorKind, message: &str) -> Response<Bytes> {
    let body = serde_json::to_vec(&crate::api::error::body(message)).unwrap_or_default();
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = crate::api::error::status(kind);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A function's failure: the call's status, and the error JSON for a sync client.
fn failed(status: CallStatus, kind: ErrorKind, message: &str) -> Ran {
    Ran {
        status,
        error: Some(message.to_string()),
        response: error_response(kind, message),
        log: CallLog::Ready(Bytes::new()),
    }
}

/// How a cold call ended, as a call status and an HTTP answer.
fn cold_answer(outcome: Outcome, max_response_bytes: usize) -> Ran {
    let mut ran = match outcome.status {
        Status::Success => {
            let content_type = output_content_type(&outcome.stdout);
            let mut response = Response::new(outcome.stdout);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ran {
                status: CallStatus::Success,
                error: None,
                response,
                log: CallLog::Ready(Bytes::new()),
            }
        }
        Status::Exited(code) => failed(
            CallStatus::Error,
            ErrorKind::Internal,
            &format!("exit code {code}"),
        ),
        Status::Signaled(signal) => failed(
            CallStatus::Error,
            ErrorKind::Internal,
            &format!("killed by signal {signal}"),
        ),
        Status::OutOfMemory => failed(CallStatus::Error, ErrorKind::Internal, "out of memory"),
        Status::TimedOut => failed(CallStatus::Timeout, ErrorKind::GatewayTimeout, "Timed out"),
        Status::OutputTooLarge => failed(
            CallStatus::Error,
            ErrorKind::BadGateway,
            &too_large(max_response_bytes),
        ),
        Status::StartFailed(message) => failed(
            CallStatus::Error,
            ErrorKind::Internal,
            &format!("cannot start the function: {message}"),
        ),
    };
    ran.log = CallLog::Ready(outcome.log);
    ran
}

/// The answer to a call that could not run: an engine failure as the error JSON.
pub fn engine_error(err: &EngineError) -> ApiError {
    match err {
        EngineError::Pull { .. } => ApiError::internal(err.to_string()),
        EngineError::Protocol(_) => ApiError::new(ErrorKind::BadGateway, err.to_string()),
        EngineError::Overloaded { .. }
        | EngineError::TooLarge { .. }
        | EngineError::ShuttingDown
        | EngineError::Down { .. } => ApiError::new(ErrorKind::Unavailable, err.to_string()),
        _ if err.is_unavailable() => ApiError::new(ErrorKind::Unavailable, err.to_string()),
        _ => ApiError::internal(err.to_string()),
    }
}

/// The URL as the client used it: scheme (from `X-Forwarded-Proto` behind a
/// proxy), host (from `Host`), path and query.
pub fn request_url(headers: &HeaderMap, uri: &Uri) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = text("x-forwarded-proto").unwrap_or("http");
    let host = text("host").unwrap_or("localhost");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{scheme}://{host}{path}")
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
        let uri: Uri = "/r/app/hello?x=1".parse().unwrap();
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
