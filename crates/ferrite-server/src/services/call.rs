//! A call to a route that runs as a service: counted for the autoscaler,
//! held while the service scales up from zero or moves to a rebuilt image
//! (bounded, then 503), and forwarded to the task with the fewest
//! outstanding requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use ferrite_engine::Timings;
use ferrite_model::{App, Route};
use ferrite_swarm::{
    Addresses, Balancer, ForwardError, Forwarded, Forwarder, SwarmError, WatchdogKey,
};
use ferrite_wire::headers::{KEY_REFUSED_HEADER, WATCHDOG_KEY_HEADER};
use tokio::net::TcpStream;

use super::{Managed, Services};

/// How long one readiness probe of a new task may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// Pause between rounds of probes while a first task starts (each round
/// asks the engine for the tasks' addresses while the watcher has none).
pub(super) const PROBE_PAUSE: Duration = Duration::from_millis(50);

/// Why a service could not take a call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// This node runs no services; why.
    #[error("{0}")]
    NotHere(String),
    /// The route's service could not be made.
    #[error("{0}")]
    Unmade(#[from] SwarmError),
    /// No manager has published the service's key (on a worker's node: no
    /// manager runs the service yet, or none shares its decisions).
    #[error("service {service} is not known to this node yet: no manager has published it")]
    Unpublished { service: String },
    /// No task became ready while the call waited.
    #[error("service {service} has no ready task after {waited_s}s")]
    NotReady { service: String, waited_s: u64 },
    /// The call's timeout passed before the task answered.
    #[error("Timed out")]
    TimedOut,
    /// The call cannot go to a task at the route's path.
    #[error("request target {target:?}: {reason}")]
    BadTarget { target: String, reason: String },
    /// Forwarding to the service's tasks failed.
    #[error("service {service}: {source}")]
    Forward {
        service: String,
        #[source]
        source: ForwardError,
    },
}

impl Services {
    /// Run `request` (its target the route's path) on `route`'s service and
    /// answer with its task's response, and how long its phases took
    /// (container: waiting for a first task; run: the task's answer).
    pub(crate) async fn call(
        &self,
        app: &App,
        route: &Route,
        request: Request<Bytes>,
    ) -> Result<(Response<Body>, Timings), ServiceError> {
        let mut timings = Timings::default();
        let deadline = Instant::now() + Duration::from_secs(route.timeout);
        let mut managed = self.for_route(app, route).await?;
        if !self
            .engine
            .image_is_current(&route.image, &managed.source_id)
        {
            // The route's image was rebuilt and its service not moved yet:
            // move it now (whoever comes second finds it done), so that
            // this call is served by the new image.
            managed = self.ensure(app, route).await?;
        }
        let _in_flight = managed.meter.enter();
        let start_wait = self.settings.start_wait;
        let wait_until = || (Instant::now() + start_wait).min(deadline);
        // Addresses of tasks running the service's new image, while an
        // update to it is under way: the call goes only there.
        let pinned = if managed.renewing.load(Ordering::Acquire) {
            let waiting = Instant::now();
            let fresh = self.fresh_tasks(&managed, wait_until()).await?;
            timings.container = waiting.elapsed();
            fresh
        } else {
            None
        };
        // Addresses found ready while the watcher knows none yet.
        let mut ready: Option<Addresses> = None;
        if pinned.is_none() && managed.addresses.borrow().is_empty() {
            let waiting = Instant::now();
            timings.cold_start = true;
            self.activate(&managed).await;
            ready = Some(
                wait_ready(self, &managed, wait_until())
                    .await
                    .ok_or_else(|| ServiceError::NotReady {
                        service: managed.name.clone(),
                        waited_s: self.settings.start_wait.as_secs(),
                    })?,
            );
            timings.container = waiting.elapsed();
        }
        let addresses = || {
            if let Some(pinned) = &pinned {
                return pinned.clone();
            }
            let known = managed.addresses.borrow().clone();
            match &ready {
                Some(ready) if known.is_empty() => ready.clone(),
                _ => known,
            }
        };
        let key = managed.key();
        let call = forward_with_key(
            &self.forwarder,
            &managed.balancer,
            &addresses,
            &request,
            &key,
            || self.reread_key(&managed, &key),
        );
        answer_by(deadline, &managed.name, timings, call).await
    }

