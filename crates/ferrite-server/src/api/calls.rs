//! `/v1/apps/{app}/calls`: the call history, logs and output of calls, and
//! cancelling queued async calls. Beside them, the same history in Fn v1's
//! paths and shapes: `/v1/calls/{call}`, `/v1/calls/{call}/log` (JSON) and a
//! route's calls at `/v1/apps/{app}/calls//{route}` (docs/compatibility.md).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrite_model::{ApiError, Call, CallStatus, Millis};
use ferrite_store::{CallFilter, CallUpdate, StoreError, MAX_CALLS_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::extract::{AppParam, CallIdParam, CallParams, Param, Query, RouteCallsParams};
use super::{AppState, Error};

/// `?path=/hello&status=success&cursor=<id>&per_page=50`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the calls of this route path (`/hello`).
    path: Option<String>,
    /// Only calls in this state: queued, running, success, error, timeout or cancelled.
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Calls per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    per_page: Option<u32>,
    /// Only calls created at or after this time, in Unix seconds (Fn v1).
    from_time: Option<i64>,
    /// Only calls created at or before this time, in Unix seconds (Fn v1).
    to_time: Option<i64>,
}

/// The answer of `GET /v1/apps/{app}/calls`.
#[derive(Serialize, ToSchema)]
pub struct CallList {
    message: &'static str,
    /// Newest first.
    calls: Vec<Call>,
    /// Where the next page starts (`?cursor=`), when this one is full.
    next_cursor: Option<String>,
}

/// The answer about one call: loaded or cancelled.
#[derive(Serialize, ToSchema)]
pub struct CallAnswer {
    message: &'static str,
    call: Call,
}

/// `?cursor=<id>&per_page=50`, for a route's calls.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Calls per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) per_page: Option<u32>,
    /// Only calls created at or after this time, in Unix seconds (Fn v1).
    pub(crate) from_time: Option<i64>,
    /// Only calls created at or before this time, in Unix seconds (Fn v1).
    pub(crate) to_time: Option<i64>,
}

/// A page of the calls of `app` that pass `filter` (its path, status,
/// dead letters), from where `query` says: checked and bounded, the one way
/// in for every listing of calls.
pub(crate) async fn page(
    state: &AppState,
    app: &str,
    query: PageQuery,
    filter: CallFilter,
) -> Result<Json<CallList>, Error> {
    let limit = query.per_page.unwrap_or(100);
    if !(1..=MAX_CALLS_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "per_page must be between 1 and {MAX_CALLS_PAGE}, got {limit}"
        ))
        .into());
    }
    let cursor = query.cursor.filter(|c| !c.is_empty());
    // A cursor is the id of the last call of a page; anything else was not
    // made by this API.
    if let Some(bad) = cursor
        .as_deref()
        .filter(|c| uuid::Uuid::try_parse(c).is_err())
    {
        return Err(ApiError::bad_request(format!(
            "cursor {bad:?} is not valid: pass the next_cursor of the previous page"
        ))
        .into());
    }
    // Seconds hold a thousand milliseconds: `to_time` takes its whole second.
    let millis = |seconds: Option<i64>, name: &str, within: i64| match seconds {
        None => Ok(None),
        Some(s) => s
            .checked_mul(1000)
            .filter(|ms| *ms >= 0)
            .map(|ms| Some(ms + within))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{name} must be a time in Unix seconds, got {s}"))
            }),
    };
    let filter = CallFilter {
        cursor,
        created_from_ms: millis(query.from_time, "from_time", 0)?,
        created_to_ms: millis(query.to_time, "to_time", 999)?,
        limit,
        ..filter
    };
    let calls = state.store.list_calls(app, filter).await?;
    // A full page may have a next one; its cursor is the last id shown.
    let next_cursor = (calls.len() == limit as usize)
        .then(|| calls.last().map(|c| c.id.clone()))
        .flatten();
    Ok(Json(CallList {
        message: "Successfully listed calls",
        calls,
        next_cursor,
    }))
}

/// List an app's calls, newest first, a page at a time.
#[utoipa::path(get, path = "/apps/{app}/calls", tag = "calls", params(AppParam, ListQuery),
    responses(
        (status = 200, description = "A page of calls", body = CallList),
        (status = 400, description = "A bad `status`, `cursor` or `per_page`", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<CallList>, Error> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(CallStatus::parse(text).ok_or_else(|| {
            let known: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!(
                "status must be one of {}, got {text:?}",
                known.join(", ")
            ))
        })?),
    };
    let filter = CallFilter {
        path: query.path.filter(|p| !p.is_empty()),
        status,
        ..CallFilter::default()
    };
    let query = PageQuery {
        cursor: query.cursor,
        per_page: query.per_page,
        from_time: query.from_time,
        to_time: query.to_time,
    };
    page(&state, &app, query, filter).await
}

