//! A route: an image bound to a path of an app, with how to run it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::confinement::{Confinement, ConfinementInput, ConfinementSpec, Network};
use crate::service::{absent_or_null, ServiceInput, ServiceSpec};
use crate::{validate, ApiError, Config};

/// Response headers a route adds to every answer (a header may repeat).
pub type Headers = BTreeMap<String, Vec<String>>;

pub const DEFAULT_MEMORY_MIB: u64 = 128;
pub const DEFAULT_TIMEOUT_S: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 30;
pub const DEFAULT_MAX_CONCURRENCY: u64 = 1;
/// Upper bounds: far above real use, low enough that arithmetic on them
/// (budgets, deadlines) cannot overflow.
pub const MAX_MEMORY_MIB: u64 = 1024 * 1024;
/// Docker refuses memory limits below 6 MiB.
pub const MIN_MEMORY_MIB: u64 = 6;
pub const MAX_TIMEOUT_S: u64 = 24 * 3600;
pub const MAX_CONCURRENCY: u64 = 10_000;
/// Most times a failed async call is run again: a function that failed ten
/// times in a row will not be saved by an eleventh, and every retry holds a
/// worker for up to a whole timeout.
pub const MAX_RETRIES: u32 = 10;

/// Whether the caller waits for the answer (`sync`) or gets a call id back (`async`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Sync,
    Async,
}

/// How the function talks: one container per call (`default`) or a hot
/// container serving HTTP over stdio (`http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Default,
    Http,
}

impl RouteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Sync => "sync",
            RouteType::Async => "async",
        }
    }

    fn parse(value: &str) -> Result<Self, ApiError> {
        match value {
            "sync" => Ok(RouteType::Sync),
            "async" => Ok(RouteType::Async),
            other => Err(ApiError::bad_request(format!(
                "route type must be \"sync\" or \"async\", got {other:?}"
            ))),
        }
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Default => "default",
            Format::Http => "http",
        }
    }

    fn parse(value: &str) -> Result<Self, ApiError> {
        match value {
            "default" => Ok(Format::Default),
            "http" => Ok(Format::Http),
            other => Err(ApiError::bad_request(format!(
                "route format must be \"default\" or \"http\", got {other:?}"
            ))),
        }
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route as stored and as the API shows it (IronFunctions' field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub app_name: String,
    pub path: String,
    pub image: String,
    /// Memory limit of the function's container, in MiB.
    pub memory: u64,
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub format: Format,
    /// Most hot containers of this route per node.
    pub max_concurrency: u64,
    /// Wall-clock limit of one call, in seconds.
    pub timeout: u64,
    /// Seconds a hot container may wait for work before it is stopped.
    pub idle_timeout: u64,
    pub headers: Option<Headers>,
    pub config: Option<Config>,
    /// When set, calls need an HS256 bearer token signed with this key.
    /// Left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_key: Option<String>,
    /// How many times an async call whose function fails is run again
    /// (`0..=`[`MAX_RETRIES`]). Not an IronFunctions field, so it defaults
    /// to 0 when a stored or older document lacks it.
    #[serde(default)]
    pub max_retries: u32,
    /// When set, the route runs as a Docker Swarm service (see
    /// [`ServiceSpec`]) instead of in containers. Left out of the JSON when
    /// unset, so IronFunctions clients see the documents they know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// What the function's containers may do beyond Ferrite's confined
    /// default (see [`ConfinementSpec`]); `None` is the default, which
    /// [`Route::confinement`] resolves. Left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<ConfinementSpec>,
}

/// The body of route creation and PATCH (inside `"route"`). Numbers are
/// read as signed so that a negative value gets a message about the rule,
/// not about the type. Unknown fields are ignored, as IronFunctions did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RouteInput {
    pub app_name: Option<String>,
    pub path: Option<String>,
    pub image: Option<String>,
    pub memory: Option<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub format: Option<String>,
    pub max_concurrency: Option<i64>,
    pub timeout: Option<i64>,
    pub idle_timeout: Option<i64>,
    pub headers: Option<Headers>,
    pub config: Option<Config>,
    pub jwt_key: Option<String>,
    /// Unlike the numbers above, an explicit 0 is a value here, not "not
    /// given": no IronFunctions client sends this field, so a 0 was meant.
    pub max_retries: Option<i64>,
    /// Absent: keep (on creation: no service). `null`: remove the section
    /// (the route runs in containers again). An object: merged field by
    /// field into the current section, or a new one with defaults.
    #[serde(default, deserialize_with = "absent_or_null")]
    pub service: Option<Option<ServiceInput>>,
    /// Absent: keep (on creation: the defaults). `null`: remove the section
    /// (back to the defaults). An object: merged field by field into the
    /// current section, or a new one with defaults.
    #[serde(default, deserialize_with = "absent_or_null")]
    pub confinement: Option<Option<ConfinementInput>>,
}

