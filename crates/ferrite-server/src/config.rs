//! The server's configuration: one struct, read once from flags and the
//! environment in `main`, then passed down as a value (its secret files
//! read in first: [`secrets`]).

mod node_id;
mod secrets;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ferrite_engine::SocketDir;

pub use node_id::NodeIdError;

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

    /// Threads running the node's async work (HTTP, forwarding to tasks,
    /// the engine's and the store's clients). Default: half the machine's
    /// cores, at least one. The node shares its cores with the functions it
    /// runs, and a thread more mostly buys wake-ups between threads: on two
    /// cores one thread spent 93 µs of CPU per call forwarded to a service
    /// and 83 per hot call, two spent 127-147 and 94 (docs/benchmarks.md).
    #[arg(long, env = "FERRITE_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Where apps and routes are stored: `sqlite://path/to/file.db` or
    /// `postgres://user@host/db` (its password is better in DB_PASSWORD_FILE).
    #[arg(
        long,
        env = "DB_URL",
        default_value = "sqlite://./data/ferrite.db",
        hide_env_values = true
    )]
    pub db_url: String,

    /// A file holding the password of DB_URL's user (a Docker secret); one
    /// trailing newline is ignored. Default: none (the password, if any, is in DB_URL).
    #[arg(long, env = "DB_PASSWORD_FILE")]
    pub db_password_file: Option<PathBuf>,

    /// Log filter: a level (`info`, `debug`) or per-module directives
    /// (`info,ferrite_server=debug`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log lines as text for people or JSON for collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// When set, every /v1 request, from any address, needs
    /// `Authorization: Bearer <JWT>` signed (HS256) with this key (32 bytes or
    /// more). Default: unset, and /v1 answers only clients on the loopback
    /// interface.
    #[arg(long, env = "JWT_AUTH_KEY", hide_env_values = true)]
    pub jwt_auth_key: Option<String>,

    /// A file holding JWT_AUTH_KEY (a Docker secret); one trailing newline is
    /// ignored. Default: none.
    #[arg(long, env = "JWT_AUTH_KEY_FILE")]
    pub jwt_auth_key_file: Option<PathBuf>,

    /// The receivers async calls may name in `X-Callback-Url`: a
    /// comma-separated list of `host` or `host:port`. Default: none, and a
    /// call that names a callback is refused (400).
    #[arg(long, env = "FERRITE_CALLBACK_HOSTS", value_delimiter = ',')]
    pub callback_hosts: Vec<String>,

    /// The key callbacks are signed with (HMAC-SHA256 in
    /// `X-Ferrite-Signature`), at least 32 bytes. Default: none, and
    /// callbacks are off.
    #[arg(long, env = "FERRITE_CALLBACK_KEY", hide_env_values = true)]
    pub callback_key: Option<String>,

    /// A file holding FERRITE_CALLBACK_KEY (a Docker secret); one trailing
    /// newline is ignored. Default: none.
    #[arg(long, env = "FERRITE_CALLBACK_KEY_FILE")]
    pub callback_key_file: Option<PathBuf>,

    /// Largest request body accepted on /v1, in bytes.
    #[arg(long, env = "API_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub api_max_body_bytes: usize,

    /// How long a client has to send a request's headers, and how long a
    /// kept-alive connection may sit idle between requests, before the
    /// server closes it: a duration such as `10s`.
    #[arg(long, env = "FERRITE_HEADER_READ_TIMEOUT", default_value = "10s",
          value_parser = retention)]
    pub header_read_timeout: Duration,

    /// Largest request head (request line and headers), in bytes; beyond it
    /// the answer is 431 and the connection is closed.
    #[arg(long, env = "FERRITE_MAX_HEADER_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=256 * 1024))]
    pub max_header_bytes: u64,

    /// Most headers in one request; beyond it the answer is 431 and the
    /// connection is closed.
    #[arg(long, env = "FERRITE_MAX_HEADERS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_headers: u64,

    /// Most client connections open at once; more wait in the listen backlog
    /// until one closes. Lowered at start to fit the process's open-files
    /// limit (three quarters of it).
    #[arg(long, env = "FERRITE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Calls of one app being answered at once on this node, unless the app
    /// sets its own `limits.max_in_flight` (0: no limit).
    #[arg(long, env = "FERRITE_APP_MAX_IN_FLIGHT", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=ferrite_model::limits::MAX_IN_FLIGHT))]
    pub app_max_in_flight: u64,

    /// Calls of one app per second on this node, unless the app sets its own
    /// `limits.rate` (0: no limit).
    #[arg(long, env = "FERRITE_APP_RATE", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=ferrite_model::limits::MAX_RATE))]
    pub app_rate: u64,

    /// Calls of one app accepted at once above its rate (0: one second's
    /// worth of the rate), unless the app sets its own `limits.burst`.
    #[arg(long, env = "FERRITE_APP_BURST", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=ferrite_model::limits::MAX_BURST))]
    pub app_burst: u64,

    /// Async calls of one app waiting in the queue, at most, unless the app
    /// sets its own `limits.max_queued` (0: no limit).
    #[arg(long, env = "FERRITE_APP_MAX_QUEUED", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=ferrite_model::limits::MAX_QUEUED))]
    pub app_max_queued: u64,

    /// The Docker engine: `unix:///var/run/docker.sock` or `tcp://host:port`.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Any non-empty value: talk TLS to the engine and verify it, as the docker CLI does.
    #[arg(long, env = "DOCKER_TLS_VERIFY", value_parser = non_empty)]
    pub docker_tls_verify: Option<bool>,

    /// Directory with `ca.pem`, `cert.pem` and `key.pem` for DOCKER_TLS_VERIFY (default ~/.docker).
    #[arg(long, env = "DOCKER_CERT_PATH")]
    pub docker_cert_path: Option<PathBuf>,

    /// Registry credentials as a docker config document (`{"auths":{...}}`);
    /// otherwise ~/.docker/config.json is read.
    #[arg(long, env = "DOCKER_AUTH", hide_env_values = true)]
    pub docker_auth: Option<String>,

    /// A file holding DOCKER_AUTH's document (a Docker secret).
    #[arg(long, env = "DOCKER_AUTH_FILE")]
    pub docker_auth_file: Option<PathBuf>,

    /// This node's name in container names and labels, and its claim on
    /// async calls. Default: one generated at first start (`n-` and 12 hex
    /// digits) and kept in the data directory's `node-id` file.
    #[arg(long, env = "FERRITE_NODE_ID")]
    pub node_id: Option<String>,

    /// Memory for function containers on this node, in MiB (default: 90% of
    /// the engine host's memory).
    #[arg(long, env = "FERRITE_MEMORY_BUDGET_MIB")]
    pub memory_budget_mib: Option<u64>,

    /// How long a call waits for memory before a 503, in milliseconds.
    #[arg(long, env = "FERRITE_ADMISSION_WAIT_MS", default_value_t = 10_000)]
    pub admission_wait_ms: u64,

    /// Most cold containers started ahead of their calls, per route (0: none).
    #[arg(long, env = "FERRITE_PRESTART_MAX", default_value_t = 8)]
    pub prestart_max_per_route: usize,

    /// Most cold containers being started at the same time, ahead of calls
    /// and for waiting calls together (1 to 64).
    #[arg(long, env = "FERRITE_MAX_CONCURRENT_STARTS", default_value_t = 8)]
    pub max_concurrent_starts: usize,

    /// Largest request body accepted for a function call, in bytes.
    #[arg(long, env = "FN_MAX_REQUEST_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_request_bytes: usize,

    /// Largest function response, in bytes (502 beyond).
    #[arg(long, env = "FN_MAX_RESPONSE_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Largest answer a hot function streams to a sync caller (a chunked
    /// answer), in bytes: past it the answer is cut and its container
    /// removed. Answers read whole keep to FN_MAX_RESPONSE_BYTES.
    #[arg(long, env = "FERRITE_MAX_STREAMED_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_streamed_bytes: u64,

    /// Directory for the sockets of hot containers, on the engine's host (it
    /// is mounted into them). It must be owned by Ferrite's user and not
    /// writable by group or others (created 0700 when missing). Default, when
    /// the engine is local: a fresh private directory (0700, unpredictable
    /// name) in the system's temp directory, removed at shutdown (after a
    /// crash, at the node's next start); `off` talks
    /// to them through the engine instead (the default for a remote engine).
    #[arg(long, env = "FERRITE_HOT_SOCKET_DIR")]
    pub hot_socket_dir: Option<PathBuf>,

    /// Where async calls wait: `sqlite://path/to/queue.db` (default: `queue.db`
    /// next to a SQLite DB_URL, else `./data/queue.db`) or
    /// `redis://host:port/prefix`.
    #[arg(long, env = "MQ_URL", hide_env_values = true)]
    pub mq_url: Option<String>,

    /// A file holding the password of a Redis MQ_URL (a Docker secret); one
    /// trailing newline is ignored. Default: none.
    #[arg(long, env = "MQ_PASSWORD_FILE")]
    pub mq_password_file: Option<PathBuf>,

    /// The longest any one operation on a Redis MQ_URL may take (enqueue,
    /// reserve, publish a change, connect): a duration such as `3s`. A Redis
    /// that is down or hung then costs a caller this wait and a 503, never a
    /// hung call.
    #[arg(long, env = "FERRITE_REDIS_TIMEOUT", default_value = "3s",
          value_parser = wait_limit)]
    pub redis_timeout: Duration,

    /// Async calls running at once on this node, at most (0: this node runs none).
    #[arg(long, env = "FERRITE_ASYNC_CONCURRENCY", default_value_t = 16)]
    pub async_concurrency: usize,

    /// Share of the node's memory budget async calls may hold, in percent;
    /// the rest is kept for sync calls.
    #[arg(long, env = "FERRITE_ASYNC_MEMORY_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub async_memory_percent: u8,

    /// How long an async call's task stays reserved without news from its
    /// worker (a node that dies loses its tasks after this), in seconds.
    #[arg(long, env = "FERRITE_ASYNC_LEASE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub async_lease_secs: u64,

    /// How long finished calls stay in the history: a duration such as
    /// `7d`, `12h` or `90s`.
    #[arg(long, env = "FERRITE_CALL_RETENTION", default_value = "7d",
          value_parser = retention)]
    pub call_retention: Duration,

    /// How late a schedule's tick may be enqueued and still count as on
    /// time; an older tick was missed, and its schedule's `catch_up` says
    /// what happens to it (docs/schedules.md). A duration such as `60s`.
    #[arg(long, env = "FERRITE_SCHEDULE_GRACE", default_value = "60s",
          value_parser = retention)]
    pub schedule_grace: Duration,

    /// Schedules of one app, at most.
    #[arg(long, env = "FERRITE_APP_MAX_SCHEDULES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub app_max_schedules: u32,

    /// How long a node serves a route from its cache before reading it again,
    /// in milliseconds: the bound on staleness when a change is not heard.
    /// Default: 10 minutes (every change reaches the cache at once, made
    /// through this node or heard from the others on the change bus).
    #[arg(long, env = "FERRITE_ROUTE_CACHE_TTL_MS")]
    pub route_cache_ttl_ms: Option<u64>,

    /// How many routes a node keeps in its cache, at most (100 to
    /// 10,000,000; about 2 KB each). Past it, the routes called least often
    /// are read from the database at their next call.
    #[arg(long, env = "FERRITE_ROUTE_CACHE_CAPACITY", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub route_cache_capacity: u64,

    /// How long a query waits for a PostgreSQL connection, a new one
    /// included, before it fails (503 on /v1), and the longest any one
    /// operation of a change bus over PostgreSQL may take: a duration such
    /// as `3s`.
    /// While the database is away, only the first requests wait this long.
    #[arg(long, env = "FERRITE_DB_TIMEOUT", default_value = "3s",
          value_parser = wait_limit)]
    pub db_timeout: Duration,

    /// Call records kept in memory while the store is unavailable, at most
    /// (also at most 256 MiB with their logs); beyond it the oldest are
    /// dropped. They are written once the store answers again.
    #[arg(long, env = "FERRITE_HISTORY_BUFFER", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub history_buffer: u64,

    /// Most bytes of a call's stderr kept as its log.
    #[arg(long, env = "FN_MAX_LOG_BYTES", default_value_t = 1024 * 1024)]
    pub max_log_bytes: usize,

    /// The attachable overlay network of the routes that run as Swarm
    /// services (made when missing). This node must be attached to it: the
    /// tasks' addresses are reachable only from inside it.
    #[arg(
        long,
        env = "FERRITE_SERVICE_NETWORK",
        default_value = "ferrite-services"
    )]
    pub service_network: String,

    /// The installation that owns this node's Swarm services (their
    /// `org.ferrite.owner` label): nodes sharing a store share it;
    /// installations sharing a Swarm must differ.
    #[arg(long, env = "FERRITE_SERVICE_OWNER", default_value = "ferrite")]
    pub service_owner: String,

    /// The autoscaler's stable window (its panic window is a tenth of it,
    /// at least 1s): a duration such as `60s`.
    #[arg(long, env = "FERRITE_AUTOSCALE_WINDOW", default_value = "60s",
          value_parser = retention)]
    pub autoscale_window: Duration,

    /// How long a call to a service with no ready task waits for one (a
    /// scale from zero) before a 503: a duration such as `30s`.
    #[arg(long, env = "FERRITE_SERVICE_START_WAIT", default_value = "30s",
          value_parser = retention)]
    pub service_start_wait: Duration,

    /// Whether a sync call to a service route whose service has no ready
    /// task (at zero replicas, its first task starting) runs on this node
    /// in a container of the route's image, as a route without a service
    /// would, instead of waiting for the task. Only for plain function
    /// images and routes without placement constraints.
    #[arg(long, env = "FERRITE_SERVICE_STAND_IN", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub service_stand_in: bool,

    /// Most service routes at zero replicas (of `format: default`, which a
    /// call may run on this node: see FERRITE_SERVICE_STAND_IN) that keep
    /// one container of their image started ahead on this node, so that
    /// their first call answers at once; each holds its route's memory of
    /// the node's budget while it waits (0: none).
    #[arg(long, env = "FERRITE_SERVICE_STANDBY", default_value_t = 4)]
    pub service_standby: usize,

    /// The image whose `ferrite` binary becomes the watchdog of the images
    /// this node derives for service routes from plain function images. It
    /// must be on the engine (it is never pulled).
    #[arg(long, env = "FERRITE_WATCHDOG_IMAGE",
          default_value = ferrite_swarm::service_image::DEFAULT_WATCHDOG_IMAGE)]
    pub watchdog_image: String,

    /// The registry (`host[:port]`, optionally with a path:
    /// `registry.example.com/ferrite`) the service images of service routes
    /// are pushed to, so that every node of the Swarm can pull them; its
    /// credentials are DOCKER_AUTH's (or DOCKER_AUTH_FILE's) for that host.
    /// Default: none (images stay on the node that made them).
    #[arg(long, env = "FERRITE_SERVICE_REGISTRY", value_parser = service_registry)]
    pub service_registry: Option<String>,
}

