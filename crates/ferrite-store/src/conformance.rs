//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each case is a plain async function over `&dyn Store`; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns
//! them into one `#[tokio::test]` each for a given backend, so SQLite and
//! PostgreSQL run the very same assertions. Cases assume an empty store.

use std::sync::Arc;

use ferrite_model::{App, AppInput, Route, RouteInput};

use crate::{Store, StoreError};

fn app(name: &str, config: &[(&str, &str)]) -> App {
    App {
        name: name.to_string(),
        config: (!config.is_empty()).then(|| {
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
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
            "headers":{"X-One":["1","2"]},"config":{"K":"v"},"jwt_key":"secret"}"#,
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
            app_delete_needs_cascade, route_creates_its_app, route_keeps_every_field,
            route_update_applies_patch, routes_list_by_path, route_delete, ping);
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
