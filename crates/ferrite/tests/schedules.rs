//! Schedules against the real engine: a tick queues one call that runs;
//! the next run times are in the schedule's time zone; two nodes on
//! PostgreSQL and Redis make exactly one call per tick; ticks missed while
//! every node was down run once (`catch_up: once`) or not at all (`skip`);
//! the CLI lists, inspects, pauses and deletes them.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use common::calls::all_calls;
use common::cli::{ok, ok_json};
use common::redis::RedisServer;
use common::{client, create_route, eventually, require_images, TestServer};
use serde_json::{json, Value};

fn v1(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, format!("{}/v1{path}", server.url));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().unwrap_or(Value::Null))
}

/// Create a schedule of `app`; its JSON.
fn create(server: &TestServer, app: &str, schedule: Value) -> Value {
    let (status, json) = v1(
        server,
        reqwest::Method::POST,
        &format!("/apps/{app}/schedules"),
        Some(json!({ "schedule": schedule })),
    );
    assert_eq!(status, 200, "{json}");
    json["schedule"].clone()
}

fn pause(server: &TestServer, app: &str, id: &str) {
    let (status, json) = v1(
        server,
        reqwest::Method::PATCH,
        &format!("/apps/{app}/schedules/{id}"),
        Some(json!({"schedule": {"enabled": false}})),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["schedule"]["next_runs"], json!([]));
}

/// The calls of `app` that have ended, once none is queued or running.
fn settled_calls(server: &TestServer, app: &str) -> Vec<Value> {
    let mut calls = Vec::new();
    let settled = eventually(Duration::from_secs(60), || {
        calls = all_calls(&server.url, app, None);
        calls
            .iter()
            .all(|c| !matches!(c["status"].as_str(), Some("queued" | "running")))
    });
    assert!(settled, "calls of {app} did not end: {calls:?}");
    calls
}

