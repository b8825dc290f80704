//! Conformance cases for many calls: recorded in batches, listed by page, purged, counted, and removed with their app.

use ferrite_model::{Call, CallStatus, Millis, RouteType};
use ferrite_store::{CallFilter, CallUpdate, RecordedCall, Store, StoreError};

use super::{app, call, call_id, ids, route};

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

/// The history of sync calls arrives in batches of up to 1,000: one batch
/// must be one quick transaction of a few statements, not 1,000 commits
/// (each an fsync under SQLite's `synchronous = FULL`) or 1,000 round trips.
/// The bound is loose (debug build, shared CI disk); a per-call commit
/// takes several seconds for 1,000 calls.
pub async fn a_batch_of_1000_calls_is_quick(store: &dyn Store) {
    store.create_app(&app("fast", &[])).await.unwrap();
    let batch: Vec<_> = (0..1000)
        .map(|n| recorded(finished("fast", n), Some(&[b'x'; 200])))
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(store.record_calls(&batch).await.unwrap(), 1000);
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
        .unwrap();
    assert_eq!(listed.len(), 1000);
    let log = store
        .get_call_log("fast", &batch[999].call.id)
        .await
        .unwrap();
    assert_eq!(log.len(), 200);
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
                dead_letters: false,
                created_from_ms: None,
                created_to_ms: None,
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

pub async fn calls_listed_by_creation_time(store: &dyn Store) {
    store.create_app(&app("lt", &[])).await.unwrap();
    for n in 1..=20 {
        store.insert_call(&call("lt", "/p", n)).await.unwrap();
    }
    // call(_, _, n) is created at 1000 + n ms; both bounds are inclusive.
    let between = |from, to| CallFilter {
        created_from_ms: from,
        created_to_ms: to,
        ..CallFilter::default()
    };
    let listed = store
        .list_calls("lt", between(Some(1010), Some(1012)))
        .await
        .unwrap();
    assert_eq!(ids(&listed), [call_id(12), call_id(11), call_id(10)]);
    let listed = store
        .list_calls("lt", between(Some(1019), None))
        .await
        .unwrap();
    assert_eq!(ids(&listed), [call_id(20), call_id(19)]);
    let listed = store
        .list_calls("lt", between(None, Some(1001)))
        .await
        .unwrap();
    assert_eq!(ids(&listed), [call_id(1)]);
    let listed = store
        .list_calls("lt", between(Some(1015), Some(1014)))
        .await
        .unwrap();
    assert!(listed.is_empty());
}
