//! Conformance cases for one call: its record, lifecycle moves, output and log.

use ferrite_model::{Call, CallStatus, Millis, RouteType};
use ferrite_store::{CallFilter, CallUpdate, DeadLetter, Store, StoreError};

use super::{app, call, call_id, ids};

pub async fn call_round_trip(store: &dyn Store) {
    store.create_app(&app("ca", &[])).await.unwrap();
    let c = call("ca", "/p", 1);
    store.insert_call(&c).await.unwrap();
    assert_eq!(store.get_call("ca", &c.id).await.unwrap(), c);
    let mut done = c.clone();
    done.id = call_id(2);
    done.kind = RouteType::Sync;
    done.advance(CallStatus::Running, Millis(5), None).unwrap();
    done.advance(CallStatus::Error, Millis(9), Some("exit 3"))
        .unwrap();
    store.insert_call(&done).await.unwrap();
    assert_eq!(store.get_call("ca", &done.id).await.unwrap(), done);
    // By its id alone, whatever its app.
    assert_eq!(store.find_call(&done.id).await.unwrap(), done);
    let err = store.find_call(&call_id(99)).await.unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound(_)), "{err:?}");
    let err = store
        .insert_call(&call("ca", "/other", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CallExists(_)), "{err:?}");
    assert_eq!(store.get_call("ca", &c.id).await.unwrap(), c, "unchanged");
    let err = store.insert_call(&call("nope", "/p", 3)).await.unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
}

pub async fn insert_calls_all_or_none(store: &dyn Store) {
    store.create_app(&app("cb", &[])).await.unwrap();
    store.create_app(&app("cb2", &[])).await.unwrap();
    store.insert_calls(&[]).await.unwrap();
    let batch: Vec<Call> = (1..=50)
        .map(|n| call(if n % 2 == 0 { "cb" } else { "cb2" }, "/p", n))
        .collect();
    store.insert_calls(&batch).await.unwrap();
    for c in &batch {
        assert_eq!(store.get_call(&c.app_name, &c.id).await.unwrap(), *c);
    }
    // A taken id, or a missing app, fails the whole batch: nothing lands.
    let err = store
        .insert_calls(&[call("cb", "/p", 60), call("cb", "/p", 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CallExists(_)), "{err:?}");
    let err = store
        .insert_calls(&[call("cb", "/p", 61), call("nope", "/p", 62)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
    for n in [60, 61] {
        let err = store.get_call("cb", &call_id(n)).await.unwrap_err();
        assert!(matches!(err, StoreError::CallNotFound(_)), "{err:?}");
    }
    // More calls than one statement takes, the taken id last: still none.
    let mut large: Vec<Call> = (100..1_300).map(|n| call("cb", "/p", n)).collect();
    large.push(call("cb", "/p", 1));
    let err = store.insert_calls(&large).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CallExists(ref id) if *id == call_id(1)),
        "{err:?}"
    );
    let err = store.get_call("cb", &call_id(100)).await.unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound(_)), "{err:?}");
    large.pop();
    store.insert_calls(&large).await.unwrap();
    assert_eq!(
        store.get_call("cb", &call_id(1_299)).await.unwrap(),
        large[1_199]
    );
}

