//! The function contract's environment (DESIGN.md §4): what a function is
//! told about its call, built in one place so every format gets the same.

use axum::http::HeaderMap;
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

/// `HEADER_<NAME>` spelling: upper case, `-` to `_`.
fn header_var(name: &str) -> String {
    format!("HEADER_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The function's environment. Later entries win: app config, then route
/// config, then request headers, then the contract's own variables, so that
/// neither a config key nor a header can fake `CALL_ID` or `ROUTE`.
pub fn environment(ctx: &CallContext<'_>) -> Vec<(String, String)> {
    let mut vars = config_vars(ctx.app, ctx.route);
    for name in ctx.headers.keys() {
        let values: Vec<&str> = ctx
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !values.is_empty() {
            vars.push((header_var(name.as_str()), values.join(", ")));
        }
    }
    let route = ctx.route;
    vars.extend([
        ("METHOD".to_string(), ctx.method.to_string()),
        ("ROUTE".to_string(), route.path.clone()),
        ("REQUEST_URL".to_string(), ctx.request_url.to_string()),
        ("APP_NAME".to_string(), route.app_name.clone()),
        ("CALL_ID".to_string(), ctx.call_id.to_string()),
        ("FN_FORMAT".to_string(), route.format.to_string()),
        ("FN_MEMORY".to_string(), route.memory.to_string()),
        ("FN_TIMEOUT".to_string(), route.timeout.to_string()),
    ]);
    last_wins(vars)
}

/// A hot container's environment, fixed when it starts: config, then the
/// route's contract values (per-call values travel as request headers).
pub fn hot_environment(app: &App, route: &Route) -> Vec<(String, String)> {
    let mut vars = config_vars(app, route);
    vars.extend([
        ("APP_NAME".to_string(), route.app_name.clone()),
        ("ROUTE".to_string(), route.path.clone()),
        ("FN_FORMAT".to_string(), route.format.to_string()),
        ("FN_MEMORY".to_string(), route.memory.to_string()),
        ("FN_TIMEOUT".to_string(), route.timeout.to_string()),
    ]);
    last_wins(vars)
}

/// The app's then the route's config, keys upper-cased.
fn config_vars(app: &App, route: &Route) -> Vec<(String, String)> {
    [&app.config, &route.config]
        .into_iter()
        .flatten()
        .flat_map(|config| {
            config
                .iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        })
        .collect()
}

/// Keep the last value of each name, in first-seen order.
fn last_wins(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen = std::collections::HashMap::new();
    for (i, (name, _)) in vars.iter().enumerate() {
        seen.insert(name.clone(), i);
    }
    vars.into_iter()
        .enumerate()
        .filter(|(i, (name, _))| seen.get(name) == Some(i))
        .map(|(_, var)| var)
        .collect()
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
