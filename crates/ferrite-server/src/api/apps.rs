//! `/v1/apps`: create, list, load, update and delete apps.

use axum::extract::State;
use axum::{Extension, Json};
use ferrite_model::{App, AppInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::extract::{AppBody, AppParam, Body, Param, Query};
use super::key_gate::KeyScope;
use super::{AppState, Error, Message};
use crate::changes::Change;

/// The answer of `GET /v1/apps`.
#[derive(Serialize, ToSchema)]
pub struct AppList {
    message: &'static str,
    /// Every app, by name.
    apps: Vec<App>,
}

/// The answer about one app: created, loaded or updated.
#[derive(Serialize, ToSchema)]
pub struct AppAnswer {
    message: &'static str,
    app: App,
}

/// List every app; asked with an app key, its app alone.
#[utoipa::path(get, path = "/apps", tag = "apps",
    responses((status = 200, description = "Every app, by name (with an app key: its app)", body = AppList)))]
pub async fn list(
    State(state): State<AppState>,
    scope: Option<Extension<KeyScope>>,
) -> Result<Json<AppList>, Error> {
    let apps = match scope {
        Some(Extension(scope)) => vec![state.store.get_app(&scope.app).await?],
        None => state.store.list_apps().await?,
    };
    Ok(Json(AppList {
        message: "Successfully listed applications",
        apps,
    }))
}

/// Create an app.
#[utoipa::path(post, path = "/apps", tag = "apps", request_body = AppBody,
    responses(
        (status = 200, description = "The app, created", body = AppAnswer),
        (status = 400, description = "A name or setting breaks its rule, or the body is not JSON", body = ErrorBody),
        (status = 409, description = "An app of that name exists", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Body(input): Body<AppInput>,
) -> Result<Json<AppAnswer>, Error> {
    let app = App::create(input)?;
    state.store.create_app(&app).await?;
    tracing::info!(app = %app.name, "app created");
    Ok(Json(AppAnswer {
        message: "App successfully created",
        app,
    }))
}

/// Load an app.
#[utoipa::path(get, path = "/apps/{app}", tag = "apps", params(AppParam),
    responses(
        (status = 200, description = "The app", body = AppAnswer),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Param(name): Param<String>,
) -> Result<Json<AppAnswer>, Error> {
    let app = state.store.get_app(&name).await?;
    Ok(Json(AppAnswer {
        message: "Successfully loaded app",
        app,
    }))
}

/// Update an app: `config` keys are merged (`""` removes one), so are
/// `limits` (`null` removes one, or the whole section); the name cannot change.
#[utoipa::path(patch, path = "/apps/{app}", tag = "apps", params(AppParam), request_body = AppBody,
    responses(
        (status = 200, description = "The app, updated", body = AppAnswer),
        (status = 400, description = "A setting breaks its rule, or the body renames the app", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 413, description = "The body is over `API_MAX_BODY_BYTES`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Param(name): Param<String>,
    Body(patch): Body<AppInput>,
) -> Result<Json<AppAnswer>, Error> {
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
    Ok(Json(AppAnswer {
        message: "App successfully updated",
        app,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete the app's routes with it; without it, an app with routes is not deleted (400).
    #[serde(default)]
    cascade: bool,
}

/// Delete an app.
#[utoipa::path(delete, path = "/apps/{app}", tag = "apps", params(AppParam, DeleteQuery),
    responses(
        (status = 200, description = "The app is gone", body = Message),
        (status = 400, description = "The app has routes and `cascade` is not set", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Param(name): Param<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<Message>, Error> {
    remove(&state, &name, query.cascade).await?;
    Ok(Json(Message {
        message: "App deleted",
    }))
}

/// Delete app `name` (with its routes when `cascade`), its containers and
/// services with it.
pub(super) async fn remove(state: &AppState, name: &str, cascade: bool) -> Result<(), Error> {
    state.store.delete_app(name, cascade).await?;
    // The routes going with the app take their containers with them.
    state
        .changes
        .made(Change::App {
            app: name.to_string(),
        })
        .await;
    tracing::info!(app = %name, cascade, "app deleted");
    if let Ok(services) = &state.services {
        if let Err(e) = services.remove_app(name).await {
            tracing::warn!(app = %name, error = %e, "the app's services are not all removed");
        }
    }
    Ok(())
}
