//! `/v1/apps`: create, list, load, update and delete apps.

use axum::extract::State;
use axum::Json;
use ferrite_model::{App, AppInput};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Body, Param, Query};
use super::{AppState, Error};

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let apps = state.store.list_apps().await?;
    Ok(Json(
        json!({ "message": "Successfully listed applications", "apps": apps }),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Body(input): Body<AppInput>,
) -> Result<Json<Value>, Error> {
    let app = App::create(input)?;
    state.store.create_app(&app).await?;
    tracing::info!(app = %app.name, "app created");
    Ok(Json(
        json!({ "message": "App successfully created", "app": app }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Param(name): Param<String>,
) -> Result<Json<Value>, Error> {
    let app = state.store.get_app(&name).await?;
    Ok(Json(
        json!({ "message": "Successfully loaded app", "app": app }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Param(name): Param<String>,
    Body(patch): Body<AppInput>,
) -> Result<Json<Value>, Error> {
    let app = state.store.update_app(&name, patch).await?;
    state.routes.forget_app(&name);
    // App config is part of every route's environment: hot containers of
    // the app's routes are replaced at their next call (their pool's
    // definition no longer matches).
    tracing::info!(app = %name, "app updated");
    Ok(Json(
        json!({ "message": "App successfully updated", "app": app }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// Delete the app's routes with it.
    #[serde(default)]
    cascade: bool,
}

pub async fn delete(
    State(state): State<AppState>,
    Param(name): Param<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<Value>, Error> {
    // The routes going with the app take their containers with them.
    let routes = match query.cascade {
        true => state.store.list_routes(&name).await.unwrap_or_default(),
        false => Vec::new(),
    };
    state.store.delete_app(&name, query.cascade).await?;
    for route in routes {
        state.engine.forget_route(&name, &route.path);
    }
    state.routes.forget_app(&name);
    tracing::info!(app = %name, cascade = query.cascade, "app deleted");
    Ok(Json(json!({ "message": "App deleted" })))
}
