//! A route's PATCH: which fields change, how maps merge, and that nothing
//! changes when any part is refused.

use super::input::{given, max_concurrency, max_retries, memory, timeout};
use super::sections::{patch_section, service_needs_network, traffic_fits};
use super::*;

impl Route {
    /// Apply a PATCH. Fields not given (or zero, or `""`) keep their value,
    /// except `max_retries`, where 0 is a value and only absence keeps it;
    /// `config` is merged (`""` removes a key); `headers` are merged (an empty
    /// list removes a header); `"jwt_key":""` removes the key. The path and the
    /// app cannot change. `"service": null` removes the service section and
    /// `"service": {...}` merges into it (see [`ServiceSpec::apply`]) or
    /// creates it with defaults; `"confinement"` likewise (see
    /// [`ConfinementSpec::apply`]). A change of the route's [`Definition`]
    /// makes it a new version; `"traffic"` replaces the traffic (`null`
    /// removes it). Nothing is changed when an error is returned.
    pub fn apply(&mut self, patch: RouteInput) -> Result<(), ApiError> {
        if given(patch.path).is_some_and(|p| p != self.path) {
            return Err(ApiError::bad_request(text::ROUTE_PATH_IMMUTABLE));
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
            // A key added beside one of the same environment name.
            validate::config("route", next.config.as_ref().unwrap_or(&Config::new()))?;
        }
        if let Some(n) = max_retries(patch.max_retries)? {
            next.max_retries = n;
        }
        if let Some(key) = patch.jwt_key {
            next.jwt_key = (!key.is_empty()).then_some(key);
        }
        patch_section(&mut next.service, patch.service)?;
        patch_section(&mut next.confinement, patch.confinement)?;
        service_needs_network(&next)?;
        // A change of what runs is a new version (what it was stays as the
        // one before); a change of the key or the traffic alone is not.
        if next.definition() != self.definition() {
            next.version = self.version.saturating_add(1);
        }
        match patch.traffic {
            None => {}
            Some(None) => next.traffic = None,
            Some(Some(entries)) => next.traffic = Some(version::traffic(entries)?),
        }
        traffic_fits(&next)?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::input;
    use super::*;

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
