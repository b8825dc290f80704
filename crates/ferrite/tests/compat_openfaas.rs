//! OpenFaaS' gateway API against the real `ferrite` binary, with requests
//! shaped as OpenFaaS' gateway swagger describes them (what `faas-cli`
//! sends): functions deployed, listed, described, scaled, updated and
//! removed as apps with one service route `/function`; the `/system` gate with a
//! key (Bearer, and Basic as after `faas-cli login`); `/function` and
//! `/async-function` calls through Ferrite's own call path and queue (and
//! its callbacks); the
//! plain-text errors. The first two tests run nothing on the Swarm (their
//! functions may scale to zero, their calls go to routes run in
//! containers); the last deploys one function on the real Swarm, from
//! Ferrite in a container on its overlay network, and calls it sync and
//! async.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::swarm_fixture::Fixture;
use common::{client, create_route, eventually, require_images, token, TestServer};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};

const KEY: &str = "OpenFaaS-Key-4b5a69788796a5b4c3d2e1f00f1e2d3c";
const CALLBACK_KEY: &str = "OpenFaaS-Callbacks-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Status, `Content-Type` and body of `request`.
fn answer(request: RequestBuilder) -> (u16, String, String) {
    let reply = request.send().expect("request");
    let status = reply.status().as_u16();
    let kind = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, reply.text().expect("body"))
}