pub async fn call_not_found(store: &dyn Store) {
    store.create_app(&app("cn", &[])).await.unwrap();
    store.create_app(&app("cn2", &[])).await.unwrap();
    store.insert_call(&call("cn2", "/p", 1)).await.unwrap();
    let id = call_id(1);
    let missing = call_id(9);
    for (app, id) in [
        ("cn", id.as_str()),
        ("cn2", missing.as_str()),
        ("zz", id.as_str()),
    ] {
        assert!(matches!(
            store.get_call(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
        assert!(matches!(
            store.call_output(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
        assert!(matches!(
            store.get_call_log(app, id).await,
            Err(StoreError::CallNotFound(_))
        ));
    }
    assert!(matches!(
        store
            .update_call(&missing, &CallUpdate::new(CallStatus::Running, 1))
            .await,
        Err(StoreError::CallNotFound(_))
    ));
    assert!(matches!(
        store.put_call_log(&missing, b"x").await,
        Err(StoreError::CallNotFound(_))
    ));
    let err = store
        .list_calls("zz", CallFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
    assert!(store
        .list_calls("cn", CallFilter::default())
        .await
        .unwrap()
        .is_empty());
}

pub async fn call_transitions(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("ct", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("ct", "/p", 1)).await.unwrap();
    let illegal = |from, to| move |r: Result<Call, StoreError>| matches!(r, Err(StoreError::IllegalTransition { from: f, to: t, .. }) if f == from && t == to);
    assert!(illegal(Queued, Success)(
        store.update_call(&id, &CallUpdate::new(Success, 5)).await
    ));
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 10))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.attempts, c.completed_at),
        (Running, Some(Millis(10)), 1, None)
    );
    assert!(illegal(Running, Cancelled)(
        store
            .update_call(&id, &CallUpdate::new(Cancelled, 11))
            .await
    ));
    // Its worker lost the lease; another one takes it over: a new attempt.
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 15))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.attempts, c.completed_at),
        (Running, Some(Millis(15)), 2, None)
    );
    // A retry puts it back in the queue, then it runs again.
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("node lost"),
                ..CallUpdate::new(Queued, 20)
            },
        )
        .await
        .unwrap();
    assert_eq!((c.status, c.error.as_deref()), (Queued, Some("node lost")));
    let c = store
        .update_call(&id, &CallUpdate::new(Running, 30))
        .await
        .unwrap();
    assert_eq!(
        (c.started_at, c.attempts, c.error),
        (Some(Millis(30)), 3, None)
    );
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("timed out after 30s"),
                ..CallUpdate::new(Timeout, 40)
            },
        )
        .await
        .unwrap();
    assert_eq!(c.completed_at, Some(Millis(40)));
    assert_eq!(store.get_call("ct", &id).await.unwrap(), c, "persisted");
    for next in CallStatus::ALL {
        assert!(illegal(Timeout, next)(
            store.update_call(&id, &CallUpdate::new(next, 50)).await
        ));
    }
    assert_eq!(
        store.get_call("ct", &id).await.unwrap(),
        c,
        "refused transitions write nothing"
    );
    let err = store
        .update_call(&id, &CallUpdate::new(Running, 60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ferrite_model::ErrorKind::Conflict);

    let other = call_id(2);
    store.insert_call(&call("ct", "/p", 2)).await.unwrap();
    let c = store
        .update_call(&other, &CallUpdate::new(Cancelled, 70))
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.started_at, c.completed_at, c.attempts),
        (Cancelled, None, Some(Millis(70)), 0)
    );
}

pub async fn call_output_kept(store: &dyn Store) {
    store.create_app(&app("co", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("co", "/p", 1)).await.unwrap();
    assert_eq!(store.call_output("co", &id).await.unwrap(), None);
    store
        .update_call(&id, &CallUpdate::new(CallStatus::Running, 1))
        .await
        .unwrap();
    let bytes = b"out\x00\xffput".as_slice();
    store
        .update_call(
            &id,
            &CallUpdate {
                output: Some(bytes),
                ..CallUpdate::new(CallStatus::Success, 2)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.call_output("co", &id).await.unwrap().as_deref(),
        Some(bytes)
    );
    assert!(matches!(
        store
            .update_call(
                &id,
                &CallUpdate {
                    output: Some(b"other"),
                    ..CallUpdate::new(CallStatus::Error, 3)
                }
            )
            .await,
        Err(StoreError::IllegalTransition { .. })
    ));
    assert_eq!(
        store.call_output("co", &id).await.unwrap().as_deref(),
        Some(bytes),
        "a refused transition keeps the output"
    );
}

pub async fn call_logs(store: &dyn Store) {
    store.create_app(&app("cl", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("cl", "/p", 1)).await.unwrap();
    assert!(store.get_call_log("cl", &id).await.unwrap().is_empty());
    store.put_call_log(&id, b"line 1\n").await.unwrap();
    assert_eq!(store.get_call_log("cl", &id).await.unwrap(), b"line 1\n");
    store.put_call_log(&id, b"line 1\nline 2\n").await.unwrap();
    assert_eq!(
        store.get_call_log("cl", &id).await.unwrap(),
        b"line 1\nline 2\n"
    );
}

/// The log travels with the status: written by the same update, replacing a
/// log put earlier, and not written at all when the move is refused.
pub async fn call_update_writes_log(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("cu", &[])).await.unwrap();
    let id = call_id(1);
    store.insert_call(&call("cu", "/p", 1)).await.unwrap();
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                log: Some(b"starting\n"),
                ..CallUpdate::new(Running, 10)
            },
        )
        .await
        .unwrap();
    assert_eq!(c.status, Running);
    assert_eq!(store.get_call_log("cu", &id).await.unwrap(), b"starting\n");
    let c = store
        .update_call(
            &id,
            &CallUpdate {
                error: Some("exit 2"),
                output: Some(b"partial"),
                log: Some(b"starting\nboom\n"),
                ..CallUpdate::new(Error, 20)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.completed_at, c.error.as_deref()),
        (Error, Some(Millis(20)), Some("exit 2"))
    );
    assert_eq!(store.get_call("cu", &id).await.unwrap(), c);
    assert_eq!(
        store.get_call_log("cu", &id).await.unwrap(),
        b"starting\nboom\n",
        "replaced"
    );
    assert_eq!(
        store.call_output("cu", &id).await.unwrap().as_deref(),
        Some(b"partial".as_slice())
    );
    let err = store
        .update_call(
            &id,
            &CallUpdate {
                log: Some(b"other"),
                ..CallUpdate::new(Success, 30)
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IllegalTransition { .. }),
        "{err:?}"
    );
    assert_eq!(
        store.get_call_log("cu", &id).await.unwrap(),
        b"starting\nboom\n",
        "a refused transition keeps the log"
    );
    // Without a log, the one stored is kept.
    let other = call_id(2);
    store.insert_call(&call("cu", "/p", 2)).await.unwrap();
    store.put_call_log(&other, b"queued log").await.unwrap();
    store
        .update_call(&other, &CallUpdate::new(Cancelled, 40))
        .await
        .unwrap();
    assert_eq!(
        store.get_call_log("cu", &other).await.unwrap(),
        b"queued log"
    );
    let err = store
        .update_call(
            &call_id(9),
            &CallUpdate {
                log: Some(b"x"),
                ..CallUpdate::new(Running, 50)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound(_)), "{err:?}");
}