fn memory(v: Option<i64>) -> Result<Option<u64>, ApiError> {
    let mib = validate::bounded("route memory", v, MAX_MEMORY_MIB, "MiB")?;
    if let Some(mib) = mib.filter(|m| *m < MIN_MEMORY_MIB) {
        return Err(ApiError::bad_request(format!(
            "route memory must be at least {MIN_MEMORY_MIB} MiB (the smallest limit Docker accepts), got {mib}"
        )));
    }
    Ok(mib)
}

fn timeout(field: &str, v: Option<i64>) -> Result<Option<u64>, ApiError> {
    validate::bounded(field, v, MAX_TIMEOUT_S, "seconds")
}

fn max_concurrency(v: Option<i64>) -> Result<Option<u64>, ApiError> {
    validate::bounded("route max_concurrency", v, MAX_CONCURRENCY, "containers")
}

/// `0..=`[`MAX_RETRIES`]; `None` is "not given". Zero is kept (see
/// [`RouteInput::max_retries`]), so this does not go through [`validate::bounded`].
fn max_retries(v: Option<i64>) -> Result<Option<u32>, ApiError> {
    let Some(v) = v else {
        return Ok(None);
    };
    if v < 0 {
        return Err(ApiError::bad_request(format!(
            "route max_retries must be 0 or a positive number of retries, got {v}"
        )));
    }
    u32::try_from(v)
        .ok()
        .filter(|n| *n <= MAX_RETRIES)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "route max_retries must be at most {MAX_RETRIES} retries, got {v}"
            ))
        })
}

/// A service route answers its callers over HTTP from long-running tasks;
/// queueing async calls for it is not built yet, so the combination is
/// refused rather than accepted and run some other way.
fn service_needs_sync(route: &Route) -> Result<(), ApiError> {
    if route.service.is_some() && route.kind != RouteType::Sync {
        return Err(ApiError::bad_request(format!(
            "route type {} cannot have a service section: async calls to services are not \
             supported yet; use type sync, or remove the section with \"service\": null",
            route.kind
        )));
    }
    Ok(())
}

/// A service is reached over its overlay network, so it cannot run without one.
fn service_needs_network(route: &Route) -> Result<(), ApiError> {
    let network_none = route
        .confinement
        .as_ref()
        .is_some_and(|c| c.network == Network::None);
    if route.service.is_some() && network_none {
        return Err(ApiError::bad_request(
            "route confinement.network \"none\" cannot go with a service section: Ferrite \
             reaches a service over its network; use \"default\", or remove the service section",
        ));
    }
    Ok(())
}