fn send(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client().request(method, format!("{}{path}", server.url));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let (status, _, text) = answer(request);
    (status, text)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A plain-text error of `status` mentioning `needle`, as OpenFaaS'
/// gateway answers its errors.
#[track_caller]
fn assert_text_error((status, kind, text): (u16, String, String), want: u16, needle: &str) {
    assert_eq!(status, want, "{text}");
    assert!(kind.starts_with("text/plain"), "{kind}: {text}");
    assert!(text.contains(needle), "{text:?} should mention {needle:?}");
}

/// What `faas-cli deploy` sends for a function of `image`; `extra` fields
/// replace its defaults.
fn deployment(name: &str, image: &str, extra: Value) -> Value {
    let mut doc = json!({
        "service": name, "image": image, "namespace": "openfaas-fn", "envProcess": "",
        "envVars": {}, "constraints": [], "secrets": [],
        "labels": {"com.openfaas.scale.zero": "true"}, "annotations": {},
        "limits": null, "requests": null, "readOnlyRootFilesystem": false
    });
    for (key, value) in extra.as_object().unwrap() {
        doc[key] = value.clone();
    }
    doc
}

/// The route `/function` of app `app` as `/v1` shows it.
fn route_of(server: &TestServer, app: &str) -> Value {
    let (status, text) = send(server, "GET", &format!("/v1/apps/{app}/routes"), None);
    assert_eq!(status, 200, "{text}");
    json_of(&text)["routes"][0].clone()
}

#[test]
fn functions_are_deployed_listed_described_scaled_updated_and_removed() {
    let server = TestServer::start_with_env(&[("API_MAX_BODY_BYTES", "8192")]);

    let (status, text) = send(&server, "GET", "/system/info", None);
    assert_eq!(status, 200, "{text}");
    let info = json_of(&text);
    assert_eq!(info["provider"]["provider"], "ferrite");
    assert_eq!(info["provider"]["orchestration"], "swarm");
    let (_, version) = send(&server, "GET", "/version", None);
    assert_eq!(info["version"]["release"], json_of(&version)["version"]);
    assert_eq!(send(&server, "GET", "/healthz", None), (200, "OK".into()));
    assert_eq!(
        send(&server, "GET", "/system/functions", None),
        (200, "[]".into())
    );

    let full = deployment(
        "of-hello",
        "ferrite/hello",
        json!({
            "envVars": {"GREETING": "hi"},
            "constraints": ["node.role==manager"],
            "labels": {"com.openfaas.scale.zero": "true", "com.openfaas.scale.max": "3", "team": "a"},
            "annotations": {"topic": "orders"},
            "limits": {"memory": "64Mi", "cpu": "500m"},
            "requests": {"memory": "32Mi"},
            "readOnlyRootFilesystem": true
        }),
    );
    let (status, text) = send(&server, "POST", "/system/functions", Some(full.clone()));
    assert_eq!(status, 202, "{text}");
    // A Ferrite route like any other, seen through /v1.
    let route = route_of(&server, "of-hello");
    assert_eq!(route["path"], "/function");
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["memory"], 64);
    assert_eq!(route["config"], json!({"GREETING": "hi"}));
    assert_eq!(route["service"]["min_replicas"], 0);
    assert_eq!(route["service"]["max_replicas"], 3);
    assert_eq!(
        route["service"]["constraints"],
        json!(["node.role==manager"])
    );
    assert_eq!(
        route["service"]["labels"]["com.openfaas.annotations.topic"],
        "orders"
    );
    assert_eq!(route["confinement"]["read_only"], true);
    assert_eq!(route["confinement"]["cpus"], 0.5);

    // An app that is not a function (no service route `/function`) is not listed.
    create_route(
        &server,
        "plain",
        json!({"path": "/function", "image": "ferrite/hello"}),
    );
    let (status, text) = send(&server, "GET", "/system/functions", None);
    assert_eq!(status, 200, "{text}");
    let listed = json_of(&text);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let entry = &listed[0];
    for (field, value) in [
        ("name", json!("of-hello")),
        ("image", json!("ferrite/hello")),
        ("namespace", json!("openfaas-fn")),
        ("envProcess", json!("")),
        ("envVars", json!({"GREETING": "hi"})),
        ("constraints", json!(["node.role==manager"])),
        ("annotations", json!({"topic": "orders"})),
        ("limits", json!({"memory": "64Mi", "cpu": "0.5"})),
        ("readOnlyRootFilesystem", json!(true)),
        ("availableReplicas", json!(0)),
    ] {
        assert_eq!(entry[field], value, "{field}: {entry}");
    }
    assert_eq!(entry["labels"]["team"], "a", "{entry}");
    assert!(
        entry["replicas"].is_u64() && entry["invocationCount"].is_u64(),
        "{entry}"
    );
    let (status, text) = send(&server, "GET", "/system/function/of-hello", None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["envVars"], entry["envVars"]);

    // OpenFaaS' errors: plain text, with the status the swagger gives.
    let at = |method: reqwest::Method, path: &str| {
        client().request(method, format!("{}{path}", server.url))
    };
    use reqwest::Method;
    assert_text_error(
        answer(at(Method::GET, "/system/function/plain")),
        404,
        "function plain not found",
    );
    assert_text_error(
        answer(at(Method::GET, "/system/function/nope")),
        404,
        "function nope not found",
    );
    assert_text_error(
        answer(at(Method::POST, "/system/functions").body(full.to_string())),
        409,
        "of-hello",
    );
    assert_text_error(
        answer(at(Method::POST, "/system/functions").body("{not json")),
        400,
        "JSON",
    );
    let with_secret = deployment(
        "of-secret",
        "ferrite/hello",
        json!({"secrets": ["db-password"]}),
    );
    assert_text_error(
        answer(at(Method::POST, "/system/functions").body(with_secret.to_string())),
        400,
        "secrets",
    );
    // The model's own rules, before anything is stored.
    let bad_constraint = deployment(
        "of-bad",
        "ferrite/hello",
        json!({"constraints": ["colour==blue"]}),
    );
    assert_text_error(
        answer(at(Method::POST, "/system/functions").body(bad_constraint.to_string())),
        400,
        "colour",
    );
    assert_eq!(send(&server, "GET", "/v1/apps/of-bad", None).0, 404);
    assert_eq!(send(&server, "GET", "/v1/apps/of-secret", None).0, 404);
    let bad_name = deployment("Bad Name!", "ferrite/hello", json!({}));
    assert_eq!(
        send(&server, "POST", "/system/functions", Some(bad_name)).0,
        400
    );
    let huge = deployment(
        "of-huge",
        "ferrite/hello",
        json!({"envVars": {"X": "y".repeat(9000)}}),
    );
    assert_text_error(
        answer(at(Method::POST, "/system/functions").body(huge.to_string())),
        413,
        "API_MAX_BODY_BYTES",
    );

    // Scaling sets the floor; the ceiling follows when it was lower.
    let scale = |name: &str, body: Value| {
        send(
            &server,
            "POST",
            &format!("/system/scale-function/{name}"),
            Some(body),
        )
    };
    assert_eq!(
        scale(
            "of-hello",
            json!({"serviceName": "of-hello", "replicas": 2})
        )
        .0,
        202
    );
    let route = route_of(&server, "of-hello");
    assert_eq!(
        (
            route["service"]["min_replicas"].clone(),
            route["service"]["max_replicas"].clone()
        ),
        (json!(2), json!(3))
    );
    assert_eq!(
        scale(
            "of-hello",
            json!({"serviceName": "of-hello", "replicas": 0})
        )
        .0,
        202
    );
    let route = route_of(&server, "of-hello");
    assert_eq!(route["service"]["min_replicas"], 0);
    let (status, text) = scale("of-hello", json!({"serviceName": "other", "replicas": 1}));
    assert_eq!(status, 400, "{text}");
    let (status, text) = scale(
        "of-hello",
        json!({"serviceName": "of-hello", "replicas": 1000}),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("min_replicas"), "{text}");
    assert_eq!(
        scale("nope", json!({"serviceName": "nope", "replicas": 1})).0,
        404
    );

    // An update replaces the definition: what it does not name goes.
    let next = deployment(
        "of-hello",
        "ferrite/echo",
        json!({"limits": {"memory": "128M"}}),
    );
    let (status, text) = send(&server, "PUT", "/system/functions", Some(next));
    assert_eq!(status, 200, "{text}");
    let (_, text) = send(&server, "GET", "/system/function/of-hello", None);
    let entry = json_of(&text);
    assert_eq!(entry["image"], "ferrite/echo");
    assert_eq!(entry["envVars"], json!({}));
    assert_eq!(entry["annotations"], json!({}));
    assert_eq!(entry["labels"], json!({"com.openfaas.scale.zero": "true"}));
    assert_eq!(entry["limits"], json!({"memory": "128Mi"}));
    let missing = deployment("nope", "ferrite/echo", json!({}));
    assert_eq!(
        send(&server, "PUT", "/system/functions", Some(missing)).0,
        404
    );

    // Removal: the function's app goes; another app is not a function.
    let remove = |name: &str| {
        send(
            &server,
            "DELETE",
            "/system/functions",
            Some(json!({"functionName": name})),
        )
    };
    assert_eq!(remove("plain").0, 404);
    assert_eq!(send(&server, "GET", "/v1/apps/plain", None).0, 200);
    assert_eq!(remove("of-hello").0, 200);
    assert_eq!(send(&server, "GET", "/v1/apps/of-hello", None).0, 404);
    assert_eq!(remove("of-hello").0, 404);
    assert_eq!(
        send(&server, "GET", "/system/functions", None),
        (200, "[]".into())
    );
}