/// Fn v1: a route's calls, newest first, a page at a time. Clients put the
/// route's path with its leading slash after `calls/`, so the URL has two
/// (`/v1/apps/myapp/calls//hello`); a single slash there is a call id.
#[utoipa::path(get, path = "/apps/{app}/calls//{*route}", tag = "calls",
    params(RouteCallsParams, PageQuery),
    responses(
        (status = 200, description = "A page of the route's calls (none for a route without any)", body = CallList),
        (status = 400, description = "A bad `cursor` or `per_page`", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn list_route(
    State(state): State<AppState>,
    Param((app, route)): Param<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Result<Json<CallList>, Error> {
    let filter = CallFilter {
        path: Some(format!("/{route}")),
        ..CallFilter::default()
    };
    page(&state, &app, query, filter).await
}

/// Fn v1: a call by its id alone, whatever its app.
#[utoipa::path(get, path = "/calls/{call}", tag = "calls", params(CallIdParam),
    responses(
        (status = 200, description = "The call", body = CallAnswer),
        (status = 404, description = "No such call: `Call not found`", body = ErrorBody),
    ))]
pub async fn find(
    State(state): State<AppState>,
    Param(id): Param<String>,
) -> Result<Json<CallAnswer>, Error> {
    let call = state.store.find_call(&id).await?;
    Ok(Json(CallAnswer {
        message: "Successfully loaded call",
        call,
    }))
}

/// The answer of `GET /v1/calls/{call}/log`.
#[derive(Serialize, ToSchema)]
pub struct LogAnswer {
    message: &'static str,
    log: CallLogText,
}

/// A call's log as Fn v1 shows it.
#[derive(Serialize, ToSchema)]
pub struct CallLogText {
    call_id: String,
    /// What the function wrote to stderr (capped); bytes that are not
    /// UTF-8 are shown as U+FFFD. Empty when it wrote nothing.
    log: String,
}

/// Fn v1: a call's log, as JSON.
#[utoipa::path(get, path = "/calls/{call}/log", tag = "calls", params(CallIdParam),
    responses(
        (status = 200, description = "The call's log", body = LogAnswer),
        (status = 404, description = "No such call: `Call not found`", body = ErrorBody),
    ))]
pub async fn find_log(
    State(state): State<AppState>,
    Param(id): Param<String>,
) -> Result<Json<LogAnswer>, Error> {
    let call = state.store.find_call(&id).await?;
    let log = state.store.get_call_log(&call.app_name, &id).await?;
    Ok(Json(LogAnswer {
        message: "Successfully loaded log",
        log: CallLogText {
            call_id: id,
            log: String::from_utf8_lossy(&log).into_owned(),
        },
    }))
}

/// Load a call's record.
#[utoipa::path(get, path = "/apps/{app}/calls/{id}", tag = "calls", params(CallParams),
    responses(
        (status = 200, description = "The call", body = CallAnswer),
        (status = 404, description = "No such call in this app", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Json<CallAnswer>, Error> {
    let call = state.store.get_call(&app, &id).await?;
    Ok(Json(CallAnswer {
        message: "Successfully loaded call",
        call,
    }))
}

/// The call's stderr, as the function wrote it (capped).
#[utoipa::path(get, path = "/apps/{app}/calls/{id}/log", tag = "calls", params(CallParams),
    responses(
        (status = 200, description = "What the function wrote to stderr: text, or bytes when it is not UTF-8",
            content((String = "text/plain"), (Vec<u8> = "application/octet-stream"))),
        (status = 404, description = "No such call in this app", body = ErrorBody),
    ))]
pub async fn log(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Response, Error> {
    let log = state.store.get_call_log(&app, &id).await?;
    Ok(raw(log))
}

/// The output an async call's function produced (its stdout, or its HTTP
/// response body); empty while the call has not finished, and for sync calls.
#[utoipa::path(get, path = "/apps/{app}/calls/{id}/output", tag = "calls", params(CallParams),
    responses(
        (status = 200, description = "The function's output: text, or bytes when it is not UTF-8",
            content((String = "text/plain"), (Vec<u8> = "application/octet-stream"))),
        (status = 404, description = "No such call in this app", body = ErrorBody),
    ))]
pub async fn output(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Response, Error> {
    let output = state.store.call_output(&app, &id).await?;
    Ok(raw(output.unwrap_or_default()))
}

fn raw(bytes: Vec<u8>) -> Response {
    let content_type = if std::str::from_utf8(&bytes).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

/// Cancel a queued call: it will not run. A call that is running or has
/// ended cannot be cancelled (409).
#[utoipa::path(delete, path = "/apps/{app}/calls/{id}", tag = "calls", params(CallParams),
    responses(
        (status = 200, description = "The call, cancelled", body = CallAnswer),
        (status = 404, description = "No such call in this app", body = ErrorBody),
        (status = 409, description = "The call is running or has ended", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Param((app, id)): Param<(String, String)>,
) -> Result<Json<CallAnswer>, Error> {
    // 404 for a call of another app, before anything changes.
    state.store.get_call(&app, &id).await?;
    let update = CallUpdate {
        error: Some("cancelled by request"),
        ..CallUpdate::new(CallStatus::Cancelled, Millis::now().0)
    };
    // The record first: a worker that reserved the task meanwhile finds it
    // cancelled and drops it without running it.
    let call = match state.store.update_call(&id, &update).await {
        Ok(call) => call,
        Err(StoreError::IllegalTransition { from, .. }) => {
            let state = if from.is_final() {
                format!("has ended ({from})")
            } else {
                format!("is {from}")
            };
            return Err(ApiError::conflict(format!(
                "call {id:?} {state}; only a queued call can be cancelled"
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    match state.queue.cancel(&id).await {
        Ok(_) => {}
        // The task stays queued; the worker that gets it drops it.
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "cannot remove a cancelled call from the queue")
        }
    }
    tracing::info!(call_id = %id, app = %app, "call cancelled");
    Ok(Json(CallAnswer {
        message: "Call cancelled",
        call,
    }))
}
