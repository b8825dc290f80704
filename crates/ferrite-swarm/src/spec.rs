//! A [`ServiceDefinition`] as the Swarm service spec Ferrite creates: the
//! policies every route's service shares live here, in one place.
//!
//! A service's tasks are confined as Ferrite's containers are, from the
//! route's resolved `Confinement`: every capability dropped (those of the
//! route's `cap_add` given back), a pids limit, an open-files limit, a
//! read-only root with a tmpfs `/tmp` on request, no host path at all (so
//! never the engine's socket). Where Swarm differs from a container:
//! - no-new-privileges is asked of the engine, which only recent engines
//!   apply to a service (Docker 20.10 ignores it), so the watchdog also sets
//!   it on itself and so on every function process it starts;
//! - Swarm has no CPU weight: a task gets the engine's default weight, and
//!   only the route's `cpus` applies, as a hard cap (at most the smallest
//!   node's CPUs, or the engine would refuse to start the task on that node);
//! - the task's log is the function's stderr (`docker service logs`): it
//!   is kept, in json-file logs of at most [`LOG_MAX_SIZE`] x [`LOG_MAX_FILE`];
//! - Swarm's tmpfs is `noexec`, unlike a container's.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount, MountTmpfsOptions, MountTypeEnum,
    NetworkAttachmentConfig, ResourceObject, ResourcesUlimits, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecPrivileges, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use ferrite_model::Confinement;

use super::definition::{labels, ServiceDefinition};
use super::key::WatchdogKey;
use ferrite_wire::headers::WATCHDOG_KEY_ENV;

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
/// The task's log (the function's stderr and the watchdog's lines): rotated
/// at this size, this many files kept, so a chatty function cannot fill the
/// node's disk.
pub(crate) const LOG_MAX_SIZE: &str = "10m";
pub(crate) const LOG_MAX_FILE: &str = "3";
/// Mode of the `/tmp` tmpfs of a read-only task: everyone's, sticky.
const TMP_MODE: i64 = 0o1777;

/// The Swarm spec of `def` with `replicas` tasks (the definition's own count
/// for a new service, the current count for an update), the service's
/// watchdog key, and the most CPUs a cap may name (the smallest node's, in
/// billionths; `None` when unknown).
pub(crate) fn build(
    def: &ServiceDefinition,
    replicas: u64,
    key: &WatchdogKey,
    cpu_ceiling: Option<i64>,
) -> ServiceSpec {
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
        ..confined(&def.confinement)
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                memory_bytes: memory,
                pids: Some(i64::from(def.confinement.pids_limit)),
                nano_cpus: cpu_cap(&def.confinement, cpu_ceiling),
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
        log_driver: Some(TaskSpecLogDriver {
            name: Some("json-file".into()),
            options: Some(HashMap::from([
                ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                ("max-file".to_string(), LOG_MAX_FILE.to_string()),
            ])),
        }),
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

/// The container spec's part that confines the task (see the module's doc).
fn confined(c: &Confinement) -> TaskSpecContainerSpec {
    let nofile = i64::from(c.nofile);
    TaskSpecContainerSpec {
        capability_drop: Some(vec!["ALL".to_string()]),
        capability_add: (!c.cap_add.is_empty()).then(|| c.cap_add.clone()),
        privileges: Some(TaskSpecContainerSpecPrivileges {
            no_new_privileges: Some(true),
            ..Default::default()
        }),
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("nofile".to_string()),
            soft: Some(nofile),
            hard: Some(nofile),
        }]),
        read_only: Some(c.read_only),
        // The only mount a task ever gets: no host path, no socket.
        mounts: c.read_only.then(|| {
            vec![Mount {
                target: Some("/tmp".to_string()),
                typ: Some(MountTypeEnum::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(i64::try_from(c.tmp_size_bytes()).unwrap_or(i64::MAX)),
                    mode: Some(TMP_MODE),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}

/// The route's hard CPU cap, at most `ceiling` (a cap above a node's CPUs
/// makes the engine refuse the task there).
fn cpu_cap(c: &Confinement, ceiling: Option<i64>) -> Option<i64> {
    let asked = c.nano_cpus()?;
    Some(ceiling.map_or(asked, |most| asked.min(most)))
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
        (ferrite_engine::labels::MANAGED.into(), "true".into()),
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
            confinement: Confinement::resolve(None, 64),
        };
        let key = WatchdogKey::generate().unwrap();
        let spec = build(&def, 3, &key, None);
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

    fn confined_spec(confinement: &str, ceiling: Option<i64>) -> TaskSpec {
        let input: ferrite_model::ConfinementInput = serde_json::from_str(confinement).unwrap();
        let spec = ferrite_model::ConfinementSpec::create(input).unwrap();
        let def = ServiceDefinition {
            owner: "me".into(),
            app: "a".into(),
            path: "/p".into(),
            image: "img".into(),
            port: 8080,
            memory_mib: 64,
            replicas: 1,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            constraints: vec![],
            network: "net".into(),
            confinement: Confinement::resolve(Some(&spec), 64),
        };
        let key = WatchdogKey::generate().unwrap();
        build(&def, 1, &key, ceiling).task_template.unwrap()
    }

    #[test]
    fn tasks_are_confined_by_default() {
        let task = confined_spec("{}", Some(2_000_000_000));
        let c = task.container_spec.unwrap();
        assert_eq!(c.capability_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(c.capability_add, None);
        assert_eq!(c.privileges.unwrap().no_new_privileges, Some(true));
        let nofile = &c.ulimits.unwrap()[0];
        assert_eq!(
            (nofile.name.as_deref(), nofile.soft, nofile.hard),
            (Some("nofile"), Some(1024), Some(1024))
        );
        assert_eq!(c.read_only, Some(false));
        assert_eq!(c.mounts, None, "no host path, no socket");
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.pids, Some(256));
        assert_eq!(
            limits.nano_cpus, None,
            "no CPU weight in Swarm, no cap asked"
        );
        let log = task.log_driver.unwrap();
        assert_eq!(log.name.as_deref(), Some("json-file"));
        let options = log.options.unwrap();
        assert_eq!(options["max-size"], LOG_MAX_SIZE);
        assert_eq!(options["max-file"], LOG_MAX_FILE);
    }

    #[test]
    fn a_routes_opt_ins_reach_its_tasks() {
        let task = confined_spec(
            r#"{"read_only":true,"cap_add":["NET_BIND_SERVICE"],"pids_limit":512,
                "nofile":4096,"cpus":0.5}"#,
            Some(2_000_000_000),
        );
        let c = task.container_spec.unwrap();
        assert_eq!(c.capability_add, Some(vec!["NET_BIND_SERVICE".to_string()]));
        assert_eq!(c.read_only, Some(true));
        let mounts = c.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].target.as_deref(), Some("/tmp"));
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::TMPFS));
        let tmpfs = mounts[0].tmpfs_options.as_ref().unwrap();
        assert_eq!(tmpfs.size_bytes, Some(64 << 20));
        assert_eq!(tmpfs.mode, Some(0o1777));
        assert_eq!(c.ulimits.unwrap()[0].hard, Some(4096));
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.pids, Some(512));
        assert_eq!(limits.nano_cpus, Some(500_000_000));
        // A cap above the smallest node's CPUs is cut to them.
        let task = confined_spec(r#"{"cpus":4}"#, Some(2_000_000_000));
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(limits.nano_cpus, Some(2_000_000_000));
    }
}
