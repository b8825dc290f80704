//! The function contract's environment (docs/function-format.md) from a call as the
//! server holds it: the rules live in [`ferrite_model::contract`], shared
//! with the watchdog that runs functions inside Swarm services.

use axum::http::HeaderMap;
use ferrite_model::contract::{self, CallFacts, RouteFacts};
use ferrite_model::{App, Route};

/// What the environment is built from.
pub struct CallContext<'a> {
    pub app: &'a App,
    pub route: &'a Route,
    pub call_id: &'a str,
    pub method: &'a str,
    /// `scheme://host/r/app/path?query`
    pub request_url: &'a str,
    pub headers: &'a HeaderMap,
}

/// The function's environment for a cold call (the contract itself, and
/// which value wins, is in [`ferrite_model::contract`]).
pub fn environment(ctx: &CallContext<'_>) -> Vec<(String, String)> {
    let headers = ctx.headers.iter().filter_map(|(name, value)| {
        // A value that is not text cannot be an environment variable.
        value.to_str().ok().map(|value| (name.as_str(), value))
    });
    contract::call_environment(
        contract::config_vars(ctx.app, ctx.route),
        headers,
        &RouteFacts::of(ctx.route),
        &CallFacts {
            call_id: ctx.call_id,
            method: ctx.method,
            request_url: ctx.request_url,
        },
    )
}

/// A hot container's environment, fixed when it starts: config, then the
/// route's contract values (per-call values travel as request headers).
pub fn hot_environment(app: &App, route: &Route) -> Vec<(String, String)> {
    contract::hot_environment(contract::config_vars(app, route), &RouteFacts::of(route))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_model::RouteInput;

    #[test]
    fn contract_variables_win() {
        let app = App {
            name: "myapp".into(),
            config: Some(
                [
                    ("shared".into(), "app".into()),
                    ("app_only".into(), "1".into()),
                ]
                .into(),
            ),
            limits: None,
        };
        let input: RouteInput = serde_json::from_str(
            r#"{"path":"/hello","image":"img","config":{"SHARED":"route","CALL_ID":"fake"}}"#,
        )
        .unwrap();
        let route = Route::create("myapp", input).unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-trace-id", "abc".parse().unwrap());
        headers.append("accept", "a".parse().unwrap());
        headers.append("accept", "b".parse().unwrap());
        let env = environment(&CallContext {
            app: &app,
            route: &route,
            call_id: "call-1",
            method: "POST",
            request_url: "http://h/r/myapp/hello?x=1",
            headers: &headers,
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("SHARED"), Some("route"));
        assert_eq!(get("APP_ONLY"), Some("1"));
        assert_eq!(get("CALL_ID"), Some("call-1"));
        assert_eq!(get("HEADER_X_TRACE_ID"), Some("abc"));
        assert_eq!(get("HEADER_ACCEPT"), Some("a, b"));
        assert_eq!(get("FN_MEMORY"), Some("128"));
        assert_eq!(get("FN_TIMEOUT"), Some("30"));
        assert_eq!(get("FN_FORMAT"), Some("default"));
        assert_eq!(get("ROUTE"), Some("/hello"));
        assert_eq!(get("APP_NAME"), Some("myapp"));
        assert_eq!(env.iter().filter(|(n, _)| n == "CALL_ID").count(), 1);
    }
}
