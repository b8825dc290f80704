//! `/system/functions`, `/system/function/{name}` and
//! `/system/scale-function/{name}`: OpenFaaS' management of functions, done
//! with the v1 API's own steps (the model's rules, the store, the change
//! bus, the route's service following it).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::Json;
use ferrite_model::service::ServiceInput;
use ferrite_model::{ApiError, App, AppInput, Route, RouteInput};
use ferrite_store::StoreError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::mapping::{is_function, route_input, status, ROUTE_PATH};
use super::shapes::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, ScaleServiceRequest,
};
use super::Text;
use crate::api::extract::Param;
use crate::api::{apps, routes, AppState};
use crate::services::ServiceView;

/// `{name}` in a URL.
#[derive(Deserialize)]
pub struct Name {
    pub name: String,
}

/// `GET /system/functions`: every function (see [`is_function`]).
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<FunctionStatus>>, Text> {
    let mut views = service_views(&state);
    let mut functions = Vec::new();
    for app in state.store.list_apps().await? {
        match state.store.get_route(&app.name, ROUTE_PATH).await {
            Ok(route) if is_function(&route) => {
                functions.push(status(&route, views.remove(&route.app_name).as_ref()));
            }
            // Deleted meanwhile, or an app of another kind.
            Ok(_) | Err(StoreError::AppNotFound(_) | StoreError::RouteNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(functions))
}

/// `GET /system/function/{name}`
pub async fn get(
    State(state): State<AppState>,
    Param(Name { name }): Param<Name>,
) -> Result<Json<FunctionStatus>, Text> {
    let route = function(&state, &name).await?;
    let mut views = service_views(&state);
    Ok(Json(status(&route, views.remove(&name).as_ref())))
}

/// `POST /system/functions`: the app and its route, both checked before
/// either is stored; a route the store refuses takes its new app away.
pub async fn deploy(State(state): State<AppState>, request: Request) -> Result<StatusCode, Text> {
    let deployment: FunctionDeployment = read(&state, request).await?;
    let input = route_input(&deployment, None)?;
    let app = App::create(AppInput {
        name: Some(deployment.service.clone()),
        ..AppInput::default()
    })?;
    let route = Route::create(&app.name, input)?;
    state.store.create_app(&app).await.map_err(|e| match e {
        StoreError::AppExists(_) => Text::from(ApiError::conflict(format!(
            "function {} already exists: PUT /system/functions changes it",
            app.name
        ))),
        e => e.into(),
    })?;
    if let Err(e) = state.store.create_route(&route).await {
        if let Err(undone) = apps::remove(&state, &app.name, true).await {
            tracing::warn!(app = %app.name, error = ?undone.0, "a function's app is left without its route");
        }
        return Err(e.into());
    }
    tracing::info!(function = %app.name, image = %route.image, "function deployed");
    routes::created(&state, &route).await;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /system/functions`: the function's definition replaced (what the
/// deployment does not name goes back to its default or away).
pub async fn update(State(state): State<AppState>, request: Request) -> Result<StatusCode, Text> {
    let deployment: FunctionDeployment = read(&state, request).await?;
    let current = function(&state, &deployment.service).await?;
    let input = route_input(&deployment, Some(&current))?;
    patch(&state, &current.app_name, input, "function updated").await?;
    // OpenFaaS' swagger answers an update 200 (a deployment 202).
    Ok(StatusCode::OK)
}

/// `DELETE /system/functions`: the app, its route and its service.
pub async fn remove(State(state): State<AppState>, request: Request) -> Result<StatusCode, Text> {
    let DeleteFunctionRequest { function_name } = read(&state, request).await?;
    if function_name.is_empty() {
        return Err(ApiError::bad_request("functionName is required").into());
    }
    function(&state, &function_name).await?;
    apps::remove(&state, &function_name, true).await?;
    Ok(StatusCode::OK)
}

/// `POST /system/scale-function/{name}`: `replicas` becomes the service's
/// floor (`min_replicas`, and its ceiling when that was lower). The
/// autoscaler adds replicas above it under load; 0 lets the service scale
/// to zero once idle.
pub async fn scale(
    State(state): State<AppState>,
    Param(Name { name }): Param<Name>,
    request: Request,
) -> Result<StatusCode, Text> {
    let scale: ScaleServiceRequest = read(&state, request).await?;
    if let Some(other) = scale.service_name.filter(|n| !n.is_empty() && *n != name) {
        return Err(ApiError::bad_request(format!(
            "serviceName {other:?} is not the function of the URL, {name:?}"
        ))
        .into());
    }
    let current = function(&state, &name).await?;
    let max = current
        .service
        .as_ref()
        .map_or(0, |s| i64::from(s.max_replicas));
    let input = RouteInput {
        service: Some(Some(ServiceInput {
            min_replicas: Some(scale.replicas),
            max_replicas: Some(max.max(scale.replicas)),
            ..ServiceInput::default()
        })),
        ..RouteInput::default()
    };
    patch(&state, &name, input, "function scaled").await?;
    Ok(StatusCode::ACCEPTED)
}

/// The route of function `name`; 404 when there is none.
async fn function(state: &AppState, name: &str) -> Result<Route, Text> {
    let missing = || ApiError::not_found(format!("function {name} not found"));
    match state.store.get_route(name, ROUTE_PATH).await {
        Ok(route) if is_function(&route) => Ok(route),
        Ok(_) | Err(StoreError::AppNotFound(_) | StoreError::RouteNotFound { .. }) => {
            Err(missing().into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Change function `app`'s route by the v1 API's PATCH steps.
async fn patch(state: &AppState, app: &str, input: RouteInput, what: &str) -> Result<(), Text> {
    let route = state.store.update_route(app, ROUTE_PATH, input).await?;
    routes::changed(state, app, ROUTE_PATH, Some(&route), what).await;
    Ok(())
}

/// This node's services of functions, by app.
fn service_views(state: &AppState) -> HashMap<String, ServiceView> {
    let Ok(services) = &state.services else {
        return HashMap::new();
    };
    services
        .list()
        .into_iter()
        .filter(|view| view.path == ROUTE_PATH)
        .map(|view| (view.app.clone(), view))
        .collect()
}

/// The JSON body, within the API's body cap; 400 when it is not the
/// document expected.
async fn read<T: DeserializeOwned>(state: &AppState, request: Request) -> Result<T, Text> {
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| state.api_body.body_error(&rejection))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not the JSON document expected: {e}")).into()
    })
}