    /// While `managed` moves to a new image: the ready addresses of tasks
    /// running it, waiting for a first one until `until` (then 503);
    /// `None` once no task of another image is left and the watcher knows
    /// only new ones (the move is over), or when the tasks cannot be read.
    async fn fresh_tasks(
        &self,
        managed: &Managed,
        until: Instant,
    ) -> Result<Option<Addresses>, ServiceError> {
        let network = &self.settings.network;
        let port = managed.spec.port;
        loop {
            // The update failed and Swarm went back to the previous image:
            // its tasks serve (see `rollout`).
            if !managed.renewing.load(Ordering::Acquire) {
                return Ok(None);
            }
            let (fresh, stale) = match self
                .swarm
                .tasks_of_image(&managed.name, network, &managed.run_image)
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(service = %managed.name, error = %e, "cannot list the service's tasks");
                    return Ok(None);
                }
            };
            let known = managed.addresses.borrow().clone();
            if stale == 0 && known.iter().all(|a| fresh.contains(&a.ip())) {
                managed.renewing.store(false, Ordering::Release);
                return Ok(None);
            }
            let candidates: Vec<SocketAddr> = fresh
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            let ready = probe(&candidates).await;
            if !ready.is_empty() {
                return Ok(Some(Arc::from(ready)));
            }
            if Instant::now() + PROBE_PAUSE >= until {
                return Err(ServiceError::NotReady {
                    service: managed.name.clone(),
                    waited_s: self.settings.start_wait.as_secs(),
                });
            }
            tokio::time::sleep(PROBE_PAUSE).await;
        }
    }
}

/// The answer of `call` (forwarding to a task of `service`), within the
/// call's `deadline`, with the time it took in `timings.run`.
pub(super) async fn answer_by(
    deadline: Instant,
    service: &str,
    mut timings: Timings,
    call: impl Future<Output = Result<Forwarded, ForwardError>>,
) -> Result<(Response<Body>, Timings), ServiceError> {
    let running = Instant::now();
    let forwarded = tokio::time::timeout_at(deadline.into(), call)
        .await
        .map_err(|_| ServiceError::TimedOut)?
        .map_err(|source| ServiceError::Forward {
            service: service.to_string(),
            source,
        })?;
    timings.run = running.elapsed();
    Ok((forwarded.response.map(Body::new), timings))
}

/// Forward `request` with `key`. When the watchdog refuses the key, it ran
/// nothing, so the call goes again, once, with the key `fresh` finds (the
/// service was made again with a new one); `None`: the refusal is the answer.
pub(super) async fn forward_with_key<Fresh>(
    forwarder: &Forwarder,
    balancer: &Arc<Balancer>,
    addresses: &impl Fn() -> Addresses,
    request: &Request<Bytes>,
    key: &WatchdogKey,
    fresh: impl FnOnce() -> Fresh,
) -> Result<Forwarded, ForwardError>
where
    Fresh: Future<Output = Option<WatchdogKey>>,
{
    let forwarded = forward_keyed(forwarder, balancer, addresses, request, key).await?;
    if !refused_key(&forwarded) {
        return Ok(forwarded);
    }
    match fresh().await {
        Some(fresh) => {
            drop(forwarded);
            forward_keyed(forwarder, balancer, addresses, request, &fresh).await
        }
        None => Ok(forwarded),
    }
}

/// Forward a copy of `request` with `key` in the watchdog's key header
/// (replacing any the client sent).
async fn forward_keyed(
    forwarder: &Forwarder,
    balancer: &Arc<Balancer>,
    addresses: &impl Fn() -> Addresses,
    request: &Request<Bytes>,
    key: &WatchdogKey,
) -> Result<Forwarded, ForwardError> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    let value = HeaderValue::from_str(key.expose())
        .map_err(|_| ForwardError::BadRequest("the service's key is not a header value".into()))?;
    copy.headers_mut()
        .insert(HeaderName::from_static(WATCHDOG_KEY_HEADER), value);
    forwarder.forward(balancer, addresses, copy).await
}

/// Whether a watchdog answered that the call's key was not its own.
fn refused_key(forwarded: &Forwarded) -> bool {
    let response = &forwarded.response;
    response.status() == StatusCode::UNAUTHORIZED
        && response.headers().contains_key(KEY_REFUSED_HEADER)
}

/// Wait until a task of `managed` accepts connections, or `until`; returns
/// the addresses that do. Tasks are probed as soon as Swarm has scheduled
/// them (their address is known before their container starts), so the
/// call goes the moment the function listens, not when Swarm next reports
/// the task running and the watcher next looks.
async fn wait_ready(services: &Services, managed: &Managed, until: Instant) -> Option<Addresses> {
    let network = &services.settings.network;
    let port = managed.spec.port;
    loop {
        let mut candidates: Vec<SocketAddr> = managed.addresses.borrow().to_vec();
        if candidates.is_empty() {
            match services
                .swarm
                .scheduled_addresses(&managed.name, network)
                .await
            {
                Ok(ips) => candidates.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port))),
                Err(e) => {
                    tracing::debug!(service = %managed.name, error = %e, "cannot list the service's tasks")
                }
            }
        }
        let ready = probe(&candidates).await;
        if !ready.is_empty() {
            return Some(Arc::from(ready));
        }
        if Instant::now() + PROBE_PAUSE >= until {
            return None;
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
}

/// Those of `candidates` that accept a connection now.
pub(super) async fn probe(candidates: &[SocketAddr]) -> Vec<SocketAddr> {
    let probes = candidates.iter().map(|addr| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Some(*addr),
            _ => None,
        }
    });
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}
