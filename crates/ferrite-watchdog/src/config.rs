//! The watchdog's settings: flags, each also read from the environment. The
//! watchdog's own knobs are `FERRITE_WATCHDOG_*`, so they cannot collide
//! with a function's config keys (which reach it as environment variables
//! too); the contract's values (`APP_NAME`, `ROUTE`, `FN_MEMORY`,
//! `FN_TIMEOUT`) keep their contract names: Ferrite sets them on a route's
//! service for the function, and the watchdog follows the same values.

use std::time::Duration;

use clap::{Args, ValueEnum};
use ferrite_model::Format;

/// `ferrite watchdog` settings.
#[derive(Debug, Clone, Args)]
pub struct WatchdogConfig {
    /// Port to serve calls on, on every interface.
    #[arg(long, env = "FERRITE_WATCHDOG_PORT", default_value_t = 8080)]
    pub port: u16,

    /// The function contract the command follows: `default` runs it once per
    /// call (body on stdin, stdout back); `http` keeps it running and speaks
    /// HTTP/1.1 with it over its stdin and stdout.
    #[arg(long, env = "FERRITE_WATCHDOG_FORMAT", value_enum, default_value_t = WatchdogFormat::Default)]
    pub format: WatchdogFormat,

    /// A call's time limit, in seconds (504 beyond; the function is killed).
    /// The contract's FN_TIMEOUT, which Ferrite sets on a route's service.
    #[arg(long, env = "FN_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// Calls served at once: processes for `default` (default: two per CPU,
    /// since most functions wait more than they compute), hot processes for
    /// `http` (default: 1). Further calls wait for a free one, for up to the
    /// timeout, then get 503.
    #[arg(long, env = "FERRITE_WATCHDOG_CONCURRENCY",
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: Option<u64>,

    /// How long running calls may take to finish after SIGTERM, in seconds;
    /// then the function processes are killed.
    #[arg(long, env = "FERRITE_WATCHDOG_GRACE", default_value_t = 10)]
    pub grace: u64,

    /// Largest request body, in bytes (413 beyond).
    #[arg(long, env = "FERRITE_WATCHDOG_MAX_REQUEST_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Largest function response, in bytes (502 beyond).
    #[arg(long, env = "FERRITE_WATCHDOG_MAX_RESPONSE_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// The function's APP_NAME when a call has no `Fn-App-Name` header.
    #[arg(long, env = "APP_NAME", default_value = "")]
    pub app_name: String,

    /// The function's ROUTE when a call has no `Fn-Route` header (default:
    /// the request's path).
    #[arg(long, env = "ROUTE")]
    pub route: Option<String>,

    /// The function's FN_MEMORY in MiB (default: the container's memory
    /// limit, if it has one).
    #[arg(long, env = "FN_MEMORY")]
    pub memory: Option<u64>,

    /// Log filter of the watchdog's own lines (on stderr, between the
    /// function's): `info`, `debug` (a line per call), `warn`.
    #[arg(long, env = "FERRITE_WATCHDOG_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Take calls from anyone, without Ferrite's key: for a service image
    /// run by hand. Ignored when FERRITE_WATCHDOG_KEY is set (Ferrite sets
    /// it on the services it makes; then only calls with that key are
    /// taken). Without either, the watchdog does not start.
    #[arg(long, env = "FERRITE_WATCHDOG_NO_KEY", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_key: bool,

    /// The key a call must carry (FERRITE_WATCHDOG_KEY). Read from the
    /// environment by the binary, never a flag: a flag's value shows in the
    /// process list.
    #[arg(skip)]
    pub key: Option<String>,

    /// The function's command: the image's entrypoint and cmd, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// The function contract the command follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchdogFormat {
    Default,
    Http,
}

impl WatchdogFormat {
    pub fn format(self) -> Format {
        match self {
            WatchdogFormat::Default => Format::Default,
            WatchdogFormat::Http => Format::Http,
        }
    }
}

impl WatchdogConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace)
    }

    /// The concurrency asked for, or the format's default.
    pub fn concurrency(&self) -> usize {
        let asked = self.concurrency.and_then(|n| usize::try_from(n).ok());
        asked.unwrap_or_else(|| match self.format {
            WatchdogFormat::Http => 1,
            WatchdogFormat::Default => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                2 * cpus
            }
        })
    }
}

/// The container's memory limit in MiB, from its cgroup (v2, then v1);
/// `None` when unlimited or unknown.
pub fn cgroup_memory_mib() -> Option<u64> {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = || std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let bytes: u64 = v2.or_else(v1)?.trim().parse().ok()?;
    // cgroup v1 says "unlimited" with a huge number.
    (bytes < 1 << 50).then_some(bytes / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: WatchdogConfig,
    }

    fn parse(args: &[&str]) -> Result<WatchdogConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("watchdog").chain(args.iter().copied()))
            .map(|cli| cli.config)
    }

    #[test]
    fn the_command_follows_the_flags_with_or_without_a_separator() {
        let config = parse(&["--format", "http", "--", "/bin/sh", "-c", "x --port 1"]).unwrap();
        assert_eq!(config.format, WatchdogFormat::Http);
        assert_eq!(config.command, ["/bin/sh", "-c", "x --port 1"]);
        assert_eq!(config.concurrency(), 1);
        let config = parse(&["--timeout", "5", "cat", "-n"]).unwrap();
        assert_eq!(config.command, ["cat", "-n"]);
        assert_eq!(config.timeout(), Duration::from_secs(5));
        assert!(config.concurrency() >= 2);
    }

    #[test]
    fn a_command_is_required_and_limits_are_checked() {
        assert!(parse(&["--format", "http"]).is_err());
        assert!(parse(&["--timeout", "0", "cat"]).is_err());
        assert!(parse(&["--concurrency", "0", "cat"]).is_err());
        assert!(parse(&["--format", "json", "cat"]).is_err());
    }
}