pub async fn dead_letters_keep_the_newest(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("dk", &[])).await.unwrap();
    store.create_app(&app("dk2", &[])).await.unwrap();
    // Another app's letter is not counted against this one's.
    for (app, n) in [("dk2", 9), ("dk", 1), ("dk", 2), ("dk", 3), ("dk", 4)] {
        store.insert_call(&call(app, "/p", n)).await.unwrap();
        store
            .update_call(&call_id(n), &CallUpdate::new(Running, 10))
            .await
            .unwrap();
        let letter = DeadLetter {
            request: b"r",
            keep: 2,
        };
        let update = CallUpdate {
            dead_letter: Some(letter),
            ..CallUpdate::new(Error, 20)
        };
        store.update_call(&call_id(n), &update).await.unwrap();
    }
    let dead = CallFilter {
        dead_letters: true,
        ..CallFilter::default()
    };
    let listed = store.list_calls("dk", dead.clone()).await.unwrap();
    assert_eq!(ids(&listed), vec![call_id(4), call_id(3)]);
    assert_eq!(
        ids(&store.list_calls("dk2", dead).await.unwrap()),
        vec![call_id(9)]
    );
    // The calls whose letters went keep their records.
    assert_eq!(
        store.get_call("dk", &call_id(1)).await.unwrap().status,
        Error
    );
}

pub async fn dead_letters_are_kept_listed_and_dropped(store: &dyn Store) {
    use CallStatus::*;
    store.create_app(&app("dl", &[])).await.unwrap();
    store.create_app(&app("dl2", &[])).await.unwrap();
    for n in 1..=3 {
        store.insert_call(&call("dl", "/p", n)).await.unwrap();
        store
            .update_call(&call_id(n), &CallUpdate::new(Running, 10))
            .await
            .unwrap();
    }
    // Ends in error with its request kept; a success keeps none.
    for n in [1, 3] {
        store
            .update_call(
                &call_id(n),
                &CallUpdate {
                    error: Some("exit 1"),
                    dead_letter: Some(DeadLetter::new(format!("request {n}").as_bytes())),
                    ..CallUpdate::new(Error, 20)
                },
            )
            .await
            .unwrap();
    }
    store
        .update_call(&call_id(2), &CallUpdate::new(Success, 20))
        .await
        .unwrap();
    let dead = CallFilter {
        dead_letters: true,
        ..CallFilter::default()
    };
    let listed = store.list_calls("dl", dead.clone()).await.unwrap();
    assert_eq!(ids(&listed), vec![call_id(3), call_id(1)], "newest first");
    assert_eq!(listed[0].error.as_deref(), Some("exit 1"));
    assert!(store
        .list_calls("dl2", dead.clone())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.dead_letter("dl", &call_id(1)).await.unwrap(),
        b"request 1"
    );
    for (app, n) in [("dl", 2), ("dl2", 1), ("dl", 99)] {
        let err = store.dead_letter(app, &call_id(n)).await.unwrap_err();
        assert!(matches!(err, StoreError::DeadLetterNotFound(_)), "{err:?}");
        let err = store
            .delete_dead_letter(app, &call_id(n))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DeadLetterNotFound(_)), "{err:?}");
    }
    store.delete_dead_letter("dl", &call_id(1)).await.unwrap();
    let listed = store.list_calls("dl", dead.clone()).await.unwrap();
    assert_eq!(ids(&listed), vec![call_id(3)]);
    // The call record stays; the list goes with its app.
    assert_eq!(
        store.get_call("dl", &call_id(1)).await.unwrap().status,
        Error
    );
    store.delete_app("dl", true).await.unwrap();
    store.create_app(&app("dl", &[])).await.unwrap();
    assert!(store.list_calls("dl", dead).await.unwrap().is_empty());
}
