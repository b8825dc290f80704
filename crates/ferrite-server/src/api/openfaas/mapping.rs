//! An OpenFaaS function as Ferrite holds it: app `NAME` with one route,
//! [`ROUTE_PATH`], that has a `service` section. This module turns a
//! `FunctionDeployment` into the route fields the v1 API takes (so that the
//! model's own rules check them) and a stored route back into a
//! `FunctionStatus`.

use std::collections::BTreeMap;

use ferrite_model::confinement::ConfinementInput;
use ferrite_model::service::ServiceInput;
use ferrite_model::{ApiError, Config, Route, RouteInput};

use super::shapes::{FunctionDeployment, FunctionStatus, Resources, NAMESPACE};
use crate::services::ServiceView;

/// The one route of a function: every `/function/NAME/...` call goes to it.
/// A route path names at least one segment, so not `/`; this one says what
/// it is where Ferrite shows it (`/r/NAME/function`, `ferrite routes list`).
pub const ROUTE_PATH: &str = "/function";
/// Annotations are kept as service labels under this prefix (Ferrite's
/// routes have no other place for them), and shown without it.
pub const ANNOTATION_PREFIX: &str = "com.openfaas.annotations.";
/// OpenFaaS' scaling labels, read into the service section.
const SCALE_MIN: &str = "com.openfaas.scale.min";
const SCALE_MAX: &str = "com.openfaas.scale.max";
const SCALE_TARGET: &str = "com.openfaas.scale.target";
const SCALE_ZERO: &str = "com.openfaas.scale.zero";
/// The annotation that picks the route's `format` (`default` or `http`).
pub const FORMAT_ANNOTATION: &str = "com.ferrite.format";
/// OpenFaaS starts a function with one replica; so does Ferrite, unless
/// the deployment allows zero.
const DEFAULT_MIN_REPLICAS: i64 = 1;

/// Whether a stored route is an OpenFaaS function's.
pub fn is_function(route: &Route) -> bool {
    route.path == ROUTE_PATH && route.service.is_some()
}

/// The route fields of `deployment`. `current` is the function's route on
/// a `PUT`, which replaces the whole definition: config keys and labels it
/// had that the deployment does not name are removed (a PATCH merges them).
pub fn route_input(
    deployment: &FunctionDeployment,
    current: Option<&Route>,
) -> Result<RouteInput, ApiError> {
    if deployment.service.is_empty() {
        return Err(ApiError::bad_request(
            "service (the function's name) is required",
        ));
    }
    if deployment.image.is_empty() {
        return Err(ApiError::bad_request("image is required"));
    }
    if deployment.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(
            "secrets are not supported: Ferrite has no secret store; give the values as envVars \
             (the management API never shows them to callers of functions)",
        ));
    }
    if deployment
        .env_process
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::bad_request(
            "envProcess is not supported: Ferrite runs the image's own entrypoint and command; \
             set them in the image",
        ));
    }
    let labels = deployment.labels.clone().unwrap_or_default();
    let annotations = deployment.annotations.clone().unwrap_or_default();
    let mut service_labels: BTreeMap<String, String> = labels.clone();
    for (key, value) in &annotations {
        service_labels.insert(format!("{ANNOTATION_PREFIX}{key}"), value.clone());
    }
    let mut config: Config = deployment.env_vars.clone().unwrap_or_default();
    if let Some(route) = current {
        let service = route.service.as_ref();
        for gone in service.into_iter().flat_map(|s| s.labels.keys()) {
            service_labels.entry(gone.clone()).or_default();
        }
        for gone in route.config.iter().flat_map(|c| c.keys()) {
            config.entry(gone.clone()).or_default();
        }
    }
    let whole = |key: &str| -> Result<Option<i64>, ApiError> {
        labels
            .get(key)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("label {key} must be a whole number, got {v:?}"))
                })
            })
            .transpose()
    };
    let zero_allowed = labels.get(SCALE_ZERO).is_some_and(|v| v == "true");
    let min_replicas = whole(SCALE_MIN)?.or(Some(if zero_allowed {
        0
    } else {
        DEFAULT_MIN_REPLICAS
    }));
    let limits = deployment.limits.clone().unwrap_or_default();
    let memory = limits.memory.as_deref().map(memory_mib).transpose()?;
    let cpus = limits.cpu.as_deref().map(cpus).transpose()?;
    Ok(RouteInput {
        path: Some(ROUTE_PATH.to_string()),
        image: Some(deployment.image.clone()),
        memory: Some(memory.unwrap_or(ferrite_model::route::DEFAULT_MEMORY_MIB as i64)),
        kind: Some("sync".to_string()),
        format: Some(
            annotations
                .get(FORMAT_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| "default".to_string()),
        ),
        config: Some(config),
        service: Some(Some(ServiceInput {
            min_replicas,
            max_replicas: whole(SCALE_MAX)?,
            target_concurrency: whole(SCALE_TARGET)?,
            constraints: Some(deployment.constraints.clone().unwrap_or_default()),
            labels: Some(service_labels),
            ..ServiceInput::default()
        })),
        confinement: Some(Some(ConfinementInput {
            read_only: Some(deployment.read_only_root_filesystem),
            cpus: Some(cpus),
            ..ConfinementInput::default()
        })),
        ..RouteInput::default()
    })
}

