//! The executor seam: a call, once admitted, is run here and nowhere else,
//! by the arm its route calls for (a cold container, a hot container, or a
//! route's Swarm service), and every arm answers one [`Outcome`]. Sync calls
//! send the outcome's answer to their client; async workers keep its body
//! as the call's output. Both record its status, error and log.
//!
//! Why a call could not run, whichever arm it was, is a [`RunError`], and
//! [`RunError::api_error`] is the one place that says what its client is
//! told. Nothing here renders an HTTP error: a failed outcome carries an
//! [`ApiError`] for the API's one renderer.

mod cold;
mod hot;
mod service;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, Uri};
use bytes::Bytes;
use ferrite_engine::{Engine, EngineError, PendingLog, Timings};
use ferrite_model::{ApiError, App, CallStatus, ErrorKind, Format, Route};
use ferrite_swarm::ForwardError;

use crate::metrics::calls::End;
use crate::services::relay::Relay;
use crate::services::{ServiceError, ServiceState};

/// A call as its client made it, owned so that it can wait in the queue.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub call_id: String,
    pub method: Method,
    /// The request's URI on this node (`/r/app/path?query`).
    pub uri: Uri,
    /// The URL as the client used it (`scheme://host/r/app/path?query`).
    pub request_url: String,
    /// The path a service's task is sent, when it is not the route's own:
    /// OpenFaaS' gateway sends `/function/NAME/a/b` to its function as
    /// `/a/b`, and functions built for it route on that path.
    pub task_path: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How a call ended, whichever arm ran it.
#[derive(Debug)]
pub struct Outcome {
    /// `Success`, `Error` or `Timeout`.
    pub status: CallStatus,
    /// Why it failed, for the call record.
    pub error: Option<String>,
    /// What its client gets.
    pub answer: Answer,
    /// The function's stderr, capped by the engine (none for a service:
    /// its tasks' stderr is the service's log).
    pub log: CallLog,
    /// How it ended, for the metrics: `status`, finer (killed) or earlier
    /// (rejected by the node's admission).
    pub end: End,
    /// How long its phases took, when it reached a container or a task.
    pub timings: Option<Timings>,
    /// Set when the answer's body is passed on as the function writes it
    /// (a hot function's chunked answer to a sync call): the call is not
    /// over until this says so, and may yet fail.
    pub streamed: Option<Streamed>,
}

/// The end of a call whose answer streams.
#[derive(Debug)]
pub struct Streamed(ferrite_engine::StreamEnded);

impl Streamed {
    /// Once the answer is over: `None` when it was whole (the outcome's
    /// status stands), else how the call ended and why.
    pub async fn failure(self) -> Option<(CallStatus, String)> {
        use ferrite_engine::StreamEnd;
        match self.0.wait().await {
            StreamEnd::Complete => None,
            StreamEnd::TimedOut => Some((CallStatus::Timeout, "Timed out".to_string())),
            StreamEnd::Abandoned => Some((CallStatus::Error, CLIENT_WENT_AWAY.to_string())),
            end @ (StreamEnd::TooLarge(_) | StreamEnd::Broken(_)) => {
                Some((CallStatus::Error, end.to_string()))
            }
        }
    }
}

/// Why a call whose answer was streaming ended early because of its caller.
pub const CLIENT_WENT_AWAY: &str = "client went away";

/// How much of a function's answer a call may pass on before it is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Read whole, within the response cap (async calls: their output is
    /// kept).
    Whole,
    /// A hot function's chunked answer passed on as it comes (sync calls).
    Stream,
}

/// What a call's client gets.
#[derive(Debug)]
pub enum Answer {
    /// What the function (or the service's task) answered, whatever its
    /// status.
    Response(Response<Body>),
    /// The function had the call and failed it (exit code, crash, timeout,
    /// an answer too large or broken).
    Failed(ApiError),
    /// The call could not run; `again` when the platform is the cause and a
    /// later try may work (engine away, node full or stopping, a service
    /// with no task to take it).
    NotRun { error: ApiError, again: bool },
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
    /// No stderr (a call that did not run, or a service's).
    pub fn empty() -> CallLog {
        CallLog::Ready(Bytes::new())
    }

