//! The function contract (docs/function-format.md): what a function is told
//! about its call, as environment variables and as `Fn-*` request headers.
//! Built here, with no I/O, so that every runner tells exactly the same: the
//! server for cold and hot containers and for a service's tasks, and the
//! watchdog inside a service's task.

use http::{HeaderMap, HeaderName, HeaderValue};

use ferrite_wire::headers::{FN_APP_NAME, FN_CALL_ID, FN_METHOD, FN_REQUEST_URL, FN_ROUTE};

use crate::{App, Format, Route};

/// What a function is told about its route; fixed for a hot function's life.
#[derive(Debug, Clone, Copy)]
pub struct RouteFacts<'a> {
    pub app_name: &'a str,
    /// The route's path (`/hello`), the function's `ROUTE`.
    pub route: &'a str,
    pub format: Format,
    /// `FN_MEMORY` in MiB; `None` leaves the variable out (a watchdog that
    /// was not told its limit), rather than stating a wrong one.
    pub memory_mib: Option<u64>,
    pub timeout_secs: u64,
}

impl<'a> RouteFacts<'a> {
    /// The facts of a stored route.
    pub fn of(route: &'a Route) -> RouteFacts<'a> {
        RouteFacts {
            app_name: &route.app_name,
            route: &route.path,
            format: route.format,
            memory_mib: Some(route.memory),
            timeout_secs: route.timeout,
        }
    }
}

/// What a function is told about one call, besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub call_id: &'a str,
    pub method: &'a str,
    /// `scheme://host/r/app/path?query`
    pub request_url: &'a str,
}

/// A call's facts as `Fn-*` headers: (name, value) pairs.
pub fn fact_headers<'a>(
    app_name: &'a str,
    route: &'a str,
    call: &CallFacts<'a>,
) -> [(&'static str, &'a str); 5] {
    [
        (FN_CALL_ID, call.call_id),
        (FN_APP_NAME, app_name),
        (FN_ROUTE, route),
        (FN_REQUEST_URL, call.request_url),
        (FN_METHOD, call.method),
    ]
}

/// Set a call's facts as `Fn-*` headers on a request to a hot function or
/// a service's task, replacing any the client sent. A value that cannot be
/// a header value is left out.
pub fn set_fact_headers(
    headers: &mut HeaderMap,
    app_name: &str,
    route: &str,
    call: &CallFacts<'_>,
) {
    for (name, value) in fact_headers(app_name, route, call) {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// The URL as the client used it, the `REQUEST_URL` fact: scheme (from
/// `X-Forwarded-Proto` behind a proxy), host (from `Host`), then
/// `path_and_query`.
pub fn request_url(headers: &HeaderMap, path_and_query: &str) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = text("x-forwarded-proto").unwrap_or("http");
    let host = text("host").unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
}

/// The environment of a cold call of a stored `route`: its app's and its
/// own config, the request's `headers`, then the contract's values (see
/// [`call_environment`] for which wins).
pub fn route_call_environment(
    app: &App,
    route: &Route,
    headers: &HeaderMap,
    call: &CallFacts<'_>,
) -> Vec<(String, String)> {
    let headers = headers.iter().filter_map(|(name, value)| {
        // A value that is not text cannot be an environment variable.
        value.to_str().ok().map(|value| (name.as_str(), value))
    });
    call_environment(
        config_vars(app, route),
        headers,
        &RouteFacts::of(route),
        call,
    )
}

/// The environment a hot container or a service's task of a stored
/// `route` starts with: config, then the route's contract values.
pub fn route_hot_environment(app: &App, route: &Route) -> Vec<(String, String)> {
    hot_environment(config_vars(app, route), &RouteFacts::of(route))
}

/// `HEADER_<NAME>` spelling: upper case, `-` to `_`.
pub fn header_var(name: &str) -> String {
    format!("HEADER_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// A cold call's environment. Later entries win: `config`, then request
/// headers, then the contract's own variables, so that neither a config key
/// nor a header can fake `CALL_ID` or `ROUTE`. A header that appears several
/// times gives one variable with its values joined by `, ` (as HTTP folds
/// them).
pub fn call_environment<'h>(
    config: Vec<(String, String)>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    route: &RouteFacts<'_>,
    call: &CallFacts<'_>,
) -> Vec<(String, String)> {
    let mut vars = config;
    let mut from_headers: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let var = header_var(name);
        match from_headers.iter_mut().find(|(n, _)| *n == var) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            None => from_headers.push((var, value.to_string())),
        }
    }
    vars.extend(from_headers);
    vars.extend([
        ("METHOD".to_string(), call.method.to_string()),
        ("REQUEST_URL".to_string(), call.request_url.to_string()),
        ("CALL_ID".to_string(), call.call_id.to_string()),
    ]);
    vars.extend(route_vars(route));
    last_wins(vars)
}

