//! `/system/info` and `/healthz`: what OpenFaaS' clients ask of a gateway
//! before anything else.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::shapes::{Info, Provider, VersionInfo};
use crate::api::{system, AppState};

/// Ferrite is both the gateway and the provider: one version for both.
const VERSION: VersionInfo = VersionInfo {
    release: env!("CARGO_PKG_VERSION"),
    sha: "",
    commit_message: "",
};

/// `GET /system/info`
pub async fn info() -> Json<Info> {
    Json(Info {
        provider: Provider {
            provider: "ferrite",
            orchestration: "swarm",
            version: VERSION,
        },
        version: VERSION,
        arch: std::env::consts::ARCH,
    })
}

/// `GET /healthz`: `/health`'s verdict (the engine answers) as OpenFaaS'
/// gateway gives it, `OK` or the reason in plain text.
pub async fn healthz(state: State<AppState>) -> Response {
    match system::health(state).await {
        Ok(_) => "OK".into_response(),
        Err(e) => e.as_text(),
    }
}