    /// The whole log, once the engine has it.
    pub async fn bytes(self) -> Bytes {
        match self {
            CallLog::Ready(bytes) => bytes,
            CallLog::Pending(pending) => pending.wait().await.bytes,
        }
    }
}

/// Why a call could not run to an end through no fault of its function.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine could not run its container (engine unreachable, node
    /// overloaded or shutting down, image not pulled).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The route's service could not take it.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl RunError {
    /// What the call's client is told.
    pub fn api_error(&self) -> ApiError {
        let message = self.to_string();
        let kind = match self {
            RunError::Engine(e) => match e {
                EngineError::Pull { .. } => ErrorKind::Internal,
                EngineError::Protocol(_) => ErrorKind::BadGateway,
                EngineError::Overloaded { .. }
                | EngineError::TooLarge { .. }
                | EngineError::ShuttingDown
                | EngineError::Down { .. } => ErrorKind::Unavailable,
                _ if e.is_unavailable() => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            RunError::Service(e) => match e {
                ServiceError::NotHere(_)
                | ServiceError::Unmade(_)
                | ServiceError::Unpublished { .. }
                | ServiceError::NotReady { .. } => ErrorKind::Unavailable,
                ServiceError::TimedOut => ErrorKind::GatewayTimeout,
                ServiceError::BadTarget { .. } => ErrorKind::BadRequest,
                ServiceError::Forward { source, .. } => match source {
                    // Nothing reached a task: the service is not there for now.
                    ForwardError::NoTasks | ForwardError::Connect { .. } => ErrorKind::Unavailable,
                    ForwardError::Request { .. } | ForwardError::Lost { .. } => {
                        ErrorKind::BadGateway
                    }
                    ForwardError::BadRequest(why) => return ApiError::bad_request(why.clone()),
                },
            },
        };
        ApiError::new(kind, message)
    }

    /// Whether the platform rather than the call is the cause, so that a
    /// later try may work: an async call goes back to the queue for it.
    fn again(&self) -> bool {
        match self {
            RunError::Engine(e) => e.is_unavailable(),
            // A service with no ready task (at zero, starting, its task
            // killed), a node that runs no services (another may), an
            // engine away: nothing reached a task.
            RunError::Service(e) => match e {
                ServiceError::NotReady { .. }
                | ServiceError::NotHere(_)
                | ServiceError::Unpublished { .. }
                | ServiceError::Forward {
                    source: ForwardError::NoTasks | ForwardError::Connect { .. },
                    ..
                } => true,
                // The task's node died under the call: an async call runs
                // again elsewhere (at least once), as one whose Ferrite node
                // died does; the sync caller gets the 502.
                ServiceError::Forward {
                    source: ForwardError::Lost { .. },
                    ..
                } => true,
                ServiceError::Unmade(e) => e.is_transient(),
                _ => false,
            },
        }
    }

    /// Whether the node's admission turned the call away (no memory, no
    /// free slot of a hot route within the wait, or more than the node has).
    fn admission(&self) -> bool {
        matches!(
            self,
            RunError::Engine(
                EngineError::Overloaded { .. }
                    | EngineError::Busy { .. }
                    | EngineError::TooLarge { .. }
            )
        )
    }

    /// Whether the function had the call before it failed (it timed out or
    /// broke its answer), so that it counts as a run of the call.
    fn reached_function(&self) -> bool {
        matches!(
            self,
            RunError::Service(
                ServiceError::TimedOut
                    | ServiceError::Forward {
                        source: ForwardError::Request { .. },
                        ..
                    }
            )
        )
    }
}

impl Outcome {
    /// The function failed the call: `status`, and `error` for its client.
    fn failed(status: CallStatus, error: ApiError) -> Outcome {
        Outcome {
            status,
            error: Some(error.message.clone()),
            answer: Answer::Failed(error),
            log: CallLog::empty(),
            end: End::from(status),
            timings: None,
            streamed: None,
        }
    }