impl ServerConfig {
    /// How many threads run the node's async work: FERRITE_WORKER_THREADS,
    /// or half the cores the process may use, at least one.
    pub fn worker_threads(&self) -> usize {
        match self.worker_threads {
            Some(threads) => threads.into(),
            None => {
                std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
            }
        }
    }
}

/// A registry address for service images.
fn service_registry(value: &str) -> Result<String, String> {
    if ferrite_swarm::registry::is_address(value) {
        Ok(value.to_string())
    } else {
        Err("expected host[:port] with an optional lowercase path, as in 127.0.0.1:5000 or registry.example.com/ferrite".to_string())
    }
}

/// A positive duration (`7d`, `1h 30m`, `5s`): a history retention, a
/// window, a wait.
fn retention(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|e| format!("{e} (use a duration such as 7d, 12h or 90s)"))?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".to_string());
    }
    Ok(duration)
}

/// How long a caller may wait on the database or Redis: at least a second
/// (a shorter one fails on a busy but healthy server), at most five minutes
/// (the point of the limit is that an absent dependency costs a bounded wait).
fn wait_limit(value: &str) -> Result<Duration, String> {
    let duration = retention(value)?;
    if duration > Duration::from_secs(300) {
        return Err("must be at most 5m".to_string());
    }
    Ok(duration)
}

