//! Async calls: accepted with a call id, kept in the durable queue, run by
//! the workers of whichever node reserves them. Calls are accepted in
//! groups, one commit per group ([`intake`]).

pub mod callback;
pub mod intake;
mod task;
mod worker;

pub use callback::Callbacks;
pub use intake::Intake;
pub use task::QueuedCall;
pub use worker::{WorkerSettings, Workers};
