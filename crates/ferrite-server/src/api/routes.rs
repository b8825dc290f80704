//! `/v1/apps/{app}/routes`: create, list, load, update and delete routes.
//! A route's path may be nested (`/a/b`), so it is the rest of the URL.
//! Every answer shows routes as [`RouteView`]s: a `jwt_key` is write-only.

use axum::extract::State;
use axum::Json;
use ferrite_model::{Route, RouteInput, RouteView};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::extract::{AppParam, Body, Param, RouteBody, RouteParams};
use super::{AppState, Error, Message};
use crate::changes::Change;

/// The route path of a `/routes/{*path}` URL, with its leading slash back.
fn route_path(rest: &str) -> String {
    format!("/{rest}")
}

/// The answer of `GET /v1/apps/{app}/routes`.
#[derive(Serialize, ToSchema)]
pub struct RouteList {
    message: &'static str,
    /// The app's routes, by path.
    routes: Vec<RouteView>,
}

/// The answer about one route: created, loaded or updated.
#[derive(Serialize, ToSchema)]
pub struct RouteAnswer {
    message: &'static str,
    route: RouteView,
}

/// List an app's routes.
#[utoipa::path(get, path = "/apps/{app}/routes", tag = "routes", params(AppParam),
    responses(
        (status = 200, description = "The app's routes, by path", body = RouteList),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Param(app): Param<String>,
) -> Result<Json<RouteList>, Error> {
    let routes: Vec<RouteView> = state
        .store
        .list_routes(&app)
        .await?
        .into_iter()
        .map(RouteView::from)
        .collect();
    Ok(Json(RouteList {
        message: "Successfully listed routes",
        routes,
    }))
}

/// Create a route in an app (the app must exist).
#[utoipa::path(post, path = "/apps/{app}/routes", tag = "routes", params(AppParam),
    request_body = RouteBody,
    responses(
        (status = 200, description = "The route, created", body = RouteAnswer),
        (status = 400, description = "A field breaks its rule, or the body is not JSON", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app has a route at that path", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Param(app): Param<String>,
    Body(input): Body<RouteInput>,
) -> Result<Json<RouteAnswer>, Error> {
    let route = Route::create(&app, input)?;
    state.store.create_route(&route).await?;
    tracing::info!(app = %app, path = %route.path, image = %route.image, "route created");
    created(&state, &route).await;
    Ok(Json(RouteAnswer {
        message: "Route successfully created",
        route: RouteView::from(route),
    }))
}

/// Load a route.
#[utoipa::path(get, path = "/apps/{app}/routes/{*path}", tag = "routes", params(RouteParams),
    responses(
        (status = 200, description = "The route", body = RouteAnswer),
        (status = 404, description = "No such app or route", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param((app, rest)): Param<(String, String)>,
) -> Result<Json<RouteAnswer>, Error> {
    let route = state.store.get_route(&app, &route_path(&rest)).await?;
    Ok(Json(RouteAnswer {
        message: "Successfully loaded route",
        route: RouteView::from(route),
    }))
}

/// Update a route: the fields given replace the route's; `config` keys
/// are merged (`""` removes one); `service` and `confinement` are merged
/// field by field (`null` removes the section). A change of what runs makes
/// a new version; `traffic` shares the calls between versions (`null`: the
/// newest takes them all), so a roll-back is `"traffic":[{"version":N,"weight":100}]`.
#[utoipa::path(patch, path = "/apps/{app}/routes/{*path}", tag = "routes", params(RouteParams),
    request_body = RouteBody,
    responses(
        (status = 200, description = "The route, updated", body = RouteAnswer),
        (status = 400, description = "A field breaks its rule, the body moves the route, or its traffic names a version the route does not keep", body = ErrorBody),
        (status = 404, description = "No such app or route", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Param((app, rest)): Param<(String, String)>,
    Body(patch): Body<RouteInput>,
) -> Result<Json<RouteAnswer>, Error> {
    let path = route_path(&rest);
    let route = state.store.update_route(&app, &path, patch).await?;
    changed(&state, &app, &path, Some(&route), "route updated").await;
    Ok(Json(RouteAnswer {
        message: "Route successfully updated",
        route: RouteView::from(route),
    }))
}

/// Delete a route; its containers and service go with it.
#[utoipa::path(delete, path = "/apps/{app}/routes/{*path}", tag = "routes", params(RouteParams),
    responses(
        (status = 200, description = "The route is gone", body = Message),
        (status = 404, description = "No such app or route", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Param((app, rest)): Param<(String, String)>,
) -> Result<Json<Message>, Error> {
    let path = route_path(&rest);
    state.store.delete_route(&app, &path).await?;
    changed(&state, &app, &path, None, "route deleted").await;
    Ok(Json(Message {
        message: "Route deleted",
    }))
}

/// After a stored route changed (`None`: deleted): every node lets its
/// containers of the route go, and the route's service follows it.
pub(super) async fn changed(
    state: &AppState,
    app: &str,
    path: &str,
    route: Option<&Route>,
    what: &str,
) {
    state
        .changes
        .made(Change::Route {
            app: app.to_string(),
            path: path.to_string(),
        })
        .await;
    tracing::info!(app = %app, path = %path, "{what}");
    sync_service(state, app, path, route).await;
}

/// After a route was stored for the first time: its service is made, here,
/// or by the node that scales the services when this one runs none (a
/// worker's), which hears of the route on the change bus.
pub(super) async fn created(state: &AppState, route: &Route) {
    if route.service.is_none() {
        return;
    }
    state
        .changes
        .made(Change::Route {
            app: route.app_name.clone(),
            path: route.path.clone(),
        })
        .await;
    sync_service(state, &route.app_name, &route.path, Some(route)).await;
}

/// Make the route's Swarm service follow the route (`None`: deleted). A
/// failure is logged, not answered: the route is stored either way, and its
/// service is made again on its first call.
async fn sync_service(state: &AppState, app: &str, path: &str, route: Option<&Route>) {
    let Ok(services) = &state.services else {
        return;
    };
    let result = match route {
        Some(route) => match state.store.get_app(app).await {
            Ok(app) => services.route_changed(&app, route).await,
            Err(e) => {
                tracing::warn!(app, path, error = %e, "cannot load the app of a service route");
                return;
            }
        },
        None => services.remove(app, path).await,
    };
    if let Err(e) = result {
        tracing::warn!(app, path, error = %e, "the route's service does not match it yet");
    }
}
