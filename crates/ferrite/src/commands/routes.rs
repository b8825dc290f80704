//! `ferrite routes`: list, create, inspect, update and delete the routes of an
//! app, set or unset one key of a route's config, and call a route's function.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use ferrite_model::{Config, Headers, Route};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::apps::{parse_pairs, split_pair};
use crate::client::{self, ApiArgs, Client, FunctionCall, ServerArgs};
use crate::credentials;
use crate::output::{self, OutputArgs};

/// The `ferrite routes` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// List the routes of an app.
    List {
        app: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create a route: run IMAGE when PATH of APP is called.
    Create {
        app: String,
        /// Path of the route, as in /hello or /a/b.
        path: String,
        /// Docker image of the function.
        image: String,
        #[command(flatten)]
        fields: RouteFields,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one route.
    Inspect {
        app: String,
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change a route: only the options given change; config, headers and
    /// service labels are merged.
    Update {
        app: String,
        path: String,
        /// Docker image of the function.
        #[arg(long)]
        image: Option<String>,
        #[command(flatten)]
        fields: RouteFields,
        /// Stop running the route as a Swarm service: remove its service
        /// section, so that it runs in containers again.
        #[arg(long, conflicts_with_all = SERVICE_FLAGS)]
        no_service: bool,
        /// Remove the route's confinement section: its containers get the
        /// defaults again.
        #[arg(long, conflicts_with_all = CONFINEMENT_FLAGS)]
        no_confinement: bool,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a route.
    Delete {
        app: String,
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set or unset one config key of a route.
    #[command(subcommand)]
    Config(RouteConfigCommand),
    /// Call the function of a route: stdin is the request body, and the
    /// answer's body goes to stdout as it is.
    Call(CallArgs),
}

/// The arguments of `ferrite routes call`. For a route with a `jwt_key`,
/// the call's token is signed with `FERRITE_ROUTE_JWT_KEY` from the
/// environment (a key given as a flag would land in shell history).
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Name of the app.
    app: String,
    /// Path of the route, as in /hello or /a/b.
    path: String,
    /// HTTP method of the call; with GET, the body is sent as the `payload`
    /// query parameter.
    #[arg(long, short = 'X', value_enum, ignore_case = true, default_value_t = CallMethod::Post)]
    method: CallMethod,
    /// Request header, which the function sees as HEADER_<NAME> (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Print the answer's status line and headers (such as fn-call-id) to stderr.
    #[arg(long, short = 'i')]
    include: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The methods a function can be called with.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum CallMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl From<CallMethod> for reqwest::Method {
    fn from(method: CallMethod) -> Self {
        match method {
            CallMethod::Get => reqwest::Method::GET,
            CallMethod::Post => reqwest::Method::POST,
            CallMethod::Put => reqwest::Method::PUT,
            CallMethod::Patch => reqwest::Method::PATCH,
            CallMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

/// The `ferrite routes config` subcommands.
#[derive(Debug, Subcommand)]
pub enum RouteConfigCommand {
    /// Set one config key of a route.
    Set {
        app: String,
        path: String,
        key: String,
        value: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove one config key of a route.
    Unset {
        app: String,
        path: String,
        key: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// The optional settings of a route, shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct RouteFields {
    /// Memory limit of the function's container in MiB [server default: 128].
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    /// Whether callers wait for the answer (sync) or get a call id (async) [server default: sync].
    #[arg(long = "type", value_name = "TYPE", value_parser = ["sync", "async"])]
    kind: Option<String>,
    /// One container per call (default) or a hot container speaking HTTP (http).
    #[arg(long, value_parser = ["default", "http"])]
    format: Option<String>,
    /// Most hot containers of the route per node [server default: 1].
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u64>,
    /// Time limit of one call in seconds [server default: 30].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Seconds a hot container waits for work before it stops [server default: 30].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Times an async call whose function fails is run again (0 to 10) [server default: 0].
    #[arg(long, value_name = "N")]
    max_retries: Option<u64>,
    /// Header added to every answer (repeatable; in an update, `NAME=` removes it).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Config given to the function as an environment variable (repeatable;
    /// in an update, `KEY=` removes it).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Require calls to carry an HS256 bearer token signed with the key in
    /// FILE (its content, one trailing newline removed; `/dev/stdin` reads
    /// it from a pipe). A file, not the key: a flag lands in shell history.
    #[arg(long, value_name = "FILE", conflicts_with = "no_jwt_key")]
    jwt_key_file: Option<PathBuf>,
    /// In an update: remove the route's jwt_key, so that calls need no token.
    #[arg(long)]
    no_jwt_key: bool,
    /// Boxed: the service flags would double the size of every
    /// `ferrite` command value (clippy's `large_enum_variant`).
    #[command(flatten)]
    service: Box<ServiceFields>,
    #[command(flatten)]
    confinement: Box<ConfinementFields>,
}

/// The ids of the confinement flags, which `--no-confinement` excludes.
const CONFINEMENT_FLAGS: [&str; 6] = [
    "read_only",
    "network",
    "cap_add",
    "pids_limit",
    "nofile",
    "cpus",
];

/// The route's `confinement` section (docs/security.md): what its
/// containers may do beyond Ferrite's confined default. In an update, the
/// flags given are merged into the current section (created with the
/// server's defaults when missing).
#[derive(Debug, Args)]
pub struct ConfinementFields {
    /// Read-only root filesystem, with a writable tmpfs at /tmp the size of
    /// the memory limit (`--read-only=false` in an update turns it off)
    /// [server default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    read_only: Option<bool>,
    /// `none`: no network at all, only the loopback interface [server default: default].
    #[arg(long, value_parser = ["default", "none"])]
    network: Option<String>,
    /// Capability given back to the function, from the allowlist in
    /// docs/security.md, as NET_BIND_SERVICE (repeatable; in an update, the
    /// ones given replace the current ones, and `--cap-add ''` clears them).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Most processes and threads of a container (16 to 32768) [server default: 256].
    #[arg(long, value_name = "N")]
    pids_limit: Option<u64>,
    /// Open-files limit of a container (64 to 1048576) [server default: 1024].
    #[arg(long, value_name = "N")]
    nofile: Option<u64>,
    /// Hard CPU cap in CPUs, as 0.5; `none` removes it [server default: none,
    /// only a CPU weight tied to memory].
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    cpus: Option<Value>,
}

/// A CPU cap: a number of CPUs, or `none` (JSON null: no cap).
fn parse_cpus(text: &str) -> Result<Value, String> {
    if text == "none" {
        return Ok(Value::Null);
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Value::from)
        .ok_or_else(|| "expected a number of CPUs, as 0.5, or none".to_string())
}

impl ConfinementFields {
    /// The `confinement` object the flags ask for, `None` when no
    /// confinement flag was given.
    fn into_json(self) -> Option<Value> {
        let mut section = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                section.insert(key.to_string(), value);
            }
        };
        put("read_only", self.read_only.map(Value::from));
        put("network", self.network.map(Value::from));
        put("pids_limit", self.pids_limit.map(Value::from));
        put("nofile", self.nofile.map(Value::from));
        put("cpus", self.cpus);
        if !self.cap_add.is_empty() {
            let caps: Vec<&String> = self.cap_add.iter().filter(|c| !c.is_empty()).collect();
            section.insert("cap_add".into(), json!(caps));
        }
        (!section.is_empty()).then_some(Value::Object(section))
    }
}

/// The ids of the `--service*` flags, which `--no-service` excludes.
const SERVICE_FLAGS: [&str; 8] = [
    "service",
    "service_port",
    "min_replicas",
    "max_replicas",
    "target_concurrency",
    "scale_to_zero_after",
    "constraints",
    "service_labels",
];

/// The route's `service` section (docs/services.md). Any of these flags
/// implies `--service`; in an update, the ones given are merged into the
/// current section (created with the server's defaults when missing).
#[derive(Debug, Args)]
pub struct ServiceFields {
    /// Run the route as a Docker Swarm service that Ferrite scales (the
    /// server's defaults for what is not given). Sync routes only.
    #[arg(long)]
    service: bool,
    /// Port the service's tasks serve HTTP on [server default: 8080].
    #[arg(long, value_name = "PORT")]
    service_port: Option<u64>,
    /// Replicas kept when idle; 0 lets the service scale to zero [server default: 0].
    #[arg(long, value_name = "N")]
    min_replicas: Option<u64>,
    /// Most replicas the autoscaler may run (at most 100) [server default: 10,
    /// or --min-replicas when larger].
    #[arg(long, value_name = "N")]
    max_replicas: Option<u64>,
    /// In-flight requests per replica the autoscaler aims at [server default: 10].
    #[arg(long, value_name = "N")]
    target_concurrency: Option<u64>,
    /// Idle time before scaling to zero, as seconds or as 90s, 5m, 1h
    /// (used when --min-replicas is 0) [server default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    scale_to_zero_after: Option<u64>,
    /// Swarm placement constraint, as node.role==worker or
    /// node.labels.zone!=b (repeatable; in an update, the constraints given
    /// replace the current ones, and `--constraint ''` clears them).
    #[arg(long = "constraint", value_name = "EXPR")]
    constraints: Vec<String>,
    /// Label of the Swarm service (repeatable; in an update, `KEY=` removes it).
    #[arg(long = "service-label", value_name = "KEY=VALUE")]
    service_labels: Vec<String>,
}

impl ServiceFields {
    /// The `service` object the flags ask for, `None` when no service flag
    /// was given. Empty `--constraint` values are dropped, so that
    /// `--constraint ''` alone sends an empty list.
    fn into_json(self) -> anyhow::Result<Option<Value>> {
        let given = self.service
            || self.service_port.is_some()
            || self.min_replicas.is_some()
            || self.max_replicas.is_some()
            || self.target_concurrency.is_some()
            || self.scale_to_zero_after.is_some()
            || !self.constraints.is_empty()
            || !self.service_labels.is_empty();
        if !given {
            return Ok(None);
        }
        let mut service = Map::new();
        let mut put = |key: &str, value: Option<u64>| {
            if let Some(value) = value {
                service.insert(key.to_string(), Value::from(value));
            }
        };
        put("port", self.service_port);
        put("min_replicas", self.min_replicas);
        put("max_replicas", self.max_replicas);
        put("target_concurrency", self.target_concurrency);
        put("scale_to_zero_after", self.scale_to_zero_after);
        if !self.constraints.is_empty() {
            let constraints: Vec<&String> =
                self.constraints.iter().filter(|c| !c.is_empty()).collect();
            service.insert("constraints".into(), json!(constraints));
        }
        if !self.service_labels.is_empty() {
            service.insert(
                "labels".into(),
                json!(parse_pairs("--service-label", &self.service_labels)?),
            );
        }
        Ok(Some(Value::Object(service)))
    }
}

/// A duration given as whole seconds (`300`) or in humantime's notation
/// (`5m`, `1h 30m`), as a number of seconds.
fn parse_seconds(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Ok(seconds);
    }
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: expected seconds or a duration such as 90s, 5m or 1h"))?;
    if duration.subsec_nanos() != 0 {
        return Err("expected a whole number of seconds".into());
    }
    Ok(duration.as_secs())
}

impl RouteFields {
    /// The given settings as fields of a `"route"` object; `None` leaves a
    /// field out so that the server's default or the current value holds.
    fn into_json(self) -> anyhow::Result<Map<String, Value>> {
        let mut route = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                route.insert(key.to_string(), value);
            }
        };
        put("memory", self.memory.map(Value::from));
        put("type", self.kind.map(Value::from));
        put("format", self.format.map(Value::from));
        put("max_concurrency", self.max_concurrency.map(Value::from));
        put("timeout", self.timeout.map(Value::from));
        put("idle_timeout", self.idle_timeout.map(Value::from));
        put("max_retries", self.max_retries.map(Value::from));
        if !self.headers.is_empty() {
            put("headers", Some(json!(parse_headers(&self.headers)?)));
        }
        if !self.config.is_empty() {
            put(
                "config",
                Some(json!(parse_pairs("--config", &self.config)?)),
            );
        }
        if let Some(path) = &self.jwt_key_file {
            let key = ferrite_server::ServerConfig::read_secret_file("--jwt-key-file", path)?;
            put("jwt_key", Some(Value::from(key)));
        }
        if self.no_jwt_key {
            // The API's way of removing the key.
            put("jwt_key", Some(Value::from("")));
        }
        put("service", self.service.into_json()?);
        put("confinement", self.confinement.into_json());
        Ok(route)
    }
}

/// Run one `ferrite routes` subcommand against the server.
pub async fn run(cmd: RoutesCommand) -> anyhow::Result<()> {
    match cmd {
        RoutesCommand::List { app, output, api } => {
            let routes = client::take(
                Client::new(&api)?
                    .get(&["v1", "apps", &app, "routes"])
                    .await?,
                "routes",
            )?;
            if output.json {
                return output::print_json(&routes);
            }
            output::print(&output::routes_table(&output::parse::<Vec<Route>>(
                routes,
                "a list of routes",
            )?))
        }
        RoutesCommand::Create {
            app,
            path,
            image,
            fields,
            output,
            api,
        } => {
            let path = absolute(&path);
            let mut route = fields.into_json()?;
            route.insert("path".into(), json!(path));
            route.insert("image".into(), json!(image));
            let answer = Client::new(&api)?
                .post(&["v1", "apps", &app, "routes"], &json!({ "route": route }))
                .await?;
            print_route(
                answer,
                output,
                &format!("Route {path} of app {app} created"),
            )
        }
        RoutesCommand::Inspect {
            app,
            path,
            output,
            api,
        } => {
            let route = client::take(
                Client::new(&api)?
                    .get(&client::route_path(&app, &path))
                    .await?,
                "route",
            )?;
            if output.json {
                return output::print_json(&route);
            }
            output::print(&output::route_details(&output::parse(route, "a route")?))
        }
        RoutesCommand::Update {
            app,
            path,
            image,
            fields,
            no_service,
            no_confinement,
            output,
            api,
        } => {
            let mut route = fields.into_json()?;
            if let Some(image) = image {
                route.insert("image".into(), json!(image));
            }
            if no_service {
                route.insert("service".into(), Value::Null);
            }
            if no_confinement {
                route.insert("confinement".into(), Value::Null);
            }
            if route.is_empty() {
                bail!("nothing to update: give at least one option, such as --image or --memory");
            }
            let message = format!("Route {} of app {app} updated", absolute(&path));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Delete {
            app,
            path,
            output,
            api,
        } => {
            let answer = Client::new(&api)?
                .delete(&client::route_path(&app, &path), &[])
                .await?;
            if output.json {
                return output::print_json(&answer);
            }
            output::print(&format!("Route {} of app {app} deleted", absolute(&path)))
        }
        RoutesCommand::Config(RouteConfigCommand::Set {
            app,
            path,
            key,
            value,
            output,
            api,
        }) => {
            if key.is_empty() || key.contains('=') {
                bail!("invalid config key {key:?}: it must be non-empty and without '='");
            }
            if value.is_empty() {
                bail!("the value of {key:?} is empty; to remove the key, use `ferrite routes config unset`");
            }
            let message = format!("Route {} of app {app}: config {key} set", absolute(&path));
            let route = config_patch(Config::from([(key, value)]));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Config(RouteConfigCommand::Unset {
            app,
            path,
            key,
            output,
            api,
        }) => {
            if key.is_empty() || key.contains('=') {
                bail!("invalid config key {key:?}: it must be non-empty and without '='");
            }
            let message = format!("Route {} of app {app}: config {key} unset", absolute(&path));
            let route = config_patch(Config::from([(key, String::new())]));
            patch(&api, &app, &path, route, output, &message).await
        }
        RoutesCommand::Call(args) => call(args).await,
    }
}

/// `ferrite routes call`: a 2xx answer's body to stdout, any other answer an
/// error with the server's message.
async fn call(args: CallArgs) -> anyhow::Result<()> {
    let headers = parse_request_headers(&args.headers)?;
    let body = tokio::task::spawn_blocking(read_body)
        .await
        .context("cannot read the request body from stdin")??;
    let client = Client::for_calls(&args.server)?;
    let route_key = credentials::route_key(&credentials::process_env);
    let response = client
        .call(FunctionCall {
            method: args.method.into(),
            app: &args.app,
            path: &absolute(&args.path),
            headers,
            body,
            jwt_key: route_key.as_deref(),
        })
        .await?;
    if args.include {
        eprint!("{}", head(&response));
    }
    if !response.status().is_success() {
        return Err(client.failure(response).await);
    }
    client.write_body(response, &mut std::io::stdout()).await
}

/// All of stdin; nothing when it is a terminal, so that a call without a body
/// does not wait for one.
fn read_body() -> anyhow::Result<Vec<u8>> {
    let mut stdin = std::io::stdin();
    let mut body = Vec::new();
    if !stdin.is_terminal() {
        stdin
            .read_to_end(&mut body)
            .context("cannot read the request body from stdin")?;
    }
    Ok(body)
}

/// The status line and headers of an answer, as `curl -i` shows them.
fn head(response: &reqwest::Response) -> String {
    let mut head = format!("{:?} {}\n", response.version(), response.status());
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        head.push_str(&format!("{name}: {value}\n"));
    }
    head.push('\n');
    head
}

/// `NAME: VALUE` arguments as request headers; a repeated name is sent repeated.
fn parse_request_headers(args: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for arg in args {
        let invalid = || anyhow::anyhow!("invalid --header {arg:?}: expected 'NAME: VALUE'");
        let (name, value) = arg.split_once(':').ok_or_else(invalid)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    Ok(headers)
}

async fn patch(
    api: &ApiArgs,
    app: &str,
    path: &str,
    route: Map<String, Value>,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let answer = Client::new(api)?
        .patch(&client::route_path(app, path), &json!({ "route": route }))
        .await?;
    print_route(answer, output, message)
}

fn config_patch(config: Config) -> Map<String, Value> {
    Map::from_iter([("config".to_string(), json!(config))])
}

fn print_route(answer: Value, output: OutputArgs, message: &str) -> anyhow::Result<()> {
    let route = client::take(answer, "route")?;
    if output.json {
        output::print_json(&route)
    } else {
        output::print(message)
    }
}

/// Route paths are absolute; `hello` is taken to mean `/hello`.
pub(super) fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// `NAME=VALUE` arguments as the API's header map: a repeated name gets
/// several values, and `NAME=` alone an empty list (removal in an update).
fn parse_headers(args: &[String]) -> anyhow::Result<Headers> {
    let mut headers = Headers::new();
    for arg in args {
        let (name, value) = split_pair("--header", "NAME=VALUE", arg)?;
        let values = headers.entry(name).or_default();
        if !value.is_empty() {
            values.push(value);
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_group_by_name() {
        let args = ["X-A=1", "X-A=2", "X-B="].map(String::from);
        let headers = parse_headers(&args).unwrap();
        assert_eq!(headers["X-A"], ["1", "2"]);
        assert!(headers["X-B"].is_empty());
        let err = parse_headers(&["X-A: 1".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --header \"X-A: 1\": expected NAME=VALUE"
        );
    }

    #[test]
    fn seconds_or_durations() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("1h 30m"), Ok(5400));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert!(parse_seconds("1500ms").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-5").is_err());
    }

    fn service_json(args: &[&str]) -> Option<Value> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            service: ServiceFields,
        }
        let cli = Cli::try_parse_from([&["ferrite"], args].concat()).unwrap();
        cli.service.into_json().unwrap()
    }

    #[test]
    fn service_flags() {
        assert_eq!(service_json(&[]), None);
        assert_eq!(service_json(&["--service"]), Some(json!({})));
        assert_eq!(
            service_json(&["--min-replicas", "0"]),
            Some(json!({"min_replicas": 0})),
            "any service flag implies --service"
        );
        assert_eq!(
            service_json(&[
                "--service-port",
                "9000",
                "--max-replicas",
                "4",
                "--target-concurrency",
                "20",
                "--scale-to-zero-after",
                "2m",
                "--constraint",
                "node.role==worker",
                "--constraint",
                "node.labels.zone!=b",
                "--service-label",
                "team=a",
                "--service-label",
                "old=",
            ]),
            Some(json!({
                "port": 9000, "max_replicas": 4, "target_concurrency": 20,
                "scale_to_zero_after": 120,
                "constraints": ["node.role==worker", "node.labels.zone!=b"],
                "labels": {"team": "a", "old": ""},
            }))
        );
        assert_eq!(
            service_json(&["--constraint", ""]),
            Some(json!({"constraints": []})),
            "--constraint '' clears"
        );
    }

    fn confinement_json(args: &[&str]) -> Option<Value> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            confinement: ConfinementFields,
        }
        let cli = Cli::try_parse_from([&["ferrite"], args].concat()).unwrap();
        cli.confinement.into_json()
    }

    #[test]
    fn confinement_flags() {
        assert_eq!(confinement_json(&[]), None);
        assert_eq!(
            confinement_json(&["--read-only"]),
            Some(json!({"read_only": true}))
        );
        assert_eq!(
            confinement_json(&[
                "--read-only=false",
                "--network",
                "none",
                "--cap-add",
                "CHOWN",
                "--cap-add",
                "KILL",
                "--pids-limit",
                "512",
                "--nofile",
                "4096",
                "--cpus",
                "0.5",
            ]),
            Some(
                json!({"read_only": false, "network": "none", "cap_add": ["CHOWN", "KILL"],
                        "pids_limit": 512, "nofile": 4096, "cpus": 0.5})
            )
        );
        assert_eq!(
            confinement_json(&["--cpus", "none", "--cap-add", ""]),
            Some(json!({"cpus": null, "cap_add": []})),
            "none removes the cap, '' clears the capabilities"
        );
        assert!(parse_cpus("half").is_err());
    }

    #[test]
    fn request_headers_are_name_colon_value() {
        let args = ["X-A: 1", "x-a:2", "Content-Type: text/plain; x=y"].map(String::from);
        let headers = parse_request_headers(&args).unwrap();
        assert_eq!(headers.get_all("x-a").iter().count(), 2);
        assert_eq!(headers["content-type"], "text/plain; x=y");
        for bad in ["X-A=1", ": 1", "X A: 1"] {
            let err = parse_request_headers(&[bad.to_string()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid --header {bad:?}: expected 'NAME: VALUE'")
            );
        }
    }
}
