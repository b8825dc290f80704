//! Property tests: no request body, however malformed, panics decoding or
//! validation, and whatever validation accepts obeys the documented rules.

use ferrite_model::confinement::{
    Network, CAP_ALLOWLIST, MAX_NOFILE, MAX_PIDS_LIMIT, MIN_NOFILE, MIN_PIDS_LIMIT,
};
use ferrite_model::key::MAX_KEY_NAME_CHARS;
use ferrite_model::route::MAX_RETRIES;
use ferrite_model::service::MAX_REPLICAS;
use ferrite_model::{decode, ApiKey, App, AppInput, KeyInput, Millis, Route, RouteInput};
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
            Just("none"),
            Just("CHOWN"),
            Just("SYS_ADMIN"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        let keys = prop_oneof![
            Just("name".to_string()),
            Just("app".to_string()),
            Just("access".to_string()),
            Just("expires_at".to_string()),
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
            Just("confinement".to_string()),
            Just("read_only".to_string()),
            Just("network".to_string()),
            Just("cap_add".to_string()),
            Just("pids_limit".to_string()),
            Just("nofile".to_string()),
            Just("cpus".to_string()),
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
        s.port >= 1
            && s.min_replicas <= s.max_replicas
            && (1..=MAX_REPLICAS).contains(&s.max_replicas)
            && s.target_concurrency >= 1
            && s.scale_to_zero_after >= 1
            && s.labels.values().all(|v| !v.is_empty())
    })
}

/// A confinement section's values are in range, its capabilities from the
/// allowlist, and it never takes the network from a service.
fn confinement_ok(route: &Route) -> bool {
    let resolved = route.confinement();
    (MIN_PIDS_LIMIT..=MAX_PIDS_LIMIT).contains(&resolved.pids_limit)
        && (MIN_NOFILE..=MAX_NOFILE).contains(&resolved.nofile)
        && resolved.cpus.is_none_or(|c| c > 0.0)
        && resolved.cpu_weight >= 2
        && resolved
            .cap_add
            .iter()
            .all(|c| CAP_ALLOWLIST.iter().any(|(a, _)| a == c))
        && !(route.service.is_some()
            && route
                .confinement
                .as_ref()
                .is_some_and(|c| c.network == Network::None))
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
            prop_assert!(confinement_ok(&route));
            let before = route.clone();
            let body = serde_json::to_vec(&json!({ "route": patch })).unwrap();
            if let Ok(p) = decode::wrapped::<RouteInput>(&body, "route") {
                if route.apply(p).is_err() {
                    prop_assert_eq!(route, before);
                } else {
                    prop_assert_eq!(&route.path, &before.path);
                    prop_assert!(route.max_retries <= MAX_RETRIES);
                    prop_assert!(service_ok(&route));
                    prop_assert!(confinement_ok(&route));
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
    fn confinement_sections_accepted_obey_the_rules(
        numbers in prop::collection::vec(prop::option::of(prop_oneof![any::<i64>(), -2_i64..100, 1_048_570_i64..1_048_580]), 2),
        cpus in prop::option::of(prop_oneof![any::<f64>(), -1.0_f64..300.0]),
        caps in prop::option::of(prop::collection::vec(prop_oneof![Just("CHOWN"), Just("cap_kill"), Just("SYS_ADMIN"), Just("NET_RAW"), Just("x")], 0..3)),
        network in prop_oneof![Just("default"), Just("none"), Just("host")],
        service in any::<bool>(),
        patch in prop::collection::vec(prop::option::of(-2_i64..5000), 2),
    ) {
        let mut route = json!({ "path": "/a", "image": "img", "confinement": {
            "pids_limit": numbers[0], "nofile": numbers[1], "cpus": cpus, "cap_add": caps, "network": network,
        }});
        if service {
            route["service"] = json!({});
        }
        let body = serde_json::to_vec(&json!({ "route": route })).unwrap();
        if let Ok(Ok(mut route)) = decode::wrapped::<RouteInput>(&body, "route").map(|r| Route::create("app", r)) {
            prop_assert!(route.confinement.is_some());
            prop_assert!(confinement_ok(&route));
            let before = route.clone();
            let patch = json!({ "route": { "confinement": { "pids_limit": patch[0], "nofile": patch[1] } } });
            let patch = decode::wrapped::<RouteInput>(&serde_json::to_vec(&patch).unwrap(), "route").unwrap();
            if route.apply(patch).is_err() {
                prop_assert_eq!(route, before);
            } else {
                prop_assert!(confinement_ok(&route));
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

    #[test]
    fn keys_accepted_obey_the_rules(inner in json_value()) {
        let body = serde_json::to_vec(&json!({ "key": inner })).unwrap();
        let now = Millis(1_800_000_000_000);
        if let Ok(Ok(key)) = decode::wrapped::<KeyInput>(&body, "key").map(|k| ApiKey::create("id".into(), k, now)) {
            prop_assert!(!key.app.is_empty() && key.app.len() <= 30);
            prop_assert!(key.name.as_ref().is_none_or(|n| !n.is_empty() && n.chars().count() <= MAX_KEY_NAME_CHARS));
            prop_assert!(key.expires_at.is_none_or(|at| at > now));
        }
    }
}
