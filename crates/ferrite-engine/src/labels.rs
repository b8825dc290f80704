//! Labels on every container Ferrite creates, so that its own containers
//! can be found again (leftovers after a crash, hygiene checks).

/// Present (`"true"`) on every container Ferrite creates.
pub const MANAGED: &str = "org.ferrite.managed";
/// The node (`FERRITE_NODE_ID`) that created the container.
pub const NODE: &str = "org.ferrite.node";
pub const APP: &str = "org.ferrite.app";
pub const ROUTE: &str = "org.ferrite.route";
/// The call the container was created for; empty for a container started
/// ahead of its call (labels are fixed at creation): the server's log line
/// of each call names its container.
pub const CALL_ID: &str = "org.ferrite.call_id";
/// `cold` for per-call containers, `hot` for containers of `format: http` routes.
pub const KIND: &str = "org.ferrite.kind";
