//! Conformance cases for API keys: kept with their hash, listed, bounded,
//! revoked, and gone with their app.

use ferrite_model::{Access, ApiKey, Millis};
use ferrite_store::{KeyBounds, Store, StoreError};

use super::app;

const ROOMY: KeyBounds = KeyBounds {
    per_app: 10,
    total: 100,
};

fn key(id: &str, app: &str, access: Access, created: i64) -> ApiKey {
    ApiKey {
        id: id.to_string(),
        app: app.to_string(),
        access,
        name: Some(format!("{id} of {app}")),
        created_at: Millis(created),
        expires_at: None,
    }
}

pub async fn keys_round_trip_and_revoke(store: &dyn Store) {
    store.create_app(&app("ka", &[])).await.unwrap();
    store.create_app(&app("kb", &[])).await.unwrap();
    let mut read = key("k1", "kb", Access::Read, 10);
    read.expires_at = Some(Millis(5_000));
    store.create_key(&read, &[1; 32], ROOMY).await.unwrap();
    let manage = key("k2", "ka", Access::Manage, 20);
    store.create_key(&manage, &[2; 32], ROOMY).await.unwrap();

    let stored = store.get_key("k1").await.unwrap();
    assert_eq!(
        (stored.key, stored.secret_hash),
        (read.clone(), vec![1; 32])
    );
    assert_eq!(store.list_keys().await.unwrap(), [manage, read], "by app");

    store.delete_key("k1").await.unwrap();
    assert!(matches!(
        store.get_key("k1").await,
        Err(StoreError::KeyNotFound(_))
    ));
    assert!(matches!(
        store.delete_key("k1").await,
        Err(StoreError::KeyNotFound(_))
    ));
    let err = store
        .create_key(&key("k3", "nope", Access::Read, 1), &[3; 32], ROOMY)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
}

pub async fn keys_are_bounded_and_go_with_their_app(store: &dyn Store) {
    store.create_app(&app("kc", &[])).await.unwrap();
    store.create_app(&app("kd", &[])).await.unwrap();
    let bounds = KeyBounds {
        per_app: 2,
        total: 3,
    };
    for n in 0..2 {
        let k = key(&format!("c{n}"), "kc", Access::Call, n);
        store.create_key(&k, &[0; 32], bounds).await.unwrap();
    }
    let over_app = store
        .create_key(&key("c2", "kc", Access::Call, 3), &[0; 32], bounds)
        .await
        .unwrap_err();
    assert!(
        matches!(over_app, StoreError::TooManyKeys { max: 2, .. }),
        "{over_app:?}"
    );
    store
        .create_key(&key("d0", "kd", Access::Read, 4), &[0; 32], bounds)
        .await
        .unwrap();
    let over_all = store
        .create_key(&key("d1", "kd", Access::Read, 5), &[0; 32], bounds)
        .await
        .unwrap_err();
    assert!(
        matches!(over_all, StoreError::TooManyKeys { max: 3, .. }),
        "{over_all:?}"
    );
    store.delete_app("kc", true).await.unwrap();
    let left: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(left, ["d0"], "a deleted app's keys go with it");
}
