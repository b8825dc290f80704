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

/// The history of sync calls arrives in batches of up to 1,000: one batch
/// must be one quick transaction, not 1,000 commits (each an fsync under
/// `synchronous = FULL`). The bound is loose (debug build, shared CI disk);
/// a per-call commit takes several seconds for 1,000 calls.
#[tokio::test]
async fn a_batch_of_1000_calls_is_quick() {
    use ferrite_model::{Call, CallStatus, Millis, RouteType};
    use ferrite_store::{CallFilter, RecordedCall};

    let (store, _dir) = make().await;
    store
        .create_app(&ferrite_model::App {
            name: "fast".into(),
            config: None,
            limits: None,
        })
        .await
        .expect("create app");
    let batch: Vec<_> = (0..1000_i64)
        .map(|n| {
            let mut call = Call::new(
                format!("01900000-0000-7000-8000-{n:012}"),
                "fast",
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
        })
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(store.record_calls(&batch).await.expect("record"), 1000);
    let took = started.elapsed();
    eprintln!("record_calls: 1000 calls in {took:?}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    let listed = store
        .list_calls(
            "fast",
            CallFilter {
                limit: 1000,
                ..CallFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.len(), 1000);
}
