//! `GET /v1/services`: what each service of this node is, runs, and why it
//! has the replicas it has.

use ferrite_model::Millis;
use serde::Serialize;

use super::Services;

/// One service as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub app: String,
    pub path: String,
    /// The Swarm service's name.
    pub service: String,
    /// The route's image.
    pub image: String,
    /// The image the tasks run: the route's when it is a service image,
    /// else the one derived from it (absent while none could be made); with
    /// FERRITE_SERVICE_REGISTRY, its reference there, by digest.
    pub service_image: Option<String>,
    /// Why the service could not be made (the route's image is missing,
    /// the watchdog image is, ...); calls get a 503 saying it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the last rolling update to the route's definition failed: Swarm
    /// rolled it back and the service runs its previous definition, until
    /// a change of the route tries again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_failed: Option<String>,
    /// When this node learnt that the update failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub update_failed_at: Option<Millis>,
    /// The Swarm nodes where its tasks failed for lack of `service_image`
    /// (no FERRITE_SERVICE_REGISTRY: the image is only where it was made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_image_on: Vec<String>,
    /// Replicas asked of Swarm.
    pub replicas: u32,
    /// Tasks running with an address on the network.
    pub running: usize,
    /// Those tasks' `IP:port`, where calls go.
    pub addresses: Vec<String>,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_concurrency: u32,
    /// Calls in flight now, waiting ones included.
    pub in_flight: u64,
    /// Calls given to a task since this node started managing the service.
    pub requests: u64,
    /// Calls that ran on this node instead, while the service had no ready
    /// task, since this node started managing it.
    pub ran_on_node: u64,
    /// The autoscaler's latest look.
    pub autoscaler: Option<AutoscalerView>,
    /// The last decision that changed the replicas.
    pub last_scaling: Option<ScalingView>,
    /// How the load is shared between the nodes, on a node that shares
    /// it (through Redis or PostgreSQL): absent on a node deciding alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedView>,
}

/// A service's load over the nodes: this node's share, the total the
/// decision is made from, and who makes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SharedView {
    /// The node holding the autoscaler's lease, which scales every
    /// service (none while the lease is free).
    pub holder: Option<String>,
    /// Whether this node is that holder: on the others, `autoscaler`,
    /// `last_scaling` and `replicas` are the holder's.
    pub deciding: bool,
    /// This node's average in flight over the last second.
    pub node_concurrency: f64,
    /// The sum over every node publishing: what the decision is made from.
    pub total_concurrency: f64,
    /// Nodes whose share is in the sum, this one included.
    pub nodes: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AutoscalerView {
    pub wanted: u32,
    pub reason: String,
    pub stable_concurrency: f64,
    pub panic_concurrency: f64,
    pub panicking: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScalingView {
    pub replicas: u32,
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Millis,
}

impl Services {
    /// Every service of this node, and every route whose service could not
    /// be made, by app and path.
    pub fn list(&self) -> Vec<ServiceView> {
        let all: Vec<_> = self.managed().values().cloned().collect();
        let failed = self.failed();
        let mut views: Vec<ServiceView> = all
            .iter()
            .map(|m| {
                let addresses = m.addresses.borrow().clone();
                let update_failed = m.rollout().failed.clone();
                let control = m.control();
                ServiceView {
                    app: m.app.clone(),
                    path: m.path.clone(),
                    service: m.name.clone(),
                    image: m.image.clone(),
                    service_image: Some(m.run_image.clone()),
                    missing_image_on: m.missing_on().clone(),
                    // A change that failed: the service runs as before.
                    error: failed
                        .get(&(m.app.clone(), m.path.clone()))
                        .map(|f| f.message.clone()),
                    update_failed_at: update_failed.as_ref().map(|(_, at)| *at),
                    update_failed: update_failed.map(|(why, _)| why),
                    replicas: control.replicas,
                    running: addresses.len(),
                    addresses: addresses.iter().map(|a| a.to_string()).collect(),
                    min_replicas: m.spec.min_replicas,
                    max_replicas: m.spec.max_replicas,
                    target_concurrency: m.spec.target_concurrency,
                    in_flight: m.meter.in_flight(),
                    requests: m.balancer.requests_total(),
                    ran_on_node: m.ran_here.load(std::sync::atomic::Ordering::Relaxed),
                    autoscaler: control.latest.as_ref().map(|d| AutoscalerView {
                        wanted: d.replicas,
                        reason: d.reason.clone(),
                        stable_concurrency: round(d.stable_concurrency),
                        panic_concurrency: round(d.panic_concurrency),
                        panicking: d.panicking,
                    }),
                    last_scaling: control.last_change.as_ref().map(|(d, at)| ScalingView {
                        replicas: d.replicas,
                        reason: d.reason.clone(),
                        at: *at,
                    }),
                    shared: self
                        .shared
                        .as_ref()
                        .and(control.share.as_ref())
                        .map(|share| SharedView {
                            holder: share.holder.clone(),
                            deciding: share.decides,
                            node_concurrency: round(share.node),
                            total_concurrency: round(share.total),
                            nodes: share.nodes,
                        }),
                }
            })
            .collect();
        let unmade = failed
            .iter()
            .filter(|(key, _)| !all.iter().any(|m| (&m.app, &m.path) == (&key.0, &key.1)));
        views.extend(unmade.map(|((app, path), f)| ServiceView {
            app: app.clone(),
            path: path.clone(),
            service: ferrite_swarm::service_name(&self.settings.owner, app, path),
            image: f.image.clone(),
            service_image: None,
            missing_image_on: Vec::new(),
            error: Some(f.message.clone()),
            update_failed: None,
            update_failed_at: None,
            replicas: 0,
            running: 0,
            addresses: Vec::new(),
            min_replicas: f.spec.min_replicas,
            max_replicas: f.spec.max_replicas,
            target_concurrency: f.spec.target_concurrency,
            in_flight: 0,
            requests: 0,
            ran_on_node: 0,
            autoscaler: None,
            last_scaling: None,
            shared: None,
        }));
        drop(failed);
        views.sort_by(|a, b| (&a.app, &a.path).cmp(&(&b.app, &b.path)));
        views
    }
}

/// Two decimals are plenty for a concurrency shown to people.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
