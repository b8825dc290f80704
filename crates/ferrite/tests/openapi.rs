//! `GET /v1/openapi.json` against the real binary: the document is OpenAPI
//! 3.1 (read into oas3's typed model, every `$ref` resolving), every
//! operation it lists is served, what it does not list is not, its error
//! answers are the one error shape, and it sits behind the management gate.
//! The curl commands of docs/api.md are run as written.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{client, token, TestServer};
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::Value;

/// The methods an HTTP API is probed with for a 405 (HEAD is left out:
/// axum answers it wherever GET is served, as HTTP wants).
const PROBED_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn fetch_document(server: &TestServer) -> (String, Value) {
    let reply = client()
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = reply.text().unwrap();
    let json = serde_json::from_str(&text).expect("the document is JSON");
    (text, json)
}

/// Every `"$ref"` in `value`, with where it was found.
fn refs(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push((at.to_string(), target.clone())),
                    _ => refs(inner, &format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                refs(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// A documented path with its parameters filled in.
fn sample_url(server: &TestServer, path: &str) -> String {
    let filled = path
        .replace("{app}", "sample-app")
        .replace("{path}", "a/b")
        .replace("{id}", "01a23cf7-0000-7000-8000-000000000000")
        .replace("{call}", "01a23cf7-0000-7000-8000-000000000000")
        // Fn v1's route of a route's calls (after `calls//`).
        .replace("{route}", "a")
        // A route's version numbers.
        .replace("{version}", "1")
        .replace("{other}", "2")
        .replace("{file}", "app.js");
    assert!(
        !filled.contains('{'),
        "a parameter without a sample: {path}"
    );
    format!("{}{filled}", server.url)
}

fn send(server: &TestServer, method: &str, path: &str) -> Response {
    client()
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            sample_url(server, path),
        )
        .send()
        .unwrap()
}

/// Whether `path` is one of the `documented` templates: `{name}` stands
/// for one segment, a last `{path}` for the rest of the URL (slashes
/// included), as axum's `{*path}`.
fn matches_documented(path: &str, documented: &BTreeSet<&str>) -> bool {
    let given: Vec<&str> = path.split('/').collect();
    documented.iter().any(|template| {
        let wanted: Vec<&str> = template.split('/').collect();
        let rest = wanted.last() == Some(&"{path}") && given.len() > wanted.len();
        (given.len() == wanted.len() || rest)
            && wanted
                .iter()
                .zip(&given)
                .all(|(w, g)| w == g || (w.starts_with('{') && w.ends_with('}') && !g.is_empty()))
    })
}

/// Whether an answer is the router's own: no route at that path (404), or
/// none for that method (405).
fn routers_own_refusal(status: u16, body: &Value) -> bool {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    status == 405 || (status == 404 && message.starts_with("no such endpoint"))
}

#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let server = TestServer::start();
    let (text, json) = fetch_document(&server);
    let spec = oas3::from_json(&text).expect("OpenAPI 3.1's model reads the document");
    let version = spec.validate_version().expect("a 3.1 version");
    assert_eq!((version.major, version.minor), (3, 1));
    assert_eq!(spec.info.version, env!("CARGO_PKG_VERSION"));

    let mut found = Vec::new();
    refs(&json, "#", &mut found);
    assert!(found.len() > 20, "{found:?}");
    for (at, target) in &found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: a reference outside the document: {target}"));
        assert!(
            json.pointer(pointer).is_some(),
            "{at}: {target} does not resolve"
        );
    }
    // The typed model resolves each operation's parameters and bodies too.
    for (path, method, operation) in spec.operations() {
        operation
            .parameters(&spec)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        operation
            .request_body(&spec)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let declared = operation.responses.as_ref().map_or(0, |r| r.len());
        assert!(declared > 0, "{method} {path} documents no answer");
        assert_eq!(
            operation.responses(&spec).len(),
            declared,
            "{method} {path}"
        );
    }
}

#[test]
fn every_error_answer_is_the_error_shape_and_management_needs_the_token() {
    let server = TestServer::start();
    let (text, json) = fetch_document(&server);
    let spec = oas3::from_json(&text).unwrap();
    let error_ref = "#/components/schemas/ErrorBody";
    let call_error_ref = "#/components/schemas/CallErrorBody";
    assert_eq!(
        json.pointer("/components/schemas/CallErrorBody/properties/error/properties/message/type"),
        Some(&Value::from("string"))
    );
    assert_eq!(
        json.pointer("/components/schemas/CallErrorBody/properties/request_id/type"),
        Some(&Value::from("string"))
    );
    assert_eq!(
        json.pointer("/components/schemas/ErrorBody/properties/error/properties/message/type"),
        Some(&Value::from("string"))
    );
    for (path, method, _) in spec.operations() {
        let operation = &json["paths"][&path][method.as_str().to_lowercase()];
        for (status, answer) in operation["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                // A call that has an id also names it (`request_id`), as
                // IronFunctions did; the rest of the shape is the same.
                let call_error =
                    path.starts_with("/r/") && status.as_str() >= "500" && schema == call_error_ref;
                assert!(
                    schema == error_ref || call_error,
                    "{method} {path} {status}: {schema}"
                );
            }
        }
        let management = path.starts_with("/v1/") || path == "/metrics";
        let security = &operation["security"];
        if management {
            assert_eq!(
                security,
                &serde_json::json!([{"management_token": []}]),
                "{method} {path}"
            );
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        } else if path.starts_with("/r/") {
            // Open, unless the route has a `jwt_key`.
            assert_eq!(
                security,
                &serde_json::json!([{}, {"route_token": []}]),
                "{method} {path}"
            );
        } else {
            assert!(security.is_null(), "{method} {path} is open: {security}");
        }
    }
    let schemes = &json["components"]["securitySchemes"];
    for scheme in ["management_token", "route_token"] {
        assert_eq!(schemes[scheme]["scheme"], "bearer");
        assert_eq!(schemes[scheme]["bearerFormat"], "JWT");
    }
}

