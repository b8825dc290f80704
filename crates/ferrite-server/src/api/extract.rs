//! Extractors of the management API whose rejections are our error JSON
//! (axum's own answer in plain text).
//!
//! Bodies: the whole body, within the `/v1` size limit (`body_cap`), decoded from
//! `{"<key>":{...}}`. The `Content-Type` is not checked: IronFunctions
//! accepted `curl -d`, which sends `application/x-www-form-urlencoded`, and
//! its users' scripts do that.
//!
//! Also what the OpenAPI document says of these inputs: the body wrappers
//! and the URL's path parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use ferrite_model::{decode, ApiError, AppInput, KeyInput, RouteInput};
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

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

impl Wrapped for KeyInput {
    const KEY: &'static str = "key";
}

/// The body of `POST /v1/keys`: the key's fields under `key`.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it describes what `Body<KeyInput>` reads
pub struct KeyBody {
    key: KeyInput,
}

/// The body of `POST /v1/apps` and `PATCH /v1/apps/{app}`: the app's
/// fields under `app`.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it describes what `Body<AppInput>` reads
pub struct AppBody {
    app: AppInput,
}

/// The body of `POST /v1/apps/{app}/routes` and `PATCH` of a route: the
/// route's fields under `route`.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it describes what `Body<RouteInput>` reads
pub struct RouteBody {
    route: RouteInput,
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

/// `{app}` in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct AppParam {
    /// The app's name.
    app: String,
}

/// `{app}` and a route's `{path}` in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct RouteParams {
    /// The app's name.
    app: String,
    /// The route's path without its leading `/`; a nested path keeps its
    /// slashes (`a/b` for the route `/a/b`).
    path: String,
}

/// `{app}` and a call's `{id}` in a URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct CallParams {
    /// The app's name.
    app: String,
    /// The call's id (`Fn-Call-Id` of its answer).
    id: String,
}

/// A call's `{call}` id in a URL, alone (Fn v1's `/v1/calls/{call}`).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct CallIdParam {
    /// The call's id (`Fn-Call-Id` of its answer, `request_id` of a failed one).
    call: String,
}

/// `{app}` and a route's `{route}` in Fn v1's URL of a route's calls.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it describes what `Param` reads
pub struct RouteCallsParams {
    /// The app's name.
    app: String,
    /// The route's path without its leading `/` (which is the second slash
    /// of `calls//`): `hello` in `/v1/apps/myapp/calls//hello`; a nested
    /// path keeps its slashes.
    route: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    use utoipa::PartialSchema;

    /// The one property of a body wrapper's schema.
    fn key(schema: RefOr<Schema>) -> String {
        let RefOr::T(Schema::Object(object)) = schema else {
            panic!("not an object schema");
        };
        let keys: Vec<&String> = object.properties.keys().collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    }

    #[test]
    fn the_documented_wrappers_are_the_decoded_ones() {
        assert_eq!(key(AppBody::schema()), AppInput::KEY);
        assert_eq!(key(RouteBody::schema()), RouteInput::KEY);
        assert_eq!(key(KeyBody::schema()), KeyInput::KEY);
    }
}