/// Absent and empty strings mean "not given" (Go clients send zero values).
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl Route {
    /// The confinement of this route's containers and services: its section
    /// (or the defaults) resolved against its memory.
    pub fn confinement(&self) -> Confinement {
        Confinement::resolve(self.confinement.as_ref(), self.memory)
    }

    /// Validate a creation request for a route of `app_name` (from the URL),
    /// applying the defaults docs/api.md lists to what is not given.
    pub fn create(app_name: &str, input: RouteInput) -> Result<Route, ApiError> {
        validate::app_name(app_name)?;
        if let Some(other) = given(input.app_name).filter(|n| n != app_name) {
            return Err(ApiError::bad_request(format!(
                "route app_name {other:?} does not match the app {app_name:?} of the URL"
            )));
        }
        let path = input.path.unwrap_or_default();
        validate::route_path(&path)?;
        let image = input.image.unwrap_or_default();
        validate::image(&image)?;
        let headers = input.headers.unwrap_or_default();
        validate::headers(&headers)?;
        let config = input.config.unwrap_or_default();
        validate::config("route", &config)?;
        let service = input
            .service
            .flatten()
            .map(ServiceSpec::create)
            .transpose()?;
        let confinement = input
            .confinement
            .flatten()
            .map(ConfinementSpec::create)
            .transpose()?;
        let route = Route {
            app_name: app_name.to_string(),
            path,
            image,
            memory: memory(input.memory)?.unwrap_or(DEFAULT_MEMORY_MIB),
            kind: given(input.kind)
                .map(|k| RouteType::parse(&k))
                .transpose()?
                .unwrap_or(RouteType::Sync),
            format: given(input.format)
                .map(|f| Format::parse(&f))
                .transpose()?
                .unwrap_or(Format::Default),
            max_concurrency: max_concurrency(input.max_concurrency)?
                .unwrap_or(DEFAULT_MAX_CONCURRENCY),
            timeout: timeout("route timeout", input.timeout)?.unwrap_or(DEFAULT_TIMEOUT_S),
            idle_timeout: timeout("route idle_timeout", input.idle_timeout)?
                .unwrap_or(DEFAULT_IDLE_TIMEOUT_S),
            headers: (!headers.is_empty()).then_some(headers),
            config: validate::merge_config(None, config),
            jwt_key: given(input.jwt_key),
            max_retries: max_retries(input.max_retries)?.unwrap_or(0),
            service,
            confinement,
        };
        service_needs_sync(&route)?;
        service_needs_network(&route)?;
        Ok(route)
    }

    /// Apply a PATCH. Fields not given (or zero, or `""`) keep their value,
    /// except `max_retries`, where 0 is a value and only absence keeps it;
    /// `config` is merged (`""` removes a key); `headers` are merged (an empty
    /// list removes a header); `"jwt_key":""` removes the key. The path and the
    /// app cannot change. `"service": null` removes the service section and
    /// `"service": {...}` merges into it (see [`ServiceSpec::apply`]) or
    /// creates it with defaults; `"confinement"` likewise (see
    /// [`ConfinementSpec::apply`]). Nothing is changed when an error is returned.
    pub fn apply(&mut self, patch: RouteInput) -> Result<(), ApiError> {
        if let Some(other) = given(patch.path).filter(|p| *p != self.path) {
            return Err(ApiError::bad_request(format!(
                "route path cannot be changed (from {:?} to {other:?}); create a new route instead",
                self.path
            )));
        }
        if let Some(other) = given(patch.app_name).filter(|n| *n != self.app_name) {
            return Err(ApiError::bad_request(format!(
                "route app_name cannot be changed (from {:?} to {other:?})",
                self.app_name
            )));
        }
        let mut next = self.clone();
        if let Some(image) = given(patch.image) {
            validate::image(&image)?;
            next.image = image;
        }
        if let Some(m) = memory(patch.memory)? {
            next.memory = m;
        }
        if let Some(kind) = given(patch.kind) {
            next.kind = RouteType::parse(&kind)?;
        }
        if let Some(format) = given(patch.format) {
            next.format = Format::parse(&format)?;
        }
        if let Some(c) = max_concurrency(patch.max_concurrency)? {
            next.max_concurrency = c;
        }
        if let Some(t) = timeout("route timeout", patch.timeout)? {
            next.timeout = t;
        }
        if let Some(t) = timeout("route idle_timeout", patch.idle_timeout)? {
            next.idle_timeout = t;
        }
        if let Some(headers) = patch.headers {
            validate::headers(&headers)?;
            let mut merged = next.headers.take().unwrap_or_default();
            for (name, values) in headers {
                if values.is_empty() {
                    merged.remove(&name);
                } else {
                    merged.insert(name, values);
                }
            }
            next.headers = (!merged.is_empty()).then_some(merged);
        }
        if let Some(config) = patch.config {
            validate::config("route", &config)?;
            next.config = validate::merge_config(next.config.take(), config);
        }
        if let Some(n) = max_retries(patch.max_retries)? {
            next.max_retries = n;
        }
        if let Some(key) = patch.jwt_key {
            next.jwt_key = (!key.is_empty()).then_some(key);
        }
        match patch.service {
            None => {}
            Some(None) => next.service = None,
            Some(Some(section)) => {
                next.service = Some(match next.service.take() {
                    Some(mut current) => {
                        current.apply(section)?;
                        current
                    }
                    None => ServiceSpec::create(section)?,
                });
            }
        }
        match patch.confinement {
            None => {}
            Some(None) => next.confinement = None,
            Some(Some(section)) => {
                next.confinement = Some(match next.confinement.take() {
                    Some(mut current) => {
                        current.apply(section)?;
                        current
                    }
                    None => ConfinementSpec::create(section)?,
                });
            }
        }
        service_needs_sync(&next)?;
        service_needs_network(&next)?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn input(json: &str) -> RouteInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults() {
        let route = Route::create(
            "myapp",
            input(r#"{"path":"/hello-sync","image":"ferrite/hello"}"#),
        )
        .unwrap();
        assert_eq!(route.memory, 128);
        assert_eq!(route.kind, RouteType::Sync);
        assert_eq!(route.format, Format::Default);
        assert_eq!(route.max_concurrency, 1);
        assert_eq!(route.timeout, 30);
        assert_eq!(route.idle_timeout, 30);
        assert_eq!(route.max_retries, 0);
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["type"], "sync");
        assert!(json.get("jwt_key").is_none());
        assert_eq!(json["max_retries"], 0);
    }

    #[test]
    fn max_retries_create() {
        for (body, expected) in [
            (r#"{"path":"/a","image":"x"}"#, 0),
            (r#"{"path":"/a","image":"x","max_retries":null}"#, 0),
            (r#"{"path":"/a","image":"x","max_retries":0}"#, 0),
            (r#"{"path":"/a","image":"x","max_retries":3}"#, 3),
            (r#"{"path":"/a","image":"x","max_retries":10}"#, 10),
        ] {
            let route = Route::create("myapp", input(body)).unwrap();
            assert_eq!(route.max_retries, expected, "{body}");
        }
    }

    #[test]
    fn max_retries_rejects_out_of_range() {
        for (value, needle) in [
            ("-1", "0 or a positive"),
            ("11", "at most 10"),
            ("4294967296", "at most 10"),
        ] {
            let body = format!(r#"{{"path":"/a","image":"x","max_retries":{value}}}"#);
            let err = Route::create("myapp", input(&body)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest);
            assert!(err.message.contains("route max_retries"), "{}", err.message);
            assert!(err.message.contains(needle), "{}", err.message);

            let mut route = Route::create(
                "myapp",
                input(r#"{"path":"/a","image":"x","max_retries":2}"#),
            )
            .unwrap();
            let before = route.clone();
            let err = route
                .apply(input(&format!(r#"{{"max_retries":{value}}}"#)))
                .unwrap_err();
            assert!(err.message.contains("route max_retries"), "{}", err.message);
            assert_eq!(route, before);
        }
    }

    #[test]
    fn max_retries_patch_zero_is_a_value() {
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","max_retries":4}"#),
        )
        .unwrap();
        route.apply(input(r#"{"memory":256}"#)).unwrap();
        assert_eq!(route.max_retries, 4, "absent keeps the value");
        route.apply(input(r#"{"max_retries":null}"#)).unwrap();
        assert_eq!(route.max_retries, 4, "null keeps the value");
        route.apply(input(r#"{"max_retries":7}"#)).unwrap();
        assert_eq!(route.max_retries, 7);
        route
            .apply(input(r#"{"max_retries":0,"timeout":0}"#))
            .unwrap();
        assert_eq!(route.max_retries, 0, "an explicit 0 sets 0");
        assert_eq!(route.timeout, 30, "while 0 keeps the other numbers");
    }

    #[test]
    fn max_retries_defaults_when_deserializing_old_documents() {
        let old = r#"{"app_name":"myapp","path":"/a","image":"x","memory":128,"type":"async",
            "format":"default","max_concurrency":1,"timeout":30,"idle_timeout":30,
            "headers":null,"config":null}"#;
        let route: Route = serde_json::from_str(old).unwrap();
        assert_eq!(route.max_retries, 0);
    }

    #[test]
    fn rejects_bad_fields() {
        for (body, needle) in [
            (r#"{"path":"/a"}"#, "image"),
            (r#"{"image":"x"}"#, "path"),
            (r#"{"path":"/a","image":"x","type":"later"}"#, "type"),
            (r#"{"path":"/a","image":"x","format":"grpc"}"#, "format"),
            (r#"{"path":"/a","image":"x","memory":-1}"#, "memory"),
            (r#"{"path":"/a","image":"x","memory":5}"#, "at least 6 MiB"),
            (r#"{"path":"/a","image":"x","timeout":-5}"#, "timeout"),
            (
                r#"{"path":"/a","image":"x","idle_timeout":99999999}"#,
                "idle_timeout",
            ),
            (
                r#"{"path":"/a","image":"x","max_concurrency":-2}"#,
                "max_concurrency",
            ),
            (
                r#"{"path":"/a","image":"x","app_name":"other"}"#,
                "app_name",
            ),
        ] {
            let err = Route::create("myapp", input(body)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest);
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
    }

    #[test]
    fn patch_merges_and_keeps() {
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","config":{"A":"1","B":"2"},"headers":{"X-A":["1"]},"jwt_key":"k"}"#),
        )
        .unwrap();
        route
            .apply(input(r#"{"memory":256,"timeout":0,"config":{"A":"","C":"3"},"headers":{"X-A":[],"X-B":["2"]},"jwt_key":""}"#))
            .unwrap();
        assert_eq!(route.memory, 256);
        assert_eq!(route.timeout, 30);
        assert_eq!(
            route.config.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["B", "C"]
        );
        assert_eq!(
            route.headers.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["X-B"]
        );
        assert_eq!(route.jwt_key, None);
    }

    #[test]
    fn service_section_on_create() {
        let plain = Route::create("myapp", input(r#"{"path":"/a","image":"x"}"#)).unwrap();
        assert_eq!(plain.service, None);
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("service").is_none(), "left out when unset: {json}");
        let null = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","service":null}"#),
        )
        .unwrap();
        assert_eq!(null.service, None, "null on creation is no service");

        let route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","format":"http","service":{}}"#),
        )
        .unwrap();
        assert_eq!(route.service, Some(ServiceSpec::default()));
        assert_eq!(route.format, Format::Http, "format is kept");
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["service"]["port"], 8080);
        assert_eq!(json["service"]["max_replicas"], 10);
        let back: Route = serde_json::from_value(json).unwrap();
        assert_eq!(back, route);

        let route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","service":{"port":9000,"min_replicas":1}}"#),
        )
        .unwrap();
        let service = route.service.unwrap();
        assert_eq!((service.port, service.min_replicas), (9000, 1));
    }

    #[test]
    fn service_rules_on_create() {
        for (body, needle) in [
            (
                r#"{"path":"/a","image":"x","type":"async","service":{}}"#,
                "async calls to services are not supported yet",
            ),
            (
                r#"{"path":"/a","image":"x","service":{"min_replicas":3,"max_replicas":2}}"#,
                "route service.max_replicas must be at least min_replicas (3), got 2",
            ),
            (
                r#"{"path":"/a","image":"x","service":{"port":-1}}"#,
                "route service.port must be between 1 and 65535",
            ),
            (
                r#"{"path":"/a","image":"x","service":{"labels":{"org.ferrite.app":"y"}}}"#,
                "reserved",
            ),
            (
                r#"{"path":"/a","image":"x","service":{"constraints":["node.role=worker"]}}"#,
                "no operator",
            ),
        ] {
            let err = Route::create("myapp", input(body)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest);
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
    }

    #[test]
    fn service_decode_errors_name_the_field() {
        for (body, start) in [
            (
                r#"{"route":{"service":{"max_replica":3}}}"#,
                "route.service.max_replica: unknown field `max_replica`",
            ),
            (
                r#"{"route":{"service":{"port":"80"}}}"#,
                "route.service.port:",
            ),
            (r#"{"route":{"service":7}}"#, "route.service:"),
            (
                r#"{"route":{"service":{"port":1.5}}}"#,
                "route.service.port:",
            ),
        ] {
            let err = crate::decode::wrapped::<RouteInput>(body.as_bytes(), "route").unwrap_err();
            assert!(err.message.starts_with(start), "{body}: {}", err.message);
        }
    }

    #[test]
    fn service_patch_absent_null_and_object() {
        assert_eq!(input(r#"{}"#).service, None);
        assert_eq!(input(r#"{"service":null}"#).service, Some(None));
        assert_eq!(
            input(r#"{"service":{}}"#).service,
            Some(Some(ServiceInput::default()))
        );

        let mut route = Route::create("myapp", input(r#"{"path":"/a","image":"x"}"#)).unwrap();
        route
            .apply(input(r#"{"service":{"max_replicas":3}}"#))
            .unwrap();
        let service = route.service.clone().unwrap();
        assert_eq!(
            service,
            ServiceSpec {
                max_replicas: 3,
                ..ServiceSpec::default()
            },
            "created with defaults"
        );
        route.apply(input(r#"{"memory":256}"#)).unwrap();
        assert_eq!(route.service.as_ref(), Some(&service), "absent keeps it");
        route
            .apply(input(r#"{"service":{"port":9000,"labels":{"a":"1"}}}"#))
            .unwrap();
        let merged = route.service.clone().unwrap();
        assert_eq!(
            (merged.port, merged.max_replicas, merged.labels.len()),
            (9000, 3, 1),
            "merged field by field"
        );
        route.apply(input(r#"{"service":null}"#)).unwrap();
        assert_eq!(route.service, None, "null removes it");
        route.apply(input(r#"{"service":null}"#)).unwrap();
        assert_eq!(route.service, None, "removing what is not there is fine");
        route.apply(input(r#"{"service":{}}"#)).unwrap();
        assert_eq!(
            route.service,
            Some(ServiceSpec::default()),
            "back with defaults, not with the removed values"
        );
    }

    #[test]
    fn service_patch_keeps_type_sync() {
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","type":"async"}"#),
        )
        .unwrap();
        let before = route.clone();
        let err = route.apply(input(r#"{"service":{}}"#)).unwrap_err();
        assert!(err.message.contains("not supported yet"), "{}", err.message);
        assert_eq!(route, before);
        route
            .apply(input(r#"{"type":"sync","service":{}}"#))
            .unwrap();
        assert!(route.service.is_some());
        let before = route.clone();
        let err = route.apply(input(r#"{"type":"async"}"#)).unwrap_err();
        assert!(
            err.message
                .contains("route type async cannot have a service section"),
            "{}",
            err.message
        );
        assert_eq!(route, before);
        route
            .apply(input(r#"{"type":"async","service":null}"#))
            .unwrap();
        assert_eq!(
            (route.kind, route.service.is_none()),
            (RouteType::Async, true)
        );
    }

    #[test]
    fn service_patch_is_all_or_nothing() {
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","service":{"max_replicas":5}}"#),
        )
        .unwrap();
        let before = route.clone();
        let err = route
            .apply(input(r#"{"memory":512,"service":{"min_replicas":6}}"#))
            .unwrap_err();
        assert!(
            err.message
                .contains("route service.min_replicas must be at most max_replicas (5), got 6"),
            "{}",
            err.message
        );
        assert_eq!(route, before);
    }

    #[test]
    fn confinement_section_create_patch_and_resolve() {
        let plain = Route::create("myapp", input(r#"{"path":"/a","image":"x"}"#)).unwrap();
        assert_eq!(plain.confinement, None);
        let json = serde_json::to_value(&plain).unwrap();
        assert!(
            json.get("confinement").is_none(),
            "left out when unset: {json}"
        );
        let resolved = plain.confinement();
        assert_eq!(
            (resolved.pids_limit, resolved.nofile, resolved.cpu_weight),
            (256, 1024, 1024)
        );

        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","memory":256,"confinement":{"read_only":true,"cap_add":["NET_BIND_SERVICE"]}}"#),
        )
        .unwrap();
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["confinement"]["read_only"], true);
        assert_eq!(json["confinement"]["pids_limit"], 256);
        let back: Route = serde_json::from_value(json).unwrap();
        assert_eq!(back, route);
        assert_eq!(route.confinement().cpu_weight, 2048, "tied to memory");

        route.apply(input(r#"{"memory":512}"#)).unwrap();
        assert!(
            route.confinement.as_ref().unwrap().read_only,
            "absent keeps"
        );
        route
            .apply(input(r#"{"confinement":{"pids_limit":512,"cpus":0.5}}"#))
            .unwrap();
        let resolved = route.confinement();
        assert!(resolved.read_only, "merged field by field");
        assert_eq!(resolved.cap_add, ["NET_BIND_SERVICE"]);
        assert_eq!((resolved.pids_limit, resolved.cpus), (512, Some(0.5)));
        route.apply(input(r#"{"confinement":null}"#)).unwrap();
        assert_eq!(route.confinement, None, "null removes it");
        assert!(!route.confinement().read_only);

        let before = route.clone();
        let err = route
            .apply(input(
                r#"{"memory":64,"confinement":{"cap_add":["SYS_ADMIN"]}}"#,
            ))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(
            err.message.contains("confinement.cap_add"),
            "{}",
            err.message
        );
        assert_eq!(route, before, "all or nothing");
    }

    #[test]
    fn confinement_decode_errors_name_the_field() {
        for (body, start) in [
            (
                r#"{"route":{"confinement":{"read_onyl":true}}}"#,
                "route.confinement.read_onyl: unknown field `read_onyl`",
            ),
            (
                r#"{"route":{"confinement":{"read_only":"yes"}}}"#,
                "route.confinement.read_only:",
            ),
            (
                r#"{"route":{"confinement":{"cpus":"1"}}}"#,
                "route.confinement.cpus:",
            ),
            (r#"{"route":{"confinement":[]}}"#, "route.confinement:"),
        ] {
            let err = crate::decode::wrapped::<RouteInput>(body.as_bytes(), "route").unwrap_err();
            assert!(err.message.starts_with(start), "{body}: {}", err.message);
        }
    }

    #[test]
    fn service_route_needs_a_network() {
        let err = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","service":{},"confinement":{"network":"none"}}"#),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(
            err.message.contains("confinement.network"),
            "{}",
            err.message
        );
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","confinement":{"network":"none"}}"#),
        )
        .unwrap();
        let before = route.clone();
        assert!(route.apply(input(r#"{"service":{}}"#)).is_err());
        assert_eq!(route, before);
        route
            .apply(input(
                r#"{"service":{},"confinement":{"network":"default"}}"#,
            ))
            .unwrap();
        assert!(route.service.is_some());
    }

    #[test]
    fn patch_is_all_or_nothing() {
        let mut route = Route::create("myapp", input(r#"{"path":"/a","image":"x"}"#)).unwrap();
        let before = route.clone();
        assert!(route
            .apply(input(r#"{"memory":512,"type":"bogus"}"#))
            .is_err());
        assert_eq!(route, before);
        assert!(route.apply(input(r#"{"path":"/b"}"#)).is_err());
        assert!(route.apply(input(r#"{"path":"/a"}"#)).is_ok());
    }
}
