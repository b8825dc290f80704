//! ferrite-wire: what travels between Ferrite's processes, so that both ends
//! of each exchange share one definition of it.
//!
//! - [`frame`]: the frames the host and the init (`ferrite-init`) exchange
//!   over a cold container's stdin and stdout (`docs/init-protocol.md`).
//! - [`stdio_http`]: HTTP/1.1 over a hot function's stdin and stdout, spoken
//!   alike by the node's hot containers and by the watchdog in a service's
//!   task; [`HotOutcome`] is what one exchange gives.
//! - [`hop_by_hop`]: the headers that stay behind when a message is passed on.
//! - [`headers`]: the names of the headers and variables Ferrite adds for a
//!   function (`Fn-*` facts, the watchdog's key).
//!
//! It knows nothing of Docker, apps, routes or the store, and brings no
//! async runtime beyond what HTTP over a byte stream needs. Without its
//! default `http` feature only std is used (the frames and the names), which
//! is all the static init binary takes.
#![forbid(unsafe_code)]

pub mod frame;
pub mod headers;
#[cfg(feature = "http")]
pub mod hop_by_hop;
#[cfg(feature = "http")]
pub mod stdio_http;

#[cfg(feature = "http")]
pub use stdio_http::HotOutcome;
