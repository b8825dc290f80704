//! The documents of OpenFaaS' gateway API, with its field names: what
//! clients send (`FunctionDeployment`, `ScaleServiceRequest`,
//! `DeleteFunctionRequest`) and what they read (`FunctionStatus`, `Info`).
//! Unknown fields are ignored, as OpenFaaS' gateway ignores them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The namespace every function is shown in: Ferrite has none, and this is
/// the one OpenFaaS' clients assume.
pub const NAMESPACE: &str = "openfaas-fn";

/// `POST` and `PUT /system/functions`. Its `namespace`, `network`,
/// `requests` and `registryAuth` are left unread: Ferrite has one namespace,
/// its own network, reserves what a service is limited to, and never pulls
/// (docs/openfaas.md).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeployment {
    /// The function's name: the app's.
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub env_process: Option<String>,
    #[serde(default)]
    pub env_vars: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub constraints: Option<Vec<String>>,
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub limits: Option<Resources>,
    #[serde(default)]
    pub read_only_root_filesystem: bool,
}

/// `limits` and `requests`: Kubernetes-style quantities as text.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// `DELETE /system/functions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteFunctionRequest {
    #[serde(default)]
    pub function_name: String,
}

/// `POST /system/scale-function/{name}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleServiceRequest {
    /// When given, it must name the function of the URL.
    #[serde(default)]
    pub service_name: Option<String>,
    pub replicas: i64,
}

/// One function, as `GET /system/functions` and `/system/function/{name}`
/// show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    pub name: String,
    pub image: String,
    pub namespace: &'static str,
    /// Always empty: Ferrite runs the image's own command.
    pub env_process: &'static str,
    pub env_vars: BTreeMap<String, String>,
    pub constraints: Vec<String>,
    pub secrets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub limits: Resources,
    pub read_only_root_filesystem: bool,
    /// Replicas asked of Swarm (the `min_replicas` of the route while this
    /// node does not manage the service).
    pub replicas: u64,
    /// Tasks running with an address.
    pub available_replicas: u64,
    /// Calls this node has given to the service since it started managing it.
    pub invocation_count: u64,
}

/// `GET /system/info`.
#[derive(Debug, Serialize)]
pub struct Info {
    pub provider: Provider,
    pub version: VersionInfo,
    pub arch: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Provider {
    pub provider: &'static str,
    pub orchestration: &'static str,
    pub version: VersionInfo,
}

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub release: &'static str,
    pub sha: &'static str,
    pub commit_message: &'static str,
}
