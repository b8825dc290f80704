//! A service's tasks as Ferrite routes to them: the running ones, with their
//! address on the service's overlay network, read from the Swarm API itself.
//!
//! Never the service name or its virtual IP: the VIP needs IPVS (missing on
//! some kernels) and neither resolves while a service has no task, which is
//! exactly when scale-from-zero must notice the first one.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::engine_get::EngineGet;
use super::SwarmError;

/// A task that runs and is meant to, with its address on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    pub id: String,
    pub service_id: String,
    /// The node the task runs on.
    pub node_id: String,
    /// The task's replica slot (1..=replicas).
    pub slot: u64,
    /// `running` (kept so logs and `/v1/services` can show it).
    pub state: String,
    /// `running`.
    pub desired_state: String,
    /// The task's address on the network it was asked for.
    pub ip: IpAddr,
}

/// A task as `GET /tasks` returns it, the fields Ferrite reads. Every field
/// is optional: an engine that leaves one out must not break discovery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTask {
    #[serde(rename = "ID", deserialize_with = "nullable")]
    pub id: String,
    #[serde(rename = "ServiceID", deserialize_with = "nullable")]
    pub service_id: String,
    #[serde(rename = "NodeID", deserialize_with = "nullable")]
    pub node_id: String,
    #[serde(rename = "Slot", deserialize_with = "nullable")]
    pub slot: u64,
    #[serde(rename = "Status", deserialize_with = "nullable")]
    pub status: RawStatus,
    #[serde(rename = "DesiredState", deserialize_with = "nullable")]
    pub desired_state: String,
    #[serde(rename = "NetworksAttachments", deserialize_with = "nullable")]
    pub networks_attachments: Vec<RawAttachment>,
    #[serde(rename = "Spec", deserialize_with = "nullable")]
    pub spec: RawTaskSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTaskSpec {
    #[serde(rename = "ContainerSpec", deserialize_with = "nullable")]
    container_spec: RawContainerSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawContainerSpec {
    #[serde(rename = "Image", deserialize_with = "nullable")]
    image: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawStatus {
    #[serde(rename = "State", deserialize_with = "nullable")]
    pub state: String,
    #[serde(rename = "Err", deserialize_with = "nullable")]
    pub err: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAttachment {
    #[serde(rename = "Network", deserialize_with = "nullable")]
    network: RawNetwork,
    /// CIDR notation: `10.0.1.5/24`.
    #[serde(rename = "Addresses", deserialize_with = "nullable")]
    addresses: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawNetwork {
    #[serde(rename = "ID", deserialize_with = "nullable")]
    id: String,
    #[serde(rename = "Spec", deserialize_with = "nullable")]
    spec: RawNetworkSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawNetworkSpec {
    #[serde(rename = "Name", deserialize_with = "nullable")]
    name: String,
}

impl RawTask {
    /// Running, and Swarm wants it running (not a task being shut down
    /// during an update or a scale down, which may already refuse work).
    pub(crate) fn is_running(&self) -> bool {
        self.status.state == "running" && self.desired_state == "running"
    }

    /// Starting on its way to running: the service is not settled yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.desired_state == "running" && !self.is_running()
    }

    /// The task's address on `network` (its name or id), without the prefix.
    pub(crate) fn address_on(&self, network: &str) -> Option<IpAddr> {
        self.networks_attachments
            .iter()
            .filter(|a| a.network.spec.name == network || a.network.id == network)
            .flat_map(|a| a.addresses.iter())
            .find_map(|cidr| {
                cidr.split('/')
                    .next()
                    .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
            })
    }

    /// Whether the task runs `image` (as the service's spec named it; an
    /// engine that pinned it to a digest appends `@sha256:...`).
    pub(crate) fn runs_image(&self, image: &str) -> bool {
        let task_image = &self.spec.container_spec.image;
        task_image == image
            || task_image
                .strip_prefix(image)
                .is_some_and(|rest| rest.starts_with('@'))
    }

    /// The task as Ferrite routes to it, if it runs and has an address.
    pub(crate) fn running_on(&self, network: &str) -> Option<RunningTask> {
        if !self.is_running() {
            return None;
        }
        let ip = self.address_on(network)?;
        Some(RunningTask {
            id: self.id.clone(),
            service_id: self.service_id.clone(),
            node_id: self.node_id.clone(),
            slot: self.slot,
            state: self.status.state.clone(),
            desired_state: self.desired_state.clone(),
            ip,
        })
    }
}

/// The tasks Swarm wants running of the given services (names or ids),
/// all in one request, grouped by service id.
pub(crate) async fn desired_running(
    get: &EngineGet,
    services: &[String],
) -> Result<HashMap<String, Vec<RawTask>>, SwarmError> {
    let mut by_service: HashMap<String, Vec<RawTask>> = HashMap::new();
    if services.is_empty() {
        return Ok(by_service);
    }
    let filters = serde_json::json!({
        "service": services,
        "desired-state": ["running"],
    })
    .to_string();
    let tasks: Vec<RawTask> = get.get_json("/tasks", &[("filters", &filters)]).await?;
    for task in tasks {
        by_service
            .entry(task.service_id.clone())
            .or_default()
            .push(task);
    }
    Ok(by_service)
}

/// Every task Swarm keeps of `service` (name or id), whatever its state:
/// the failed ones say why they failed.
pub(crate) async fn all_of(get: &EngineGet, service: &str) -> Result<Vec<RawTask>, SwarmError> {
    let filters = serde_json::json!({ "service": [service] }).to_string();
    get.get_json("/tasks", &[("filters", &filters)]).await
}

/// The nodes (ids) where a task of `image` could not start because the
/// node has no such image, less those where one of it runs now (the image
/// reached the node since).
pub(crate) fn nodes_lacking(tasks: &[RawTask], image: &str) -> Vec<String> {
    let of_image = || tasks.iter().filter(|t| t.runs_image(image));
    let running: std::collections::HashSet<&str> = of_image()
        .filter(|t| t.status.state == "running")
        .map(|t| t.node_id.as_str())
        .collect();
    let mut lacking: Vec<String> = of_image()
        .filter(|t| t.status.err.contains("No such image") && !t.node_id.is_empty())
        .map(|t| t.node_id.clone())
        .filter(|node| !running.contains(node.as_str()))
        .collect();
    lacking.sort();
    lacking.dedup();
    lacking
}

/// `null` as the default value: Go encodes empty slices as `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = r#"{
        "ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 2,
        "Status": {"State": "running", "Message": "started"},
        "DesiredState": "running",
        "Spec": {"ContainerSpec": {"Image": "x/y-service:latest-ab@sha256:12"}},
        "NetworksAttachments": [
            {"Network": {"ID": "ingressid", "Spec": {"Name": "ingress"}}, "Addresses": ["10.255.0.9/16"]},
            {"Network": {"ID": "netid", "Spec": {"Name": "fnet"}}, "Addresses": ["10.0.1.5/24"]}
        ]
    }"#;

    #[test]
    fn the_address_is_the_one_on_the_asked_network() {
        let task: RawTask = serde_json::from_str(TASK).unwrap();
        let running = task.running_on("fnet").unwrap();
        assert_eq!(running.ip, "10.0.1.5".parse::<IpAddr>().unwrap());
        assert_eq!(running.slot, 2);
        assert_eq!(task.address_on("netid"), Some("10.0.1.5".parse().unwrap()));
        assert_eq!(task.address_on("other"), None);
        assert!(task.runs_image("x/y-service:latest-ab"));
        assert!(!task.runs_image("x/y-service:latest-a"));
        assert!(!task.runs_image("x/y-service:latest"));
    }

    #[test]
    fn only_running_tasks_meant_to_run_count() {
        let mut task: RawTask = serde_json::from_str(TASK).unwrap();
        task.desired_state = "shutdown".into();
        assert!(task.running_on("fnet").is_none());
        assert!(!task.is_pending());
        task.desired_state = "running".into();
        task.status.state = "starting".into();
        assert!(task.running_on("fnet").is_none());
        assert!(task.is_pending());
    }

    #[test]
    fn nodes_lacking_the_image_are_those_where_it_was_missing_and_nothing_runs() {
        let task = |node: &str, state: &str, err: &str, image: &str| RawTask {
            node_id: node.into(),
            status: RawStatus {
                state: state.into(),
                err: err.into(),
            },
            spec: RawTaskSpec {
                container_spec: RawContainerSpec {
                    image: image.into(),
                },
            },
            ..Default::default()
        };
        let missing = "No such image: r/x:1@sha256:a";
        let tasks = [
            task("n2", "rejected", missing, "r/x:1@sha256:a"),
            task("n2", "rejected", missing, "r/x:1@sha256:a"),
            task("n3", "rejected", missing, "r/x:1@sha256:a"),
            task("n3", "running", "", "r/x:1@sha256:a"),
            task("n4", "rejected", missing, "r/old:1"),
            task("n5", "failed", "exit 1", "r/x:1@sha256:a"),
        ];
        assert_eq!(nodes_lacking(&tasks, "r/x:1@sha256:a"), vec!["n2"]);
    }

    #[test]
    fn odd_answers_do_not_break_decoding() {
        let task: RawTask = serde_json::from_str(
            r#"{"ID":"x","NetworksAttachments":[{"Addresses":["bogus","::1/64"]}]}"#,
        )
        .unwrap();
        assert!(task.running_on("").is_none());
        let tasks: Vec<RawTask> = serde_json::from_str(
            r#"[{}, {"NetworksAttachments": null, "Status": null, "Slot": null}]"#,
        )
        .unwrap();
        assert_eq!(tasks.len(), 2);
    }
}
