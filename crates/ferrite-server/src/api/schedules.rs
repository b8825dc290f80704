//! `/v1/apps/{app}/schedules`: create, list, load, change and delete an
//! app's schedules. Each names a route, a cron expression and its time
//! zone, and the request each tick's call is made of; every answer shows
//! the next run times, in the schedule's time zone. The calls themselves
//! are queued by the scheduler (`schedules::scheduler`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::Json;
use chrono::{SecondsFormat, TimeZone, Utc};
use ferrite_model::ApiError;
use ferrite_store::{CatchUp, Schedule};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::extract::{AppParam, Body, Param, Query, Wrapped};
use super::{AppState, Error, Message};
use crate::schedules::scheduler::{SCHEDULE_HEADER, TICK_HEADER};
use crate::schedules::timing::{Timing, MAX_SHOWN};

/// The largest payload of a schedule: each tick copies it into a call.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The most request headers a schedule may set.
pub const MAX_HEADERS: usize = 32;
/// Run times shown unless `next` says otherwise.
const SHOWN: usize = 5;

/// A schedule's fields, as a request gives them: all of them to create one
/// (`path` and `cron` required), any of them to change one (but `path`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// The route whose calls it makes (`/hello`); fixed once created.
    path: Option<String>,
    /// Five fields (`minute hour day month weekday`) or six (seconds
    /// first), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[schema(example = "0 9 * * MON-FRI")]
    cron: Option<String>,
    /// The IANA time zone the fields are read in (default `UTC`).
    #[schema(example = "Europe/Paris")]
    timezone: Option<String>,
    /// The body of each call, as text (at most 64 KiB; default empty).
    payload: Option<String>,
    /// Request headers of each call (`Content-Type`, ...), at most 32.
    headers: Option<BTreeMap<String, String>>,
    /// Ticks missed while no node was up: `skip` (default) drops them,
    /// `once` makes one call for the most recent.
    #[schema(example = "skip")]
    catch_up: Option<String>,
    /// `false` pauses it (default `true`); ticks while paused are not
    /// caught up.
    enabled: Option<bool>,
}

impl Wrapped for ScheduleInput {
    const KEY: &'static str = "schedule";
}

/// The body of `POST /v1/apps/{app}/schedules` and of a `PATCH`: the
/// schedule's fields under `schedule`.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it describes what `Body<ScheduleInput>` reads
pub struct ScheduleBody {
    schedule: ScheduleInput,
}

/// `{app}` and a schedule's `{id}` in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct ScheduleParams {
    /// The app's name.
    app: String,
    /// The schedule's id.
    id: String,
}

/// How many run times to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// The next run times shown, 0 to 100 (default 5).
    next: Option<usize>,
}

/// A schedule as answers show it.
#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    id: String,
    app_name: String,
    path: String,
    cron: String,
    timezone: String,
    payload: String,
    headers: BTreeMap<String, String>,
    /// `skip` or `once`.
    catch_up: &'static str,
    enabled: bool,
    /// The next ticks, RFC 3339 in the schedule's time zone; empty while
    /// paused.
    next_runs: Vec<String>,
    created_at: String,
    updated_at: String,
}

/// The answer about one schedule.
#[derive(Serialize, ToSchema)]
pub struct ScheduleAnswer {
    message: &'static str,
    schedule: ScheduleView,
}

/// The answer of `GET /v1/apps/{app}/schedules`.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    message: &'static str,
    /// The app's schedules, oldest first.
    schedules: Vec<ScheduleView>,
}

