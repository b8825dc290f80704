//! The server's configuration: one struct, read once from flags and the
//! environment in `main`, then passed down as a value.

use std::net::IpAddr;

use clap::{Args, ValueEnum};

/// `ferrite server` settings. Every flag also reads the environment variable
/// named in its help (IronFunctions' names where it had them).
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Port of the HTTP API.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind the HTTP API to.
    #[arg(long, env = "FERRITE_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Where apps and routes are stored: `sqlite://path/to/file.db`.
    #[arg(long, env = "DB_URL", default_value = "sqlite://./data/ferrite.db")]
    pub db_url: String,

    /// Log filter: a level (`info`, `debug`) or per-module directives
    /// (`info,ferrite_server=debug`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log lines as text for people or JSON for collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// When set, every /v1 request needs `Authorization: Bearer <JWT>`
    /// signed (HS256) with this key.
    #[arg(long, env = "JWT_AUTH_KEY", hide_env_values = true)]
    pub jwt_auth_key: Option<String>,

    /// Largest request body accepted on /v1, in bytes.
    #[arg(long, env = "API_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub api_max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