/// A memory quantity in MiB, rounded up: a plain number is bytes;
/// `Ki`/`Mi`/`Gi` and `k`/`m`/`M`/`g`/`G` are all binary units, as
/// faas-swarm read them (so `128M` and `128Mi` are both 128 MiB).
pub fn memory_mib(quantity: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "limits.memory must be a number of bytes or of Ki, Mi or Gi (128Mi), got {quantity:?}"
        ))
    };
    let text = quantity.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let number: f64 = digits.trim().parse().map_err(|_| bad())?;
    let scale: f64 = match unit {
        "" | "b" | "B" => 1.0,
        "k" | "K" | "Ki" | "KiB" | "kb" | "KB" => 1024.0,
        "m" | "M" | "Mi" | "MiB" | "mb" | "MB" => 1024.0 * 1024.0,
        "g" | "G" | "Gi" | "GiB" | "gb" | "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let mib = (number * scale / (1024.0 * 1024.0)).ceil();
    if !mib.is_finite() || mib < 0.0 || mib > i64::MAX as f64 {
        return Err(bad());
    }
    // Bounded above: the route's own rule says how far memory may go.
    Ok(mib as i64)
}

/// A CPU quantity: CPUs (`0.5`) or thousandths (`500m`), as Kubernetes
/// writes them.
pub fn cpus(quantity: &str) -> Result<f64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "limits.cpu must be a number of CPUs (0.5) or of thousandths (500m), got {quantity:?}"
        ))
    };
    let text = quantity.trim();
    let value = match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map_err(|_| bad())? / 1000.0,
        None => text.parse::<f64>().map_err(|_| bad())?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// What `route` (a function's) is, and how its service does when this
