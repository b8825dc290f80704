//! The conformance suite against PostgreSQL, on a real server from Debian's
//! packages, and what only a shared database has to get right: several
//! nodes migrating one schema at once, and writes racing deletes.
//!
//! One throwaway cluster per run of this test binary, and a database of its
//! own for each test ([`ferrite_testkit::postgres`]).

mod conformance;

use std::path::Path;
use std::sync::Arc;

use ferrite_model::{App, Call, CallStatus, Millis, Route, RouteInput, RouteType};
use ferrite_store::postgres::PostgresStore;
use ferrite_store::{RecordedCall, Store, StoreError, DEFAULT_TIMEOUT};
use ferrite_testkit::postgres::{base_url, fresh_database, psql};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

/// How many nodes start at once in the migration tests.
const NODES: usize = 4;

async fn make() -> (Arc<dyn Store>, ()) {
    let url = fresh_database();
    let store = PostgresStore::open(&url, DEFAULT_TIMEOUT)
        .await
        .expect("open postgres store");
    (Arc::new(store), ())
}

conformance::store_conformance_tests!(make());

fn app(name: &str) -> App {
    App {
        name: name.into(),
        config: None,
        limits: None,
    }
}

fn route(app: &str, path: &str) -> Route {
    let input: RouteInput = serde_json::from_str(&format!(
        r#"{{"path":"{path}","image":"img","max_retries":2}}"#
    ))
    .expect("route JSON");
    Route::create(app, input).expect("valid route")
}

fn finished_call(app: &str, n: i64) -> RecordedCall {
    let mut call = Call::new(
        format!("01900000-0000-7000-8000-{n:012}"),
        app,
        "/hello",
        RouteType::Sync,
        Millis(n),
    );
    call.advance(CallStatus::Running, Millis(n), None)
        .expect("start");
    call.advance(CallStatus::Success, Millis(n + 3), None)
        .expect("finish");
    RecordedCall {
        call,
        log: Some(vec![b'x'; 200]),
    }
}

/// Open `NODES` stores on `url` at once, as nodes starting together do.
async fn open_together(url: &str) {
    let opens: Vec<_> = (0..NODES)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(
                async move { PostgresStore::open(&url, DEFAULT_TIMEOUT).await.map(|_| ()) },
            )
        })
        .collect();
    for open in opens {
        open.await
            .expect("task")
            .expect("every node opens the store");
    }
}

/// The versions recorded as applied, each with how many times.
async fn applied_versions(url: &str) -> Vec<(i64, i64)> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query_as(
        "SELECT version, COUNT(*) FROM _sqlx_migrations WHERE success GROUP BY version ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read _sqlx_migrations")
}

/// A migrator over copies of some of the store's own migration files (the
/// same checksums), the way an older Ferrite left the schema.
async fn migrator_of(files: &[&str]) -> (Migrator, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for file in files {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy migration");
    }
    let migrator = Migrator::new(dir.path()).await.expect("read migrations");
    (migrator, dir)
}

