//! Property tests: no request body, however malformed, panics decoding or
//! validation, and whatever validation accepts obeys the documented rules.

use ferrite_model::route::MAX_RETRIES;
use ferrite_model::{decode, App, AppInput, Route, RouteInput};
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
            ".{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
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
            let before = route.clone();
            let body = serde_json::to_vec(&json!({ "route": patch })).unwrap();
            if let Ok(p) = decode::wrapped::<RouteInput>(&body, "route") {
                if route.apply(p).is_err() {
                    prop_assert_eq!(route, before);
                } else {
                    prop_assert_eq!(&route.path, &before.path);
                    prop_assert!(route.max_retries <= MAX_RETRIES);
                }
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
