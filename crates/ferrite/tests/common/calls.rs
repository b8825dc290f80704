//! What became of accepted async calls: every call id a client was given
//! (202) must reach a final state; runs beyond the first are counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every call of `app` on the node at `url`, following the cursor
/// (`bearer`: the management token, when /v1 needs one).
pub fn all_calls(url: &str, app: &str, bearer: Option<&str>) -> Vec<Value> {
    let client = super::client();
    let mut calls = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut request = client.get(format!(
            "{url}/v1/apps/{app}/calls?per_page=1000&cursor={cursor}"
        ));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let page: Value = match request.send().and_then(|r| r.json()) {
            Ok(page) => page,
            // The node is busy or its store away: an empty read, asked again.
            Err(_) => return Vec::new(),
        };
        calls.extend(page["calls"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return calls,
        }
    }
}

/// The fate of the accepted calls.
#[derive(Debug)]
pub struct Settled {
    pub accepted: usize,
    /// Final with `success`.
    pub completed: usize,
    /// Final otherwise (error, timeout, cancelled).
    pub failed: usize,
    /// Runs beyond the first, summed over the accepted calls.
    pub duplicates: u64,
    /// Not final when the wait ended.
    pub lost: usize,
    /// How long until the last one was final.
    pub took: Duration,
    /// Records by call id, as last read.
    pub records: HashMap<String, Value>,
}

impl std::fmt::Display for Settled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted {}: completed {}, failed {}, duplicates {}, lost {} (all final {:.1} s after the wait began)",
            self.accepted,
            self.completed,
            self.failed,
            self.duplicates,
            self.lost,
            self.took.as_secs_f64()
        )
    }
}

fn is_final(call: &Value) -> bool {
    matches!(
        call["status"].as_str(),
        Some("success" | "error" | "timeout" | "cancelled")
    )
}

/// Wait up to `within` until every call in `accepted` is final.
pub fn wait_settled(
    url: &str,
    app: &str,
    bearer: Option<&str>,
    accepted: &[String],
    within: Duration,
) -> Settled {
    let began = Instant::now();
    let mut records = HashMap::new();
    super::eventually(within, || {
        records = all_calls(url, app, bearer)
            .into_iter()
            .filter_map(|c| Some((c["id"].as_str()?.to_string(), c)))
            .collect();
        accepted
            .iter()
            .all(|id| records.get(id).is_some_and(is_final))
    });
    let settled: Vec<&Value> = accepted
        .iter()
        .filter_map(|id| records.get(id))
        .filter(|c| is_final(c))
        .collect();
    let completed = settled.iter().filter(|c| c["status"] == "success").count();
    Settled {
        accepted: accepted.len(),
        completed,
        failed: settled.len() - completed,
        duplicates: settled
            .iter()
            .map(|c| c["attempts"].as_u64().unwrap_or(1).saturating_sub(1))
            .sum(),
        lost: accepted.len() - settled.len(),
        took: began.elapsed(),
        records,
    }
}
