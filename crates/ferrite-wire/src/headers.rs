//! Names of what Ferrite adds to a call on its way to a function: the
//! `Fn-*` request headers that carry a call's facts, and the key by which a
//! service's watchdog knows a call comes from Ferrite. The values are built
//! by the sender (`ferrite_model::contract`, the Swarm code); only the names
//! live here, shared by the side that writes them and the side that reads
//! them.

/// Ferrite's `Fn-*` request headers: the facts of a call that the request
/// itself cannot say, sent to hot functions and to service tasks (whose
/// watchdog reads them). They are facts, not client headers, so they never
/// become `HEADER_*` variables.
pub const FN_CALL_ID: &str = "fn-call-id";
pub const FN_APP_NAME: &str = "fn-app-name";
/// The route's path.
pub const FN_ROUTE: &str = "fn-route";
/// The URL as the client used it.
pub const FN_REQUEST_URL: &str = "fn-request-url";
/// The client's method.
pub const FN_METHOD: &str = "fn-method";
pub const FACT_HEADERS: [&str; 5] = [FN_CALL_ID, FN_APP_NAME, FN_ROUTE, FN_REQUEST_URL, FN_METHOD];

/// The task's environment variable that holds a service's watchdog key. The
/// watchdog reads it at start and keeps it from the function's processes.
pub const WATCHDOG_KEY_ENV: &str = "FERRITE_WATCHDOG_KEY";

/// The request header Ferrite sends the key in; the watchdog removes it
/// before the function sees the request.
pub const WATCHDOG_KEY_HEADER: &str = "ferrite-watchdog-key";

/// Set by the watchdog on its answer to a call without the right key, so
/// that a Ferrite node holding an outdated key (the service was made again
/// through another node) knows to read it again.
pub const KEY_REFUSED_HEADER: &str = "ferrite-watchdog-refused";
