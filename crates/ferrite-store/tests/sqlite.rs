//! The conformance suite against the embedded SQLite store, on a temp file.

mod conformance;

use std::sync::Arc;

use ferrite_store::{sqlite::SqliteStore, Store};

async fn make() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("data/ferrite.db").display());
    let store = SqliteStore::open(&url).await.expect("open sqlite store");
    (Arc::new(store), dir)
}

conformance::store_conformance_tests!(make());

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ferrite.db").display());
    {
        let store = SqliteStore::open(&url).await.expect("open");
        let app = ferrite_model::App {
            name: "kept".into(),
            config: None,
            limits: None,
        };
        store.create_app(&app).await.expect("create");
    }
    let store = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(store.get_app("kept").await.expect("get").name, "kept");
}

#[tokio::test]
async fn unsupported_url_is_a_config_error() {
    let err = ferrite_store::open("mysql://x", ferrite_store::DEFAULT_TIMEOUT)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("unsupported database"), "{err}");
}
