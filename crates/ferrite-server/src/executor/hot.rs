//! The hot arm: the request, as HTTP/1.1, to one of the route's warm
//! containers; the function's own answer goes back to its client, read
//! whole or, for a sync call answered chunked, as the function writes it
//! ([`Delivery`]).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, Response};
use ferrite_engine::{EngineError, HotReply, HotRoute};
use ferrite_model::contract::{route_hot_environment, set_fact_headers, CallFacts};
use ferrite_model::{ApiError, App, CallStatus, ErrorKind, Route};
use ferrite_wire::{hop_by_hop, HotOutcome};

use crate::metrics::calls::End;

use super::{
    too_large, Answer, CallLog, CallRequest, Delivery, Executor, Outcome, RunError, Streamed,
};

/// Run `call` of `route` on one of its warm containers.
pub(super) async fn run(
    executor: &Executor,
    app: &App,
    route: &Route,
    call: &CallRequest,
    delivery: Delivery,
) -> Result<Outcome, RunError> {
    let (engine, max_response_bytes) = (&executor.engine, executor.max_response_bytes);
    let hot = HotRoute::of(route, route_hot_environment(app, route));
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
        call_id: &call.call_id,
        method: call.method.as_str(),
        request_url: &call.request_url,
    };
    set_fact_headers(headers, &route.app_name, &route.path, &facts);
    let started = Instant::now();
    let timeout = Duration::from_secs(route.timeout);
    let (reply, log, timings) = match delivery {
        Delivery::Whole => {
            let ran = engine.run_hot(&hot, request, timeout).await?;
            (HotReply::Whole(ran.outcome), ran.log, ran.timings)
        }
        Delivery::Stream => {
            let ran = engine
                .run_hot_streaming(&hot, request, timeout, executor.max_streamed_bytes)
                .await?;
            (ran.reply, ran.log, ran.timings)
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let bad_gateway = |message: String| ApiError::new(ErrorKind::BadGateway, message);
    let mut outcome = match reply {
        HotReply::Whole(HotOutcome::Response(response)) => answered(response.map(Body::from), None),
        HotReply::Streaming { response, ended } => {
            answered(response.map(Body::new), Some(Streamed(ended)))
        }
        HotReply::Whole(HotOutcome::TimedOut) => Outcome::failed(
            CallStatus::Timeout,
            ApiError::new(ErrorKind::GatewayTimeout, "Timed out"),
        ),
        HotReply::Whole(HotOutcome::Broken(why)) => {
            Outcome::failed(CallStatus::Error, bad_gateway(why))
        }
        HotReply::Whole(HotOutcome::TooLarge) => Outcome::failed(
            CallStatus::Error,
            bad_gateway(too_large(max_response_bytes)),
        ),
    };
    outcome.log = CallLog::Pending(log);
    outcome.timings = Some(timings);
    // The function's own status when it answered (a failure says its kind).
    let http_status = match &outcome.answer {
        Answer::Response(response) => Some(response.status().as_u16()),
        Answer::Failed(_) | Answer::NotRun { .. } => None,
    };
    let streaming = outcome.streamed.is_some();
    tracing::info!(call_id = %call.call_id, app = %route.app_name, path = %route.path, status = %outcome.status, http_status, error = outcome.error.as_deref(), elapsed_ms, streaming, "hot call answered");
    Ok(outcome)
}

/// The function's own answer, whatever its status; `streamed` when its body
/// is still being written.
fn answered(response: Response<Body>, streamed: Option<Streamed>) -> Outcome {
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
    Outcome {
        status,
        error,
        answer: Answer::Response(Response::from_parts(parts, body)),
        log: CallLog::empty(),
        end: End::from(status),
        timings: None,
        streamed,
    }
}
