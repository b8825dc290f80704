//! How a route's `service` and `confinement` sections fit the rest of it:
//! the combinations refused, and how a PATCH replaces, merges or removes a
//! section.

use super::*;
use crate::confinement::Network;

/// A service is reached over its overlay network, so it cannot run without one.
pub(super) fn service_needs_network(route: &Route) -> Result<(), ApiError> {
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

/// A service is one Swarm service per route, so its calls cannot be shared
/// between versions; and a new route has only its first version.
pub(super) fn traffic_fits(route: &Route) -> Result<(), ApiError> {
    if route.traffic.is_some() && route.service.is_some() {
        return Err(ApiError::bad_request(
            "route traffic cannot be set on a route with a service section: a service runs one \
             version; remove the traffic (null), or the service section",
        ));
    }
    if let Some(v) = route
        .traffic_versions()
        .iter()
        .find(|v| **v > route.version)
    {
        return Err(ApiError::bad_request(format!(
            "route traffic names version {v}, but the route's newest version is {}",
            route.version
        )));
    }
    Ok(())
}

/// A section of a route that a creation makes and a PATCH merges into.
pub(super) trait Section: Sized {
    type Input;
    fn create(input: Self::Input) -> Result<Self, ApiError>;
    fn apply(&mut self, patch: Self::Input) -> Result<(), ApiError>;
}

impl Section for ServiceSpec {
    type Input = crate::service::ServiceInput;
    fn create(input: Self::Input) -> Result<Self, ApiError> {
        ServiceSpec::create(input)
    }
    fn apply(&mut self, patch: Self::Input) -> Result<(), ApiError> {
        ServiceSpec::apply(self, patch)
    }
}

impl Section for ConfinementSpec {
    type Input = crate::confinement::ConfinementInput;
    fn create(input: Self::Input) -> Result<Self, ApiError> {
        ConfinementSpec::create(input)
    }
    fn apply(&mut self, patch: Self::Input) -> Result<(), ApiError> {
        ConfinementSpec::apply(self, patch)
    }
}

/// A PATCH of a section: absent keeps it, `null` removes it, an object is
/// merged into it field by field or makes a new one with defaults.
pub(super) fn patch_section<S: Section>(
    section: &mut Option<S>,
    patch: Option<Option<S::Input>>,
) -> Result<(), ApiError> {
    match patch {
        None => {}
        Some(None) => *section = None,
        Some(Some(input)) => {
            *section = Some(match section.take() {
                Some(mut current) => {
                    current.apply(input)?;
                    current
                }
                None => S::create(input)?,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::input;
    use super::*;
    use crate::error::assert_refused;
    use crate::service::ServiceInput;
    use crate::ErrorKind;

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
            assert_refused(Route::create("myapp", input(body)), needle);
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
    fn service_goes_with_either_type() {
        let route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","type":"async","service":{}}"#),
        )
        .unwrap();
        assert_eq!(
            (route.kind, route.service.is_some()),
            (RouteType::Async, true)
        );
        let mut route = Route::create(
            "myapp",
            input(r#"{"path":"/a","image":"x","type":"async"}"#),
        )
        .unwrap();
        route.apply(input(r#"{"service":{}}"#)).unwrap();
        assert_eq!(route.service, Some(ServiceSpec::default()));
        route.apply(input(r#"{"type":"sync"}"#)).unwrap();
        assert_eq!(route.kind, RouteType::Sync, "the section is kept");
        assert!(route.service.is_some());
        route.apply(input(r#"{"type":"async"}"#)).unwrap();
        assert_eq!(
            (route.kind, route.service.is_some()),
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
}
