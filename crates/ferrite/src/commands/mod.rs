//! One module per top-level command.

pub mod apps;
pub mod routes;
pub mod server;
pub mod version;
