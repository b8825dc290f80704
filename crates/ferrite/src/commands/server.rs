//! `ferrite server`: set up logging, bind the port, run until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;

use anyhow::Context;
use ferrite_model::redact;
use ferrite_server::{LogFormat, ServerConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    init_logging(&config)?;
    let config = config.with_secret_files()?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (PORT / --port)"))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        db_url = %redact::url(&config.db_url),
        "starting ferrite"
    );
    log_management_mode(&config);
    ferrite_server::run(config, listener, shutdown_signal()).await?;
    Ok(())
}

/// Who may use `/v1`, in one line, so that an operator sees at start whether
/// the node is open to the network (with a key) or to this machine only.
fn log_management_mode(config: &ServerConfig) {
    if config.jwt_auth_key.is_none() {
        tracing::info!(
            "management API (/v1): loopback clients only, no JWT_AUTH_KEY set; \
             set it (or JWT_AUTH_KEY_FILE) to manage this node from other machines"
        );
        return;
    }
    tracing::info!("management API (/v1): every client needs a token signed with JWT_AUTH_KEY");
    if config.jwt_auth_key_is_short() {
        tracing::warn!(
            "JWT_AUTH_KEY is shorter than {} bytes: a short key can be guessed offline \
             from one token; use a random key of at least that length",
            ServerConfig::RECOMMENDED_KEY_BYTES
        );
    }
}

fn init_logging(config: &ServerConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("LOG_LEVEL {:?} is not a valid log filter", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => builder.init(),
        // One JSON object per line: the event's fields at the top, the
        // request's (`request_id`, `call_id`) under `span` and, with any
        // spans around it, in `spans`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    Ok(())
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM (`docker stop`).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