/// The docker CLI turns TLS verification on for any non-empty value.
fn non_empty(value: &str) -> Result<bool, String> {
    Ok(!value.is_empty())
}

/// Where a node's change bus runs ([`ServerConfig::change_bus`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSettings {
    /// A `redis://host:port/prefix` queue URL or a `postgres://` store URL.
    pub url: String,
    /// The longest any one operation on the bus may take.
    pub timeout: Duration,
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl ServerConfig {
    /// Where the engine is, from the flags above.
    pub fn connect_settings(&self) -> ferrite_engine::ConnectSettings {
        ferrite_engine::ConnectSettings {
            host: self.docker_host.clone().filter(|h| !h.is_empty()),
            tls_verify: self.docker_tls_verify.unwrap_or(false),
            cert_path: self.docker_cert_path.clone(),
        }
    }

    /// This node's id: `FERRITE_NODE_ID`, else the one kept in the data
    /// directory (generated there at first start).
    pub fn node_id(&self) -> Result<String, NodeIdError> {
        match self.node_id.as_ref().filter(|id| !id.is_empty()) {
            Some(id) => Ok(id.clone()),
            None => node_id::load_or_create(&self.data_dir()),
        }
    }

    /// The engine's settings, from the flags above, for the node `node_id`.
    pub fn engine_settings(&self, node_id: String) -> ferrite_engine::EngineSettings {
        ferrite_engine::EngineSettings {
            connect: self.connect_settings(),
            docker_auth: self.docker_auth.clone(),
            node_id,
            memory_budget_mib: self.memory_budget_mib,
            admission_wait: Duration::from_millis(self.admission_wait_ms),
            prestart_max_per_route: self.prestart_max_per_route,
            max_concurrent_starts: self.max_concurrent_starts,
            max_response_bytes: self.max_response_bytes,
            max_log_bytes: self.max_log_bytes,
            hot_socket_dir: self.hot_socket_dir(),
        }
    }

    /// The HTTP front's settings, from the flags above.
    pub fn front_settings(&self) -> crate::front::FrontSettings {
        crate::front::FrontSettings {
            header_read_timeout: self.header_read_timeout,
            max_header_bytes: usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX),
            max_headers: usize::try_from(self.max_headers).unwrap_or(usize::MAX),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The server's default call limits of every app (`0`: no limit; a
    /// burst of 0: one second's worth of the rate).
    pub fn app_limit_defaults(&self) -> ferrite_model::AppLimits {
        ferrite_model::AppLimits {
            max_in_flight: Some(self.app_max_in_flight),
            rate: Some(self.app_rate),
            burst: Some(self.app_burst).filter(|b| *b > 0),
            max_queued: Some(self.app_max_queued),
        }
    }

    /// The queue's URL: `MQ_URL`, or the embedded queue in the data directory.
    pub fn mq_url(&self) -> String {
        if let Some(url) = self.mq_url.as_ref().filter(|u| !u.is_empty()) {
            return url.clone();
        }
        format!("sqlite://{}/queue.db", self.data_dir().display())
    }

    /// The change bus between the nodes sharing this node's store: over the
    /// queue's Redis when there is one, else over the store's PostgreSQL
    /// (LISTEN/NOTIFY); none on SQLite, whose store has one node. Redis wins
    /// when there are both, as every node of an installation has the same
    /// queue and store, hence the same bus; it also spares the database a
    /// connection per node that only listens.
    pub fn change_bus(&self) -> Option<BusSettings> {
        let mq_url = self.mq_url();
        if mq_url.starts_with("redis://") {
            return Some(BusSettings {
                url: mq_url,
                timeout: self.redis_timeout,
            });
        }
        self.db_url.starts_with("postgres").then(|| BusSettings {
            url: self.db_url.clone(),
            timeout: self.db_timeout,
        })
    }

    /// How long the route cache serves a route before reading it again
    /// (`route_cache_ttl_ms`), for a node with or without a change bus.
    /// Every node that `Node::open` makes on PostgreSQL has a bus
    /// ([`ServerConfig::change_bus`]); the short default is for a node put
    /// together without one on a shared store, whose cache hears no other
    /// node's changes.
    pub fn route_cache_ttl(&self, has_bus: bool) -> Duration {
        let shared_without_bus = !has_bus && self.db_url.starts_with("postgres");
        match self.route_cache_ttl_ms {
            Some(ms) => Duration::from_millis(ms),
            None if shared_without_bus => Duration::from_secs(1),
            None => Duration::from_secs(600),
        }
    }

    /// The data directory: that of a SQLite `DB_URL`, else `./data`. It
    /// holds the embedded queue and the generated node id.
    pub fn data_dir(&self) -> PathBuf {
        match self
            .db_url
            .strip_prefix("sqlite://")
            .or_else(|| self.db_url.strip_prefix("sqlite:"))
        {
            Some(file) => {
                let file = file.split('?').next().unwrap_or(file);
                match std::path::Path::new(file).parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                    _ => PathBuf::from("."),
                }
            }
            None => PathBuf::from("./data"),
        }
    }

    /// The async workers' settings on a node whose engine has `budget_mib`.
    pub fn worker_settings(
        &self,
        node: &str,
        budget_mib: u64,
    ) -> crate::asynchronous::WorkerSettings {
        crate::asynchronous::WorkerSettings {
            node: node.to_string(),
            concurrency: self.async_concurrency,
            memory_share_mib: budget_mib * u64::from(self.async_memory_percent) / 100,
            lease: Duration::from_secs(self.async_lease_secs),
        }
    }

    /// Sockets of hot containers are used where the engine shares this
    /// node's filesystem: a local engine (`unix://`), unless told otherwise.
    fn hot_socket_dir(&self) -> SocketDir {
        match &self.hot_socket_dir {
            Some(dir) if dir.as_os_str() == "off" => SocketDir::Off,
            Some(dir) => SocketDir::At(dir.clone()),
            None => {
                let local = self
                    .docker_host
                    .as_deref()
                    .is_none_or(|h| h.is_empty() || h.starts_with("unix://"));
                match local {
                    true => SocketDir::Private,
                    false => SocketDir::Off,
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ServerConfig,
    }

    /// The configuration that these flags (and no environment) give.
    pub(crate) fn config(args: &[&str]) -> ServerConfig {
        Cli::parse_from(std::iter::once("ferrite").chain(args.iter().copied())).config
    }

    #[test]
    fn the_queue_lives_next_to_the_database() {
        assert_eq!(config(&[]).mq_url(), "sqlite://./data/queue.db");
        assert_eq!(
            config(&["--db-url", "sqlite:///var/lib/f/f.db?mode=rwc"]).mq_url(),
            "sqlite:///var/lib/f/queue.db"
        );
        assert_eq!(
            config(&["--db-url", "sqlite://f.db"]).mq_url(),
            "sqlite://./queue.db"
        );
        assert_eq!(
            config(&["--db-url", "postgres://u@h/db"]).mq_url(),
            "sqlite://./data/queue.db"
        );
        assert_eq!(
            config(&["--mq-url", "redis://r:6379/x"]).mq_url(),
            "redis://r:6379/x"
        );
    }

    #[test]
    fn nodes_sharing_a_store_share_a_bus() {
        assert_eq!(config(&[]).change_bus(), None, "SQLite: one node");
        let redis = config(&["--mq-url", "redis://r:6379/x", "--redis-timeout", "2s"]);
        let over_redis = Some(BusSettings {
            url: "redis://r:6379/x".into(),
            timeout: Duration::from_secs(2),
        });
        assert_eq!(redis.change_bus(), over_redis);
        let postgres = config(&["--db-url", "postgres://u@h/db", "--db-timeout", "4s"]);
        assert_eq!(
            postgres.change_bus(),
            Some(BusSettings {
                url: "postgres://u@h/db".into(),
                timeout: Duration::from_secs(4),
            }),
            "PostgreSQL without Redis"
        );
        let both = config(&[
            "--db-url",
            "postgres://u@h/db",
            "--mq-url",
            "redis://r:6379/x",
            "--redis-timeout",
            "2s",
        ]);
        assert_eq!(both.change_bus(), over_redis, "Redis wins");
    }

    #[test]
    fn routes_are_cached_long_where_every_change_is_heard() {
        let long = Duration::from_secs(600);
        let ttl = |c: &ServerConfig| c.route_cache_ttl(c.change_bus().is_some());
        assert_eq!(ttl(&config(&[])), long, "one node on SQLite");
        let shared = config(&["--db-url", "postgres://u@h/db"]);
        assert_eq!(ttl(&shared), long, "PostgreSQL carries changes");
        let with_redis = config(&["--db-url", "postgres://u@h/db", "--mq-url", "redis://r/x"]);
        assert_eq!(ttl(&with_redis), long, "Redis carries changes");
        assert_eq!(
            shared.route_cache_ttl(false),
            Duration::from_secs(1),
            "a shared store without a bus"
        );
        let set = config(&[
            "--db-url",
            "postgres://u@h/db",
            "--route-cache-ttl-ms",
            "250",
        ]);
        assert_eq!(ttl(&set), Duration::from_millis(250));
    }

    #[test]
    fn retention_is_a_duration() {
        assert_eq!(config(&[]).call_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(retention("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(retention("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(retention("0s").is_err());
        assert!(retention("soon").is_err());
    }

    #[test]
    fn waits_on_dependencies_are_bounded() {
        assert_eq!(wait_limit("5m"), Ok(Duration::from_secs(300)));
        assert!(wait_limit("6m").is_err());
        assert!(wait_limit("0s").is_err());
    }
}