/// A hot function's environment, fixed when it starts: `config`, then the
/// route's contract values (per-call values travel as request headers).
pub fn hot_environment(
    config: Vec<(String, String)>,
    route: &RouteFacts<'_>,
) -> Vec<(String, String)> {
    let mut vars = config;
    vars.extend(route_vars(route));
    last_wins(vars)
}

/// `APP_NAME`, `ROUTE`, then the `FN_*` values, in that order.
fn route_vars(route: &RouteFacts<'_>) -> Vec<(String, String)> {
    let mut vars = vec![
        ("APP_NAME".to_string(), route.app_name.to_string()),
        ("ROUTE".to_string(), route.route.to_string()),
        ("FN_FORMAT".to_string(), route.format.to_string()),
    ];
    if let Some(memory) = route.memory_mib {
        vars.push(("FN_MEMORY".to_string(), memory.to_string()));
    }
    vars.push(("FN_TIMEOUT".to_string(), route.timeout_secs.to_string()));
    vars
}

/// The environment name of a config key, as IronFunctions made it: upper
/// case, `-` as `_` (`my-key` is `MY_KEY`).
pub fn env_name(key: &str) -> String {
    key.to_ascii_uppercase().replace('-', "_")
}

/// The app's then the route's config under their environment names
/// ([`env_name`]); the route's value wins over the app's of the same name.
pub fn config_vars(app: &App, route: &Route) -> Vec<(String, String)> {
    [&app.config, &route.config]
        .into_iter()
        .flatten()
        .flat_map(|config| config.iter().map(|(k, v)| (env_name(k), v.clone())))
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

/// A cold call's stdin for a GET (IronFunctions): the decoded `payload`
/// query parameter, or empty. `query` is the URL's query without its `?`.
pub fn payload_parameter(query: &str) -> Vec<u8> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| form_decode(key) == b"payload")
        .map(|(_, value)| form_decode(value))
        .unwrap_or_default()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte; a `%` not followed by two hex digits stays as it is.
