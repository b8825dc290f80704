//! A route: an image bound to a path of an app, with how to run it.
//!
//! This module holds the route as stored and shown, its enums and bounds;
//! `input` reads and validates a creation request, `patch` applies a
//! PATCH, and `sections` holds the rules that tie the route's `service`
//! and `confinement` sections to the rest of it; `version` holds its
//! versions and the traffic shared between them.

mod input;
mod patch;
mod sections;
pub mod version;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::confinement::{Confinement, ConfinementSpec};
use crate::error::text;
use crate::service::ServiceSpec;
use crate::{validate, ApiError, Config};

pub use input::RouteInput;
pub use version::{Definition, FieldDiff, HeaderRule, RouteVersion, TrafficEntry, TrafficInput};

/// Response headers a route adds to every answer (a header may repeat).
pub type Headers = BTreeMap<String, Vec<String>>;

pub const DEFAULT_MEMORY_MIB: u64 = 128;
pub const DEFAULT_TIMEOUT_S: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 30;
pub const DEFAULT_MAX_CONCURRENCY: u64 = 1;
/// Upper bounds: far above real use, low enough that arithmetic on them
/// (budgets, deadlines) cannot overflow.
pub const MAX_MEMORY_MIB: u64 = 1024 * 1024;
/// Docker refuses memory limits below 6 MiB.
pub const MIN_MEMORY_MIB: u64 = 6;
pub const MAX_TIMEOUT_S: u64 = 24 * 3600;
pub const MAX_CONCURRENCY: u64 = 10_000;
/// Most times a failed async call is run again: a function that failed ten
/// times in a row will not be saved by an eleventh, and every retry holds a
/// worker for up to a whole timeout.
pub const MAX_RETRIES: u32 = 10;

/// Whether the caller waits for the answer (`sync`) or gets a call id back (`async`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Sync,
    Async,
}

/// How the function talks: one container per call (`default`) or a hot
/// container serving HTTP over stdio (`http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Default,
    Http,
}

impl RouteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Sync => "sync",
            RouteType::Async => "async",
        }
    }

    fn parse(value: &str) -> Result<Self, ApiError> {
        validate::choice(
            "route type",
            value,
            &[("sync", RouteType::Sync), ("async", RouteType::Async)],
        )
        .map_err(|_| ApiError::bad_request(text::ROUTE_TYPE_INVALID))
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Default => "default",
            Format::Http => "http",
        }
    }

    fn parse(value: &str) -> Result<Self, ApiError> {
        validate::choice(
            "route format",
            value,
            &[("default", Format::Default), ("http", Format::Http)],
        )
        .map_err(|_| ApiError::bad_request(text::ROUTE_FORMAT_INVALID))
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route as stored and as the API shows it (IronFunctions' field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Route {
    pub app_name: String,
    pub path: String,
    pub image: String,
    /// Memory limit of the function's container, in MiB.
    pub memory: u64,
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub format: Format,
    /// Most hot containers of this route per node.
    pub max_concurrency: u64,
    /// Wall-clock limit of one call, in seconds.
    pub timeout: u64,
    /// Seconds a hot container may wait for work before it is stopped.
    pub idle_timeout: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, Vec<String>>>))]
    pub headers: Option<Headers>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub config: Option<Config>,
    /// When set, calls need an HS256 bearer token signed with this key.
    /// Left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_key: Option<String>,
    /// How many times an async call whose function fails is run again
    /// (`0..=`[`MAX_RETRIES`]). Not an IronFunctions field, so it defaults
    /// to 0 when a stored or older document lacks it.
    #[serde(default)]
    pub max_retries: u32,
    /// When set, the route runs as a Docker Swarm service (see
    /// [`ServiceSpec`]) instead of in containers. Left out of the JSON when
    /// unset, so IronFunctions clients see the documents they know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// What the function's containers may do beyond Ferrite's confined
    /// default (see [`ConfinementSpec`]); `None` is the default, which
    /// [`Route::confinement`] resolves. Left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<ConfinementSpec>,
    /// The route's newest version (see [`version`]): 1 when created, one
    /// more for each change of its definition. Set by Ferrite; a request's
    /// value is ignored.
    #[serde(default)]
    pub version: u32,
    /// How the route's calls are shared between its versions; `None` (left
    /// out of the JSON): the newest version takes them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Vec<TrafficEntry>>,
}

impl Route {
    /// The confinement of this route's containers and services: its section
    /// (or the defaults) resolved against its memory.
    pub fn confinement(&self) -> Confinement {
        Confinement::resolve(self.confinement.as_ref(), self.memory)
    }
}

/// A creation or PATCH body as the API receives it inside `"route"`.
#[cfg(test)]
fn input(json: &str) -> RouteInput {
    serde_json::from_str(json).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let route = Route::create(
            "myapp",
            input(r#"{"path":"/hello-sync","image":"ferrite/hello"}"#),
        )
        .unwrap();
        assert_eq!(route.memory, 128);
        assert_eq!(route.kind, RouteType::Sync);
        assert_eq!(route.format, Format::Default);
        assert_eq!(route.max_concurrency, 1);
        assert_eq!(route.timeout, 30);
        assert_eq!(route.idle_timeout, 30);
        assert_eq!(route.max_retries, 0);
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["type"], "sync");
        assert!(json.get("jwt_key").is_none());
        assert_eq!(json["max_retries"], 0);
    }

    #[test]
    fn max_retries_defaults_when_deserializing_old_documents() {
        let old = r#"{"app_name":"myapp","path":"/a","image":"x","memory":128,"type":"async",
            "format":"default","max_concurrency":1,"timeout":30,"idle_timeout":30,
            "headers":null,"config":null}"#;
        let route: Route = serde_json::from_str(old).unwrap();
        assert_eq!(route.max_retries, 0);
    }
}