    /// How a call that hit `err` ended.
    fn from_error(err: &RunError) -> Outcome {
        let error = err.api_error();
        let status = match error.kind {
            ErrorKind::GatewayTimeout => CallStatus::Timeout,
            _ => CallStatus::Error,
        };
        if err.reached_function() {
            return Outcome::failed(status, error);
        }
        Outcome {
            status,
            error: Some(error.message.clone()),
            answer: Answer::NotRun {
                error,
                again: err.again(),
            },
            log: CallLog::empty(),
            end: if err.admission() {
                End::Rejected
            } else {
                End::from(status)
            },
            timings: None,
            streamed: None,
        }
    }
}

/// The one way a call runs on this node.
#[derive(Clone)]
pub struct Executor {
    /// Runs the containers of cold and hot routes.
    pub engine: Arc<Engine>,
    /// Routes with a service section run here, or why not.
    pub services: ServiceState,
    /// On a Swarm worker's node: calls to service routes go to their tasks.
    pub relay: Option<Arc<Relay>>,
    /// Largest function response read whole.
    pub max_response_bytes: usize,
    /// Largest answer streamed to a sync caller.
    pub max_streamed_bytes: u64,
}

/// Which arm runs a route's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// A fresh container per call, the body on its stdin.
    Cold,
    /// The request, as HTTP, to one of the route's warm containers.
    Hot,
    /// The request, as HTTP, to a task of the route's Swarm service.
    Service,
}

impl Arm {
    /// The arm of `route`: its service when it has one, else its format's.
    pub fn of(route: &Route) -> Arm {
        match route.format {
            _ if route.service.is_some() => Arm::Service,
            Format::Default => Arm::Cold,
            Format::Http => Arm::Hot,
        }
    }
}

impl Executor {
    /// Run `call` of `route` by its arm, its answer read whole, and say
    /// how it ended.
    pub async fn run(&self, app: &App, route: &Route, call: &CallRequest) -> Outcome {
        self.run_as(app, route, call, Delivery::Whole).await
    }

    async fn run_as(
        &self,
        app: &App,
        route: &Route,
        call: &CallRequest,
        delivery: Delivery,
    ) -> Outcome {
        let ran = match Arm::of(route) {
            Arm::Cold => cold::run(self, app, route, call).await,
            Arm::Hot => hot::run(self, app, route, call, delivery).await,
            Arm::Service => {
                service::run(&self.services, self.relay.as_deref(), app, route, call).await
            }
        };
        ran.unwrap_or_else(|e| {
            tracing::warn!(call_id = %call.call_id, app = %route.app_name, path = %route.path, error = %e, "call failed to run");
            Outcome::from_error(&e)
        })
    }
}

impl Executor {
    /// Run sync `call` of `route`: as [`Executor::run`], except that a hot
    /// function's chunked answer streams ([`Delivery::Stream`]) and a call
    /// to a service with no ready task runs on this node meanwhile, by the
    /// route's format (see `services::stand_in`), rather than wait for a
    /// task. When this node cannot run it (memory, engine), it goes to the
    /// service after all. Async calls do not: the queue already holds them
    /// until a task is ready, and they would take the node's memory share.
    pub async fn run_sync(&self, app: &App, route: &Route, call: &CallRequest) -> Outcome {
        let stand_in = match (&self.services, Arm::of(route)) {
            (Ok(services), Arm::Service) => services.stand_in(route),
            _ => None,
        };
        let Some(stand_in) = stand_in else {
            return self.run_as(app, route, call, Delivery::Stream).await;
        };
        let ran = {
            let _in_flight = stand_in.enter();
            match route.format {
                Format::Default => cold::run(self, app, route, call).await,
                // The function sees the request line a task would.
                Format::Http => match service::task_target(route, call).parse() {
                    Ok(uri) => {
                        let local = CallRequest {
                            uri,
                            ..call.clone()
                        };
                        hot::run(self, app, route, &local, Delivery::Stream).await
                    }
                    Err(_) => hot::run(self, app, route, call, Delivery::Stream).await,
                },
            }
        };
        match ran {
            Ok(outcome) => {
                tracing::info!(call_id = %call.call_id, app = %route.app_name, path = %route.path, status = %outcome.status, "the service had no ready task: the call ran on this node");
                outcome
            }
            Err(e) if e.again() => {
                tracing::info!(call_id = %call.call_id, app = %route.app_name, path = %route.path, error = %e, "the call cannot run on this node: it waits for the service");
                self.run(app, route, call).await
            }
            Err(e) => {
                tracing::warn!(call_id = %call.call_id, app = %route.app_name, path = %route.path, error = %e, "call failed to run");
                Outcome::from_error(&e)
            }
        }
    }
}