/// List an app's schedules.
#[utoipa::path(get, path = "/apps/{app}/schedules", tag = "schedules",
    params(AppParam, NextQuery),
    responses(
        (status = 200, description = "The app's schedules, oldest first", body = ScheduleList),
        (status = 400, description = "A bad `next`", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Query(query): Query<NextQuery>,
) -> Result<Json<ScheduleList>, Error> {
    let shown = shown(&query)?;
    let schedules = state
        .store
        .list_schedules(&app)
        .await?
        .iter()
        .map(|s| view(s, shown))
        .collect();
    Ok(Json(ScheduleList {
        message: "Successfully listed schedules",
        schedules,
    }))
}

/// Create a schedule of one of the app's routes.
#[utoipa::path(post, path = "/apps/{app}/schedules", tag = "schedules", params(AppParam),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "The schedule, created", body = ScheduleAnswer),
        (status = 400, description = "A field breaks its rule, or the app has as many schedules as it may", body = ErrorBody),
        (status = 404, description = "No such app or route", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Body(input): Body<ScheduleInput>,
) -> Result<Json<ScheduleAnswer>, Error> {
    let now = Utc::now().timestamp_millis();
    let path = input
        .path
        .clone()
        .ok_or_else(|| ApiError::bad_request("a schedule needs a path (its route)"))?;
    let cron = input
        .cron
        .clone()
        .ok_or_else(|| ApiError::bad_request("a schedule needs a cron expression"))?;
    let mut schedule = Schedule {
        id: uuid::Uuid::now_v7().to_string(),
        app_name: app.clone(),
        path,
        cron,
        timezone: "UTC".to_string(),
        payload: Vec::new(),
        headers: BTreeMap::new(),
        catch_up: CatchUp::Skip,
        enabled: true,
        next_run_ms: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    apply(&state, &mut schedule, input, now)?;
    state
        .store
        .create_schedule(&schedule, state.max_schedules)
        .await?;
    tracing::info!(app = %app, schedule = %schedule.id, path = %schedule.path,
        cron = %schedule.cron, timezone = %schedule.timezone, "schedule created");
    Ok(Json(ScheduleAnswer {
        message: "Schedule successfully created",
        schedule: view(&schedule, SHOWN),
    }))
}

/// Load a schedule, with its next run times.
#[utoipa::path(get, path = "/apps/{app}/schedules/{id}", tag = "schedules",
    params(ScheduleParams, NextQuery),
    responses(
        (status = 200, description = "The schedule", body = ScheduleAnswer),
        (status = 400, description = "A bad `next`", body = ErrorBody),
        (status = 404, description = "No such schedule in this app", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
    Query(query): Query<NextQuery>,
) -> Result<Json<ScheduleAnswer>, Error> {
    let shown = shown(&query)?;
    let schedule = state.store.get_schedule(&app, &id).await?;
    Ok(Json(ScheduleAnswer {
        message: "Successfully loaded schedule",
        schedule: view(&schedule, shown),
    }))
}

/// Change a schedule: the fields given replace its own. A new `cron` or
/// `timezone`, or a resume (`enabled: true`), starts from the next tick
/// after now.
#[utoipa::path(patch, path = "/apps/{app}/schedules/{id}", tag = "schedules",
    params(ScheduleParams),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "The schedule, changed", body = ScheduleAnswer),
        (status = 400, description = "A field breaks its rule, or the body moves the schedule to another route", body = ErrorBody),
        (status = 404, description = "No such schedule in this app", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
    Body(input): Body<ScheduleInput>,
) -> Result<Json<ScheduleAnswer>, Error> {
    let now = Utc::now().timestamp_millis();
    let mut schedule = state.store.get_schedule(&app, &id).await?;
    if input.path.as_ref().is_some_and(|p| *p != schedule.path) {
        return Err(ApiError::bad_request(
            "a schedule cannot move to another route: create one there",
        )
        .into());
    }
    apply(&state, &mut schedule, input, now)?;
    schedule.updated_at_ms = now;
    state.store.update_schedule(&schedule).await?;
    tracing::info!(app = %app, schedule = %id, cron = %schedule.cron,
        enabled = schedule.enabled, "schedule updated");
    Ok(Json(ScheduleAnswer {
        message: "Schedule successfully updated",
        schedule: view(&schedule, SHOWN),
    }))
}

/// Delete a schedule (the calls it made stay in the history).
#[utoipa::path(delete, path = "/apps/{app}/schedules/{id}", tag = "schedules",
    params(ScheduleParams),
    responses(
        (status = 200, description = "The schedule is gone", body = Message),
        (status = 404, description = "No such schedule in this app", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Json<Message>, Error> {
    state.store.delete_schedule(&app, &id).await?;
    tracing::info!(app = %app, schedule = %id, "schedule deleted");
    Ok(Json(Message {
        message: "Schedule successfully deleted",
    }))
}

/// Check `input` and write it over `schedule`; `next_run` starts again
/// from `now` when the timing changes or the schedule is resumed.
fn apply(
    state: &AppState,
    schedule: &mut Schedule,
    input: ScheduleInput,
    now: i64,
) -> Result<(), ApiError> {
    let was_running = schedule.enabled && schedule.next_run_ms.is_some();
    let retimed = input.cron.is_some() || input.timezone.is_some();
    if let Some(cron) = input.cron {
        schedule.cron = cron;
    }
    if let Some(timezone) = input.timezone {
        schedule.timezone = timezone;
    }
    let timing = Timing::parse(&schedule.cron, &schedule.timezone)?;
    if let Some(payload) = input.payload {
        let most = MAX_PAYLOAD_BYTES.min(state.call_body.max_bytes);
        if payload.len() > most {
            return Err(ApiError::bad_request(format!(
                "payload is {} bytes, more than a schedule's {most}",
                payload.len()
            )));
        }
        schedule.payload = payload.into_bytes();
    }
    if let Some(headers) = input.headers {
        check_headers(state, &headers)?;
        schedule.headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
    }
    if let Some(catch_up) = input.catch_up {
        schedule.catch_up = CatchUp::parse(&catch_up).ok_or_else(|| {
            ApiError::bad_request(format!("catch_up {catch_up:?}: use skip or once"))
        })?;
    }
    if let Some(enabled) = input.enabled {
        schedule.enabled = enabled;
    }
    if !schedule.enabled {
        schedule.next_run_ms = None;
    } else if retimed || !was_running {
        schedule.next_run_ms = timing.next_after(now);
        if schedule.next_run_ms.is_none() {
            return Err(ApiError::bad_request(format!(
                "cron {:?} never ticks again",
                schedule.cron
            )));
        }
    }
    Ok(())
}

/// A schedule's headers: few, valid, none of the scheduler's own, and a
/// callback only where this server sends them.
fn check_headers(state: &AppState, headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::bad_request(format!(
            "{} headers, more than a schedule's {MAX_HEADERS}",
            headers.len()
        )));
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("header {name:?} is not a header name")))?;
        if header == TICK_HEADER || header == SCHEDULE_HEADER {
            return Err(ApiError::bad_request(format!(
                "header {name:?} is set by the scheduler"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| ApiError::bad_request(format!("header {name:?}: not a header value")))?;
        map.insert(header, value);
    }
    state.callbacks.receiver(&map)?;
    Ok(())
}

fn shown(query: &NextQuery) -> Result<usize, ApiError> {
    match query.next {
        None => Ok(SHOWN),
        Some(n) if n <= MAX_SHOWN => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "next={n}: show at most {MAX_SHOWN} run times"
        ))),
    }
}

fn view(schedule: &Schedule, shown: usize) -> ScheduleView {
    let next_runs = match (
        schedule.next_run_ms,
        Timing::parse(&schedule.cron, &schedule.timezone),
    ) {
        (Some(next), Ok(timing)) if schedule.enabled && shown > 0 => {
            // The pending tick first (it may be due now), then those after.
            let mut runs = timing.upcoming(next - 1, shown);
            runs.truncate(shown);
            runs.iter()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .collect()
        }
        _ => Vec::new(),
    };
    ScheduleView {
        id: schedule.id.clone(),
        app_name: schedule.app_name.clone(),
        path: schedule.path.clone(),
        cron: schedule.cron.clone(),
        timezone: schedule.timezone.clone(),
        payload: String::from_utf8_lossy(&schedule.payload).into_owned(),
        headers: schedule.headers.clone(),
        catch_up: schedule.catch_up.as_str(),
        enabled: schedule.enabled,
        next_runs,
        created_at: stamp(schedule.created_at_ms),
        updated_at: stamp(schedule.updated_at_ms),
    }
}

fn stamp(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
