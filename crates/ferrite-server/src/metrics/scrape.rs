//! What is read only when `/metrics` is scraped: the containers of each
//! route (from the engine's in-memory pools, so calls pay nothing for
//! them) and the process's own figures. Then the whole set is rendered.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use ::metrics::gauge;
use ferrite_engine::Engine;
use metrics_process::Collector;

use super::{handle, CONTAINERS};

/// The process collector (it describes its metrics once, when made).
fn process() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(Collector::default)
}

pub(super) fn describe_process() {
    process().describe();
}

/// Routes whose containers the last scrape reported: a route gone from the
/// pools since is reported with none, rather than with its last counts.
static REPORTED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// The text exposition format of every metric, the engine's containers and
/// the process's figures read now.
pub fn render(engine: &Engine) -> String {
    let handle = handle();
    process().collect();
    containers(engine);
    handle.run_upkeep();
    handle.render()
}

fn containers(engine: &Engine) {
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    let mut now = BTreeSet::new();
    for route in engine.containers() {
        set_containers(
            &route.app,
            &route.path,
            [route.prestarted, route.hot_idle, route.hot_busy],
        );
        now.insert((route.app, route.path));
    }
    for (app, path) in reported.difference(&now) {
        set_containers(app, path, [0, 0, 0]);
    }
    *reported = now;
}

/// Set the three states of a route's containers: prestarted, hot idle, hot
/// busy.
fn set_containers(app: &str, path: &str, counts: [usize; 3]) {
    for (state, count) in ["prestarted", "hot_idle", "hot_busy"]
        .into_iter()
        .zip(counts)
    {
        gauge!(
            CONTAINERS,
            "app" => app.to_string(),
            "route" => path.to_string(),
            "state" => state
        )
        .set(count as f64);
    }
}
