//! Conformance cases for schedules: kept, listed, changed, claimed once,
//! gone with their route or app.

use std::collections::BTreeMap;

use ferrite_store::{CatchUp, Schedule, Store, StoreError};

use super::{app, route};

fn schedule(app: &str, path: &str, n: u32, next_run_ms: Option<i64>) -> Schedule {
    Schedule {
        id: format!("01900000-0000-7000-8000-{n:012}"),
        app_name: app.to_string(),
        path: path.to_string(),
        cron: "*/5 * * * * *".to_string(),
        timezone: "Europe/Paris".to_string(),
        payload: vec![0, 1, 2, 255],
        headers: BTreeMap::from([("content-type".to_string(), "text/plain".to_string())]),
        catch_up: CatchUp::Once,
        enabled: true,
        next_run_ms,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    }
}

pub async fn schedules_round_trip(store: &dyn Store) {
    store.create_app(&app("sa", &[])).await.unwrap();
    store
        .create_route(&route("sa", r#"{"path":"/tick","image":"img"}"#))
        .await
        .unwrap();
    let first = schedule("sa", "/tick", 1, Some(5_000));
    store.create_schedule(&first, 10).await.unwrap();
    assert_eq!(store.get_schedule("sa", &first.id).await.unwrap(), first);
    let second = Schedule {
        catch_up: CatchUp::Skip,
        headers: BTreeMap::new(),
        payload: Vec::new(),
        ..schedule("sa", "/tick", 2, None)
    };
    store.create_schedule(&second, 10).await.unwrap();
    assert_eq!(
        store.list_schedules("sa").await.unwrap(),
        [first.clone(), second.clone()]
    );
    // Not another app's, and a missing app is not an empty list.
    let err = store.get_schedule("other", &first.id).await.unwrap_err();
    assert!(matches!(err, StoreError::ScheduleNotFound(_)), "{err:?}");
    let err = store.list_schedules("other").await.unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");

    let changed = Schedule {
        cron: "0 9 * * *".to_string(),
        enabled: false,
        next_run_ms: None,
        updated_at_ms: 2_000,
        ..first.clone()
    };
    store.update_schedule(&changed).await.unwrap();
    assert_eq!(store.get_schedule("sa", &first.id).await.unwrap(), changed);
    store.delete_schedule("sa", &second.id).await.unwrap();
    let err = store.delete_schedule("sa", &second.id).await.unwrap_err();
    assert!(matches!(err, StoreError::ScheduleNotFound(_)), "{err:?}");
    let err = store.update_schedule(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::ScheduleNotFound(_)), "{err:?}");
}

pub async fn schedules_need_their_route_and_are_bounded(store: &dyn Store) {
    let err = store
        .create_schedule(&schedule("sb", "/tick", 1, None), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AppNotFound(_)), "{err:?}");
    store.create_app(&app("sb", &[])).await.unwrap();
    let err = store
        .create_schedule(&schedule("sb", "/tick", 1, None), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RouteNotFound { .. }), "{err:?}");
    store
        .create_route(&route("sb", r#"{"path":"/tick","image":"img"}"#))
        .await
        .unwrap();
    for n in 1..=2 {
        store
            .create_schedule(&schedule("sb", "/tick", n, None), 2)
            .await
            .unwrap();
    }
    let err = store
        .create_schedule(&schedule("sb", "/tick", 3, None), 2)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has 2 schedules"), "{err}");
    assert_eq!(store.list_schedules("sb").await.unwrap().len(), 2);
}

pub async fn due_schedules_are_claimed_once(store: &dyn Store) {
    store.create_app(&app("sc", &[])).await.unwrap();
    store
        .create_route(&route("sc", r#"{"path":"/tick","image":"img"}"#))
        .await
        .unwrap();
    let late = schedule("sc", "/tick", 1, Some(1_000));
    let soon = schedule("sc", "/tick", 2, Some(2_000));
    let later = schedule("sc", "/tick", 3, Some(9_000));
    let paused = Schedule {
        enabled: false,
        ..schedule("sc", "/tick", 4, Some(500))
    };
    for s in [&later, &soon, &late, &paused] {
        store.create_schedule(s, 10).await.unwrap();
    }
    let due = store.due_schedules(2_000, 100).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [late.id.as_str(), soon.id.as_str()], "earliest first");
    assert_eq!(store.due_schedules(2_000, 1).await.unwrap().len(), 1);
    // One claim of a tick wins; a stale one does not.
    assert!(store
        .advance_schedule(&late.id, 1_000, Some(6_000))
        .await
        .unwrap());
    assert!(!store
        .advance_schedule(&late.id, 1_000, Some(7_000))
        .await
        .unwrap());
    assert_eq!(
        store
            .get_schedule("sc", &late.id)
            .await
            .unwrap()
            .next_run_ms,
        Some(6_000)
    );
    assert!(!store
        .advance_schedule(&paused.id, 500, Some(600))
        .await
        .unwrap());
    // No tick left.
    assert!(store.advance_schedule(&soon.id, 2_000, None).await.unwrap());
    assert!(store.due_schedules(i64::MAX, 100).await.unwrap().len() == 2);
}

pub async fn schedules_go_with_their_route_and_app(store: &dyn Store) {
    store.create_app(&app("sd", &[])).await.unwrap();
    for path in ["/a", "/b"] {
        store
            .create_route(&route(
                "sd",
                &format!(r#"{{"path":"{path}","image":"img"}}"#),
            ))
            .await
            .unwrap();
    }
    store
        .create_schedule(&schedule("sd", "/a", 1, Some(1)), 10)
        .await
        .unwrap();
    store
        .create_schedule(&schedule("sd", "/b", 2, Some(1)), 10)
        .await
        .unwrap();
    store.delete_route("sd", "/a").await.unwrap();
    let left = store.list_schedules("sd").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].path, "/b");
    store.delete_app("sd", true).await.unwrap();
    assert!(store.due_schedules(i64::MAX, 100).await.unwrap().is_empty());
}
