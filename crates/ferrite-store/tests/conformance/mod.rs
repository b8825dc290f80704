//! The conformance suite every `Store` implementation must pass, included by
//! each backend's test binary (`mod conformance;`) and not shipped with the
//! library.
//!
//! Each case is a plain async function over `&dyn Store`; the
//! [`store_conformance_tests!`] macro turns them into one `#[tokio::test]`
//! each for a given backend, so SQLite and PostgreSQL run the very same
//! assertions. Cases assume an empty store.

mod apps;
mod calls;
mod history;
mod keys;
mod routes;
mod schedules;
mod versions;

pub use apps::*;
pub use calls::*;
pub use history::*;
pub use keys::*;
pub use routes::*;
pub use schedules::*;
pub use versions::*;

use ferrite_model::{App, Call, Millis, Route, RouteInput, RouteType};

fn app(name: &str, config: &[(&str, &str)]) -> App {
    App {
        name: name.to_string(),
        config: (!config.is_empty()).then(|| {
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        limits: None,
    }
}

fn route(app: &str, json: &str) -> Route {
    let input: RouteInput = serde_json::from_str(json).expect("test route JSON");
    Route::create(app, input).expect("test route is valid")
}

fn patch<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("test patch JSON")
}

/// A UUIDv7-shaped id that sorts with `n`.
fn call_id(n: u32) -> String {
    format!("01900000-0000-7000-8000-{n:012}")
}

fn call(app: &str, path: &str, n: u32) -> Call {
    Call::new(
        call_id(n),
        app,
        path,
        RouteType::Async,
        Millis(1_000 + i64::from(n)),
    )
}

fn ids(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| c.id.clone()).collect()
}

/// Expand to one `#[tokio::test]` per conformance case. `$make` is an async
/// expression returning `(Arc<dyn Store>, guard)`; the guard (a temp dir, a
/// database handle) lives until the case ends.
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::conformance::store_conformance_tests!(@by_ref $make;
            apps_round_trip, duplicate_app_conflicts, app_update_merges_config,
            app_limits_round_trip, queued_calls_counted_per_app,
            app_delete_needs_cascade, route_creates_its_app, route_keeps_every_field,
            route_update_applies_patch, route_max_retries, route_service_round_trip,
            route_service_update, routes_list_with_service, route_confinement_round_trip_and_update,
            routes_list_by_path, route_delete, ping,
            call_round_trip, insert_calls_all_or_none, call_not_found, call_transitions, call_output_kept, call_logs,
            call_update_writes_log, dead_letters_are_kept_listed_and_dropped,
            dead_letters_keep_the_newest, record_calls_batch_lands,
            record_calls_skips_unknown_apps_and_duplicates, record_calls_keeps_logs,
            a_batch_of_1000_calls_is_quick,
            calls_list_and_page, calls_listed_by_creation_time, calls_purge, app_delete_removes_calls,
            keys_round_trip_and_revoke, keys_are_bounded_and_go_with_their_app,
            schedules_round_trip, schedules_need_their_route_and_are_bounded,
            due_schedules_are_claimed_once, schedules_go_with_their_route_and_app,
            versions_follow_changes, traffic_names_kept_versions,
            versions_are_trimmed_but_serving_ones_kept, service_versions_cannot_split,
            calls_keep_their_version);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_patches_all_land() {
            let (store, _guard) = $make.await;
            $crate::conformance::concurrent_patches_all_land(store).await;
        }
    };
    (@by_ref $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, _guard) = $make.await;
                $crate::conformance::$case(&*store).await;
            }
        )*
    };
}
pub(crate) use store_conformance_tests;