#[test]
fn system_takes_the_key_as_bearer_or_basic_and_calls_follow_the_route() {
    require_images(&["ferrite/echo"]);
    let receiver = Receiver::start(&[]);
    let server = TestServer::start_with_env(&[
        ("JWT_AUTH_KEY", KEY),
        ("FERRITE_CALLBACK_HOSTS", &receiver.addr),
        ("FERRITE_CALLBACK_KEY", CALLBACK_KEY),
    ]);
    let url = |path: &str| format!("{}{path}", server.url);
    let basic = |user: &str, password: &str| {
        client()
            .get(url("/system/functions"))
            .basic_auth(user, Some(password))
    };

    assert_text_error(
        answer(client().get(url("/system/functions"))),
        401,
        "Authorization",
    );
    assert_text_error(
        answer(client().get(url("/system/info"))),
        401,
        "Authorization",
    );
    let (status, _, text) = answer(
        client()
            .get(url("/system/functions"))
            .bearer_auth(token(KEY, 600)),
    );
    assert_eq!((status, text.as_str()), (200, "[]"));
    // faas-cli login: any user name, the token as the password.
    for user in ["admin", "ci"] {
        let (status, _, text) = answer(basic(user, &token(KEY, 600)));
        assert_eq!((status, text.as_str()), (200, "[]"), "{user}");
    }
    assert_text_error(
        answer(basic("admin", &token("other key", 600))),
        401,
        "signature",
    );
    assert_text_error(answer(basic("admin", &token(KEY, -3600))), 401, "expired");
    assert_text_error(answer(basic("admin", KEY)), 401, "token");
    assert_text_error(
        answer(
            client()
                .get(url("/system/functions"))
                .header("authorization", "Basic !!!"),
        ),
        401,
        "base64",
    );
    // Basic is OpenFaaS' way, not /v1's.
    let (status, _, _) = answer(
        client()
            .get(url("/v1/apps"))
            .basic_auth("admin", Some(token(KEY, 600))),
    );
    assert_eq!(status, 401);
    // The health check is open, as OpenFaaS' is.
    assert_eq!(answer(client().get(url("/healthz"))).0, 200);

    // Calls take the route's rules, not the management key's: a route
    // `/function` with a jwt_key of its own.
    let manage = |method: reqwest::Method, path: &str, body: Value| {
        answer(
            client()
                .request(method, url(path))
                .bearer_auth(token(KEY, 600))
                .body(body.to_string()),
        )
    };
    let (status, _, text) = manage(
        reqwest::Method::POST,
        "/v1/apps/echo/routes",
        json!({"route": {"path": "/function", "image": "ferrite/echo", "jwt_key": "route-key"}}),
    );
    assert_eq!(status, 200, "{text}");
    let (status, _, text) = answer(client().post(url("/function/echo")).body("hi"));
    assert_eq!(status, 401, "{text}");
    let (status, _, text) = answer(
        client()
            .post(url("/function/echo/sub/path?x=1"))
            .bearer_auth(token("route-key", 600))
            .body("hi"),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("--- stdin ---\nhi"), "{text}");
    // Every sub-path goes to the one route; the function reads it in the
    // request URL.
    assert!(text.contains("\nROUTE=/function\n"), "{text}");
    assert!(text.contains("/function/echo/sub/path?x=1\n"), "{text}");

    // An async call: queued by Ferrite's own intake, its headers kept for the
    // worker, its result posted to X-Callback-Url when it ends.
    let callback = format!("http://{}/done", receiver.addr);
    let reply = client()
        .post(url("/async-function/echo"))
        .bearer_auth(token("route-key", 600))
        .header("X-Callback-Url", &callback)
        .body("later")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let call_id = reply
        .headers()
        .get("x-call-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Call-Id")
        .to_string();
    assert_eq!(
        reply
            .headers()
            .get("fn-call-id")
            .and_then(|v| v.to_str().ok()),
        Some(call_id.as_str())
    );
    let call = || {
        manage(
            reqwest::Method::GET,
            &format!("/v1/calls/{call_id}"),
            Value::Null,
        )
    };
    assert!(
        eventually(Duration::from_secs(60), || {
            let (_, _, text) = call();
            serde_json::from_str::<Value>(&text).is_ok_and(|v| v["call"]["status"] == "success")
        }),
        "{:?}",
        call()
    );
    let (status, _, output) = manage(
        reqwest::Method::GET,
        &format!("/v1/apps/echo/calls/{call_id}/output"),
        Value::Null,
    );
    assert_eq!(status, 200, "{output}");
    assert!(
        output.contains(&format!("HEADER_X_CALLBACK_URL={callback}\n")),
        "{output}"
    );
    assert!(output.ends_with("--- stdin ---\nlater"), "{output}");
    assert!(
        eventually(Duration::from_secs(30), || !receiver.received().is_empty()),
        "no callback"
    );
    let got = &receiver.received()[0];
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/done"));
    assert_eq!(got.headers["x-call-id"], call_id);
    assert_eq!(got.headers["x-function-status"], "200");
    assert_eq!(got.body, output.as_bytes());
    // A callback elsewhere is refused before it is queued, as under /r.
    let (status, _, text) = answer(
        client()
            .post(url("/async-function/echo"))
            .bearer_auth(token("route-key", 600))
            .header("X-Callback-Url", "http://169.254.169.254/latest"),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("FERRITE_CALLBACK_HOSTS"), "{text}");

    // A function that does not exist: Ferrite's answer of a call.
    let (status, _, text) = answer(client().post(url("/function/nope")));
    assert_eq!(status, 404, "{text}");
    let (status, _, text) = answer(client().post(url("/async-function/nope")));
    assert_eq!(status, 404, "{text}");
}