/// node manages it (`view`).
pub fn status(route: &Route, view: Option<&ServiceView>) -> FunctionStatus {
    let (mut labels, mut annotations) = (BTreeMap::new(), BTreeMap::new());
    let service = route.service.as_ref();
    for (key, value) in service.into_iter().flat_map(|s| s.labels.iter()) {
        match key.strip_prefix(ANNOTATION_PREFIX) {
            Some(annotation) => annotations.insert(annotation.to_string(), value.clone()),
            None => labels.insert(key.clone(), value.clone()),
        };
    }
    let confinement = route.confinement.as_ref();
    FunctionStatus {
        name: route.app_name.clone(),
        image: route.image.clone(),
        namespace: NAMESPACE,
        env_process: "",
        env_vars: route.config.clone().unwrap_or_default(),
        constraints: service.map(|s| s.constraints.clone()).unwrap_or_default(),
        secrets: Vec::new(),
        labels,
        annotations,
        limits: Resources {
            memory: Some(format!("{}Mi", route.memory)),
            cpu: confinement
                .and_then(|c| c.cpus)
                .map(|c| c.as_f64().to_string()),
        },
        read_only_root_filesystem: confinement.is_some_and(|c| c.read_only),
        replicas: view.map_or_else(
            || u64::from(service.map_or(0, |s| s.min_replicas)),
            |v| u64::from(v.replicas),
        ),
        available_replicas: view.map_or(0, |v| v.running as u64),
        // Whether a task or, at zero, this node ran it: the function ran.
        invocation_count: view.map_or(0, |v| v.requests + v.ran_on_node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_are_binary_and_rounded_up() {
        for (given, mib) in [
            ("128Mi", 128),
            ("128M", 128),
            ("128m", 128),
            ("1Gi", 1024),
            ("512Ki", 1),
            ("134217728", 128),
            ("1", 1),
            (" 64Mi ", 64),
        ] {
            assert_eq!(memory_mib(given).unwrap(), mib, "{given}");
        }
        for bad in ["", "Mi", "12Xi", "-1Mi", "1e400", "nan"] {
            assert!(memory_mib(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_quantities_in_cpus_or_thousandths() {
        assert_eq!(cpus("0.5").unwrap(), 0.5);
        assert_eq!(cpus("250m").unwrap(), 0.25);
        assert_eq!(cpus("2").unwrap(), 2.0);
        for bad in ["", "m", "one", "inf"] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }

    fn deployment(json: serde_json::Value) -> FunctionDeployment {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_deployment_is_a_service_route_the_model_accepts() {
        let d = deployment(serde_json::json!({
            "service": "fn1", "image": "ferrite/hello", "envProcess": "",
            "envVars": {"MODE": "x"}, "constraints": ["node.role==manager"],
            "labels": {"team": "a", "com.openfaas.scale.max": "3"},
            "annotations": {"topic": "orders"},
            "limits": {"memory": "64Mi", "cpu": "500m"}, "readOnlyRootFilesystem": true
        }));
        let route = Route::create("fn1", route_input(&d, None).unwrap()).unwrap();
        assert!(is_function(&route));
        let status = status(&route, None);
        assert_eq!(status.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            status.annotations.get("topic").map(String::as_str),
            Some("orders")
        );
        assert_eq!(status.limits.memory.as_deref(), Some("64Mi"));
        assert_eq!(status.limits.cpu.as_deref(), Some("0.5"));
        assert!(status.read_only_root_filesystem);
        assert_eq!(status.replicas, 1);
        assert_eq!(route.service.as_ref().map(|s| s.max_replicas), Some(3));

        // A PUT that names less removes the rest.
        let mut route = route;
        let next = deployment(serde_json::json!({"service": "fn1", "image": "ferrite/hello"}));
        route
            .apply(route_input(&next, Some(&route)).unwrap())
            .unwrap();
        let status = super::status(&route, None);
        assert!(status.labels.is_empty(), "{:?}", status.labels);
        assert!(status.annotations.is_empty());
        assert!(status.env_vars.is_empty());
        assert_eq!(status.limits.cpu, None);
    }

    #[test]
    fn what_has_no_counterpart_is_refused() {
        let secrets = deployment(serde_json::json!({
            "service": "f", "image": "i", "secrets": ["db-password"]}));
        assert!(route_input(&secrets, None)
            .unwrap_err()
            .message
            .contains("secrets"));
        let process = deployment(serde_json::json!({
            "service": "f", "image": "i", "envProcess": "node index.js"}));
        assert!(route_input(&process, None)
            .unwrap_err()
            .message
            .contains("envProcess"));
        let scale = deployment(serde_json::json!({
            "service": "f", "image": "i", "labels": {"com.openfaas.scale.min": "two"}}));
        assert!(route_input(&scale, None)
            .unwrap_err()
            .message
            .contains("whole number"));
    }
}
