//! `/v1/apps/{app}/versions`: a route's versions, listed, one inspected, two
//! compared. The route is named by the `path` query parameter
//! (`?path=/a/b`), not in the URL's path: a route's path may have any
//! number of segments, one of which may be `versions`, so only a parameter
//! of its own keeps the two apart. Which versions serve is the route's
//! `traffic`, changed with the route (`PATCH`).

use axum::extract::State;
use axum::Json;
use ferrite_model::route::version::diff;
use ferrite_model::{ApiError, FieldDiff, RouteVersion, TrafficEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::extract::{AppParam, Param, Query};
use super::{AppState, Error};

/// The route whose versions a request is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The route's path, with its leading slash (`/hello`, `/a/b`).
    #[param(example = "/hello")]
    path: Option<String>,
}

impl VersionQuery {
    fn path(self) -> Result<String, ApiError> {
        self.path.filter(|p| !p.is_empty()).ok_or_else(|| {
            ApiError::bad_request(
                "missing the route: name it with the path query parameter, as in ?path=/hello",
            )
        })
    }
}

/// `{app}` and a `{version}` number in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct VersionParams {
    /// The app's name.
    app: String,
    /// A version number of the route, from 1.
    version: String,
}

/// `{app}` and two version numbers in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct DiffParams {
    /// The app's name.
    app: String,
    /// The version compared from.
    version: String,
    /// The version compared to.
    other: String,
}

/// A version number from the URL, or IronFunctions-style 400 words.
fn number(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::bad_request(format!(
            "version must be a version number from 1, not {text:?}"
        ))
    })
}

/// The answer of `GET /v1/apps/{app}/versions`.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    message: &'static str,
    /// The route's newest version.
    newest: u32,
    /// Which versions serve its calls, and how (as the route shows it).
    serving: Vec<TrafficEntry>,
    /// The versions the route keeps, newest first.
    versions: Vec<RouteVersion>,
}

/// The answer about one version.
#[derive(Serialize, ToSchema)]
pub struct VersionAnswer {
    message: &'static str,
    version: RouteVersion,
}

/// The answer of a comparison of two versions.
#[derive(Serialize, ToSchema)]
pub struct VersionDiff {
    message: &'static str,
    from: u32,
    to: u32,
    /// The fields that differ, by name, with their value in each version.
    changes: Vec<FieldDiff>,
}

/// List a route's versions, newest first, with those that serve.
#[utoipa::path(get, path = "/apps/{app}/versions", tag = "routes",
    params(AppParam, VersionQuery),
    responses(
        (status = 200, description = "The route's versions, newest first", body = VersionList),
        (status = 400, description = "No `path`", body = ErrorBody),
        (status = 404, description = "No such app or route", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Json<VersionList>, Error> {
    let path = query.path()?;
    let route = state.store.get_route(&app, &path).await?;
    let versions = state.store.list_route_versions(&app, &path).await?;
    Ok(Json(VersionList {
        message: "Successfully listed versions",
        newest: route.version,
        serving: route.serving(),
        versions,
    }))
}

/// Load one version of a route.
#[utoipa::path(get, path = "/apps/{app}/versions/{version}", tag = "routes",
    params(VersionParams, VersionQuery),
    responses(
        (status = 200, description = "The version", body = VersionAnswer),
        (status = 400, description = "No `path`, or not a version number", body = ErrorBody),
        (status = 404, description = "No such app, route or version", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param((app, version)): Param<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Json<VersionAnswer>, Error> {
    let (version, path) = (number(&version)?, query.path()?);
    let version = state.store.get_route_version(&app, &path, version).await?;
    Ok(Json(VersionAnswer {
        message: "Successfully loaded version",
        version,
    }))
}

/// Compare two versions of a route: the fields that differ from
/// `{version}` to `{other}`.
#[utoipa::path(get, path = "/apps/{app}/versions/{version}/diff/{other}", tag = "routes",
    params(DiffParams, VersionQuery),
    responses(
        (status = 200, description = "What differs", body = VersionDiff),
        (status = 400, description = "No `path`, or not a version number", body = ErrorBody),
        (status = 404, description = "No such app, route or version", body = ErrorBody),
    ))]
pub async fn compare(
    State(state): State<AppState>,
    Param((app, from, to)): Param<(String, String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Json<VersionDiff>, Error> {
    let (from, to, path) = (number(&from)?, number(&to)?, query.path()?);
    let a = state.store.get_route_version(&app, &path, from).await?;
    let b = state.store.get_route_version(&app, &path, to).await?;
    Ok(Json(VersionDiff {
        message: "Successfully compared versions",
        from,
        to,
        changes: diff(&a.definition, &b.definition),
    }))
}