#[test]
fn a_deployed_function_runs_as_a_swarm_service_and_takes_calls() {
    require_images(&["ferrite/ferrite", "ferrite/hello"]);
    let fixture = Fixture::new("openfaas", &["ferrite/of-path"]);
    let path_image = build_path_function(&fixture.images[0]);
    let ferrite = fixture.start();
    let url = |path: &str| format!("{}{path}", ferrite.url);
    // As faas-cli sends it after `faas-cli login`.
    let system = |method: reqwest::Method, path: &str| {
        client()
            .request(method, url(path))
            .basic_auth("admin", Some(token(&ferrite.key, 600)))
    };

    let deploy = deployment(
        "of-swarm",
        "ferrite/hello",
        json!({"labels": {"com.openfaas.scale.max": "1"}}),
    );
    let (status, _, text) =
        answer(system(reqwest::Method::POST, "/system/functions").body(deploy.to_string()));
    assert_eq!(status, 202, "{text}");
    assert_eq!(fixture.services().len(), 1, "{:?}", fixture.services());

    // A sync call, forwarded to the service's task (scaled to one at deploy).
    let (status, _, text) = answer(
        client()
            .post(url("/function/of-swarm"))
            .body(r#"{"name":"OpenFaaS"}"#),
    );
    assert_eq!((status, text.as_str()), (200, "Hello OpenFaaS!\n"));
    let described = || {
        let (status, _, text) = answer(system(reqwest::Method::GET, "/system/function/of-swarm"));
        assert_eq!(status, 200, "{text}");
        json_of(&text)
    };
    // The task count as the node's watcher last saw it.
    assert!(
        eventually(Duration::from_secs(30), || {
            let entry = described();
            entry["replicas"] == 1 && entry["availableReplicas"] == 1
        }),
        "{}",
        described()
    );
    let entry = described();
    assert_eq!(entry["invocationCount"], 1, "{entry}");

    // An async call: queued, then run by a worker on the same service.
    let reply = client()
        .post(url("/async-function/of-swarm"))
        .body(r#"{"name":"Later"}"#)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let call_id = reply.headers()["x-call-id"].to_str().unwrap().to_string();
    let manage = |path: &str| {
        let (status, _, text) = answer(
            client()
                .get(url(path))
                .bearer_auth(token(&ferrite.key, 600)),
        );
        (status, text)
    };
    assert!(
        eventually(Duration::from_secs(60), || {
            let (_, text) = manage(&format!("/v1/calls/{call_id}"));
            serde_json::from_str::<Value>(&text).is_ok_and(|v| v["call"]["status"] == "success")
        }),
        "{:?}",
        manage(&format!("/v1/calls/{call_id}"))
    );
    let (status, output) = manage(&format!("/v1/apps/of-swarm/calls/{call_id}/output"));
    assert_eq!((status, output.as_str()), (200, "Hello Later!\n"));
    assert_eq!(described()["invocationCount"], 2);

    // A function sees the path after its name, as OpenFaaS' gateway sends
    // it: an HTTP-mode function routes on it.
    let deploy = deployment(
        "of-path",
        &path_image,
        json!({"labels": {"com.openfaas.scale.max": "1"},
               "annotations": {"com.ferrite.format": "http"}}),
    );
    let (status, _, text) =
        answer(system(reqwest::Method::POST, "/system/functions").body(deploy.to_string()));
    assert_eq!(status, 202, "{text}");
    for (path, seen) in [
        ("/function/of-path/a/b?x=1", "/a/b?x=1"),
        ("/function/of-path", "/"),
    ] {
        let (status, _, text) = answer(client().get(url(path)));
        assert_eq!((status, text.as_str()), (200, seen), "{path}");
    }
    let reply = client()
        .get(url("/async-function/of-path/queued/c"))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    let call_id = reply.headers()["x-call-id"].to_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(60), || {
            let (_, text) = manage(&format!("/v1/calls/{call_id}"));
            serde_json::from_str::<Value>(&text).is_ok_and(|v| v["call"]["status"] == "success")
        }),
        "{:?}",
        manage(&format!("/v1/calls/{call_id}"))
    );
    let (status, output) = manage(&format!("/v1/apps/of-path/calls/{call_id}/output"));
    assert_eq!((status, output.as_str()), (200, "/queued/c"));
    let (status, _, text) = answer(
        system(reqwest::Method::DELETE, "/system/functions")
            .body(json!({"functionName": "of-path"}).to_string()),
    );
    assert_eq!(status, 200, "{text}");

    // Removed: its service goes with it.
    let (status, _, text) = answer(
        system(reqwest::Method::DELETE, "/system/functions")
            .body(json!({"functionName": "of-swarm"}).to_string()),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(fixture.services(), vec![]);
}

/// Builds `tag`: a hot function in HTTP format that answers each request
/// with the path and query of its request line (the test sends bodiless
/// GETs, so a request ends at its blank line).
fn build_path_function(tag: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ferrite/busybox\nCOPY fn.sh /fn.sh\nCMD [\"/bin/sh\", \"/fn.sh\"]\n",
    )
    .unwrap();
    let script = r#"#!/bin/sh
cr=$(printf '\r')
first=
while IFS= read -r line; do
  if [ -z "$first" ]; then first=$line; continue; fi
  if [ "$line" = "$cr" ] || [ -z "$line" ]; then
    target=$(echo "$first" | cut -d' ' -f2)
    printf 'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s' "${#target}" "$target"
    first=
  fi
done
"#;
    std::fs::write(dir.path().join("fn.sh"), script).unwrap();
    common::succeed(
        "docker",
        &[
            "build",
            "-q",
            "--label",
            "org.ferrite.test=1",
            "-t",
            tag,
            dir.path().to_str().unwrap(),
        ],
    );
    tag.to_string()
}
