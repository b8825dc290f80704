//! One module per top-level command.

pub mod apps;
pub mod calls;
pub mod routes;
pub mod server;
pub mod services;
pub mod version;
pub mod watchdog;
