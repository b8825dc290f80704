//! What a call is, as the function is told: most of it comes from the
//! request itself; what Ferrite knows and the request cannot say (the call
//! id, the app, the route, the URL the client used) comes in `Fn-*` request
//! headers, the same ones Ferrite sends to hot functions. Without them (a
//! task called directly, with curl) the watchdog's settings and the request
//! give sensible values, so a function can be tried by hand.

use axum::http::request::Parts;
use axum::http::HeaderMap;
use ferrite_model::contract::{self, CallFacts, RouteFacts};
use ferrite_model::Format;

// The headers and what the watchdog falls back to without them: the call's
// id (a new UUIDv7), the app (`--app-name` / `APP_NAME`), the route
// (`--route` / `ROUTE`, else the request's path), the URL (`http://` +
// `Host` + path and query, `https://` behind `X-Forwarded-Proto: https`),
// the method (the request's).
use ferrite_wire::headers::{
    FACT_HEADERS, FN_APP_NAME, FN_CALL_ID, FN_METHOD, FN_REQUEST_URL, FN_ROUTE,
};

/// What does not change from call to call.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub app_name: String,
    pub route: Option<String>,
    pub format: Format,
    pub memory_mib: Option<u64>,
    pub timeout_secs: u64,
}

/// One call's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub call_id: String,
    pub app_name: String,
    pub route: String,
    pub request_url: String,
    pub method: String,
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

impl Facts {
    pub fn of(request: &Parts, defaults: &Defaults) -> Facts {
        let headers = &request.headers;
        let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let request_url = text(headers, FN_REQUEST_URL).map_or_else(
            || {
                let scheme = text(headers, "x-forwarded-proto").unwrap_or("http");
                let host = text(headers, "host").unwrap_or("localhost");
                format!("{scheme}://{host}{path_and_query}")
            },
            str::to_string,
        );
        Facts {
            call_id: text(headers, FN_CALL_ID)
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string),
            app_name: text(headers, FN_APP_NAME)
                .unwrap_or(&defaults.app_name)
                .to_string(),
            route: text(headers, FN_ROUTE)
                .or(defaults.route.as_deref())
                .unwrap_or(request.uri.path())
                .to_string(),
            request_url,
            method: text(headers, FN_METHOD)
                .unwrap_or(request.method.as_str())
                .to_string(),
        }
    }

    /// The variables a cold call's process gets on top of the watchdog's
    /// own environment (which holds the route's config).
    pub fn environment(&self, headers: &HeaderMap, defaults: &Defaults) -> Vec<(String, String)> {
        let headers = headers.iter().filter_map(|(name, value)| {
            if FACT_HEADERS.contains(&name.as_str()) {
                return None;
            }
            // A value that is not text cannot be an environment variable.
            value.to_str().ok().map(|value| (name.as_str(), value))
        });
        contract::call_environment(
            Vec::new(),
            headers,
            &self.route_facts(defaults),
            &CallFacts {
                call_id: &self.call_id,
                method: &self.method,
                request_url: &self.request_url,
            },
        )
    }

    fn route_facts<'a>(&'a self, defaults: &Defaults) -> RouteFacts<'a> {
        RouteFacts {
            app_name: &self.app_name,
            route: &self.route,
            format: defaults.format,
            memory_mib: defaults.memory_mib,
            timeout_secs: defaults.timeout_secs,
        }
    }
}

impl Defaults {
    /// The variables a hot process gets at its start, on top of the
    /// watchdog's own environment; per-call facts reach it as headers.
    pub fn hot_environment(&self) -> Vec<(String, String)> {
        let route = self.route.as_deref().unwrap_or("");
        contract::hot_environment(
            Vec::new(),
            &RouteFacts {
                app_name: &self.app_name,
                route,
                format: self.format,
                memory_mib: self.memory_mib,
                timeout_secs: self.timeout_secs,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn defaults() -> Defaults {
        Defaults {
            app_name: "myapp".into(),
            route: None,
            format: Format::Default,
            memory_mib: Some(64),
            timeout_secs: 7,
        }
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn without_ferrite_headers_the_request_says_it_all() {
        let (parts, ()) = Request::post("/hello/x?a=1")
            .header("host", "task:8080")
            .header("x-trace", "t1")
            .body(())
            .unwrap()
            .into_parts();
        let facts = Facts::of(&parts, &defaults());
        assert_eq!(facts.route, "/hello/x");
        assert_eq!(facts.app_name, "myapp");
        assert_eq!(facts.method, "POST");
        assert_eq!(facts.request_url, "http://task:8080/hello/x?a=1");
        assert_eq!(facts.call_id.len(), 36);
        let env = facts.environment(&parts.headers, &defaults());
        assert_eq!(get(&env, "HEADER_X_TRACE"), Some("t1"));
        assert_eq!(get(&env, "FN_MEMORY"), Some("64"));
        assert_eq!(get(&env, "FN_TIMEOUT"), Some("7"));
        assert_eq!(get(&env, "FN_FORMAT"), Some("default"));
        assert_eq!(get(&env, "CALL_ID"), Some(facts.call_id.as_str()));
    }

    #[test]
    fn ferrite_headers_win_and_stay_out_of_header_variables() {
        let (parts, ()) = Request::get("/")
            .header(FN_CALL_ID, "c-1")
            .header(FN_APP_NAME, "other")
            .header(FN_ROUTE, "/a/b")
            .header(FN_REQUEST_URL, "https://api.example/r/other/a/b?q")
            .header(FN_METHOD, "PUT")
            .header("header-call-id", "x")
            .body(())
            .unwrap()
            .into_parts();
        let facts = Facts::of(&parts, &defaults());
        let env = facts.environment(&parts.headers, &defaults());
        assert_eq!(get(&env, "CALL_ID"), Some("c-1"));
        assert_eq!(get(&env, "APP_NAME"), Some("other"));
        assert_eq!(get(&env, "ROUTE"), Some("/a/b"));
        assert_eq!(
            get(&env, "REQUEST_URL"),
            Some("https://api.example/r/other/a/b?q")
        );
        assert_eq!(get(&env, "METHOD"), Some("PUT"));
        assert_eq!(get(&env, "HEADER_FN_CALL_ID"), None);
        assert_eq!(get(&env, "HEADER_HEADER_CALL_ID"), Some("x"));
    }
}
