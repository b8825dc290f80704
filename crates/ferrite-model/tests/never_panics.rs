//! Property tests: no request body, however malformed, panics decoding or
//! validation, and whatever validation accepts obeys the documented rules.

use ferrite_model::route::MAX_RETRIES;
use ferrite_model::service::MAX_REPLICAS;
use ferrite_model::{decode, App, AppInput, Route, RouteInput, RouteType};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Arbitrary JSON documents, biased towards the shapes the API reads.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-2_i64..14).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("/a"),
            Just("sync"),
            Just("http"),
            Just("img"),
            Just("node.role==worker"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        let keys = prop_oneof![
            Just("name".to_string()),
            Just("path".to_string()),
            Just("image".to_string()),
            Just("memory".to_string()),
            Just("type".to_string()),
            Just("format".to_string()),
            Just("timeout".to_string()),
            Just("idle_timeout".to_string()),
            Just("max_concurrency".to_string()),
            Just("config".to_string()),
            Just("headers".to_string()),
            Just("jwt_key".to_string()),
            Just("max_retries".to_string()),
            Just("service".to_string()),
            Just("port".to_string()),
            Just("min_replicas".to_string()),
            Just("max_replicas".to_string()),
            Just("target_concurrency".to_string()),
            Just("scale_to_zero_after".to_string()),
            Just("constraints".to_string()),
            Just("labels".to_string()),
            ".{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A service section is only on sync routes, and its numbers are in range.
fn service_ok(route: &Route) -> bool {
    route.service.as_ref().is_none_or(|s| {
        route.kind == RouteType::Sync
            && s.port >= 1
            && s.min_replicas <= s.max_replicas
            && (1..=MAX_REPLICAS).contains(&s.max_replicas)
            && s.target_concurrency >= 1
            && s.scale_to_zero_after >= 1
            && s.labels.values().all(|v| !v.is_empty())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn raw_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode::wrapped::<AppInput>(&body, "app").map(App::create);
        let _ = decode::wrapped::<RouteInput>(&body, "route").map(|r| Route::create("a", r));
    }

    #[test]
    fn routes_accepted_obey_the_rules(inner in json_value(), patch in json_value()) {
        let body = serde_json::to_vec(&json!({ "route": inner })).unwrap();
        if let Ok(Ok(mut route)) = decode::wrapped::<RouteInput>(&body, "route").map(|r| Route::create("app", r)) {
            prop_assert!(route.path.starts_with('/'));
            prop_assert!(route.memory >= 1 && route.timeout >= 1 && route.max_concurrency >= 1);
            prop_assert!(route.max_retries <= MAX_RETRIES);
            prop_assert!(route.config.as_ref().is_none_or(|c| !c.is_empty() && c.values().all(|v| !v.is_empty())));
            prop_assert!(service_ok(&route));
            let before = route.clone();
            let body = serde_json::to_vec(&json!({ "route": patch })).unwrap();
            if let Ok(p) = decode::wrapped::<RouteInput>(&body, "route") {
                if route.apply(p).is_err() {
                    prop_assert_eq!(route, before);
                } else {
                    prop_assert_eq!(&route.path, &before.path);
                    prop_assert!(route.max_retries <= MAX_RETRIES);
                    prop_assert!(service_ok(&route));
                }
            }
        }
    }

    #[test]
    fn service_sections_accepted_obey_the_rules(
        numbers in prop::collection::vec(prop::option::of(prop_oneof![any::<i64>(), -2_i64..200, 65530_i64..65540]), 5),
        constraints in prop::option::of(prop::collection::vec(prop_oneof![".{0,20}".boxed(), "(node|engine)\\.(role|labels\\.[a-z]{0,3}) ?(==|!=|=) ?[a-z=!]{0,4}".boxed()], 0..3)),
        labels in prop::option::of(prop::collection::btree_map(prop_oneof![".{0,12}".boxed(), "(org\\.ferrite\\.)?[a-z]{1,4}".boxed()], ".{0,6}", 0..3)),
        kind in prop_oneof![Just("sync"), Just("async")],
        patch_numbers in prop::collection::vec(prop::option::of(-2_i64..120), 5),
    ) {
        let section = |n: &[Option<i64>]| json!({
            "port": n[0], "min_replicas": n[1], "max_replicas": n[2],
            "target_concurrency": n[3], "scale_to_zero_after": n[4],
            "constraints": constraints, "labels": labels,
        });
        let body = json!({ "route": { "path": "/a", "image": "img", "type": kind, "service": section(&numbers) } });
        let body = serde_json::to_vec(&body).unwrap();
        if let Ok(Ok(mut route)) = decode::wrapped::<RouteInput>(&body, "route").map(|r| Route::create("app", r)) {
            prop_assert!(route.service.is_some());
            prop_assert!(service_ok(&route));
            let before = route.clone();
            let patch = serde_json::to_vec(&json!({ "route": { "service": section(&patch_numbers) } })).unwrap();
            let patch = decode::wrapped::<RouteInput>(&patch, "route").unwrap();
            if route.apply(patch).is_err() {
                prop_assert_eq!(route, before);
            } else {
                prop_assert!(service_ok(&route));
            }
        }
    }

    #[test]
    fn apps_accepted_obey_the_rules(inner in json_value()) {
        let body = serde_json::to_vec(&json!({ "app": inner })).unwrap();
        if let Ok(Ok(app)) = decode::wrapped::<AppInput>(&body, "app").map(App::create) {
            prop_assert!(!app.name.is_empty() && app.name.len() <= 30);
        }
    }
}