/// Why a function's answer was refused for its size.
fn too_large(max_response_bytes: usize) -> String {
    format!("function response is larger than the limit of {max_response_bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(source: ForwardError) -> RunError {
        RunError::Service(ServiceError::Forward {
            service: "svc".into(),
            source,
        })
    }

    #[test]
    fn a_service_with_no_task_did_not_run_and_may_later() {
        let outcome = Outcome::from_error(&forward(ForwardError::NoTasks));
        assert_eq!(outcome.status, CallStatus::Error);
        let Answer::NotRun { error, again } = outcome.answer else {
            panic!("{outcome:?}");
        };
        assert!(again);
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(
            error.message,
            "service svc: the service has no running task"
        );
    }

    #[test]
    fn a_service_that_cannot_take_a_call_now_may_later() {
        for (err, again) in [
            (
                ServiceError::NotReady {
                    service: "svc".into(),
                    waited_s: 30,
                },
                true,
            ),
            (ServiceError::NotHere("not a manager".into()), true),
            (
                ServiceError::Unmade(ferrite_swarm::SwarmError::Conflict("svc".into())),
                true,
            ),
            (
                ServiceError::Unmade(ferrite_swarm::SwarmError::Invalid("port".into())),
                false,
            ),
        ] {
            let outcome = Outcome::from_error(&RunError::Service(err));
            assert!(
                matches!(outcome.answer, Answer::NotRun { again: a, .. } if a == again),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn a_task_lost_with_its_node_is_a_502_and_an_async_call_runs_again() {
        let outcome = Outcome::from_error(&forward(ForwardError::Lost {
            addr: "10.0.0.9:8080".parse().unwrap(),
            reason: "Connection timed out".into(),
        }));
        assert_eq!(outcome.status, CallStatus::Error);
        let Answer::NotRun { error, again } = outcome.answer else {
            panic!("{outcome:?}");
        };
        assert!(again);
        assert_eq!(error.kind, ErrorKind::BadGateway);
        // A task that closed the connection (its function may have) is the
        // function's failure, counted against the route's retries.
        let closed = Outcome::from_error(&forward(ForwardError::Request {
            addr: "10.0.0.9:8080".parse().unwrap(),
            reason: "connection closed before message completed".into(),
        }));
        assert!(matches!(closed.answer, Answer::Failed(_)), "{closed:?}");
    }

    #[test]
    fn a_service_timeout_is_the_function_s() {
        let outcome = Outcome::from_error(&RunError::Service(ServiceError::TimedOut));
        assert_eq!(outcome.status, CallStatus::Timeout);
        assert_eq!(outcome.error.as_deref(), Some("Timed out"));
        let Answer::Failed(error) = outcome.answer else {
            panic!("{outcome:?}");
        };
        assert_eq!(error.kind, ErrorKind::GatewayTimeout);
    }

    #[test]
    fn a_request_that_cannot_be_sent_is_the_client_s() {
        let error = forward(ForwardError::BadRequest("bad uri".into())).api_error();
        assert_eq!(error, ApiError::bad_request("bad uri"));
        let outcome = Outcome::from_error(&RunError::Engine(EngineError::ShuttingDown));
        assert!(matches!(
            outcome.answer,
            Answer::NotRun { again: true, ref error } if error.kind == ErrorKind::Unavailable
        ));
    }
}
