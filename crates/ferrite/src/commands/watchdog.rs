//! `ferrite watchdog`: the entry point of a service image. Read the key
//! from the environment, set up logging, start the function's processes,
//! then bind the port (so that accepting connections means ready) and serve
//! until SIGTERM or SIGINT. (`main` made the process non-dumpable with no
//! new privileges before any thread started.)

use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use ferrite_watchdog::{Watchdog, WatchdogConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

pub async fn run(mut config: WatchdogConfig) -> anyhow::Result<()> {
    // The key comes only from the environment (a flag would show in the
    // process list); the function's processes do not get it.
    config.key = std::env::var(ferrite_wire::headers::WATCHDOG_KEY_ENV).ok();
    let filter = EnvFilter::try_new(&config.log_level).with_context(|| {
        format!(
            "FERRITE_WATCHDOG_LOG_LEVEL {:?} is not a valid log filter",
            config.log_level
        )
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let watchdog = Watchdog::start(&config).await?;
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (FERRITE_WATCHDOG_PORT / --port)"))?;
    tracing::info!(%addr, "watchdog listening");
    watchdog
        .serve(listener, super::server::shutdown_signal())
        .await?;
    Ok(())
}
