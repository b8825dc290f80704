//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each case is a plain async function over `&dyn Store`; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns
//! them into one `#[tokio::test]` each for a given backend, so SQLite and
//! PostgreSQL run the very same assertions. Cases assume an empty store.

use std::sync::Arc;

use ferrite_model::{
    App, AppInput, AppLimits, Call, CallStatus, Millis, Route, RouteInput, RouteType,
};

use crate::{CallFilter, CallUpdate, RecordedCall, Store, StoreError};

fn app(name: &str, config: &[(&str, &str)]) -> App {
    App {
        name: name.to_string(),
        config: (!config.is_empty()).then(|| {
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        limits: None,
    }
}

fn route(app: &str, json: &str) -> Route {
    let input: RouteInput = serde_json::from_str(json).expect("test route JSON");
    Route::create(app, input).expect("test route is valid")
}

fn patch<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("test patch JSON")
}

pub async fn apps_round_trip(store: &dyn Store) {
    store.create_app(&app("beta", &[("B", "2")])).await.unwrap();
    store.create_app(&app("alpha", &[])).await.unwrap();
    assert_eq!(
        store.get_app("beta").await.unwrap(),
        app("beta", &[("B", "2")])
    );
    assert_eq!(store.get_app("alpha").await.unwrap().config, None);
    let names: Vec<_> = store
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(matches!(
        store.get_app("nope").await,
        Err(StoreError::AppNotFound(_))
    ));
}

pub async fn duplicate_app_conflicts(store: &dyn Store) {
    store.create_app(&app("dup", &[("A", "1")])).await.unwrap();
    let err = store
        .create_app(&app("dup", &[("A", "changed")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppExists(_)), "{err:?}");
    assert_eq!(
        store.get_app("dup").await.unwrap(),
        app("dup", &[("A", "1")])
    );
}

pub async fn app_update_merges_config(store: &dyn Store) {
    store
        .create_app(&app("cfg", &[("A", "1"), ("B", "2")]))
        .await
        .unwrap();
    let updated = store
        .update_app("cfg", patch(r#"{"config":{"A":"","C":"3"}}"#))
        .await
        .unwrap();
    assert_eq!(updated, app("cfg", &[("B", "2"), ("C", "3")]));
    assert_eq!(store.get_app("cfg").await.unwrap(), updated);
    let err = store
        .update_app("cfg", patch(r#"{"name":"other","config":{"D":"4"}}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.get_app("cfg").await.unwrap(),
        updated,
        "a refused patch writes nothing"
    );
    let err = store
        .update_app("missing", AppInput::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
}

pub async fn app_limits_round_trip(store: &dyn Store) {
    let limits = AppLimits {
        max_in_flight: Some(10),
        rate: Some(50),
        burst: Some(100),
        max_queued: Some(0),
    };
    let limited = App {
        limits: Some(limits.clone()),
        ..app("lim", &[("A", "1")])
    };
    store.create_app(&limited).await.unwrap();
    store.create_app(&app("plain", &[])).await.unwrap();
    assert_eq!(store.get_app("lim").await.unwrap(), limited);
    assert_eq!(store.get_app("plain").await.unwrap().limits, None);
    let listed = store.list_apps().await.unwrap();
    assert_eq!(listed[0], limited);

    // Merged field by field, the config kept; null removes one field.
    let updated = store
        .update_app(
            "lim",
            patch(r#"{"limits":{"rate":5,"burst":null,"max_queued":1000}}"#),
        )
        .await
        .unwrap();
    let expected = AppLimits {
        max_in_flight: Some(10),
        rate: Some(5),
        burst: None,
        max_queued: Some(1000),
    };
    assert_eq!(updated.limits.as_ref(), Some(&expected));
    assert_eq!(updated.config, limited.config);
    assert_eq!(store.get_app("lim").await.unwrap(), updated);

    // A bad value writes nothing, not even the valid fields beside it.
    let err = store
        .update_app(
            "lim",
            patch(r#"{"config":{"B":"2"},"limits":{"rate":3,"burst":0}}"#),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.get_app("lim").await.unwrap(), updated);

    // null removes the whole section: the server's defaults apply again.
    let cleared = store
        .update_app("lim", patch(r#"{"limits":null}"#))
        .await
        .unwrap();
    assert_eq!(cleared.limits, None);
    assert_eq!(store.get_app("lim").await.unwrap().limits, None);
}

pub async fn app_delete_needs_cascade(store: &dyn Store) {
    store
        .create_route(&route("del", r#"{"path":"/a","image":"img"}"#))
        .await
        .unwrap();
    let err = store.delete_app("del", false).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AppHasRoutes { count: 1, .. }),
        "{err:?}"
    );
    assert!(store.get_route("del", "/a").await.is_ok());
    store.delete_app("del", true).await.unwrap();
    assert!(matches!(
        store.get_app("del").await,
        Err(StoreError::AppNotFound(_))
    ));
    assert!(matches!(
        store.get_route("del", "/a").await,
        Err(StoreError::RouteNotFound { .. })
    ));
    assert!(matches!(
        store.delete_app("del", true).await,
        Err(StoreError::AppNotFound(_))
    ));
    store.create_app(&app("empty", &[])).await.unwrap();
    store.delete_app("empty", false).await.unwrap();
}

pub async fn route_creates_its_app(store: &dyn Store) {
    let r = route("auto", r#"{"path":"/hello-sync","image":"ferrite/hello"}"#);
    store.create_route(&r).await.unwrap();
    assert_eq!(store.get_app("auto").await.unwrap(), app("auto", &[]));
    assert_eq!(store.get_route("auto", "/hello-sync").await.unwrap(), r);
    let err = store
        .create_route(&route("auto", r#"{"path":"/hello-sync","image":"other"}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RouteExists { .. }), "{err:?}");
    assert_eq!(
        store.get_route("auto", "/hello-sync").await.unwrap().image,
        "ferrite/hello"
    );
}

pub async fn route_keeps_every_field(store: &dyn Store) {
    store
        .create_app(&app("full", &[("APP", "1")]))
        .await
        .unwrap();
    let r = route(
        "full",
        r#"{"path":"/a/b/c","image":"reg:5000/x/y:1","memory":256,"type":"async","format":"http",
            "max_concurrency":4,"timeout":60,"idle_timeout":120,
            "headers":{"X-One":["1","2"]},"config":{"K":"v"},"jwt_key":"secret","max_retries":5}"#,
    );
    store.create_route(&r).await.unwrap();
    assert_eq!(store.get_route("full", "/a/b/c").await.unwrap(), r);
    assert!(matches!(
        store.get_route("full", "/a/b").await,
        Err(StoreError::RouteNotFound { .. })
    ));
    assert_eq!(
        store.get_app("full").await.unwrap(),
        app("full", &[("APP", "1")]),
        "app config kept"
    );
}

pub async fn route_update_applies_patch(store: &dyn Store) {
    store
        .create_route(&route(
            "upd",
            r#"{"path":"/r","image":"img","config":{"A":"1"},"jwt_key":"k"}"#,
        ))
        .await
        .unwrap();
    let updated = store
        .update_route(
            "upd",
            "/r",
            patch(r#"{"image":"img2","memory":512,"config":{"A":"","B":"2"},"jwt_key":""}"#),
        )
        .await
        .unwrap();
    assert_eq!(updated.image, "img2");
    assert_eq!(updated.memory, 512);
    assert_eq!(updated.jwt_key, None);
    assert_eq!(store.get_route("upd", "/r").await.unwrap(), updated);
    let err = store
        .update_route("upd", "/r", patch(r#"{"memory":64,"format":"grpc"}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.get_route("upd", "/r").await.unwrap(),
        updated,
        "a refused patch writes nothing"
    );
    let err = store
        .update_route("upd", "/missing", RouteInput::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RouteNotFound { .. }), "{err:?}");
}

/// `max_retries` defaults to 0, survives a PATCH that does not name it, and
/// (unlike the other numbers) an explicit 0 in a PATCH sets it to 0.
pub async fn route_max_retries(store: &dyn Store) {
    store
        .create_route(&route("mr", r#"{"path":"/plain","image":"img"}"#))
        .await
        .unwrap();
    assert_eq!(
        store.get_route("mr", "/plain").await.unwrap().max_retries,
        0
    );
    store
        .create_route(&route(
            "mr",
            r#"{"path":"/r","image":"img","type":"async","max_retries":3}"#,
        ))
        .await
        .unwrap();
    assert_eq!(store.get_route("mr", "/r").await.unwrap().max_retries, 3);
    let updated = store
        .update_route("mr", "/r", patch(r#"{"memory":256}"#))
        .await
        .unwrap();
    assert_eq!(updated.max_retries, 3, "not named, kept");
    let updated = store
        .update_route("mr", "/r", patch(r#"{"max_retries":10}"#))
        .await
        .unwrap();
    assert_eq!(updated.max_retries, 10);
    assert_eq!(store.get_route("mr", "/r").await.unwrap(), updated);
    let err = store
        .update_route("mr", "/r", patch(r#"{"max_retries":11}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.get_route("mr", "/r").await.unwrap().max_retries,
        10,
        "a refused patch writes nothing"
    );
    let updated = store
        .update_route("mr", "/r", patch(r#"{"max_retries":0}"#))
        .await
        .unwrap();
    assert_eq!(updated.max_retries, 0, "an explicit 0 sets 0");
    assert_eq!(store.get_route("mr", "/r").await.unwrap().max_retries, 0);
}

/// The service section comes back as it went in, with every field; a route
/// without one has none.
pub async fn route_service_round_trip(store: &dyn Store) {
    let plain = route("svc", r#"{"path":"/plain","image":"img"}"#);
    store.create_route(&plain).await.unwrap();
    assert_eq!(
        store.get_route("svc", "/plain").await.unwrap().service,
        None
    );

    let full = route(
        "svc",
        r#"{"path":"/full","image":"img","format":"http","service":{"port":9000,"min_replicas":2,
            "max_replicas":7,"target_concurrency":25,"scale_to_zero_after":45,
            "constraints":["node.role==worker","node.labels.zone != b"],
            "labels":{"team":"a","example.com/tier":"web"}}}"#,
    );
    assert!(full.service.is_some());
    store.create_route(&full).await.unwrap();
    assert_eq!(store.get_route("svc", "/full").await.unwrap(), full);

    let defaults = route("svc", r#"{"path":"/defaults","image":"img","service":{}}"#);
    store.create_route(&defaults).await.unwrap();
    assert_eq!(
        store.get_route("svc", "/defaults").await.unwrap().service,
        Some(ferrite_model::ServiceSpec::default())
    );
}

/// PATCH adds the section (with defaults), merges into it field by field,
/// and `null` removes it; a refused patch writes nothing.
pub async fn route_service_update(store: &dyn Store) {
    store
        .create_route(&route("svcu", r#"{"path":"/r","image":"img"}"#))
        .await
        .unwrap();
    let added = store
        .update_route("svcu", "/r", patch(r#"{"service":{"max_replicas":4}}"#))
        .await
        .unwrap();
    let service = added.service.clone().expect("added");
    assert_eq!((service.port, service.max_replicas), (8080, 4));
    assert_eq!(store.get_route("svcu", "/r").await.unwrap(), added);

    let changed = store
        .update_route(
            "svcu",
            "/r",
            patch(r#"{"service":{"port":9090,"constraints":["node.role==worker"],"labels":{"a":"1"}}}"#),
        )
        .await
        .unwrap();
    let service = changed.service.clone().expect("kept");
    assert_eq!(
        (
            service.port,
            service.max_replicas,
            service.constraints.len(),
            service.labels.len()
        ),
        (9090, 4, 1, 1)
    );
    assert_eq!(store.get_route("svcu", "/r").await.unwrap(), changed);

    let kept = store
        .update_route("svcu", "/r", patch(r#"{"memory":256}"#))
        .await
        .unwrap();
    assert_eq!(kept.service, changed.service, "not named, kept");

    let err = store
        .update_route("svcu", "/r", patch(r#"{"service":{"min_replicas":9}}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store
        .update_route("svcu", "/r", patch(r#"{"type":"async"}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.get_route("svcu", "/r").await.unwrap(),
        kept,
        "a refused patch writes nothing"
    );

    let removed = store
        .update_route("svcu", "/r", patch(r#"{"service":null}"#))
        .await
        .unwrap();
    assert_eq!(removed.service, None);
    assert_eq!(store.get_route("svcu", "/r").await.unwrap().service, None);
    assert_eq!(store.get_route("svcu", "/r").await.unwrap(), removed);
}

/// A listing carries each route's section (or none).
pub async fn routes_list_with_service(store: &dyn Store) {
    let with = route(
        "svcl",
        r#"{"path":"/a","image":"img","service":{"min_replicas":1,"labels":{"x":"y"}}}"#,
    );
    let without = route("svcl", r#"{"path":"/b","image":"img"}"#);
    store.create_route(&with).await.unwrap();
    store.create_route(&without).await.unwrap();
    assert_eq!(store.list_routes("svcl").await.unwrap(), [with, without]);
}

/// The confinement section comes back as it went in, with every field; a
/// route without one has none; PATCH merges into it, `null` removes it, a
/// refused patch writes nothing, and a listing carries it.
pub async fn route_confinement_round_trip_and_update(store: &dyn Store) {
    let plain = route("conf", r#"{"path":"/plain","image":"img"}"#);
    store.create_route(&plain).await.unwrap();
    assert_eq!(
        store.get_route("conf", "/plain").await.unwrap().confinement,
        None
    );

    let full = route(
        "conf",
        r#"{"path":"/full","image":"img","confinement":{"read_only":true,"network":"none",
            "cap_add":["NET_BIND_SERVICE","CHOWN"],"pids_limit":512,"nofile":4096,"cpus":0.25}}"#,
    );
    store.create_route(&full).await.unwrap();
    let stored = store.get_route("conf", "/full").await.unwrap();
    assert_eq!(stored, full);
    let resolved = stored.confinement();
    assert!(resolved.read_only && resolved.network_none);
    assert_eq!(resolved.cap_add, ["CHOWN", "NET_BIND_SERVICE"]);
    assert_eq!(
        (resolved.pids_limit, resolved.nofile, resolved.cpus),
        (512, 4096, Some(0.25))
    );

    let added = store
        .update_route(
            "conf",
            "/plain",
            patch(r#"{"confinement":{"nofile":2048}}"#),
        )
        .await
        .unwrap();
    let section = added.confinement.clone().expect("added");
    assert_eq!((section.nofile, section.pids_limit), (2048, 256));
    assert_eq!(store.get_route("conf", "/plain").await.unwrap(), added);

    let merged = store
        .update_route(
            "conf",
            "/plain",
            patch(r#"{"confinement":{"read_only":true,"cpus":1.5}}"#),
        )
        .await
        .unwrap();
    let section = merged.confinement.clone().expect("kept");
    assert_eq!(
        (
            section.nofile,
            section.read_only,
            section.cpus.map(|c| c.milli())
        ),
        (2048, true, Some(1500))
    );
    assert_eq!(store.get_route("conf", "/plain").await.unwrap(), merged);

    let err = store
        .update_route(
            "conf",
            "/plain",
            patch(r#"{"memory":256,"confinement":{"cap_add":["SYS_ADMIN"]}}"#),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.get_route("conf", "/plain").await.unwrap(),
        merged,
        "a refused patch writes nothing"
    );

    let removed = store
        .update_route("conf", "/plain", patch(r#"{"confinement":null}"#))
        .await
        .unwrap();
    assert_eq!(removed.confinement, None);
    assert_eq!(store.get_route("conf", "/plain").await.unwrap(), removed);
    assert_eq!(store.list_routes("conf").await.unwrap(), [full, removed]);
}

pub async fn routes_list_by_path(store: &dyn Store) {
    for path in ["/c", "/a/b", "/a"] {
        store
            .create_route(&route(
                "lst",
                &format!(r#"{{"path":"{path}","image":"img"}}"#),
            ))
            .await
            .unwrap();
    }
    store
        .create_route(&route("other", r#"{"path":"/z","image":"img"}"#))
        .await
        .unwrap();
    let paths: Vec<_> = store
        .list_routes("lst")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/a", "/a/b", "/c"]);
    assert!(matches!(
        store.list_routes("nope").await,
        Err(StoreError::AppNotFound(_))
    ));
    store.create_app(&app("bare", &[])).await.unwrap();
    assert!(store.list_routes("bare").await.unwrap().is_empty());
}

pub async fn route_delete(store: &dyn Store) {
    store
        .create_route(&route("rd", r#"{"path":"/x","image":"img"}"#))
        .await
        .unwrap();
    store.delete_route("rd", "/x").await.unwrap();
    assert!(matches!(
        store.get_route("rd", "/x").await,
        Err(StoreError::RouteNotFound { .. })
    ));
    assert!(matches!(
        store.delete_route("rd", "/x").await,
        Err(StoreError::RouteNotFound { .. })
    ));
    assert!(
        store.get_app("rd").await.is_ok(),
        "deleting a route keeps its app"
    );
}

/// Concurrent PATCHes of different keys all land: updates are atomic.
pub async fn concurrent_patches_all_land(store: Arc<dyn Store>) {
    store.create_app(&app("race", &[])).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = format!(r#"{{"config":{{"K{i}":"{i}"}}}}"#);
                store.update_app("race", patch(&body)).await.map(|_| ())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("update");
    }
    let config = store
        .get_app("race")
        .await
        .unwrap()
        .config
        .unwrap_or_default();
    assert_eq!(config.len(), 20, "{config:?}");
}

/// A UUIDv7-shaped id that sorts with `n`.
fn call_id(n: u32) -> String {
    format!("01900000-0000-7000-8000-{n:012}")
}

fn call(app: &str, path: &str, n: u32) -> Call {
    Call::new(
        call_id(n),
        app,
        path,
        RouteType::Async,
        Millis(1_000 + i64::from(n)),
    )
}

fn ids(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| c.id.clone()).collect()
}

pub async fn call_round_trip(store: &dyn Store) {
    store.create_app(&app("ca", &[])).await.unwrap();
    let c = call("ca", "/p", 1);
    store.insert_call(&c).await.unwrap();
    assert_eq!(store.get_call("ca", &c.id).await.unwrap(), c);
    let mut done = c.clone();
    done.id = call_id(2);
    done.kind = RouteType::Sync;
    done.advance(CallStatus::Running, Millis(5), None).unwrap();
    done.advance(CallStatus::Error, Millis(9), Some("exit 3"))
        .unwrap();
    store.insert_call(&done).await.unwrap();
    assert_eq!(store.get_call("ca", &done.id).await.unwrap(), done);
    let err = store
        .insert_call(&call("ca", "/other", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CallExists(_)), "{err:?}");
    assert_eq!(store.get_call("ca", &c.id).await.unwrap(), c, "unchanged");
    let err = store.insert_call(&call("nope", "/p", 3)).await.unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
}

pub async fn call_not_found(store: &dyn Store) {
    store.create_app(&app("cn", &[])).await.unwrap();
    store.create_app(&app("cn2", &[])).await.unwrap();
    store.insert_call(&call("cn2", "/p", 1)).await.unwrap();
    let id = call_id(1);
    let missing = call_id(9);
    for (app, id) in [
        ("cn", id.as_str()),
        ("cn2", missing.as_str()),
        ("zz", id.as_str()),
    ] {
        assert!(matches!(
            store.get_call(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
        assert!(matches!(
            store.call_output(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
        assert!(matches!(
            store.get_call_log(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
    }
    assert!(matches!(
        store
            .update_call(&missing, &CallUpdate::new(CallStatus::Running, 1))
            .await,
        Err(StoreError::CallNotFound(_))
    ));
    assert!(matches!(
        store.put_call_log(&missing, b"x").await,
        Err(StoreError::CallNotFound(_))
    ));
    let err = store
        .list_calls("zz", CallFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
    assert!(store
        .list_calls("cn", CallFilter::default())
        .await
        .unwrap()
        .is_empty());
}

pub async fn call_transitions(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("ct", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("ct", "/p", 1)).await.unwrap();
    let illegal = |from, to| move |r: Result<Call, StoreError>| matches!(r, Err(StoreError::IllegalTransition { from: f, to: t, .. }) if f == from && t == to);
    assert!(illegal(Queued, Success)(
        store.update_call(&id, &CallUpdate::new(Success, 5)).await
    ));
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 10))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.attempts, c.completed_at),
        (Running, Some(Millis(10)), 1, None)
    );
    assert!(illegal(Running, Cancelled)(
        store
            .update_call(&id, &CallUpdate::new(Cancelled, 11))
            .await
    ));
    // Its worker lost the lease; another one takes it over: a new attempt.
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 15))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.attempts, c.completed_at),
        (Running, Some(Millis(15)), 2, None)
    );
    // A retry puts it back in the queue, then it runs again.
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("node lost"),
                ..CallUpdate::new(Queued, 20)
            },
        )
        .await
        .unwrap();
    assert_eq!((c.status, c.error.as_deref()), (Queued, Some("node lost")));
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 30))
        .await
        .unwrap();
    assert_eq!(
        (c.started_at, c.attempts, c.error),
        (Some(Millis(30)), 3, None)
    );
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("timed out after 30s"),
                ..CallUpdate::new(Timeout, 40)
            },
        )
        .await
        .unwrap();
    assert_eq!(c.completed_at, Some(Millis(40)));
    assert_eq!(store.get_call("ct", &id).await.unwrap(), c, "persisted");
    for next in CallStatus::ALL {
        assert!(illegal(Timeout, next)(
            store.update_call(&id, &CallUpdate::new(next, 50)).await
        ));
    }
    assert_eq!(
        store.get_call("ct", &id).await.unwrap(),
        c,
        "refused transitions write nothing"
    );
    let err = store
        .update_call(&id, &CallUpdate::new(Running, 60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ferrite_model::ErrorKind::Conflict);

    let other = call_id(2);
    store.insert_call(&call("ct", "/p", 2)).await.unwrap();
    let c = store
        .update_call(&other, &CallUpdate::new(Cancelled, 70))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.completed_at, c.attempts),
        (Cancelled, None, Some(Millis(70)), 0)
    );
}

pub async fn call_output_kept(store: &dyn Store) {
    store.create_app(&app("co", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("co", "/p", 1)).await.unwrap();
    assert_eq!(store.call_output("co", &id).await.unwrap(), None);
    store
        .update_call(&id, &CallUpdate::new(CallStatus::Running, 1))
        .await
        .unwrap();
    let bytes = b"out\x00\xffput".as_slice();
    store
        .update_call(
            &id,
            &CallUpdate {
                output: Some(bytes),
                ..CallUpdate::new(CallStatus::Success, 2)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.call_output("co", &id).await.unwrap().as_deref(),
        Some(bytes)
    );
    assert!(matches!(
        store
            .update_call(
                &id,
                &CallUpdate {
                    output: Some(b"other"),
                    ..CallUpdate::new(CallStatus::Error, 3)
                }
            )
            .await,
        Err(StoreError::IllegalTransition { .. })
    ));
    assert_eq!(
        store.call_output("co", &id).await.unwrap().as_deref(),
        Some(bytes),
        "a refused transition keeps the output"
    );
}

pub async fn call_logs(store: &dyn Store) {
    store.create_app(&app("cl", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("cl", "/p", 1)).await.unwrap();
    assert!(store.get_call_log("cl", &id).await.unwrap().is_empty());
    store.put_call_log(&id, b"line 1\n").await.unwrap();
    assert_eq!(store.get_call_log("cl", &id).await.unwrap(), b"line 1\n");
    store.put_call_log(&id, b"line 1\nline 2\n").await.unwrap();
    assert_eq!(
        store.get_call_log("cl", &id).await.unwrap(),
        b"line 1\nline 2\n"
    );
}

/// The log travels with the status: written by the same update, replacing a
/// log put earlier, and not written at all when the move is refused.
pub async fn call_update_writes_log(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("cu", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("cu", "/p", 1)).await.unwrap();
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                log: Some(b"starting\n"),
                ..CallUpdate::new(Running, 10)
            },
        )
        .await
        .unwrap();
    assert_eq!(c.status, Running);
    assert_eq!(store.get_call_log("cu", &id).await.unwrap(), b"starting\n");
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("exit 2"),
                output: Some(b"partial"),
                log: Some(b"starting\nboom\n"),
                ..CallUpdate::new(Error, 20)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.completed_at, c.error.as_deref()),
        (Error, Some(Millis(20)), Some("exit 2"))
    );
    assert_eq!(store.get_call("cu", &id).await.unwrap(), c);
    assert_eq!(
        store.get_call_log("cu", &id).await.unwrap(),
        b"starting\nboom\n",
        "replaced"
    );
    assert_eq!(
        store.call_output("cu", &id).await.unwrap().as_deref(),
        Some(b"partial".as_slice())
    );
    let err = store
        .update_call(
            &id,
            &CallUpdate {
                log: Some(b"other"),
                ..CallUpdate::new(Success, 30)
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IllegalTransition { .. }),
        "{err:?}"
    );
    assert_eq!(
        store.get_call_log("cu", &id).await.unwrap(),
        b"starting\nboom\n",
        "a refused transition keeps the log"
    );
    // Without a log, the one stored is kept.
    let other = call_id(2);
    store.insert_call(&call("cu", "/p", 2)).await.unwrap();
    store.put_call_log(&other, b"queued log").await.unwrap();
    store
        .update_call(&other, &CallUpdate::new(Cancelled, 40))
        .await
        .unwrap();
    assert_eq!(
        store.get_call_log("cu", &other).await.unwrap(),
        b"queued log"
    );
    let err = store
        .update_call(
            &call_id(9),
            &CallUpdate {
                log: Some(b"x"),
                ..CallUpdate::new(Running, 50)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound(_)), "{err:?}");
}

/// A finished sync call `n` of `app`, as the history records it.
fn finished(app: &str, n: u32) -> Call {
    let mut c = call(app, "/sync", n);
    c.kind = RouteType::Sync;
    let at = c.created_at;
    c.advance(CallStatus::Running, at, None).unwrap();
    // Every third call fails (`n % 3`, not `is_multiple_of`: MSRV 1.80).
    let status = match n % 3 {
        0 => CallStatus::Error,
        _ => CallStatus::Success,
    };
    let error = (status == CallStatus::Error).then_some("exit 1");
    c.advance(status, Millis(at.0 + 7), error).unwrap();
    c
}

fn recorded(call: Call, log: Option<&[u8]>) -> RecordedCall {
    RecordedCall {
        call,
        log: log.map(<[u8]>::to_vec),
    }
}

pub async fn record_calls_batch_lands(store: &dyn Store) {
    store.create_app(&app("rb", &[])).await.unwrap();
    let batch: Vec<_> = (1..=500)
        .map(|n| recorded(finished("rb", n), None))
        .collect();
    assert_eq!(store.record_calls(&batch).await.unwrap(), 500);
    let listed = store
        .list_calls(
            "rb",
            CallFilter {
                limit: 1000,
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    let expected: Vec<_> = batch.iter().rev().map(|r| r.call.clone()).collect();
    assert_eq!(listed, expected, "every call, every field, newest first");
    assert_eq!(store.record_calls(&[]).await.unwrap(), 0);
}

pub async fn record_calls_skips_unknown_apps_and_duplicates(store: &dyn Store) {
    store.create_app(&app("rs", &[])).await.unwrap();
    store.create_app(&app("gone", &[])).await.unwrap();
    let existing = call("rs", "/queued", 1);
    store.insert_call(&existing).await.unwrap();
    store.put_call_log(&existing.id, b"kept").await.unwrap();
    // Deleted after its calls ran, before the history was written.
    store.delete_app("gone", true).await.unwrap();
    let batch = [
        recorded(finished("rs", 1), Some(b"not kept")),
        recorded(finished("rs", 2), None),
        recorded(finished("gone", 3), Some(b"log")),
        recorded(finished("rs", 4), Some(b"first")),
        recorded(finished("rs", 4), Some(b"second")),
        recorded(finished("nope", 5), None),
        recorded(finished("rs", 6), None),
    ];
    assert_eq!(store.record_calls(&batch).await.unwrap(), 3);
    let listed = store.list_calls("rs", CallFilter::default()).await.unwrap();
    assert_eq!(
        ids(&listed),
        [call_id(6), call_id(4), call_id(2), call_id(1)]
    );
    assert_eq!(
        store.get_call("rs", &existing.id).await.unwrap(),
        existing,
        "a duplicate id leaves the recorded call alone"
    );
    assert_eq!(
        store.get_call_log("rs", &existing.id).await.unwrap(),
        b"kept"
    );
    assert_eq!(
        store.get_call_log("rs", &call_id(4)).await.unwrap(),
        b"first"
    );
    for (app, n) in [("gone", 3), ("rs", 3), ("nope", 5)] {
        assert!(matches!(
            store.get_call(app, &call_id(n)).await,
            Err(StoreError::CallNotFound(_))
        ));
    }
    store.create_app(&app("gone", &[])).await.unwrap();
    assert!(
        store
            .list_calls("gone", CallFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "a new app of the same name has no history"
    );
}

pub async fn record_calls_keeps_logs(store: &dyn Store) {
    store.create_app(&app("rl", &[])).await.unwrap();
    let batch: Vec<_> = (1..=50)
        .map(|n| {
            let log = format!("call {n}\nstderr \x00\u{fffd}\n").into_bytes();
            RecordedCall {
                call: finished("rl", n),
                log: (n % 5 > 0).then_some(log),
            }
        })
        .chain([recorded(finished("rl", 51), Some(b""))])
        .collect();
    assert_eq!(store.record_calls(&batch).await.unwrap(), 51);
    for r in &batch {
        let log = store.get_call_log("rl", &r.call.id).await.unwrap();
        assert_eq!(log, r.log.clone().unwrap_or_default(), "{}", r.call.id);
    }
}

pub async fn calls_list_and_page(store: &dyn Store) {
    store.create_app(&app("lc", &[])).await.unwrap();
    store.create_app(&app("lc2", &[])).await.unwrap();
    // Inserted out of order: listing follows the ids, not insertion.
    for n in (1..=25).rev() {
        let path = if n % 2 == 0 { "/even" } else { "/odd" };
        store.insert_call(&call("lc", path, n)).await.unwrap();
    }
    store.insert_call(&call("lc2", "/even", 100)).await.unwrap();
    for n in [3, 4, 5] {
        store
            .update_call(&call_id(n), &CallUpdate::new(CallStatus::Running, 1))
            .await
            .unwrap();
    }

    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_calls(
                "lc",
                CallFilter {
                    cursor: cursor.clone(),
                    limit: 10,
                    ..CallFilter::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|c| c.id.clone());
        pages.push(ids(&page));
    }
    let sizes: Vec<_> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let all: Vec<_> = pages.concat();
    let expected: Vec<_> = (1..=25).rev().map(call_id).collect();
    assert_eq!(all, expected, "newest first, no gaps or repeats");

    let even = store
        .list_calls(
            "lc",
            CallFilter {
                path: Some("/even".into()),
                limit: 1000,
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&even),
        (1..=12).rev().map(|n| call_id(n * 2)).collect::<Vec<_>>()
    );
    let running = store
        .list_calls(
            "lc",
            CallFilter {
                status: Some(CallStatus::Running),
                ..CallFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&running), [call_id(5), call_id(4), call_id(3)]);
    let both = store
        .list_calls(
            "lc",
            CallFilter {
                path: Some("/odd".into()),
                status: Some(CallStatus::Running),
                cursor: Some(call_id(5)),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&both), [call_id(3)]);
    for limit in [0, 1001] {
        let err = store
            .list_calls(
                "lc",
                CallFilter {
                    limit,
                    ..CallFilter::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    let other = store
        .list_calls("lc2", CallFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(&other), [call_id(100)]);
}

pub async fn calls_purge(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("pg", &[])).await.unwrap();
    // 1: success at 100; 2: cancelled at 200; 3: error at 300;
    // 4: running since 50; 5: queued.
    for n in 1..=5 {
        store.insert_call(&call("pg", "/p", n)).await.unwrap();
        store.put_call_log(&call_id(n), b"log").await.unwrap();
    }
    let set = |n: u32, next, at| async move {
        store
            .update_call(&call_id(n), &CallUpdate::new(next, at))
            .await
            .unwrap()
    };
    set(1, Running, 10).await;
    set(1, Success, 100).await;
    set(2, Cancelled, 200).await;
    set(3, Running, 10).await;
    set(3, Error, 300).await;
    set(4, Running, 50).await;

    assert_eq!(store.purge_calls(100).await.unwrap(), 0, "strictly before");
    assert_eq!(store.purge_calls(250).await.unwrap(), 2);
    let left = store.list_calls("pg", CallFilter::default()).await.unwrap();
    assert_eq!(ids(&left), [call_id(5), call_id(4), call_id(3)]);
    for n in [1, 2] {
        assert!(matches!(
            store.get_call_log("pg", &call_id(n)).await,
            Err(StoreError::CallNotFound(_))
        ));
    }
    assert_eq!(store.get_call_log("pg", &call_id(3)).await.unwrap(), b"log");
    assert_eq!(store.purge_calls(i64::MAX).await.unwrap(), 1);
    let left = store.list_calls("pg", CallFilter::default()).await.unwrap();
    assert_eq!(
        ids(&left),
        [call_id(5), call_id(4)],
        "unfinished calls stay"
    );
}

pub async fn app_delete_removes_calls(store: &dyn Store) {
    store
        .create_route(&route("cd", r#"{"path":"/a","image":"img"}"#))
        .await
        .unwrap();
    store.create_app(&app("keep", &[])).await.unwrap();
    for (app, n) in [("cd", 1), ("cd", 2), ("keep", 3)] {
        store.insert_call(&call(app, "/a", n)).await.unwrap();
        store.put_call_log(&call_id(n), b"log").await.unwrap();
    }
    store.delete_app("cd", true).await.unwrap();
    for n in [1, 2] {
        assert!(matches!(
            store.put_call_log(&call_id(n), b"x").await,
            Err(StoreError::CallNotFound(_))
        ));
    }
    // A new app of the same name starts with no history.
    store.create_app(&app("cd", &[])).await.unwrap();
    assert!(store
        .list_calls("cd", CallFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.get_call_log("cd", &call_id(1)).await,
        Err(StoreError::CallNotFound(_))
    ));
    assert_eq!(
        store.get_call_log("keep", &call_id(3)).await.unwrap(),
        b"log"
    );
    // Purging after the delete finds no orphaned logs or calls.
    assert_eq!(store.purge_calls(i64::MAX).await.unwrap(), 0);
}

pub async fn queued_calls_counted_per_app(store: &dyn Store) {
    store.create_app(&app("qa", &[])).await.unwrap();
    store.create_app(&app("qb", &[])).await.unwrap();
    for n in 1..=4 {
        store.insert_call(&call("qa", "/p", n)).await.unwrap();
    }
    store.insert_call(&call("qb", "/p", 10)).await.unwrap();
    let mut ended = call("qa", "/p", 20);
    ended.kind = RouteType::Sync;
    ended.advance(CallStatus::Running, Millis(5), None).unwrap();
    ended.advance(CallStatus::Success, Millis(6), None).unwrap();
    store.insert_call(&ended).await.unwrap();
    assert_eq!(store.count_queued_calls("qa").await.unwrap(), 4);
    assert_eq!(store.count_queued_calls("qb").await.unwrap(), 1);
    assert_eq!(store.count_queued_calls("none").await.unwrap(), 0);

    // Running is not queued; back in the queue for a retry, it is again.
    store
        .update_call(&call_id(1), &CallUpdate::new(CallStatus::Running, 10))
        .await
        .unwrap();
    store
        .update_call(&call_id(2), &CallUpdate::new(CallStatus::Cancelled, 10))
        .await
        .unwrap();
    assert_eq!(store.count_queued_calls("qa").await.unwrap(), 2);
    store
        .update_call(&call_id(1), &CallUpdate::new(CallStatus::Queued, 11))
        .await
        .unwrap();
    assert_eq!(store.count_queued_calls("qa").await.unwrap(), 3);
}

pub async fn ping(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// Expand to one `#[tokio::test]` per conformance case. `$make` is an async
/// expression returning `(Arc<dyn Store>, guard)`; the guard (a temp dir, a
/// database handle) lives until the case ends.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@by_ref $make;
            apps_round_trip, duplicate_app_conflicts, app_update_merges_config,
            app_limits_round_trip, queued_calls_counted_per_app,
            app_delete_needs_cascade, route_creates_its_app, route_keeps_every_field,
            route_update_applies_patch, route_max_retries, route_service_round_trip,
            route_service_update, routes_list_with_service, route_confinement_round_trip_and_update,
            routes_list_by_path, route_delete, ping,
            call_round_trip, call_not_found, call_transitions, call_output_kept, call_logs,
            call_update_writes_log, record_calls_batch_lands,
            record_calls_skips_unknown_apps_and_duplicates, record_calls_keeps_logs,
            calls_list_and_page, calls_purge, app_delete_removes_calls);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_patches_all_land() {
            let (store, _guard) = $make.await;
            $crate::conformance::concurrent_patches_all_land(store).await;
        }
    };
    (@by_ref $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, _guard) = $make.await;
                $crate::conformance::$case(&*store).await;
            }
        )*
    };
}
