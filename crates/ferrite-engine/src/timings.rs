//! How long the parts of one call took on the engine's side. The engine
//! measures them where they happen and hands them back with the call's
//! result; it keeps no metrics itself (the server decides what to record).

use std::time::Duration;

/// The engine's share of one call, phase by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Waiting for the node's memory or for a free slot of the route's hot
    /// containers. A cold call that waits for a container counts its whole
    /// wait as `container`: memory is taken by the starts, and the one that
    /// serves the call may have been asked for by another.
    pub admission: Duration,
    /// Taking a container, or starting one when none was ready.
    pub container: Duration,
    /// The function with the call: from the request handed over to the
    /// answer read.
    pub run: Duration,
    /// Whether the call waited for a container (none was ready when it
    /// came); it took the first of its route that became ready.
    pub cold_start: bool,
}

/// Containers of one route on this node at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteContainers {
    pub app: String,
    /// The route's path.
    pub path: String,
    /// Cold containers started ahead, waiting for a call.
    pub prestarted: usize,
    /// Hot containers waiting for a call.
    pub hot_idle: usize,
    /// Hot containers serving a call.
    pub hot_busy: usize,
}
