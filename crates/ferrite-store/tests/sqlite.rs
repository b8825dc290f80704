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

/// A route made before versions (the schema of 0009) is version 1 of itself
/// once migration 0010 runs: its definition as it was.
#[tokio::test]
async fn routes_made_before_versions_become_their_version_1() {
    use std::path::Path;

    use sqlx::{Connection, SqliteConnection};

    let dir = tempfile::tempdir().expect("temp dir");
    let old_dir = tempfile::tempdir().expect("temp dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).expect("migrations dir") {
        let name = entry.expect("entry").file_name();
        if name.to_string_lossy().as_ref() < "0010" {
            std::fs::copy(source.join(&name), old_dir.path().join(&name)).expect("copy");
        }
    }
    let file = dir.path().join("ferrite.db");
    let url = format!("sqlite://{}", file.display());
    {
        let mut conn = SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("connect");
        let old = sqlx::migrate::Migrator::new(old_dir.path())
            .await
            .expect("migrations");
        old.run(&mut conn)
            .await
            .expect("the schema before versions");
        for statement in [
            "INSERT INTO apps (name, config, created_at, updated_at) VALUES ('old', NULL, 1, 1)",
            "INSERT INTO routes (app_name, path, image, memory, type, format, max_concurrency, \
             timeout, idle_timeout, headers, config, jwt_key, created_at, updated_at, max_retries, \
             service, confinement) VALUES ('old', '/a/b', 'img:1', 256, 'async', 'http', 2, 60, \
             30, '{\"X-A\":[\"1\"]}', '{\"K\":\"v\"}', 'secret', 1, 5, 3, NULL, NULL)",
        ] {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect("an old route");
        }
    }
    let store = SqliteStore::open(&url).await.expect("migrate");
    let route = store.get_route("old", "/a/b").await.expect("the route");
    assert_eq!(route.version, 1);
    let first = store
        .get_route_version("old", "/a/b", 1)
        .await
        .expect("version 1");
    assert_eq!(first.definition, route.definition());
    assert_eq!(first.definition.config.expect("config")["K"], "v");
}
