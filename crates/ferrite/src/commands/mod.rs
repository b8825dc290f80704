//! One module per top-level command; `args` holds what several of them
//! parse alike.

pub mod apps;
mod args;
pub mod calls;
pub mod routes;
pub mod server;
pub mod services;
pub mod version;
pub mod watchdog;
