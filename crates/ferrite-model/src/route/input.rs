//! The body of route creation, its fields' rules, and the route it creates
//! with the defaults filled in.

use serde::Deserialize;

use super::sections::{service_needs_network, traffic_fits};
use super::*;
use crate::confinement::ConfinementInput;
use crate::decode::absent_or_null;
use crate::service::ServiceInput;

/// The body of route creation and PATCH (inside `"route"`). Numbers are
/// read as signed so that a negative value gets a message about the rule,
/// not about the type. Unknown fields are ignored, as IronFunctions did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, Vec<String>>>))]
    pub headers: Option<Headers>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
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
    /// Absent: keep (on creation: none). `null`: the newest version takes
    /// every call. A list: the versions that share the calls (see
    /// [`version::traffic`]).
    #[serde(default, deserialize_with = "absent_or_null")]
    pub traffic: Option<Option<Vec<TrafficInput>>>,
}

pub(super) fn memory(v: Option<i64>) -> Result<Option<u64>, ApiError> {
    let mib = validate::bounded("route memory", v, MAX_MEMORY_MIB, "MiB")?;
    if let Some(mib) = mib.filter(|m| *m < MIN_MEMORY_MIB) {
        return Err(ApiError::bad_request(format!(
            "route memory must be at least {MIN_MEMORY_MIB} MiB (the smallest limit Docker accepts), got {mib}"
        )));
    }
    Ok(mib)
}

/// `field` is `route timeout` or `route idle_timeout`; a negative value
/// is refused in IronFunctions' words.
pub(super) fn timeout(field: &str, v: Option<i64>) -> Result<Option<u64>, ApiError> {
    if v.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_request(if field.ends_with("idle_timeout") {
            text::ROUTE_IDLE_TIMEOUT_NEGATIVE
        } else {
            text::ROUTE_TIMEOUT_NEGATIVE
        }));
    }
    validate::bounded(field, v, MAX_TIMEOUT_S, "seconds")
}

pub(super) fn max_concurrency(v: Option<i64>) -> Result<Option<u64>, ApiError> {
    if v.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_request(text::ROUTE_MAX_CONCURRENCY_NEGATIVE));
    }
    validate::bounded("route max_concurrency", v, MAX_CONCURRENCY, "containers")
}

/// `0..=`[`MAX_RETRIES`]; `None` is "not given". Zero is kept (see
/// [`RouteInput::max_retries`]), so this does not go through [`validate::bounded`].
pub(super) fn max_retries(v: Option<i64>) -> Result<Option<u32>, ApiError> {
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

/// Absent and empty strings mean "not given" (Go clients send zero values).
pub(super) fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl Route {
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
            version: 1,
            traffic: input.traffic.flatten().map(version::traffic).transpose()?,
        };
        service_needs_network(&route)?;
        traffic_fits(&route)?;
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::super::input;
    use super::*;
    use crate::error::assert_refused;
    use crate::ErrorKind;

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
    fn rejects_bad_fields() {
        for (body, needle) in [
            (r#"{"path":"/a"}"#, "Missing route Image"),
            (r#"{"image":"x"}"#, "Missing route Path"),
            (r#"{"path":"a","image":"x"}"#, "Invalid Path format"),
            (
                r#"{"path":"/a/:id","image":"x"}"#,
                "Dynamic URL is not allowed",
            ),
            (
                r#"{"path":"/a","image":"x","type":"later"}"#,
                "Invalid route Type",
            ),
            (
                r#"{"path":"/a","image":"x","format":"grpc"}"#,
                "Invalid route Format",
            ),
            (r#"{"path":"/a","image":"x","memory":-1}"#, "memory"),
            (r#"{"path":"/a","image":"x","memory":5}"#, "at least 6 MiB"),
            (
                r#"{"path":"/a","image":"x","timeout":-5}"#,
                "Negative timeout",
            ),
            (
                r#"{"path":"/a","image":"x","idle_timeout":-5}"#,
                "Negative idle timeout",
            ),
            (
                r#"{"path":"/a","image":"x","config":{"my-key":"1","MY_KEY":"2"}}"#,
                "are both the environment variable MY_KEY",
            ),
            (
                r#"{"path":"/a","image":"x","idle_timeout":99999999}"#,
                "idle_timeout",
            ),
            (
                r#"{"path":"/a","image":"x","max_concurrency":-2}"#,
                "Negative MaxConcurrency",
            ),
            (
                r#"{"path":"/a","image":"x","app_name":"other"}"#,
                "app_name",
            ),
        ] {
            assert_refused(Route::create("myapp", input(body)), needle);
        }
    }
}
