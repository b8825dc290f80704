//! Conformance cases for routes: every field and section kept, patched, listed, deleted, and concurrent patches.

use std::sync::Arc;

use ferrite_model::RouteInput;
use ferrite_store::{Store, StoreError};

use super::{app, patch, route};

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
    assert!(matches!(
        store.get_route("nope", "/a/b/c").await,
        Err(StoreError::AppNotFound(_))
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
