//! The scheduler loop every node runs: it enqueues the calls of due ticks.
//!
//! Exactly one call per tick across the nodes, and none lost when a node
//! dies mid-way, come from the order of two writes:
//!
//! 1. the tick's call is enqueued through the one way calls are queued
//!    ([`invoke::enqueue`]), under an id derived from (schedule, tick)
//!    ([`tick_call_id`]): a second node, or this one again, that tries the
//!    same tick finds the call there (or the store refuses the id), so the
//!    tick has one call whoever gets there;
//! 2. only then is the tick claimed: the schedule's `next_run` moves on with
//!    a compare-and-set ([`Schedules::advance_schedule`]).
//!
//! A node that dies between the two leaves the tick due: the next poll of
//! any node finds its call already there and claims it. One that dies
//! before the call is durable leaves the tick due as well, and the next
//! poll enqueues it.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::Bytes;
use chrono::{SecondsFormat, TimeZone, Utc};
use ferrite_model::contract::request_url;
use ferrite_model::{ApiError, ErrorKind};
use ferrite_store::{CatchUp, Schedule, StoreError};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::timing::Timing;
use crate::api::invoke::{self, NotQueued};
use crate::api::AppState;
use crate::executor::CallRequest;

/// How often a node looks for due ticks: the bound on how late a tick's
/// call is queued while some node is up.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Due schedules read at once; a pass reads again while pages are full.
const PAGE: u32 = 100;
/// On-time ticks of one schedule queued by one pass, at most; the rest
/// are queued by the next (a long grace over a cron with seconds).
const MAX_TICKS_PER_PASS: usize = 100;
/// The header naming the tick a scheduled call is for (RFC 3339, UTC).
pub const TICK_HEADER: &str = "fn-schedule-tick";
/// The header naming the schedule of a scheduled call.
pub const SCHEDULE_HEADER: &str = "fn-schedule-id";

/// Look for due ticks every [`POLL_EVERY`] until `cancel`. A tick older
/// than `grace` when a node gets to it was missed (no node was up to
/// enqueue it in time): its schedule's catch-up policy decides.
pub async fn run(state: AppState, grace: Duration, cancel: CancellationToken) {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
        if let Err(e) = pass(&state, grace_ms, &cancel).await {
            tracing::warn!(error = %e, "schedules: cannot read due ticks");
        }
    }
}

/// Handle every schedule due now.
async fn pass(
    state: &AppState,
    grace_ms: i64,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    loop {
        let now = Utc::now().timestamp_millis();
        let due = state.store.due_schedules(now, PAGE).await?;
        let full = due.len() == PAGE as usize;
        let mut moved = 0;
        for schedule in due {
            if cancel.is_cancelled() {
                return Ok(());
            }
            match due_tick(state, &schedule, now, grace_ms).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    schedule = %schedule.id, app = %schedule.app_name, error = %e.message,
                    "schedules: tick not enqueued, tried again at the next poll"
                ),
            }
        }
        // A full page that could not move on (every tick failing) would be
        // read again at once: wait for the next poll instead.
        if !full || moved == 0 {
            return Ok(());
        }
    }
}

/// Enqueue the calls of `schedule`'s ticks that have come (each on-time
/// tick, and the most recent missed one if its policy is `once`), then
/// claim them; `Ok(false)` if another node (or a change) claimed them
/// first. An error leaves the ticks due, for the next poll.
async fn due_tick(
    state: &AppState,
    schedule: &Schedule,
    now: i64,
    grace_ms: i64,
) -> Result<bool, ApiError> {
    let Some(due) = schedule.next_run_ms else {
        return Ok(false);
    };
    let timing = Timing::parse(&schedule.cron, &schedule.timezone)?;
    // Ticks within the grace are on time, each its own call (a node late
    // by a few seconds on a cron with seconds still makes every call).
    let first_on_time = due.max(now.saturating_sub(grace_ms));
    let mut on_time = Vec::new();
    let mut at = first_on_time - 1;
    while let Some(tick) = timing.next_after(at).filter(|t| *t <= now) {
        if on_time.len() == MAX_TICKS_PER_PASS {
            break;
        }
        on_time.push(tick);
        at = tick;
    }
    let truncated = on_time.len() == MAX_TICKS_PER_PASS;
    // Ticks before them were missed: no node was up to queue them in time.
    let missed = timing.last_until(first_on_time - 1).filter(|t| *t >= due);
    let mut ticks = Vec::with_capacity(on_time.len() + 1);
    if let Some(tick) = missed {
        match schedule.catch_up {
            CatchUp::Once => ticks.push((tick, true)),
            CatchUp::Skip => tracing::info!(
                schedule = %schedule.id, app = %schedule.app_name, tick = %rfc3339(tick),
                "schedule missed its ticks up to this one (catch_up: skip)"
            ),
        }
    }
    ticks.extend(on_time.iter().map(|t| (*t, false)));
    for (tick, late) in ticks {
        match enqueue_tick(state, schedule, tick).await? {
            Enqueued::New(call_id) => tracing::info!(
                schedule = %schedule.id, app = %schedule.app_name, path = %schedule.path,
                %call_id, tick = %rfc3339(tick), late, "scheduled call queued"
            ),
            Enqueued::There => {}
            Enqueued::Dropped(why) => tracing::warn!(
                schedule = %schedule.id, app = %schedule.app_name, tick = %rfc3339(tick),
                error = %why, "scheduled call refused; its tick is dropped"
            ),
        }
    }
    let next = timing.next_after(if truncated { at } else { now });
    state
        .store
        .advance_schedule(&schedule.id, due, next)
        .await
        .map_err(from_store)
}