/// What ferrite/echo printed for call `id`: its environment, then its body.
fn output(server: &TestServer, app: &str, id: &str) -> String {
    client()
        .get(format!("{}/v1/apps/{app}/calls/{id}/output", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// The tick a scheduled call was for (its `Fn-Schedule-Tick` header).
fn tick_of(output: &str) -> DateTime<Utc> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("HEADER_FN_SCHEDULE_TICK="))
        .unwrap_or_else(|| panic!("no tick header in:\n{output}"));
    DateTime::parse_from_rfc3339(line)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every call ended in success and was for a distinct tick;
/// the ticks, in order.
fn ticks(server: &TestServer, app: &str, calls: &[Value]) -> Vec<DateTime<Utc>> {
    let mut ticks = BTreeSet::new();
    for call in calls {
        // A call may have run twice when its node died under it (the
        // queue's at-least-once); it is still one call of one tick.
        assert_eq!(call["status"], "success", "{call}");
        let out = output(server, app, call["id"].as_str().unwrap());
        assert!(
            ticks.insert(tick_of(&out)),
            "two calls for one tick:\n{out}"
        );
    }
    ticks.into_iter().collect()
}

#[test]
fn a_tick_queues_one_call_that_runs_on_the_engine() {
    require_images(&["ferrite/echo"]);
    let server = TestServer::start();
    create_route(
        &server,
        "sched",
        json!({"path": "/tick", "image": "ferrite/echo"}),
    );
    let schedule = create(
        &server,
        "sched",
        json!({"path": "/tick", "cron": "*/2 * * * * *", "timezone": "Europe/Paris",
               "payload": "from the schedule", "headers": {"X-Order": "42"}}),
    );
    assert_eq!(schedule["catch_up"], "skip");
    let id = schedule["id"].as_str().unwrap().to_string();
    // Five run times two seconds apart, at Paris' winter offset.
    let runs: Vec<DateTime<chrono::FixedOffset>> = schedule["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| DateTime::parse_from_rfc3339(r.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(runs.len(), 5, "{schedule}");
    for pair in runs.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_seconds(), 2);
        assert_eq!(pair[0].offset().local_minus_utc(), 3600);
        assert_eq!(pair[0].second() % 2, 0);
    }

    let ran = eventually(Duration::from_secs(60), || {
        all_calls(&server.url, "sched", None)
            .iter()
            .filter(|c| c["status"] == "success")
            .count()
            >= 3
    });
    assert!(ran, "no three scheduled calls ran:\n{}", server.log());
    pause(&server, "sched", &id);
    let calls = settled_calls(&server, "sched");
    let ticks = ticks(&server, "sched", &calls);
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_seconds(),
            2,
            "a tick missed: {ticks:?}"
        );
    }
    let out = output(&server, "sched", calls[0]["id"].as_str().unwrap());
    assert!(out.ends_with("--- stdin ---\nfrom the schedule"), "{out}");
    assert!(out.contains("HEADER_X_ORDER=42"), "{out}");
    assert!(
        out.contains(&format!("HEADER_FN_SCHEDULE_ID={id}")),
        "{out}"
    );
    // Paused: no more calls.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(all_calls(&server.url, "sched", None).len(), calls.len());

    // The CLI sees it, resumes it and deletes it.
    let listed = ok(&server, &["schedules", "list", "sched"]);
    assert!(
        listed.contains(&id) && listed.contains("paused"),
        "{listed}"
    );
    let resumed = ok_json(&server, &["schedules", "resume", "sched", &id]);
    assert_eq!(resumed["enabled"], true);
    assert_eq!(resumed["next_runs"].as_array().unwrap().len(), 5);
    let inspected = ok(
        &server,
        &["schedules", "inspect", "sched", &id, "--next", "2"],
    );
    assert_eq!(inspected.matches("+01:00").count(), 2, "{inspected}");
    ok(&server, &["schedules", "delete", "sched", &id]);
    let (status, _) = v1(
        &server,
        reqwest::Method::GET,
        &format!("/apps/sched/schedules/{id}"),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn schedules_are_checked_shown_in_their_zone_and_go_with_their_route() {
    let server = TestServer::start_with_env(&[("FERRITE_APP_MAX_SCHEDULES", "2")]);
    create_route(
        &server,
        "zones",
        json!({"path": "/a", "image": "ferrite/echo"}),
    );
    let tokyo = create(
        &server,
        "zones",
        json!({"path": "/a", "cron": "0 9 * * *", "timezone": "Asia/Tokyo", "catch_up": "once"}),
    );
    for run in tokyo["next_runs"].as_array().unwrap() {
        assert!(
            run.as_str().unwrap().ends_with("T09:00:00+09:00"),
            "{tokyo}"
        );
    }
    let (status, json) = v1(
        &server,
        reqwest::Method::GET,
        &format!(
            "/apps/zones/schedules/{}?next=20",
            tokyo["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(json["schedule"]["next_runs"].as_array().unwrap().len(), 20);
    for (body, needle) in [
        (json!({"path": "/a", "cron": "* * * *"}), "4 fields"),
        (
            json!({"path": "/a", "cron": "* * * * *", "timezone": "Moon/Base"}),
            "IANA",
        ),
        (
            json!({"path": "/a", "cron": "* * * * *", "catch_up": "twice"}),
            "skip or once",
        ),
        (
            json!({"path": "/a", "cron": "* * * * *", "payload": "x".repeat(70_000)}),
            "payload",
        ),
        (
            json!({"path": "/a", "cron": "* * * * *", "headers": {"Fn-Schedule-Tick": "x"}}),
            "scheduler",
        ),
        (
            json!({"path": "/a", "cron": "* * * * *", "headers": {"X-Callback-Url": "http://x/"}}),
            "callback",
        ),
    ] {
        let (status, json) = v1(
            &server,
            reqwest::Method::POST,
            "/apps/zones/schedules",
            Some(json!({ "schedule": body })),
        );
        assert_eq!(status, 400, "{json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let (status, json) = v1(
        &server,
        reqwest::Method::POST,
        "/apps/zones/schedules",
        Some(json!({"schedule": {"path": "/none", "cron": "* * * * *"}})),
    );
    assert_eq!(status, 404, "{json}");
    create(&server, "zones", json!({"path": "/a", "cron": "@daily"}));
    let (status, json) = v1(
        &server,
        reqwest::Method::POST,
        "/apps/zones/schedules",
        Some(json!({"schedule": {"path": "/a", "cron": "@hourly"}})),
    );
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has 2 schedules"),
        "{json}"
    );
    // A schedule goes with its route.
    let (status, _) = v1(
        &server,
        reqwest::Method::DELETE,
        "/apps/zones/routes/a",
        None,
    );
    assert_eq!(status, 200);
    let (status, json) = v1(&server, reqwest::Method::GET, "/apps/zones/schedules", None);
    assert_eq!(status, 200);
    assert_eq!(json["schedules"], json!([]));
}

#[test]
fn two_nodes_on_postgres_and_redis_make_one_call_per_tick() {
    require_images(&["ferrite/echo"]);
    let redis = RedisServer::start();
    let mq = redis.url(&format!("schedules-{}", std::process::id()));
    let db = common::postgres::fresh_database();
    // A short lease: a call running on the node killed below runs again
    // soon on the other one.
    let env = [
        ("DB_URL", db.as_str()),
        ("MQ_URL", mq.as_str()),
        ("FERRITE_ASYNC_LEASE_SECS", "3"),
    ];
    let mut a = TestServer::start_with_env(&env);
    let b = TestServer::start_with_env(&env);
    create_route(
        &a,
        "pair",
        json!({"path": "/tick", "image": "ferrite/echo"}),
    );
    let schedule = create(&a, "pair", json!({"path": "/tick", "cron": "* * * * * *"}));
    let id = schedule["id"].as_str().unwrap();
    let calls_at_least = |n: usize| {
        eventually(Duration::from_secs(60), || {
            all_calls(&b.url, "pair", None).len() >= n
        })
    };
    // Both nodes poll every second for the same ticks; then one dies.
    assert!(
        calls_at_least(5),
        "too few calls:\n{}\n{}",
        a.log(),
        b.log()
    );
    a.kill();
    let before = all_calls(&b.url, "pair", None).len();
    assert!(
        calls_at_least(before + 5),
        "node b did not go on:\n{}",
        b.log()
    );
    pause(&b, "pair", id);
    let calls = settled_calls(&b, "pair");
    let ticks = ticks(&b, "pair", &calls);
    for pair in ticks.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_seconds(),
            1,
            "a tick missed: {ticks:?}"
        );
    }
    // Each call was queued by one node: no node queued a tick twice.
    let queued = |server: &TestServer| server.log().matches("scheduled call queued").count();
    let (by_a, by_b) = (queued(&a), queued(&b));
    assert_eq!(by_a + by_b, calls.len(), "{ticks:?}");
    assert!(by_b >= 5, "node b queued {by_b}");
    eprintln!(
        "{} ticks, {by_a} queued by node a, {by_b} by node b",
        ticks.len()
    );
    // The killed node comes back to remove what it left on the engine.
    a.restart();
}

#[test]
fn ticks_missed_while_every_node_was_down_run_once_or_are_skipped() {
    require_images(&["ferrite/echo"]);
    let mut server = TestServer::start_with_env(&[("FERRITE_SCHEDULE_GRACE", "1s")]);
    create_route(
        &server,
        "down",
        json!({"path": "/tick", "image": "ferrite/echo"}),
    );
    // One tick a year, four seconds from now.
    let tick = (Utc::now() + chrono::Duration::seconds(4))
        .with_nanosecond(0)
        .unwrap();
    let cron = format!(
        "{} {} {} {} {} *",
        tick.second(),
        tick.minute(),
        tick.hour(),
        tick.day(),
        tick.month()
    );
    let once = create(
        &server,
        "down",
        json!({"path": "/tick", "cron": cron, "catch_up": "once"}),
    );
    let skip = create(
        &server,
        "down",
        json!({"path": "/tick", "cron": cron, "catch_up": "skip"}),
    );
    assert_eq!(
        once["next_runs"][0],
        tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert!(server.terminate().success());
    // Down across the tick, and past the grace.
    while Utc::now() < tick + chrono::Duration::seconds(3) {
        std::thread::sleep(Duration::from_millis(200));
    }
    server.restart();
    let caught_up = eventually(Duration::from_secs(30), || {
        all_calls(&server.url, "down", None)
            .iter()
            .any(|c| c["status"] == "success")
    });
    assert!(caught_up, "the missed tick did not run:\n{}", server.log());
    // Time for the skipped one to show up, were it queued.
    std::thread::sleep(Duration::from_secs(3));
    let calls = settled_calls(&server, "down");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let out = output(&server, "down", calls[0]["id"].as_str().unwrap());
    assert_eq!(tick_of(&out), tick);
    assert!(
        out.contains(&format!(
            "HEADER_FN_SCHEDULE_ID={}",
            once["id"].as_str().unwrap()
        )),
        "{out}"
    );
    // Both moved on to next year's tick.
    for s in [&once, &skip] {
        let (_, json) = v1(
            &server,
            reqwest::Method::GET,
            &format!("/apps/down/schedules/{}", s["id"].as_str().unwrap()),
            None,
        );
        let next = DateTime::parse_from_rfc3339(json["schedule"]["next_runs"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(next.year(), tick.year() + 1, "{json}");
    }
}
