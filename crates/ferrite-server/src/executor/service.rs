//! The service arm: the request, as HTTP, to a task of the route's Swarm
//! service (how the service is found, woken and forwarded to is the
//! services' business: [`crate::services`]).

use axum::http::Request;
use ferrite_model::contract::{set_fact_headers, CallFacts};
use ferrite_model::{App, CallStatus, Route};

use super::{Answer, CallLog, CallRequest, Outcome, RunError};
use crate::metrics::calls::End;
use crate::services::relay::Relay;
use crate::services::{ServiceError, ServiceState, Services};

/// Run `call` of `route` on its service, when this node runs services or
/// calls them through `relay` (a Swarm worker's node).
pub(super) async fn run(
    services: &ServiceState,
    relay: Option<&Relay>,
    app: &App,
    route: &Route,
    call: &CallRequest,
) -> Result<Outcome, RunError> {
    // A manager's node runs the service; a worker's calls its tasks.
    let by = match (services, relay) {
        (Ok(services), _) => By::Manager(services),
        (Err(_), Some(relay)) => By::Worker(relay),
        (Err(why), None) => return Err(ServiceError::NotHere(why.to_string()).into()),
    };
    let target = task_target(route, call);
    let uri = target.parse().map_err(|e| ServiceError::BadTarget {
        target: target.clone(),
        reason: format!("{e}"),
    })?;
    let mut request = Request::new(call.body.clone());
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = call.headers.clone();
    let facts = CallFacts {
        call_id: &call.call_id,
        method: call.method.as_str(),
        request_url: &call.request_url,
    };
    set_fact_headers(request.headers_mut(), &route.app_name, &route.path, &facts);
    let (response, timings) = match by {
        By::Manager(services) => services.call(app, route, request).await?,
        By::Worker(relay) => relay.call(route, request).await?,
    };
    let (status, error) = match response.status() {
        answered if answered.is_success() => (CallStatus::Success, None),
        answered => (
            CallStatus::Error,
            Some(format!("the service answered {answered}")),
        ),
    };
    Ok(Outcome {
        status,
        error,
        answer: Answer::Response(response),
        log: CallLog::empty(),
        end: End::from(status),
        timings: Some(timings),
        streamed: None,
    })
}

/// Who forwards a call to a service's task on this node.
enum By<'a> {
    Manager(&'a Services),
    Worker(&'a Relay),
}

/// What a task of `route`'s service is sent for `call`: the route's path
/// (or the one the call path chose) and the query, not `/r/{app}`.
pub(super) fn task_target(route: &Route, call: &CallRequest) -> String {
    let path = call.task_path.as_deref().unwrap_or(&route.path);
    match call.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    }
}
