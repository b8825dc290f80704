//! OpenFaaS' gateway API over Ferrite's apps and routes, so that OpenFaaS'
//! clients and scripts work against a Ferrite node: a function `NAME` is the
//! app `NAME` with one route, `/function`, served as a Swarm service
//! (docs/openfaas.md). Its answers have OpenFaaS' shapes (`shapes`) and its
//! errors are plain text, as OpenFaaS' gateway gives them; it is described
//! by OpenFaaS' own swagger, not by Ferrite's OpenAPI document.
//!
//! `/system/*` is behind the `/v1` gate (HTTP Basic accepted too, as
//! `faas-cli login` sends it); `/function/*` and `/async-function/*` are
//! calls, admitted as `/r` admits them.

mod calls;
mod functions;
mod info;
mod mapping;
mod shapes;

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{middleware, Router};

use super::{auth, body_cap, AppState, Error};

/// A failure answered in plain text ([`Error::as_text`]).
pub struct Text(Error);

impl<E: Into<Error>> From<E> for Text {
    fn from(err: E) -> Text {
        Text(err.into())
    }
}

impl IntoResponse for Text {
    fn into_response(self) -> Response {
        self.0.as_text()
    }
}

/// Every OpenFaaS endpoint, with its gate and body cap.
pub fn router(state: &AppState) -> Router<AppState> {
    let system = Router::new()
        .route(
            "/system/functions",
            get(functions::list)
                .post(functions::deploy)
                .put(functions::update)
                .delete(functions::remove),
        )
        .route("/system/function/{name}", get(functions::get))
        .route("/system/scale-function/{name}", post(functions::scale))
        .route("/system/info", get(info::info))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.api_body,
            body_cap::enforce,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::guard_openfaas,
        ))
        // Outside the gate, so that refused requests are counted too.
        .route_layer(middleware::from_fn(crate::metrics::api::record));
    let calls = Router::new()
        .route("/function/{name}", any(calls::sync))
        .route("/function/{name}/{*path}", any(calls::sync))
        .route("/async-function/{name}", any(calls::queued))
        .route("/async-function/{name}/{*path}", any(calls::queued))
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.call_body,
            body_cap::enforce,
        ));
    system.merge(calls).route("/healthz", get(info::healthz))
}