/// What became of a tick's call.
enum Enqueued {
    /// Queued now, with this id.
    New(String),
    /// Queued already (by another node, or by this one before a claim
    /// that failed).
    There,
    /// Refused for good (the app's queue is full, its callback is not
    /// allowed): the tick has no call.
    Dropped(String),
}

/// Queue the call of `schedule`'s tick at `tick` (ms), once.
async fn enqueue_tick(
    state: &AppState,
    schedule: &Schedule,
    tick: i64,
) -> Result<Enqueued, ApiError> {
    let call_id = tick_call_id(&schedule.id, tick);
    match state.store.find_call(&call_id).await {
        Ok(_) => return Ok(Enqueued::There),
        Err(StoreError::CallNotFound(_)) => {}
        Err(e) => return Err(from_store(e)),
    }
    let cached = state
        .routes
        .get(&*state.store, &schedule.app_name, &schedule.path)
        .await
        .map_err(from_store)?;
    if let Err(e) = cached.gate.admit_queued(&*state.store).await {
        return match e.kind {
            ErrorKind::TooManyRequests { .. } => Ok(Enqueued::Dropped(e.message)),
            _ => Err(e),
        };
    }
    let request = tick_request(schedule, tick, call_id)?;
    match invoke::enqueue(state, &cached, request).await {
        Ok(id) => Ok(Enqueued::New(id)),
        Err(NotQueued::Refused(e)) => Ok(Enqueued::Dropped(e.message)),
        // The id is taken: another node queued this tick meanwhile.
        Err(NotQueued::Failed { error, .. }) if error.kind == ErrorKind::Conflict => {
            Ok(Enqueued::There)
        }
        Err(NotQueued::Failed { error, .. }) => Err(error),
    }
}

/// The request of a tick's call: a `POST` of the schedule's payload with
/// its headers, and which schedule and tick it is for.
fn tick_request(schedule: &Schedule, tick: i64, call_id: String) -> Result<CallRequest, ApiError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &schedule.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let stamp = |text: &str| {
        HeaderValue::from_str(text)
            .map_err(|_| ApiError::new(ErrorKind::Internal, "a schedule header is not text"))
    };
    headers.insert(TICK_HEADER, stamp(&rfc3339(tick))?);
    headers.insert(SCHEDULE_HEADER, stamp(&schedule.id)?);
    let path = format!("/r/{}{}", schedule.app_name, schedule.path);
    let uri: Uri = path
        .parse()
        .map_err(|_| ApiError::new(ErrorKind::Internal, "a route path is not a URI"))?;
    Ok(CallRequest {
        call_id,
        method: Method::POST,
        request_url: request_url(&headers, &path),
        uri,
        task_path: None,
        headers,
        body: Bytes::from(schedule.payload.clone()),
    })
}

/// The id of the call of `schedule`'s tick at `tick` (ms): a UUIDv7 whose
/// time is the tick's (so the history sorts it there) and whose other bits
/// come from a hash of the two, the same on every node.
pub fn tick_call_id(schedule: &str, tick: i64) -> String {
    let digest = Sha256::new()
        .chain_update(schedule.as_bytes())
        .chain_update(tick.to_be_bytes())
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(tick).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// `ms` as RFC 3339 in UTC, to the second.
fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A store error with its kind and its own words (for the node's log).
fn from_store(error: StoreError) -> ApiError {
    ApiError::new(error.kind(), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_has_one_id_everywhere() {
        let a = tick_call_id("s1", 1_780_000_000_000);
        assert_eq!(a, tick_call_id("s1", 1_780_000_000_000));
        assert_ne!(a, tick_call_id("s1", 1_780_000_001_000));
        assert_ne!(a, tick_call_id("s2", 1_780_000_000_000));
        let id = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_780_000_000);
    }
}
