//! Ferrite's domain: apps, routes and call records as the v1 API shows them,
//! the request bodies that create and update them, their validation, the
//! function contract, and the error every layer speaks: a kind of failure
//! ([`ErrorKind`]) with a message ([`ApiError`]).
//!
//! It must not know I/O (no files, network, database or clock beyond
//! [`Millis::now`]), HTTP statuses (the server's API layer alone answers a
//! kind with a status) or Docker, so every rule about what a valid app or
//! route is lives in one place and is tested without a server or a database.
#![forbid(unsafe_code)]

pub mod app;
pub mod call;
pub mod confinement;
pub mod contract;
pub mod decode;
pub mod error;
pub mod key;
pub mod limits;
pub mod millis;
pub mod redact;
pub mod route;
pub mod route_view;
pub mod service;
pub mod validate;

pub use app::{App, AppInput};
pub use call::{Call, CallStatus, IllegalTransition};
pub use confinement::{Confinement, ConfinementInput, ConfinementSpec};
pub use error::{ApiError, ErrorKind};
pub use key::{Access, ApiKey, KeyInput};
pub use limits::{AppLimits, Limits, LimitsInput};
pub use millis::Millis;
pub use route::{
    Definition, FieldDiff, Format, HeaderRule, Headers, Route, RouteInput, RouteType, RouteVersion,
    TrafficEntry, TrafficInput,
};
pub use route_view::RouteView;
pub use service::{ServiceInput, ServiceSpec};

/// String map of configuration, handed to functions as environment variables.
/// A `BTreeMap` so that listings and JSON output are in a stable order.
pub type Config = std::collections::BTreeMap<String, String>;
