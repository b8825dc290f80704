//! A [`ServiceDefinition`] as the Swarm service spec Ferrite creates: the
//! policies every route's service shares live here, in one place.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, NetworkAttachmentConfig, ResourceObject,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use super::definition::{labels, ServiceDefinition};
use super::key::{WatchdogKey, WATCHDOG_KEY_ENV};

/// A crashed task is replaced after this long, not at once: an image that
/// dies at start would otherwise loop as fast as Swarm can schedule it.
const RESTART_DELAY: Duration = Duration::from_secs(2);
/// Replacements of a crashing task within [`RESTART_WINDOW`]; past them Swarm
/// waits for the window to slide, so a broken image costs little and a
/// fixed one (a route update) comes back by itself.
const RESTART_MAX_ATTEMPTS: i64 = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(120);
/// How long a new task must stay up during a rolling update before the next
/// one is replaced; a task failing in that time rolls the update back.
const UPDATE_MONITOR: Duration = Duration::from_secs(5);
/// Time a task gets to finish its requests after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The Swarm spec of `def` with `replicas` tasks (the definition's own count
/// for a new service, the current count for an update) and the service's
/// watchdog key.
pub(crate) fn build(def: &ServiceDefinition, replicas: u64, key: &WatchdogKey) -> ServiceSpec {
    let mut service_labels: HashMap<String, String> = def.labels.clone().into_iter().collect();
    service_labels.extend(ownership(def));
    service_labels.insert(labels::SPEC.into(), def.spec_hash());
    service_labels.insert(labels::PORT.into(), def.port.to_string());
    let mut container_labels: HashMap<String, String> = def.labels.clone().into_iter().collect();
    container_labels.extend(ownership(def));
    container_labels.insert(labels::KIND.into(), "service".into());

    let memory = memory_bytes(def.memory_mib);
    let container = TaskSpecContainerSpec {
        image: Some(def.image.clone()),
        labels: Some(container_labels),
        env: Some(environment(def, key)),
        stop_grace_period: Some(nanos(STOP_GRACE)),
        // Docker's tiny init as PID 1: a function's server that does not
        // handle SIGTERM itself (PID 1 gets no default handlers) still stops
        // at once on a scale down or an update instead of after the grace
        // period, and its zombies are reaped.
        init: Some(true),
        ..Default::default()
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                memory_bytes: memory,
                ..Default::default()
            }),
            // The reservation makes Swarm place a task only on a node with
            // that much memory free, as the limit makes the kernel enforce it.
            reservations: Some(ResourceObject {
                memory_bytes: memory,
                ..Default::default()
            }),
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
            delay: Some(nanos(RESTART_DELAY)),
            max_attempts: Some(RESTART_MAX_ATTEMPTS),
            window: Some(nanos(RESTART_WINDOW)),
        }),
        placement: Some(TaskSpecPlacement {
            constraints: Some(def.constraints.clone()),
            ..Default::default()
        }),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(def.network.clone()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(def.service_name()),
        labels: Some(service_labels),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                // validate() refused counts beyond i64.
                replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        }),
        // A new task starts before the one it replaces stops, one at a time:
        // the route keeps serving through an update.
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(UPDATE_MONITOR)),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            ..Default::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(nanos(UPDATE_MONITOR)),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
            ..Default::default()
        }),
        // DNS round robin instead of a virtual IP: VIPs need IPVS, missing on
        // some kernels, and Ferrite routes to task addresses itself anyway.
        // No published ports: the ingress mesh is never used either.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        ..Default::default()
    }
}

/// The function's environment and the watchdog's key; the key wins over a
/// config variable of the same name, so a route cannot choose it.
fn environment(def: &ServiceDefinition, key: &WatchdogKey) -> Vec<String> {
    def.env
        .iter()
        .filter(|(k, _)| k.as_str() != WATCHDOG_KEY_ENV)
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::iter::once(format!(
            "{WATCHDOG_KEY_ENV}={}",
            key.expose()
        )))
        .collect()
}

/// The labels that say whose a service (or task container) is.
fn ownership(def: &ServiceDefinition) -> [(String, String); 4] {
    [
        (labels::OWNER.into(), def.owner.clone()),
        (labels::APP.into(), def.app.clone()),
        (labels::PATH.into(), def.path.clone()),
        (crate::labels::MANAGED.into(), "true".into()),
    ]
}

fn memory_bytes(mib: u64) -> Option<i64> {
    (mib > 0).then(|| i64::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX))
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The replica count of a service's spec (0 when it is not replicated).
pub(crate) fn replicas(spec: &ServiceSpec) -> u64 {
    spec.mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0)
}

/// Set the replica count of a spec, keeping everything else.
pub(crate) fn set_replicas(spec: &mut ServiceSpec, replicas: u64) {
    let count = i64::try_from(replicas).unwrap_or(i64::MAX);
    let mode = spec.mode.get_or_insert_with(Default::default);
    mode.replicated
        .get_or_insert_with(Default::default)
        .replicas = Some(count);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn ferrite_labels_win_over_the_callers() {
        let def = ServiceDefinition {
            owner: "me".into(),
            app: "a".into(),
            path: "/p".into(),
            image: "img".into(),
            port: 8080,
            memory_mib: 64,
            replicas: 2,
            env: BTreeMap::from([
                ("K".into(), "v=w".into()),
                (WATCHDOG_KEY_ENV.into(), "forged".into()),
            ]),
            labels: BTreeMap::from([
                (labels::OWNER.into(), "forged".into()),
                ("team".into(), "x".into()),
            ]),
            constraints: vec!["node.role==worker".into()],
            network: "net".into(),
        };
        let key = WatchdogKey::generate().unwrap();
        let spec = build(&def, 3, &key);
        let l = spec.labels.as_ref().unwrap();
        assert_eq!(l[labels::OWNER], "me");
        assert_eq!(l["team"], "x");
        assert_eq!(l[labels::SPEC], def.spec_hash());
        assert_eq!(replicas(&spec), 3);
        let task = spec.task_template.unwrap();
        let c = task.container_spec.unwrap();
        let env = c.env.unwrap();
        assert_eq!(env[0], "K=v=w");
        assert_eq!(WatchdogKey::from_env(&env), Some(key.clone()));
        assert_eq!(c.labels.unwrap()[labels::OWNER], "me");
        let r = task.resources.unwrap();
        assert_eq!(r.limits.unwrap().memory_bytes, Some(64 << 20));
        assert_eq!(r.reservations.unwrap().memory_bytes, Some(64 << 20));
    }
}
