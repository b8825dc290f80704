//! The dashboard at `/dashboard`, in a real headless Chromium: it shows a
//! node's routes and calls, opens a call's output as text (never as HTML),
//! asks for a token when the node has a key, and its static files carry
//! their security headers.

mod common;

use std::time::Duration;

use common::browser::{output_dir, screenshot, ChromeDriver};
use common::{client, create_route, eventually, require_images, token, TestServer};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// How long the page may take to show what a test waits for; a bound on a
/// hung page, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Wait until `condition` (a JavaScript expression) is true in the page.
async fn until(browser: &Client, condition: &str) {
    let script = format!("return Boolean({condition});");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if browser.execute(&script, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let text = browser
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap_or_default();
            panic!("the page never met {condition}; it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Queue an async call of `path` with `body`; its call id.
fn enqueue(server: &TestServer, path: &str, body: &str) -> String {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 202);
    reply.json::<Value>().unwrap()["call_id"]
        .as_str()
        .expect("a call id")
        .to_string()
}

#[test]
fn the_dashboard_shows_routes_calls_and_a_calls_output_as_text() {
    require_images(&["ferrite/hello"]);
    let server = TestServer::start();
    create_route(
        &server,
        "dash",
        json!({"path": "/hello", "image": "ferrite/hello", "type": "async"}),
    );
    create_route(
        &server,
        "dash",
        json!({"path": "/sync", "image": "ferrite/hello"}),
    );
    let sync = client()
        .post(format!("{}/r/dash/sync", server.url))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(sync.status(), 200);
    // A second version of /sync, sharing its calls with the first.
    for body in [
        json!({"route": {"config": {"GREETING": "hi"}}}),
        json!({"route": {"traffic": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}}),
    ] {
        let changed = client()
            .patch(format!("{}/v1/apps/dash/routes/sync", server.url))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(changed.status(), 200, "{}", changed.text().unwrap());
    }
    // A function's output is hostile: markup in it must show as text.
    let id = enqueue(
        &server,
        "/r/dash/hello",
        r#"{"name":"<b id=pwned>Queue</b>"}"#,
    );
    assert!(
        eventually(PATIENCE, || {
            client()
                .get(format!("{}/v1/apps/dash/calls/{id}", server.url))
                .send()
                .unwrap()
                .json::<Value>()
                .unwrap()["call"]["status"]
                == "success"
        }),
        "the async call did not succeed"
    );

    let driver = ChromeDriver::start();
    let shots = output_dir("dashboard");
    runtime().block_on(async {
        let browser = driver.session(1280, 800).await;
        browser
            .goto(&format!("{}/dashboard#overview", server.url))
            .await
            .unwrap();
        // Two scrapes of /metrics: rates have a window.
        until(&browser, "document.querySelector('#card-calls')").await;
        until(
            &browser,
            "!document.querySelector('#card-calls').textContent.includes('collecting')",
        )
        .await;
        // The route table reads the node's call metrics.
        until(
            &browser,
            "document.querySelector('#routes-table').textContent.includes('/sync')",
        )
        .await;
        assert_eq!(browser.title().await.unwrap(), "Ferrite");
        screenshot(&browser, &shots, "overview.png").await;

        browser
            .find(Locator::Css("[data-tab=apps]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#apps-list table')").await;
        let apps = text_of(&browser, "#apps-list").await;
        for shown in [
            "dash",
            "/hello",
            "/sync",
            "ferrite/hello",
            "async",
            "sync",
            "v1 90% · v2 10%",
        ] {
            assert!(apps.contains(shown), "{shown} is not in:\n{apps}");
        }
        screenshot(&browser, &shots, "apps.png").await;

        browser
            .find(Locator::Css("[data-tab=calls]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let row = format!("#calls-table tr[data-call-id='{id}']");
        until(&browser, &format!("document.querySelector(\"{row}\")")).await;
        let cells = text_of(&browser, &row).await;
        assert!(cells.contains("success"), "{cells}");
        assert!(cells.contains("/hello"), "{cells}");
        // Both calls are listed, the sync one too.
        until(
            &browser,
            "document.querySelectorAll('#calls-table tr[data-call-id]').length === 2",
        )
        .await;
        screenshot(&browser, &shots, "calls.png").await;

        browser
            .find(Locator::Css(&row))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(
            &browser,
            "document.querySelector('#detail-output').textContent.includes('Hello')",
        )
        .await;
        assert_eq!(
            text_of(&browser, "#detail-output").await.trim(),
            "Hello <b id=pwned>Queue</b>!"
        );
        let injected = browser
            .execute("return document.getElementById('pwned') !== null;", vec![])
            .await
            .unwrap();
        assert_eq!(injected, Value::Bool(false), "the output became markup");
        assert!(text_of(&browser, "#detail-title").await.contains(&id));
        screenshot(&browser, &shots, "call-detail.png").await;
        browser
            .find(Locator::Id("detail-close"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#detail').hidden").await;

        browser
            .find(Locator::Css("[data-tab=services]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#services-list table')").await;

        let errors = driver.console_errors(&browser).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");

        // A system set to dark gets the dark palette.
        browser
            .find(Locator::Css("[data-tab=overview]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#routes-table')").await;
        let background = "return getComputedStyle(document.body).backgroundColor;";
        let light = browser.execute(background, vec![]).await.unwrap();
        common::browser::prefer_dark(&driver, &browser).await;
        let dark = browser.execute(background, vec![]).await.unwrap();
        assert_ne!(light, dark);
        assert_eq!(dark, json!("rgb(15, 18, 23)"));
        screenshot(&browser, &shots, "overview-dark.png").await;

        // Narrow screens: the same page, nothing hidden off the side.
        common::browser::resize_viewport(&browser, 420, 900).await;
        browser
            .find(Locator::Css("[data-tab=overview]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#card-calls')").await;
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            overflow,
            Value::Bool(false),
            "the page is wider than the window"
        );
        screenshot(&browser, &shots, "overview-narrow.png").await;
        browser.close().await.unwrap();
    });
}

/// The token docs/dashboard.md's recipe makes with `key`: the recipe is
/// run as the doc shows it.
fn token_from_the_docs(key: &str, api_url: &str) -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/dashboard.md"
    ))
    .expect("docs/dashboard.md");
    let section = doc
        .split("### A token for the browser")
        .nth(1)
        .expect("the doc's token section");
    let recipe = section
        .split("```sh")
        .nth(1)
        .and_then(|rest| rest.split_once('\n'))
        .and_then(|(_attributes, rest)| rest.split("```").next())
        .expect("the doc's token recipe");
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", recipe])
        .env("JWT_AUTH_KEY", key)
        .env("API_URL", api_url)
        .output()
        .expect("bash");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The token, then the node's "accepted".
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.ends_with("accepted\n"), "{stdout}");
    stdout.lines().next().unwrap_or_default().to_string()
}

#[test]
fn with_a_key_the_dashboard_asks_for_a_token_and_keeps_it_in_the_tab() {
    const KEY: &str = "dashboard-test-key";
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", KEY)]);
    let created = client()
        .post(format!("{}/v1/apps", server.url))
        .bearer_auth(token(KEY, 600))
        .body(json!({"app": {"name": "keyed"}}).to_string())
        .send()
        .unwrap();
    assert_eq!(created.status(), 200);

    let driver = ChromeDriver::start();
    let shots = output_dir("dashboard");
    runtime().block_on(async {
        let browser = driver.session(1280, 800).await;
        browser
            .goto(&format!("{}/dashboard#apps", server.url))
            .await
            .unwrap();
        until(&browser, "!document.querySelector('#login').hidden").await;
        let reason = text_of(&browser, "#login-reason").await;
        assert!(reason.contains("Authorization"), "{reason}");
        assert!(!text_of(&browser, "body").await.contains("keyed"));

        let field = browser.find(Locator::Id("token")).await.unwrap();
        field.send_keys(&token("another-key", 600)).await.unwrap();
        browser
            .find(Locator::Css("#login-form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(
            &browser,
            "document.querySelector('#login-reason').textContent.includes('refused')",
        )
        .await;
        screenshot(&browser, &shots, "login-refused.png").await;

        let field = browser.find(Locator::Id("token")).await.unwrap();
        field
            .send_keys(&token_from_the_docs(KEY, &server.url))
            .await
            .unwrap();
        browser
            .find(Locator::Css("#login-form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(&browser, "document.querySelector('#login').hidden").await;
        until(
            &browser,
            "document.querySelector('#apps-list').textContent.includes('keyed')",
        )
        .await;
        let stored = browser
            .execute(
                "return [sessionStorage.length, localStorage.length, document.cookie];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(stored, json!([1, 0, ""]));
        screenshot(&browser, &shots, "apps-with-token.png").await;
        browser.close().await.unwrap();
    });
}

#[test]
fn the_shell_is_served_without_auth_with_its_security_headers_and_unknown_files_are_404() {
    let server = TestServer::start_with_env(&[("JWT_AUTH_KEY", "k")]);
    let page = client()
        .get(format!("{}/dashboard", server.url))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-cache");
    let html = page.text().unwrap();
    assert!(html.contains(r#"<script type="module" src="/dashboard/app.js">"#));

    let script = client()
        .get(format!("{}/dashboard/app.js", server.url))
        .send()
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    for path in ["/dashboard/nope.js", "/dashboard/style.css.map"] {
        let missing = client()
            .get(format!("{}{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(missing.status(), 404, "{path}");
        let body: Value = missing.json().unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no such dashboard file"),
            "{body}"
        );
    }

    // The data stays behind the key.
    for path in ["/v1/apps", "/metrics"] {
        let denied = client()
            .get(format!("{}{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(denied.status(), 401, "{path}");
    }
}

/// The overview's arithmetic, run in the browser on the module the node
/// serves: two scrapes 10 s apart give the rates and quantiles Prometheus'
/// `rate()` and `histogram_quantile()` would, across a counter reset too.
#[test]
fn the_overview_computes_rates_and_quantiles_as_prometheus_does() {
    let server = TestServer::start();
    let before = r#"# TYPE ferrite_calls_total counter
ferrite_calls_total{app="a",route="/r",kind="sync",status="success"} 100
ferrite_calls_total{app="a",route="/r",kind="sync",status="error"} 4
ferrite_cold_starts_total{app="a",route="/r"} 10
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="0.1"} 50
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="1"} 100
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="+Inf"} 104
ferrite_calls_total{app="b",route="/s",kind="async",status="success"} 7
"#;
    // 20 more calls of /r in 10 s: 10 under 0.1 s, 8 more under 1 s, 2
    // above; 5 of them failed and 4 were cold. /s restarted from 0 (a reset).
    let after = r#"ferrite_calls_total{app="a",route="/r",kind="sync",status="success"} 115
ferrite_calls_total{app="a",route="/r",kind="sync",status="error"} 9
ferrite_cold_starts_total{app="a",route="/r"} 14
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="0.1"} 60
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="1"} 118
ferrite_call_duration_seconds_bucket{app="a",route="/r",kind="sync",le="+Inf"} 124
ferrite_calls_total{app="b",route="/s",kind="async",status="success"} 3
"#;
    let driver = ChromeDriver::start();
    runtime().block_on(async {
        let browser = driver.session(800, 600).await;
        browser
            .goto(&format!("{}/dashboard", server.url))
            .await
            .unwrap();
        let script = "const [before, after, done] = arguments;
            import('/dashboard/prom.js').then((prom) => {
                const w = prom.between(prom.snapshot(before, 0), prom.snapshot(after, 10000));
                const r = w.routes.find((x) => x.route === '/r');
                const s = w.routes.find((x) => x.route === '/s');
                done([r.callsPerSec, r.errorsPerSec, r.coldShare, r.p50, r.p95, s.callsPerSec]);
            }, (e) => done(String(e)));";
        let figures = browser
            .execute_async(script, vec![json!(before), json!(after)])
            .await
            .unwrap();
        let figures: Vec<f64> = serde_json::from_value(figures.clone())
            .unwrap_or_else(|_| panic!("the module failed: {figures}"));
        // p50: rank 10 of 20 is the 10th of the 10 under 0.1 s: 0.1.
        // p95: rank 19 is past the 18 under 1 s: the last finite bound, 1.
        let expected = [2.0, 0.5, 0.2, 0.1, 1.0, 0.3];
        for (got, want) in figures.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{figures:?} != {expected:?}");
        }
        assert_eq!(figures.len(), expected.len());
        browser.close().await.unwrap();
    });
}

/// Send `body` to `/v1{path}` with `method`; the answer's JSON.
fn v1(url: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let reply = client()
        .request(method, format!("{url}/v1{path}"))
        .body(body.to_string())
        .send()
        .unwrap();
    let status = reply.status();
    let json: Value = reply.json().unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {json}");
    json
}

/// The ids of an app's dead letters, as the API lists them.
fn dead_letters(url: &str, app: &str) -> Vec<String> {
    v1(
        url,
        reqwest::Method::GET,
        &format!("/apps/{app}/dead-letters"),
        Value::Null,
    )["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Run `f`, a blocking request, from the browser's async code.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Click the element `css`; again when the page's refresh replaced it
/// between finding and clicking.
async fn click(browser: &Client, css: &str) {
    for _ in 0..10 {
        let element = browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") => continue,
            Err(e) => panic!("{css}: {e}"),
        }
    }
    panic!("{css} was replaced on every try");
}

/// Markup a user can put in a key's name or a schedule's payload; shown
/// as text it makes no element and runs nothing.
const HOSTILE: &str = "<img src=x onerror=window.pwned=1>";

#[test]
fn the_dashboard_shows_and_replays_dead_letters_and_shows_schedules_and_keys() {
    require_images(&["ferrite/fail", "ferrite/hello"]);
    let server = TestServer::start();
    create_route(
        &server,
        "dlq",
        json!({"path": "/job", "image": "ferrite/fail", "type": "async"}),
    );
    create_route(
        &server,
        "dlq",
        json!({"path": "/daily", "image": "ferrite/hello"}),
    );
    let failed: Vec<String> = (0..2)
        .map(|_| enqueue(&server, "/r/dlq/job", "{}"))
        .collect();
    assert!(
        eventually(PATIENCE, || dead_letters(&server.url, "dlq").len() == 2),
        "the failed calls did not become dead letters"
    );
    // Ticks on weekdays at 9:00 in Paris; the page shows them in its zone.
    let schedule = v1(
        &server.url,
        reqwest::Method::POST,
        "/apps/dlq/schedules",
        json!({"schedule": {"path": "/daily", "cron": "0 9 * * MON-FRI",
            "timezone": "Europe/Paris", "payload": HOSTILE, "catch_up": "once"}}),
    )["schedule"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = v1(
        &server.url,
        reqwest::Method::POST,
        "/keys",
        json!({"key": {"app": "dlq", "access": "read", "name": HOSTILE}}),
    );
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    let key_token = created["token"].as_str().unwrap().to_string();

    let url = server.url.clone();
    let driver = ChromeDriver::start();
    let shots = output_dir("dashboard");
    runtime().block_on(async {
        let browser = driver.session(1280, 800).await;
        browser
            .goto(&format!("{}/dashboard#calls", server.url))
            .await
            .unwrap();
        // Where the app's calls are, its dead letters are counted.
        until(
            &browser,
            "document.querySelector('#calls-dead').textContent.includes('dlq 2')",
        )
        .await;
        screenshot(&browser, &shots, "calls-with-dead-letters.png").await;

        click(&browser, "[data-tab='dead-letters']").await;
        for id in &failed {
            let row = format!("#dead-letters-list tr[data-letter-id='{id}']");
            until(&browser, &format!("document.querySelector(\"{row}\")")).await;
            let cells = text_of(&browser, &row).await;
            assert!(cells.contains("error"), "{cells}");
            assert!(cells.contains("/job"), "{cells}");
        }
        screenshot(&browser, &shots, "dead-letters.png").await;

        // Fixed: the route now succeeds, so a replayed call leaves the list
        // for good.
        let at = url.clone();
        blocking(move || {
            v1(
                &at,
                reqwest::Method::PATCH,
                "/apps/dlq/routes/job",
                json!({"route": {"image": "ferrite/hello"}}),
            )
        })
        .await;
        let (first, second) = (&failed[0], &failed[1]);
        let replay = format!("#dead-letters-list tr[data-letter-id='{first}'] button.replay");
        // Replaying asks first; "Cancel" replays nothing.
        click(&browser, &replay).await;
        browser.dismiss_alert().await.unwrap();
        let at = url.clone();
        assert_eq!(blocking(move || dead_letters(&at, "dlq")).await.len(), 2);
        click(&browser, &replay).await;
        browser.accept_alert().await.unwrap();
        until(
            &browser,
            &format!("!document.querySelector(\"tr[data-letter-id='{first}']\")"),
        )
        .await;
        let at = url.clone();
        assert_eq!(
            blocking(move || dead_letters(&at, "dlq")).await,
            vec![second.clone()]
        );
        assert!(text_of(&browser, "#dead-letters-list")
            .await
            .contains(second.as_str()));

        click(&browser, "#dead-letters-list button.replay-all").await;
        browser.accept_alert().await.unwrap();
        until(
            &browser,
            "document.querySelector('#dead-letters-list').textContent.includes('No dead letters')",
        )
        .await;
        let at = url.clone();
        assert!(blocking(move || dead_letters(&at, "dlq")).await.is_empty());

        click(&browser, "[data-tab=schedules]").await;
        let row = format!("#schedules-list tr[data-schedule-id='{schedule}']");
        until(&browser, &format!("document.querySelector(\"{row}\")")).await;
        let cells = text_of(&browser, &row).await;
        for shown in [
            "/daily",
            "0 9 * * MON-FRI",
            "Europe/Paris",
            "once",
            "enabled",
            "T09:00:00+01:00",
            HOSTILE,
        ] {
            assert!(cells.contains(shown), "{shown} is not in:\n{cells}");
        }
        screenshot(&browser, &shots, "schedules.png").await;
        // Paused: no next runs, and the button resumes.
        click(&browser, &format!("{row} button.toggle")).await;
        until(
            &browser,
            &format!("document.querySelector(\"{row}\").textContent.includes('paused')"),
        )
        .await;
        let (at, path) = (url.clone(), format!("/apps/dlq/schedules/{schedule}"));
        let paused = blocking(move || v1(&at, reqwest::Method::GET, &path, Value::Null)).await;
        assert_eq!(paused["schedule"]["enabled"], false);
        assert!(text_of(&browser, &row).await.contains("Resume"));

        click(&browser, "[data-tab=keys]").await;
        let row = format!("#keys-table tr[data-key-id='{key_id}']");
        until(&browser, &format!("document.querySelector(\"{row}\")")).await;
        let cells = text_of(&browser, &row).await;
        for shown in ["dlq", "read", HOSTILE] {
            assert!(cells.contains(shown), "{shown} is not in:\n{cells}");
        }
        screenshot(&browser, &shots, "keys.png").await;

        // The hostile strings stayed text: no element, nothing ran, and the
        // key's secret is nowhere in the page.
        let injected = browser
            .execute(
                "return [document.querySelectorAll('main img').length, window.pwned === undefined];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, json!([0, true]));
        let secret = key_token.rsplit('_').next().unwrap();
        let page = browser
            .execute("return document.documentElement.outerHTML;", vec![])
            .await
            .unwrap();
        assert!(!page.as_str().unwrap().contains(secret));

        let errors = driver.console_errors(&browser).await;
        assert!(errors.is_empty(), "console errors: {errors:#?}");
        browser.close().await.unwrap();
    });
}

#[test]
fn a_page_whose_scripts_fail_to_load_loads_again_then_says_so() {
    let server = TestServer::start();
    let driver = ChromeDriver::start();
    runtime().block_on(async {
        let browser = driver.session(1280, 800).await;
        // Every fetch of one module fails, as in a network blip that lasts.
        driver.devtools(&browser, "Network.enable", json!({})).await;
        let blocked = json!({ "urls": ["*/dashboard/dom.js"] });
        driver
            .devtools(&browser, "Network.setBlockedURLs", blocked)
            .await;
        browser
            .goto(&format!("{}/dashboard#apps", server.url))
            .await
            .unwrap();
        until(
            &browser,
            "document.getElementById('banner').textContent.includes('did not load')",
        )
        .await;
        // It tried again before saying so: the navigations this tab made.
        let loads = browser
            .execute(
                "return performance.getEntriesByType('navigation')[0].type;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(loads, json!("reload"));
        assert!(!text_of(&browser, "#updated").await.contains("updated"));

        // The blip over, the page runs once it is loaded again.
        let none = json!({ "urls": [] });
        driver
            .devtools(&browser, "Network.setBlockedURLs", none)
            .await;
        browser.refresh().await.unwrap();
        until(&browser, "document.documentElement.dataset.booted === '1'").await;
        until(
            &browser,
            "document.getElementById('updated').textContent.includes('updated')",
        )
        .await;
        browser.close().await.unwrap();
    });
}
