// Long: one test per resource and rule of the v1 API, sharing this file's request helpers; one binary for all.
//! The v1 management API, driven over HTTP against the real `ferrite server`
//! binary on a temporary SQLite database.

mod common;

use common::{token, TestServer};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

struct Api<'a> {
    server: &'a TestServer,
    client: Client,
    token: Option<String>,
}

impl<'a> Api<'a> {
    fn new(server: &'a TestServer) -> Self {
        Api {
            server,
            client: Client::new(),
            token: None,
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.server.url));
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        decode(request.send().expect("request"))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(&body.to_string()))
    }

    fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, Some(&body.to_string()))
    }

    fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None)
    }
}

fn decode(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().expect("body");
    assert!(
        content_type.starts_with("application/json"),
        "{status} {content_type}: {text}"
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// Assert a 4xx/5xx error with the standard shape whose message contains `needle`.
#[track_caller]
fn assert_error((status, body): (u16, Value), expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
}

#[test]
fn seed_walk_through_answers_as_documented() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (status, body) = api.send("POST", "/v1/apps", Some(r#"{"app":{"name":"myapp"}}"#));
    assert_eq!(status, 200);
    assert_eq!(
        body.to_string(),
        r#"{"message":"App successfully created","app":{"name":"myapp","config":null}}"#
    );
    let (status, body) = api.post(
        "/v1/apps/myapp/routes",
        json!({"route":{"type":"sync","path":"/hello-sync","image":"ferrite/hello"}}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Route successfully created");
    let route = &body["route"];
    let keys: Vec<_> = route.as_object().unwrap().keys().take(5).cloned().collect();
    assert_eq!(keys, ["app_name", "path", "image", "memory", "type"]);
    assert_eq!(route["app_name"], "myapp");
    assert_eq!(route["path"], "/hello-sync");
    assert_eq!(route["image"], "ferrite/hello");
    assert_eq!(route["memory"], 128);
    assert_eq!(route["type"], "sync");
    assert_eq!(route["format"], "default");
    assert_eq!(route["max_concurrency"], 1);
    assert_eq!(route["timeout"], 30);
    assert_eq!(route["idle_timeout"], 30);
}

#[test]
fn apps_crud() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (status, body) = api.get("/v1/apps");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"message":"Successfully listed applications","apps":[]})
        )
    );

    let (status, _) = api.post(
        "/v1/apps",
        json!({"app":{"name":"b-app","config":{"A":"1","B":"2"}}}),
    );
    assert_eq!(status, 200);
    assert_eq!(api.post("/v1/apps", json!({"app":{"name":"a_app"}})).0, 200);
    let (_, body) = api.get("/v1/apps");
    let names: Vec<_> = body["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(names, [json!("a_app"), json!("b-app")]);

    let (status, body) = api.get("/v1/apps/b-app");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"message":"Successfully loaded app","app":{"name":"b-app","config":{"A":"1","B":"2"}}})
    );

    let (status, body) = api.patch("/v1/apps/b-app", json!({"app":{"config":{"A":"","C":"3"}}}));
    assert_eq!(status, 200);
    assert_eq!(body["message"], "App successfully updated");
    assert_eq!(body["app"]["config"], json!({"B":"2","C":"3"}));
    assert_eq!(
        api.get("/v1/apps/b-app").1["app"]["config"],
        json!({"B":"2","C":"3"})
    );
    // Naming the same app in the body is fine.
    assert_eq!(
        api.patch("/v1/apps/b-app", json!({"app":{"name":"b-app"}}))
            .0,
        200
    );

    let (status, body) = api.delete("/v1/apps/b-app");
    assert_eq!((status, body), (200, json!({"message":"App deleted"})));
    assert_error(api.get("/v1/apps/b-app"), 404, "not found");
}

