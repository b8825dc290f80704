//! Conformance cases for apps: create, read, list, patch, limits, delete.

use ferrite_model::{App, AppInput, AppLimits};
use ferrite_store::{Store, StoreError};

use super::{app, patch, route};

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
    // The route went with its app: what is missing now is the app.
    assert!(matches!(
        store.get_route("del", "/a").await,
        Err(StoreError::AppNotFound(_))
    ));
    assert!(matches!(
        store.delete_app("del", true).await,
        Err(StoreError::AppNotFound(_))
    ));
    store.create_app(&app("empty", &[])).await.unwrap();
    store.delete_app("empty", false).await.unwrap();
}