fn form_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                match hex {
                    Some(byte) if bytes[i + 1].is_ascii_hexdigit() => {
                        out.push(byte);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The `Content-Type` of a cold function's output: text when it is UTF-8.
pub fn output_content_type(output: &[u8]) -> &'static str {
    if std::str::from_utf8(output).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// The JSON body of a failure, as every runner answers it (the server, and
/// the watchdog in a service's task): the message under `error`, and the
/// call's id as `request_id` once the call has one, where IronFunctions put
/// it (clients look the call up with it).
pub fn error_body(message: &str, call_id: Option<&str>) -> serde_json::Value {
    match call_id {
        Some(id) => serde_json::json!({ "request_id": id, "error": { "message": message } }),
        None => serde_json::json!({ "error": { "message": message } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouteInput;

    fn route() -> (App, Route) {
        let app = App {
            name: "myapp".into(),
            config: Some(
                [
                    ("shared".into(), "app".into()),
                    ("app_only".into(), "1".into()),
                    ("my-key".into(), "dashed".into()),
                    ("route-wins".into(), "app".into()),
                ]
                .into(),
            ),
            limits: None,
        };
        let input: RouteInput = serde_json::from_str(
            r#"{"path":"/hello","image":"img","config":{"SHARED":"route","CALL_ID":"fake","ROUTE_WINS":"route"}}"#,
        )
        .unwrap();
        (app, Route::create("myapp", input).unwrap())
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn contract_variables_win_and_headers_fold() {
        let (app, route) = route();
        let mut headers = HeaderMap::new();
        headers.append("x-trace-id", "abc".parse().unwrap());
        headers.append("accept", "a".parse().unwrap());
        headers.append("Accept", "b".parse().unwrap());
        let env = route_call_environment(
            &app,
            &route,
            &headers,
            &CallFacts {
                call_id: "call-1",
                method: "POST",
                request_url: "http://h/r/myapp/hello?x=1",
            },
        );
        assert_eq!(get(&env, "SHARED"), Some("route"));
        assert_eq!(get(&env, "APP_ONLY"), Some("1"));
        // Config keys are environment names, as IronFunctions made them.
        assert_eq!(get(&env, "MY_KEY"), Some("dashed"));
        assert_eq!(get(&env, "my-key"), None);
        assert_eq!(get(&env, "ROUTE_WINS"), Some("route"));
        assert_eq!(get(&env, "CALL_ID"), Some("call-1"));
        assert_eq!(get(&env, "HEADER_X_TRACE_ID"), Some("abc"));
        assert_eq!(get(&env, "HEADER_ACCEPT"), Some("a, b"));
        assert_eq!(get(&env, "METHOD"), Some("POST"));
        assert_eq!(get(&env, "REQUEST_URL"), Some("http://h/r/myapp/hello?x=1"));
        assert_eq!(get(&env, "FN_MEMORY"), Some("128"));
        assert_eq!(get(&env, "FN_TIMEOUT"), Some("30"));
        assert_eq!(get(&env, "FN_FORMAT"), Some("default"));
        assert_eq!(get(&env, "ROUTE"), Some("/hello"));
        assert_eq!(get(&env, "APP_NAME"), Some("myapp"));
        assert_eq!(env.iter().filter(|(n, _)| n == "CALL_ID").count(), 1);
    }

    #[test]
    fn facts_replace_what_the_client_sent() {
        let mut headers = HeaderMap::new();
        headers.insert("fn-call-id", "fake".parse().unwrap());
        let call = CallFacts {
            call_id: "call-1",
            method: "GET",
            request_url: "http://h/r/a/b",
        };
        set_fact_headers(&mut headers, "a", "/b", &call);
        assert_eq!(headers.get_all(FN_CALL_ID).iter().count(), 1);
        assert_eq!(headers[FN_CALL_ID], "call-1");
        assert_eq!(headers[FN_ROUTE], "/b");
        assert_eq!(headers[FN_METHOD], "GET");
    }

    #[test]
    fn url_as_the_client_used_it() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com:8080".parse().unwrap());
        assert_eq!(
            request_url(&headers, "/r/app/hello?x=1"),
            "http://example.com:8080/r/app/hello?x=1"
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(
            request_url(&headers, "/r/app/hello?x=1"),
            "https://example.com:8080/r/app/hello?x=1"
        );
    }

    #[test]
    fn unknown_memory_is_left_out() {
        let facts = RouteFacts {
            app_name: "a",
            route: "/r",
            format: Format::Http,
            memory_mib: None,
            timeout_secs: 5,
        };
        let env = hot_environment(vec![("FN_MEMORY".into(), "64".into())], &facts);
        assert_eq!(get(&env, "FN_MEMORY"), Some("64"));
        assert_eq!(get(&env, "FN_FORMAT"), Some("http"));
        assert_eq!(get(&env, "FN_TIMEOUT"), Some("5"));
        assert_eq!(get(&env, "CALL_ID"), None);
    }

    #[test]
    fn payload_from_query() {
        assert_eq!(
            payload_parameter("payload=%7B%22name%22%3A%22x%22%7D"),
            br#"{"name":"x"}"#
        );
        assert_eq!(payload_parameter("a=1&payload=hi+there"), b"hi there");
        assert_eq!(payload_parameter("payload=100%"), b"100%");
        assert_eq!(payload_parameter("payload=%e2%82%ac"), "€".as_bytes());
        assert_eq!(payload_parameter("pay%6Coad=x"), b"x");
        assert!(payload_parameter("payload").is_empty());
        assert!(payload_parameter("").is_empty());
        assert!(payload_parameter("payloads=1").is_empty());
    }

    #[test]
    fn text_or_bytes() {
        assert_eq!(output_content_type(b"hi"), "text/plain; charset=utf-8");
        assert_eq!(
            output_content_type(&[0xff, 0xfe]),
            "application/octet-stream"
        );
    }
}
