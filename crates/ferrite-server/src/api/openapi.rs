//! The OpenAPI 3 document of the HTTP API, served at `GET /v1/openapi.json`.
//!
//! No route is listed here: the router registers every handler through
//! utoipa-axum's `routes!`, which takes the path and methods from the
//! handler's own `#[utoipa::path]`, so a handler is served exactly where the
//! document says. This module holds the rest of the document: its title and
//! tags, the security schemes, the token requirement of the groups behind
//! the management gate, OpenAPI's spelling of axum's wildcard paths, and the
//! entries of the dashboard, whose static pages are plain axum routes.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

use super::error::ErrorBody;

/// The scheme of `/v1` and `/metrics`.
pub const MANAGEMENT_SCHEME: &str = "management_token";
/// The scheme of a route with a `jwt_key`.
pub const ROUTE_SCHEME: &str = "route_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Ferrite",
        description = "Ferrite's HTTP API: the v1 management API (apps, routes, calls, \
            services), function calls under /r, and the node's own endpoints. Every error \
            answer is `{\"error\":{\"message\":...}}`, unknown paths (404) and methods (405) \
            included; every answer carries `Fn-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "apps", description = "Apps: named groups of routes that share configuration and limits"),
        (name = "routes", description = "Routes: an image bound to a path of an app, and how it runs"),
        (name = "calls", description = "The call history, the log and output of calls, cancelling queued calls"),
        (name = "dead letters", description = "Async calls that failed for good, kept with their requests: listed, inspected, replayed, dropped"),
        (name = "keys", description = "Per-app API keys: issued, listed and revoked by the operator"),
        (name = "schedules", description = "Cron schedules of a route: each tick queues one async call, once across the nodes"),
        (name = "services", description = "Routes that run as Swarm services on this node"),
        (name = "invoke", description = "Calling functions: sync calls answer with the function's answer, async calls with a call id"),
        (name = "system", description = "The node: ping, version, health, metrics, this document"),
        (name = "dashboard", description = "The dashboard's static page; its data comes from /v1 and /metrics"),
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// The document as the router built it, for the handler below.
pub type Document = Arc<OpenApi>;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json")))]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    Json(&*document).into_response()
}

/// Both bearer schemes: HS256 JWTs, one signed with the node's key, one
/// with a route's.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            MANAGEMENT_SCHEME,
            bearer(
                "An HS256 JWT signed with the node's JWT_AUTH_KEY, with `exp`. While no key is \
                 set, loopback clients need no token and every other client is refused (401). \
                 Or a per-app key (`fk_...`, from POST /v1/keys): it reaches its app's paths \
                 with the methods its access allows, and is refused elsewhere (403).",
            ),
        );
        components.add_security_scheme(
            ROUTE_SCHEME,
            bearer("An HS256 JWT signed with the route's `jwt_key`, for routes that have one."),
        );
    }
}

/// Mark every operation of `document` as behind the management gate: the
/// token scheme, and the gate's 401.
pub fn require_management_token(document: &mut OpenApi) {
    let unauthorized = ResponseBuilder::new()
        .description(
            "No valid token (or, without JWT_AUTH_KEY, a client not on the node's loopback)",
        )
        .header(
            "WWW-Authenticate",
            utoipa::openapi::header::HeaderBuilder::new()
                .schema(String::schema())
                .build(),
        )
        .content("application/json", error_content())
        .build();
    let forbidden = ResponseBuilder::new()
        .description("An app key beyond its reach: another app, a method its access lacks, or an endpoint of the operator's")
        .content("application/json", error_content())
        .build();
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            operation.security = Some(vec![SecurityRequirement::new(
                MANAGEMENT_SCHEME,
                Vec::<String>::new(),
            )]);
            operation
                .responses
                .responses
                .insert("401".to_string(), unauthorized.clone().into());
            operation
                .responses
                .responses
                .entry("403".to_string())
                .or_insert_with(|| forbidden.clone().into());
        }
    }
}

/// The finishing touch on the whole document: axum's wildcard `{*path}` is
/// OpenAPI's `{path}` (its parameter says that it may hold slashes).
pub fn finish(document: &mut OpenApi) {
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
}

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build()
}

/// Every operation of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}
