//! ferrite-engine: Ferrite's side of the Docker Engine API on one node.
//! Connecting as the docker CLI does, images (pulled only when missing,
//! with registry credentials), and the function containers of calls: cold
//! calls (`format: default`) through containers started ahead of the call,
//! hot calls (`format: http`) through long-lived containers, within a
//! node-wide memory budget; and what the node does when the engine goes
//! away.
//!
//! Only the Engine API is used (bollard), never the `docker` CLI, so every
//! feature works against a remote engine exactly as against the local one.
//! What crosses into a container is ferrite-wire's (the init's frames, HTTP
//! over stdio). It knows nothing of the store, of HTTP routing or auth, nor
//! of Swarm services (ferrite-swarm, which builds on this crate's
//! connection and labels): it runs what it is given.
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
mod hot;
mod image;
mod init;
pub mod labels;
mod pool;
mod socket_dir;
mod timings;

pub use admission::MemoryPermit;
pub use call_log::{CapturedLog, PendingLog};
pub use cold::{ColdCall, Outcome, Status};
pub use connect::ConnectSettings;
pub use credentials::{registry_of, Credentials};
pub use engine::{Engine, EngineSettings};
pub use error::{docker_reason, EngineError};
pub use hot::{
    HotBody, HotCall, HotReply, HotRoute, HotStreamCall, StreamCut, StreamEnd, StreamEnded,
};
pub use image::ImageMoved;
pub use socket_dir::SocketDir;
pub use timings::{RouteContainers, Timings};