#[test]
fn routes_crud_with_nested_paths() {
    let server = TestServer::start();
    let api = Api::new(&server);
    // A route posted to a missing app creates the app.
    let (status, body) = api.post(
        "/v1/apps/auto/routes",
        json!({"route":{"path":"/a/b/c","image":"ferrite/echo","memory":256,"type":"async","format":"http",
               "max_concurrency":3,"timeout":10,"idle_timeout":60,"headers":{"X-Ferrite":["1","2"]},
               "config":{"K":"v"},"jwt_key":"secret"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.get("/v1/apps/auto").0, 200);
    assert_eq!(
        api.post(
            "/v1/apps/auto/routes",
            json!({"route":{"path":"/a","image":"x"}})
        )
        .0,
        200
    );

    let (status, body) = api.get("/v1/apps/auto/routes/a/b/c");
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Successfully loaded route");
    let route = &body["route"];
    assert_eq!(route["memory"], 256);
    assert_eq!(route["type"], "async");
    assert_eq!(route["format"], "http");
    assert_eq!(route["headers"], json!({"X-Ferrite":["1","2"]}));
    // A route's key is write-only: answers say that it is set.
    assert_eq!(route["jwt_key_set"], true);
    assert!(route.get("jwt_key").is_none(), "{route}");

    let (status, body) = api.get("/v1/apps/auto/routes");
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Successfully listed routes");
    let paths: Vec<_> = body["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].clone())
        .collect();
    assert_eq!(paths, [json!("/a"), json!("/a/b/c")]);

    let (status, body) = api.patch(
        "/v1/apps/auto/routes/a/b/c",
        json!({"route":{"image":"ferrite/echo:2","config":{"K":"","L":"w"},"headers":{"X-Ferrite":[]},"timeout":0}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Route successfully updated");
    assert_eq!(body["route"]["image"], "ferrite/echo:2");
    assert_eq!(body["route"]["config"], json!({"L":"w"}));
    assert_eq!(body["route"]["headers"], Value::Null);
    assert_eq!(body["route"]["timeout"], 10, "a zero keeps the value");
    assert_eq!(
        api.get("/v1/apps/auto/routes/a/b/c").1["route"],
        body["route"]
    );

    let (status, body) = api.delete("/v1/apps/auto/routes/a/b/c");
    assert_eq!((status, body), (200, json!({"message":"Route deleted"})));
    assert_error(api.get("/v1/apps/auto/routes/a/b/c"), 404, "not found");
    assert_eq!(api.get("/v1/apps/auto/routes/a").0, 200);

    // Deleting an app with routes needs cascade.
    assert_error(
        api.delete("/v1/apps/auto"),
        400,
        "Cannot remove apps with routes",
    );
    assert_eq!(api.delete("/v1/apps/auto?cascade=true").0, 200);
    assert_error(api.get("/v1/apps/auto/routes/a"), 404, "not found");
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let server = TestServer::start();
    let api = Api::new(&server);
    assert_eq!(
        api.post("/v1/apps", json!({"app":{"name":"ok","config":{"A":"1"}}}))
            .0,
        200
    );
    assert_eq!(
        api.post(
            "/v1/apps/ok/routes",
            json!({"route":{"path":"/r","image":"img"}})
        )
        .0,
        200
    );

    // Malformed bodies.
    for body in ["{", "", "[]"] {
        assert_error(
            api.send("POST", "/v1/apps", Some(body)),
            400,
            "Invalid JSON",
        );
    }
    assert_error(
        api.post("/v1/apps", json!({"name":"x"})),
        400,
        "Missing new application",
    );
    assert_error(
        api.post("/v1/apps/ok/routes", json!({"path":"/x"})),
        400,
        "Missing new route",
    );
    assert_error(
        api.post("/v1/apps", json!({"app":{"name":"x","config":{"A":1}}})),
        400,
        "app.config.A",
    );
    // Invalid app names.
    assert_error(
        api.post("/v1/apps", json!({"app":{}})),
        400,
        "Missing app name",
    );
    assert_error(
        api.post("/v1/apps", json!({"app":{"name":"has space"}})),
        400,
        "Invalid app name",
    );
    assert_error(
        api.post("/v1/apps", json!({"app":{"name":"x".repeat(31)}})),
        400,
        "App name must be 30 characters or less",
    );
    // Invalid routes.
    for (route, needle) in [
        (json!({"image":"img"}), "Missing route Path"),
        (json!({"path":"nope","image":"img"}), "Invalid Path format"),
        (json!({"path":"/a b","image":"img"}), "may contain only"),
        (json!({"path":"/x"}), "Missing route Image"),
        (
            json!({"path":"/x","image":"img","type":"later"}),
            "Invalid route Type",
        ),
        (
            json!({"path":"/x","image":"img","format":"grpc"}),
            "Invalid route Format",
        ),
        (
            json!({"path":"/x","image":"img","memory":-1}),
            "memory must be a positive",
        ),
        (
            json!({"path":"/x","image":"img","timeout":-1}),
            "Negative timeout",
        ),
        (
            json!({"path":"/x","image":"img","idle_timeout":-1}),
            "Negative idle timeout",
        ),
        (
            json!({"path":"/x","image":"img","max_concurrency":-1}),
            "Negative MaxConcurrency",
        ),
        (
            json!({"path":"/x","image":"img","memory":"lots"}),
            "route.memory",
        ),
        (
            json!({"path":"/x","image":"img","headers":{"Bad Name":["v"]}}),
            "header name",
        ),
    ] {
        assert_error(
            api.post("/v1/apps/ok/routes", json!({ "route": route })),
            400,
            needle,
        );
    }
    assert_error(
        api.post(
            "/v1/apps/bad%20name/routes",
            json!({"route":{"path":"/x","image":"i"}}),
        ),
        400,
        "app name",
    );
    // Duplicates.
    assert_error(
        api.post("/v1/apps", json!({"app":{"name":"ok"}})),
        409,
        "already exists",
    );
    assert_error(
        api.post(
            "/v1/apps/ok/routes",
            json!({"route":{"path":"/r","image":"other"}}),
        ),
        409,
        "already exists",
    );
    // Renames.
    assert_error(
        api.patch("/v1/apps/ok", json!({"app":{"name":"renamed"}})),
        400,
        "name is immutable",
    );
    assert_error(
        api.patch("/v1/apps/ok/routes/r", json!({"route":{"path":"/other"}})),
        400,
        "path is immutable",
    );
    assert_error(
        api.patch("/v1/apps/ok/routes/r", json!({"route":{"memory":-5}})),
        400,
        "memory",
    );
    // Unknown apps and routes.
    assert_error(api.get("/v1/apps/missing"), 404, "not found");
    assert_error(
        api.patch("/v1/apps/missing", json!({"app":{}})),
        404,
        "not found",
    );
    assert_error(api.delete("/v1/apps/missing"), 404, "not found");
    assert_error(api.get("/v1/apps/missing/routes"), 404, "not found");
    assert_error(api.get("/v1/apps/ok/routes/missing"), 404, "not found");
    assert_error(
        api.patch("/v1/apps/ok/routes/missing", json!({"route":{}})),
        404,
        "not found",
    );
    assert_error(api.delete("/v1/apps/ok/routes/missing"), 404, "not found");
    // Unknown endpoints and methods.
    assert_error(
        api.get("/v2/whatever"),
        404,
        "no such endpoint: /v2/whatever",
    );
    assert_error(
        api.send("PUT", "/v1/apps", None),
        405,
        "PUT is not allowed on /v1/apps",
    );
    assert_error(api.delete("/v1/apps/ok?cascade=maybe"), 400, "cascade");
    // Body over the limit (default 1 MiB).
    let big = format!(
        r#"{{"app":{{"name":"big","config":{{"A":"{}"}}}}}}"#,
        "x".repeat(1024 * 1024)
    );
    assert_error(
        api.send("POST", "/v1/apps", Some(&big)),
        413,
        "larger than the limit",
    );

    // Nothing of the above was written.
    let (_, apps) = api.get("/v1/apps");
    assert_eq!(apps["apps"], json!([{"name":"ok","config":{"A":"1"}}]));
    let (_, routes) = api.get("/v1/apps/ok/routes");
    assert_eq!(routes["routes"].as_array().unwrap().len(), 1);
    assert_eq!(routes["routes"][0]["image"], "img");
    assert_eq!(routes["routes"][0]["memory"], 128);
}

#[test]
fn system_endpoints() {
    let server = TestServer::start();
    let api = Api::new(&server);
    assert_eq!(api.get("/").0, 200);
    let (status, body) = api.get("/version");
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let (status, health) = api.get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["node"], server.node_id.as_str());
    assert!(health["memory_budget_mib"].as_u64().unwrap() > 0);
}

#[test]
fn jwt_auth_key_protects_v1() {
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "s3cret")]);
    let mut api = Api::new(&server);
    assert_error(api.get("/v1/apps"), 401, "missing Authorization");
    assert_error(
        api.post("/v1/apps", json!({"app":{"name":"x"}})),
        401,
        "missing Authorization",
    );
    api.token = Some(token("wrong", 600));
    assert_error(api.get("/v1/apps"), 401, "signature");
    api.token = Some(token("s3cret", -600));
    assert_error(api.get("/v1/apps"), 401, "expired");
    api.token = Some("garbage".into());
    assert_error(api.get("/v1/apps"), 401, "invalid");
    api.token = Some(token("s3cret", 600));
    assert_eq!(api.post("/v1/apps", json!({"app":{"name":"x"}})).0, 200);
    assert_eq!(api.get("/v1/apps").1["apps"][0]["name"], "x");
    // The system endpoints stay open.
    api.token = None;
    assert_eq!(api.get("/health").0, 200);
    assert_eq!(api.get("/version").0, 200);
    let www = Client::new()
        .get(format!("{}/v1/apps", server.url))
        .send()
        .unwrap();
    assert_eq!(www.headers().get("www-authenticate").unwrap(), "Bearer");
}

#[test]
fn without_jwt_auth_key_tokens_are_not_needed() {
    let server = TestServer::start();
    let mut api = Api::new(&server);
    assert_eq!(api.get("/v1/apps").0, 200);
    api.token = Some("anything".into());
    assert_eq!(api.get("/v1/apps").0, 200);
}

#[test]
fn data_survives_a_restart() {
    let mut server = TestServer::start();
    {
        let api = Api::new(&server);
        assert_eq!(
            api.post(
                "/v1/apps",
                json!({"app":{"name":"keep","config":{"A":"1"}}})
            )
            .0,
            200
        );
        assert_eq!(
            api.post(
                "/v1/apps/keep/routes",
                json!({"route":{"path":"/r/s","image":"img","jwt_key":"k"}})
            )
            .0,
            200
        );
    }
    server.restart();
    let api = Api::new(&server);
    assert_eq!(
        api.get("/v1/apps/keep").1["app"]["config"],
        json!({"A":"1"})
    );
    let route = api.get("/v1/apps/keep/routes/r/s").1;
    assert_eq!(route["route"]["image"], "img");
    assert_eq!(route["route"]["jwt_key_set"], true);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = TestServer::start();
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(server.log().contains("ferrite stopped"), "{}", server.log());
}

#[test]
fn bad_configuration_stops_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (env, needle) in [
        (("DB_URL", "mysql://somewhere/db"), "DB_URL"),
        (("PORT", "notaport"), "--port"),
        (("LOG_LEVEL", "=[bad"), "LOG_LEVEL"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .arg("server")
            .current_dir(dir.path())
            .env_remove("PORT")
            .env_remove("DB_URL")
            .env(env.0, env.1)
            .env("PORT", if env.0 == "PORT" { env.1 } else { "0" })
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<_> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains(needle), "{stderr}");
    }
}
