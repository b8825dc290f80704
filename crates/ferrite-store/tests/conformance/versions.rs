//! Conformance cases for route versions: made with the route and with each
//! change of what it runs (in the same write), none for a change of
//! nothing, trimmed to the newest, gone with the route; and the traffic
//! that names them.

use ferrite_model::{Call, CallStatus, ErrorKind, Millis, RouteType};
use ferrite_store::{CallUpdate, Store, StoreError, MAX_VERSIONS_PER_ROUTE};

use super::{patch, route};

fn numbers(versions: &[ferrite_model::RouteVersion]) -> Vec<u32> {
    versions.iter().map(|v| v.version).collect()
}

pub async fn versions_follow_changes(store: &dyn Store) {
    let r = route(
        "ver",
        r#"{"path":"/a/b","image":"img:1","config":{"K":"1"}}"#,
    );
    store.create_route(&r).await.unwrap();
    let first = store.get_route_version("ver", "/a/b", 1).await.unwrap();
    assert_eq!(first.definition, r.definition());
    assert_eq!(store.get_route("ver", "/a/b").await.unwrap().version, 1);

    // What runs changes: version 2, the route says so.
    let updated = store
        .update_route("ver", "/a/b", patch(r#"{"image":"img:2","memory":256}"#))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(store.get_route("ver", "/a/b").await.unwrap(), updated);
    // Nothing changes, or only the key: no version.
    for nothing in [r#"{"image":"img:2"}"#, r#"{}"#, r#"{"jwt_key":"k"}"#] {
        let same = store
            .update_route("ver", "/a/b", patch(nothing))
            .await
            .unwrap();
        assert_eq!(same.version, 2, "{nothing}");
    }
    let listed = store.list_route_versions("ver", "/a/b").await.unwrap();
    assert_eq!(numbers(&listed), [2, 1], "newest first");
    assert_eq!(listed[0].definition.image, "img:2");
    assert_eq!(listed[1].definition, first.definition, "immutable");

    let err = store.get_route_version("ver", "/a/b", 3).await.unwrap_err();
    assert!(
        matches!(err, StoreError::VersionNotFound { version: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(matches!(
        store.list_route_versions("ver", "/nope").await,
        Err(StoreError::RouteNotFound { .. })
    ));

    store.delete_route("ver", "/a/b").await.unwrap();
    store.create_route(&r).await.unwrap();
    assert_eq!(
        numbers(&store.list_route_versions("ver", "/a/b").await.unwrap()),
        [1],
        "a route made again starts over"
    );
}

pub async fn traffic_names_kept_versions(store: &dyn Store) {
    store
        .create_route(&route("tr", r#"{"path":"/t","image":"img:1"}"#))
        .await
        .unwrap();
    store
        .update_route("tr", "/t", patch(r#"{"image":"img:2"}"#))
        .await
        .unwrap();
    let split = store
        .update_route(
            "tr",
            "/t",
            patch(r#"{"traffic":[{"version":1,"weight":90},{"version":2,"weight":10}]}"#),
        )
        .await
        .unwrap();
    assert_eq!(split.version, 2, "traffic alone is no version");
    assert_eq!(split.traffic_versions(), [1, 2]);
    assert_eq!(store.get_route("tr", "/t").await.unwrap(), split);

    // A change and traffic naming the version it makes, in one PATCH.
    let both = store
        .update_route(
            "tr",
            "/t",
            patch(r#"{"image":"img:3","traffic":[{"version":2,"weight":50},{"version":3,"weight":50}]}"#),
        )
        .await
        .unwrap();
    assert_eq!(both.version, 3);

    for (body, needle) in [
        (
            r#"{"traffic":[{"version":9,"weight":100}]}"#,
            "newest version is 3",
        ),
        (
            r#"{"traffic":[{"version":1,"weight":60},{"version":2,"weight":60}]}"#,
            "add up to 100",
        ),
    ] {
        let err = store
            .update_route("tr", "/t", patch(body))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{body}");
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
    assert_eq!(
        store.get_route("tr", "/t").await.unwrap(),
        both,
        "nothing written"
    );

    let back = store
        .update_route("tr", "/t", patch(r#"{"traffic":null}"#))
        .await
        .unwrap();
    assert_eq!(back.traffic, None);
}

pub async fn versions_are_trimmed_but_serving_ones_kept(store: &dyn Store) {
    store
        .create_route(&route("trim", r#"{"path":"/t","image":"img","timeout":1}"#))
        .await
        .unwrap();
    store
        .update_route(
            "trim",
            "/t",
            patch(r#"{"traffic":[{"version":1,"weight":100}]}"#),
        )
        .await
        .unwrap();
    let last = MAX_VERSIONS_PER_ROUTE + 5;
    for timeout in 2..=last {
        store
            .update_route("trim", "/t", patch(&format!(r#"{{"timeout":{timeout}}}"#)))
            .await
            .unwrap();
    }
    let kept = numbers(&store.list_route_versions("trim", "/t").await.unwrap());
    let mut expected: Vec<u32> = (last - MAX_VERSIONS_PER_ROUTE + 1..=last).rev().collect();
    expected.push(1);
    assert_eq!(kept, expected, "the newest, and version 1 that serves");
    let err = store.get_route_version("trim", "/t", 2).await.unwrap_err();
    assert!(matches!(err, StoreError::VersionNotFound { .. }), "{err:?}");
    let err = store
        .update_route(
            "trim",
            "/t",
            patch(r#"{"traffic":[{"version":2,"weight":100}]}"#),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not have"), "{err}");
}

pub async fn service_versions_cannot_split(store: &dyn Store) {
    store
        .create_route(&route(
            "svc",
            r#"{"path":"/s","image":"img","service":{"min_replicas":1}}"#,
        ))
        .await
        .unwrap();
    store
        .update_route("svc", "/s", patch(r#"{"service":null}"#))
        .await
        .unwrap();
    let err = store
        .update_route(
            "svc",
            "/s",
            patch(r#"{"traffic":[{"version":1,"weight":50},{"version":2,"weight":50}]}"#),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert!(err.to_string().contains("runs as a service"), "{err}");
}

pub async fn calls_keep_their_version(store: &dyn Store) {
    store
        .create_route(&route("cv", r#"{"path":"/c","image":"img"}"#))
        .await
        .unwrap();
    let mut sync = Call::new(
        "01900000-0000-7000-8000-000000000001",
        "cv",
        "/c",
        RouteType::Sync,
        Millis(1),
    );
    sync.version = Some(1);
    store.insert_call(&sync).await.unwrap();
    assert_eq!(
        store.get_call("cv", &sync.id).await.unwrap().version,
        Some(1)
    );

    let queued = Call::new(
        "01900000-0000-7000-8000-000000000002",
        "cv",
        "/c",
        RouteType::Async,
        Millis(2),
    );
    store.insert_call(&queued).await.unwrap();
    assert_eq!(
        store.get_call("cv", &queued.id).await.unwrap().version,
        None
    );
    let running = store
        .update_call(
            &queued.id,
            &CallUpdate {
                version: Some(7),
                ..CallUpdate::new(CallStatus::Running, 3)
            },
        )
        .await
        .unwrap();
    assert_eq!(running.version, Some(7));
    let ended = store
        .update_call(&queued.id, &CallUpdate::new(CallStatus::Success, 4))
        .await
        .unwrap();
    assert_eq!(ended.version, Some(7), "kept when not given");
    assert_eq!(
        store.get_call("cv", &queued.id).await.unwrap().version,
        Some(7)
    );
}