#[test]
fn what_the_document_lists_is_served_and_nothing_else() {
    let server = TestServer::start();
    let (text, _) = fetch_document(&server);
    let spec = oas3::from_json(&text).unwrap();
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        documented.insert((path.clone(), method.to_string()));
        let reply = send(&server, method.as_str(), &path);
        let status = reply.status().as_u16();
        assert!(
            reply.headers().contains_key("fn-request-id"),
            "{method} {path}"
        );
        let body: Value = reply.json().unwrap_or(Value::Null);
        assert!(
            !routers_own_refusal(status, &body),
            "{method} {path} is documented but not served: {status} {body}"
        );
        // What it answered (with sample parameters, no body) is one of the
        // answers the document gives.
        let answers = operation.responses.as_ref().unwrap();
        assert!(
            answers.contains_key(&status.to_string()),
            "{method} {path} answered {status}, not documented: {body}"
        );
        if status >= 400 && method != Method::HEAD {
            assert!(
                body["error"]["message"].is_string(),
                "{method} {path}: {body}"
            );
        }
    }
    for (path, _) in &documented {
        let path = path.as_str();
        // Function calls take every method.
        if path.starts_with("/r/") {
            continue;
        }
        for method in PROBED_METHODS {
            if documented.contains(&(path.to_string(), method.to_string())) {
                continue;
            }
            let reply = send(&server, method, path);
            assert_eq!(
                reply.status(),
                405,
                "{method} {path} is served undocumented"
            );
        }
    }
    // The API's neighbourhood: served if and only if it is documented.
    let documented_paths: BTreeSet<&str> = documented.iter().map(|(p, _)| p.as_str()).collect();
    for path in [
        "/v1",
        "/v1/",
        "/v1/apps/sample-app/nope",
        "/v1/apps/sample-app/calls/x/y",
        "/v1/openapi.yaml",
        "/v2/apps",
        "/openapi.json",
        "/r",
        "/r/sample-app",
        "/metrics/x",
        "/health/x",
        "/dashboard/nope/x",
        "/dashboards",
        "/docs",
    ] {
        if matches_documented(path, &documented_paths) {
            continue;
        }
        let reply = client()
            .get(format!("{}{path}", server.url))
            .send()
            .unwrap();
        let status = reply.status().as_u16();
        let body: Value = reply.json().unwrap_or(Value::Null);
        assert!(
            status == 404 && routers_own_refusal(status, &body),
            "GET {path} is served but not documented: {status} {body}"
        );
    }
}

#[test]
fn the_document_is_behind_the_management_gate() {
    let key = "openapi-test-key-of-at-least-32-bytes";
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", key)]);
    let url = format!("{}/v1/openapi.json", server.url);
    let refused = client().get(&url).send().unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("fn-request-id"));
    let body: Value = refused.json().unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("token"));
    let served = client()
        .get(&url)
        .bearer_auth(token(key, 300))
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);
}

/// The `curl` lines of docs/api.md that fetch the document.
fn documented_commands() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md");
    let commands: Vec<String> = doc
        .lines()
        .filter(|line| line.starts_with("curl ") && line.contains("/v1/openapi.json"))
        .map(str::to_string)
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    commands
}

/// Run a documented command against `server` (for the doc's default
/// address) in a new directory; the document it saved.
fn run_documented(command: &str, server: &TestServer, env: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .args(["-c", command])
        .env("API_URL", &server.url)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .output()
        .expect("sh");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = std::fs::read_to_string(dir.path().join("ferrite-openapi.json")).unwrap();
    oas3::from_json(&saved).expect("an OpenAPI document");
    serde_json::from_str(&saved).unwrap()
}

#[test]
fn the_curl_commands_of_the_api_doc_fetch_the_document() {
    let commands = documented_commands();
    let open = TestServer::start();
    let doc = run_documented(&commands[0], &open, &[]);
    assert!(doc["paths"]["/v1/apps"].is_object());

    let key = "openapi-doc-test-key-of-at-least-32-bytes";
    let keyed = TestServer::start_with_env(&[("JWT_AUTH_KEY", key)]);
    let doc = run_documented(&commands[1], &keyed, &[("FERRITE_TOKEN", &token(key, 300))]);
    assert!(doc["paths"]["/v1/apps"].is_object());
}
