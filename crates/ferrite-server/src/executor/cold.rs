//! The cold arm: a fresh container per call, the body on its stdin (a GET's
//! `payload` query parameter, as IronFunctions did), its stdout the answer.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response};
use bytes::Bytes;
use ferrite_engine::{ColdCall, Status};
use ferrite_model::contract::CallFacts;
use ferrite_model::contract::{output_content_type, payload_parameter, route_call_environment};
use ferrite_model::{ApiError, App, CallStatus, ErrorKind, Route};

use crate::metrics::calls::End;

use super::{too_large, Answer, CallLog, CallRequest, Executor, Outcome, RunError};

/// Run `call` of `route` in a fresh container.
pub(super) async fn run(
    executor: &Executor,
    app: &App,
    route: &Route,
    call: &CallRequest,
) -> Result<Outcome, RunError> {
    let (engine, max_response_bytes) = (&executor.engine, executor.max_response_bytes);
    let payload = if call.method == Method::GET {
        Bytes::from(payload_parameter(call.uri.query().unwrap_or_default()))
    } else {
        call.body.clone()
    };
    let facts = CallFacts {
        call_id: &call.call_id,
        method: call.method.as_str(),
        request_url: &call.request_url,
    };
    let env = route_call_environment(app, route, &call.headers, &facts);
    let cold = ColdCall::of(route, call.call_id.clone(), env, payload);
    let started = Instant::now();
    let ended = engine
        .run_cold(&cold, Duration::from_secs(route.idle_timeout))
        .await?;
    log_ended(&cold, &ended, started.elapsed().as_secs_f64() * 1000.0);
    Ok(outcome(ended, max_response_bytes))
}

fn log_ended(call: &ColdCall, ended: &ferrite_engine::Outcome, elapsed_ms: f64) {
    let status = format!("{:?}", ended.status);
    tracing::info!(
        call_id = %call.call_id, app = %call.app, path = %call.path, status, elapsed_ms,
        prestarted = ended.prestarted,
        container = %ended.container_id.get(..12).unwrap_or_default(), "call finished"
    );
    if !ended.log.is_empty() {
        tracing::debug!(
            call_id = %call.call_id, app = %call.app, path = %call.path,
            log_bytes = ended.log.len(), dropped_bytes = ended.log_dropped,
            "function wrote to stderr"
        );
    }
}

/// How a cold call ended, as a call status and what its client gets.
fn outcome(ended: ferrite_engine::Outcome, max_response_bytes: usize) -> Outcome {
    let internal = |message: String| ApiError::new(ErrorKind::Internal, message);
    let killed = matches!(ended.status, Status::Signaled(_) | Status::OutOfMemory);
    let mut outcome = match ended.status {
        Status::Success => {
            let content_type = output_content_type(&ended.stdout);
            let mut response = Response::new(Body::from(ended.stdout));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Outcome {
                status: CallStatus::Success,
                error: None,
                answer: Answer::Response(response),
                log: CallLog::empty(),
                end: End::Success,
                timings: None,
                streamed: None,
            }
        }
        Status::Exited(code) => {
            Outcome::failed(CallStatus::Error, internal(format!("exit code {code}")))
        }
        Status::Signaled(signal) => Outcome::failed(
            CallStatus::Error,
            internal(format!("killed by signal {signal}")),
        ),
        Status::OutOfMemory => {
            Outcome::failed(CallStatus::Error, internal("out of memory".to_string()))
        }
        Status::TimedOut => Outcome::failed(
            CallStatus::Timeout,
            ApiError::new(ErrorKind::GatewayTimeout, "Timed out"),
        ),
        Status::OutputTooLarge => Outcome::failed(
            CallStatus::Error,
            ApiError::new(ErrorKind::BadGateway, too_large(max_response_bytes)),
        ),
        Status::StartFailed(message) => Outcome::failed(
            CallStatus::Error,
            internal(format!("cannot start the function: {message}")),
        ),
    };
    if killed {
        outcome.end = End::Killed;
    }
    outcome.log = CallLog::Ready(ended.log);
    outcome.timings = Some(ended.timings);
    outcome
}
