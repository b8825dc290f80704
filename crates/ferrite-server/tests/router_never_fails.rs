//! Property test over the whole router: arbitrary methods, paths and bodies
//! never panic the server, never produce a 5xx, and every error answer has
//! the `{"error":{"message":...}}` shape.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Extension;
use clap::Parser;
use ferrite_engine::Engine;
use ferrite_server::{api, Node, ServerConfig};
use ferrite_store::sqlite::SqliteStore;
use proptest::prelude::*;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ServerConfig,
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PATCH"),
        Just("DELETE"),
        Just("PUT"),
        Just("HEAD")
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("v1".to_string()),
        Just("apps".to_string()),
        Just("routes".to_string()),
        Just("calls".to_string()),
        Just("log".to_string()),
        Just("app1".to_string()),
        Just("%2F".to_string()),
        Just("%ZZ".to_string()),
        Just("%FF".to_string()),
        Just("%C3%A9".to_string()),
        Just("..".to_string()),
        "[a-zA-Z0-9_~.-]{0,12}",
    ];
    let query = prop_oneof![
        Just(""),
        Just("?cascade=true"),
        Just("?cascade=x"),
        Just("?a=%"),
        Just("?status=queued&per_page=2"),
        Just("?per_page=0"),
        Just("?status=bogus&cursor=zz")
    ];
    (prop::collection::vec(segment, 0..7), query).prop_map(|(s, q)| format!("/{}{q}", s.join("/")))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop_oneof![
        Just(r#""name":"app1""#.to_string()),
        Just(r#""path":"/x/y""#.to_string()),
        Just(r#""image":"img""#.to_string()),
        Just(r#""memory":-3"#.to_string()),
        Just(r#""memory":9999999999999999999"#.to_string()),
        Just(r#""timeout":1.5"#.to_string()),
        Just(r#""type":"async""#.to_string()),
        Just(r#""config":{"A":"","B":"x"}"#.to_string()),
        Just(r#""headers":{"X":["a"]}"#.to_string()),
        Just(r#""headers":{"X":"a"}"#.to_string()),
        "\"[a-z_]{1,8}\":\"[^\"\\\\]{0,8}\"",
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            prop_oneof![Just("app"), Just("route"), Just("x")],
            prop::collection::vec(fields, 0..5)
        )
            .prop_map(|(key, f)| format!(r#"{{"{key}":{{{}}}}}"#, f.join(",")).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_request_gets_a_well_formed_answer(requests in prop::collection::vec((method(), path(), body()), 1..6)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("f.db").display());
            let store = Arc::new(SqliteStore::open(&url).await.unwrap());
            let queue_url = format!("sqlite://{}", dir.path().join("q.db").display());
            let queue = ferrite_queue::open(&queue_url, std::time::Duration::from_secs(3)).await.unwrap();
            let config = Args::parse_from(["test", "--api-max-body-bytes", "4096", "--node-id", "proptest-router"]).config;
            let engine = Engine::start(config.engine_settings("proptest-router".to_string())).await.unwrap();
            let tasks = TaskTracker::new();
            let node = Node { store, queue, engine: engine.clone(), bus: None };
            // No socket here: every request comes from a loopback peer, as
            // `serve` would say for a local client, so that /v1 is reached.
            let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000)));
            let router = api::router(api::AppState::new(node, &config, &tasks)).layer(Extension(peer));
            for (method, path, body) in requests {
                let Ok(request) = Request::builder().method(method).uri(&path).body(Body::from(body)) else {
                    continue; // not a URI a client could send
                };
                let response = router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                prop_assert!(!status.is_server_error(), "{method} {path}: {status} {bytes:?}");
                if status.is_client_error() && method != "HEAD" {
                    let json: serde_json::Value = serde_json::from_slice(&bytes)
                        .map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}: {bytes:?}")))?;
                    prop_assert!(json["error"]["message"].is_string(), "{method} {path}: {json}");
                }
            }
            engine.shutdown(std::time::Duration::from_secs(10)).await;
            Ok(())
        })?;
    }
}