fn all_versions() -> Vec<(i64, i64)> {
    let mut versions: Vec<i64> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
            .expect("migrations dir")
            .map(|e| {
                let name = e.expect("entry").file_name().into_string().expect("utf-8");
                name.split('_').next().unwrap().parse().expect("a version")
            })
            .collect();
    versions.sort();
    versions.into_iter().map(|v| (v, 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_on_a_fresh_database_migrate_it_once() {
    let url = fresh_database();
    open_together(&url).await;
    assert_eq!(applied_versions(&url).await, all_versions());
    let store = PostgresStore::open(&url, DEFAULT_TIMEOUT)
        .await
        .expect("reopen");
    store
        .create_route(&route("fresh", "/a"))
        .await
        .expect("route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_upgrade_an_older_schema_once() {
    let url = fresh_database();
    let (old, _dir) = migrator_of(&["0001_apps_routes.sql", "0002_calls.sql"]).await;
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    old.run(&mut conn).await.expect("the older schema");
    // A route as the older schema held it, without max_retries.
    sqlx::query("INSERT INTO apps (name, created_at, updated_at) VALUES ('old', 1, 1)")
        .execute(&mut conn)
        .await
        .expect("old app");
    sqlx::query(
        "INSERT INTO routes (app_name, path, image, memory, type, format, max_concurrency, \
         timeout, idle_timeout, created_at, updated_at) \
         VALUES ('old', '/r', 'img', 128, 'sync', 'default', 1, 30, 30, 1, 1)",
    )
    .execute(&mut conn)
    .await
    .expect("old route");
    conn.close().await.expect("close");

    open_together(&url).await;
    assert_eq!(applied_versions(&url).await, all_versions());
    let store = PostgresStore::open(&url, DEFAULT_TIMEOUT)
        .await
        .expect("reopen");
    let kept = store.get_route("old", "/r").await.expect("the old route");
    assert_eq!((kept.image.as_str(), kept.max_retries), ("img", 0));
    assert_eq!(
        kept.service, None,
        "routes of an older schema run in containers"
    );
    store
        .create_route(&route("old", "/new"))
        .await
        .expect("new route");
    assert_eq!(
        store
            .get_route("old", "/new")
            .await
            .expect("get")
            .max_retries,
        2
    );
}

/// What makes the two tests above safe rather than lucky: sqlx's migrator
/// holds an advisory lock while it checks and applies. With a slow migration
/// that fails when run twice, every concurrent run succeeds and it runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrators_take_turns() {
    let url = fresh_database();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("0001_slow.sql"),
        "CREATE TABLE ran (n INTEGER PRIMARY KEY); SELECT pg_sleep(0.5); INSERT INTO ran VALUES (1);",
    )
    .expect("write migration");
    let runs: Vec<_> = (0..NODES)
        .map(|_| {
            let (url, path) = (url.clone(), dir.path().to_path_buf());
            tokio::spawn(async move {
                let migrator = Migrator::new(path.as_path()).await?;
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await?;
                migrator.run(&pool).await
            })
        })
        .collect();
    for run in runs {
        run.await.expect("task").expect("every migrator succeeds");
    }
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ran")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[tokio::test]
async fn open_takes_both_url_schemes() {
    let url = fresh_database();
    let rest = url.strip_prefix("postgres://ferrite@").expect("test URL");
    for url in [
        format!("postgres://ferrite:unused@{rest}?sslmode=disable"),
        format!("postgresql://ferrite@{rest}"),
    ] {
        let store = ferrite_store::open(&url, DEFAULT_TIMEOUT)
            .await
            .expect("open");
        store.ping().await.expect("ping");
    }
}

/// (A server that refuses connections is waited for, as one starting up.)
#[tokio::test]
async fn a_missing_database_is_a_config_error_without_the_password() {
    let rest = base_url()
        .strip_prefix("postgres://ferrite@")
        .expect("test URL");
    let err = ferrite_store::open(
        &format!("postgres://ferrite:hunter2@{rest}/missing"),
        DEFAULT_TIMEOUT,
    )
    .await
    .err()
    .expect("refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("cannot connect to PostgreSQL"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

/// Keys sort byte by byte, as in SQLite, even in a database whose locale
/// collates otherwise (ICU's en-US puts `a` before `B` and `_` before `-`).
#[tokio::test]
async fn listings_sort_bytewise_whatever_the_locale() {
    let url = fresh_database();
    let (base, name) = url.rsplit_once('/').expect("url");
    let icu_name = format!("{name}_icu");
    psql(&format!(
        "CREATE DATABASE {icu_name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    ));
    let store = PostgresStore::open(&format!("{base}/{icu_name}"), DEFAULT_TIMEOUT)
        .await
        .expect("open");
    let names = ["b", "B", "a", "_x", "-y", "a-b", "ab", "a_b", "1"];
    for name in names {
        store.create_app(&app(name)).await.expect("app");
        store
            .create_route(&route("paths", &format!("/{name}")))
            .await
            .expect("route");
    }
    let mut sorted = names.to_vec();
    sorted.sort();
    let apps: Vec<String> = store
        .list_apps()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .filter(|n| n != "paths")
        .collect();
    assert_eq!(apps, sorted);
    let paths: Vec<String> = store
        .list_routes("paths")
        .await
        .expect("routes")
        .into_iter()
        .map(|r| r.path)
        .collect();
    let expected: Vec<String> = sorted.iter().map(|n| format!("/{n}")).collect();
    assert_eq!(paths, expected);
}

/// A route created while its app is being deleted lands either way round:
/// after the delete (the app is created again) or before it (and the
/// cascading delete takes it); it never fails on the foreign key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routes_created_while_their_app_is_deleted() {
    let (store, ()) = make().await;
    for n in 0..40 {
        store.create_app(&app("racy")).await.ok();
        let path = format!("/r{n}");
        let create = {
            let store = store.clone();
            let path = path.clone();
            tokio::spawn(async move { store.create_route(&route("racy", &path)).await })
        };
        let delete = {
            let store = store.clone();
            tokio::spawn(async move { store.delete_app("racy", true).await })
        };
        create.await.expect("task").expect("the route is created");
        match delete.await.expect("task") {
            Ok(()) | Err(StoreError::AppNotFound(_)) => {}
            Err(e) => panic!("delete: {e:?}"),
        }
    }
}

/// A batch of history recorded while its app is being deleted never fails:
/// its calls land before the delete (which takes them) or are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_recorded_while_its_app_is_deleted() {
    let (store, ()) = make().await;
    for round in 0..20 {
        store.create_app(&app("brief")).await.expect("app");
        let batch: Vec<_> = (0..200)
            .map(|n| finished_call("brief", round * 1000 + n))
            .collect();
        let record = {
            let store = store.clone();
            tokio::spawn(async move { store.record_calls(&batch).await })
        };
        let delete = {
            let store = store.clone();
            tokio::spawn(async move { store.delete_app("brief", true).await })
        };
        let inserted = record.await.expect("task").expect("the batch is recorded");
        assert!(inserted == 0 || inserted == 200, "{inserted}");
        delete.await.expect("task").expect("the app is deleted");
        assert_eq!(store.purge_calls(i64::MAX).await.expect("purge"), 0);
    }
}

/// A route made before versions (the schema of 0009) is version 1 of itself
/// once migration 0010 runs: its definition as it was.
#[tokio::test]
async fn routes_made_before_versions_become_their_version_1() {
    let url = fresh_database();
    let files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .filter(|name| name.as_str() < "0010")
            .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let (old, _dir) = migrator_of(&files).await;
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    old.run(&mut conn)
        .await
        .expect("the schema before versions");
    for statement in OLD_ROUTE {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect("an old route");
    }
    let store = PostgresStore::open(&url, DEFAULT_TIMEOUT)
        .await
        .expect("migrate");
    let route = store.get_route("old", "/a/b").await.expect("the route");
    assert_eq!(route.version, 1);
    assert_eq!(route.traffic, None);
    let first = store
        .get_route_version("old", "/a/b", 1)
        .await
        .expect("version 1");
    assert_eq!(first.definition, route.definition());
    assert_eq!(first.definition.config.expect("config")["K"], "v");
}

/// An app and a route as Ferrite wrote them before versions.
const OLD_ROUTE: [&str; 2] = [
    "INSERT INTO apps (name, config, created_at, updated_at) VALUES ('old', NULL, 1, 1)",
    "INSERT INTO routes (app_name, path, image, memory, type, format, max_concurrency, timeout, \
     idle_timeout, headers, config, jwt_key, created_at, updated_at, max_retries, service, \
     confinement) VALUES ('old', '/a/b', 'img:1', 256, 'async', 'http', 2, 60, 30, \
     '{\"X-A\":[\"1\"]}', '{\"K\":\"v\"}', 'secret', 1, 5, 3, NULL, NULL)",
];
