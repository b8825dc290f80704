//! Extractors of the management API whose rejections are our error JSON
//! (axum's own answer in plain text).
//!
//! Bodies: the whole body, within the `/v1` size limit (`body_cap`), decoded from
//! `{"<key>":{...}}`. The `Content-Type` is not checked: IronFunctions
//! accepted `curl -d`, which sends `application/x-www-form-urlencoded`, and
//! its users' scripts do that.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use ferrite_model::{decode, ApiError, AppInput, RouteInput};
use serde::de::DeserializeOwned;

use super::body_cap::BodyCap;
use super::Error;

/// An input type and the key that wraps it in a request body.
pub trait Wrapped: DeserializeOwned {
    const KEY: &'static str;
}

impl Wrapped for AppInput {
    const KEY: &'static str = "app";
}

impl Wrapped for RouteInput {
    const KEY: &'static str = "route";
}

/// A decoded `{"app":{...}}` or `{"route":{...}}` body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: Wrapped> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let cap = req.extensions().get::<BodyCap>().copied();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match cap {
                Some(cap) => cap.body_error(&rejection),
                None => ApiError::bad_request(rejection.body_text()),
            })?;
        Ok(Body(decode::wrapped(&bytes, T::KEY)?))
    }
}

/// URL path parameters (`{app}`, `{*path}`).
pub struct Param<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Param<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Param(value))
            .map_err(|e| invalid("URL path", e.body_text()))
    }
}

/// The URL query string.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| invalid("query string", e.body_text()))
    }
}

/// A request part that axum could not read, as our error: `what` it was and
/// axum's reason.
fn invalid(what: &str, reason: String) -> Error {
    ApiError::bad_request(format!("invalid {what}: {reason}")).into()
}
