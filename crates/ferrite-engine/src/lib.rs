//! Ferrite's side of the Docker Engine API: connecting as the docker CLI
//! does, images (pulled only when missing, with registry credentials), and
//! cold calls (`format: default`) through containers started ahead of the
//! call, within a node-wide memory budget.
//!
//! Only the Engine API is used (bollard), never the `docker` CLI, so every
//! feature works against a remote engine exactly as against the local one.
#![forbid(unsafe_code)]

mod admission;
mod attach_io;
mod call_log;
mod cold;
mod confine;
mod connect;
mod container;
mod credentials;
mod engine;
mod error;
mod health;
pub mod hop_by_hop;
mod hot;
mod image;
mod init;
pub mod labels;
mod pool;
pub mod service_image;
mod socket_dir;
pub mod stdio_http;
pub mod swarm;

pub use admission::MemoryPermit;
pub use call_log::{CapturedLog, PendingLog};
pub use cold::{ColdCall, Outcome, Status};
pub use connect::ConnectSettings;
pub use engine::{Engine, EngineSettings};
pub use error::EngineError;
pub use hot::{HotCall, HotOutcome, HotRoute};
pub use socket_dir::SocketDir;
