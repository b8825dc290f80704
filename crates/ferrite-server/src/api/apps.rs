//! `/v1/apps`: create, list, load, update and delete apps.

use axum::extract::State;
use axum::Json;
use ferrite_model::{App, AppInput};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Body, Param, Query};
use super::{AppState, Error};
use crate::changes::Change;

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
    // App config is part of every route's environment: the containers of
    // the app's routes go, on every node.
    state.changes.made(Change::App { app: name.clone() }).await;
    tracing::info!(app = %name, "app updated");
    if let Ok(services) = &state.services {
        if let Err(e) = services.refresh_app(&app).await {
            tracing::warn!(app = %name, error = %e, "the app's services do not match it yet");
        }
    }
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
    state.store.delete_app(&name, query.cascade).await?;
    // The routes going with the app take their containers with them.
    state.changes.made(Change::App { app: name.clone() }).await;
    tracing::info!(app = %name, cascade = query.cascade, "app deleted");
    if let Ok(services) = &state.services {
        if let Err(e) = services.remove_app(&name).await {
            tracing::warn!(app = %name, error = %e, "the app's services are not all removed");
        }
    }
    Ok(Json(json!({ "message": "App deleted" })))
}
