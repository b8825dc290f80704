//! `ferrite run`: call the function once on the local Docker engine, as a
//! Ferrite server would (ferrite-engine runs it, ferrite-model's contract
//! makes its environment), with no server: stdin is the request body, the
//! answer goes to stdout, the function's log to stderr, and the exit status
//! is the function's (for `http`, 0 for a 2xx answer).

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use ferrite_engine::{ColdCall, Engine, EngineSettings, HotRoute, SocketDir, Status};
use ferrite_model::contract::{
    call_environment, config_vars, hot_environment, set_fact_headers, CallFacts, RouteFacts,
};
use ferrite_model::{App, AppInput, Format, Route};
use ferrite_wire::HotOutcome;

use super::args::parse_pairs;
use super::build::BuildArgs;

/// Largest request body read from stdin: the server's default cap.
const MAX_BODY_BYTES: u64 = 6 * 1024 * 1024;
/// Largest answer and log kept: the server's defaults.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
const MAX_LOG_BYTES: usize = 1024 * 1024;
/// How long the container's removal may take at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long a hot call's log may take to arrive after its answer.
const LOG_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Run the image built before, without building.
    #[arg(long)]
    pub no_build: bool,
    /// Config for this call, over func.yaml's `config:`, `KEY=VALUE`; may
    /// be repeated. The function sees it as the environment variable KEY.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// An extra environment variable of the function, `KEY=VALUE`, as it
    /// is written (config keys are upper-cased); may be repeated.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The app the function is told it runs in (APP_NAME).
    #[arg(long, default_value = "local")]
    pub app: String,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = parse_pairs("--config", &args.config)?;
    let extra_env: Vec<(String, String)> = parse_pairs("--env", &args.env)?.into_iter().collect();
    let body = read_body()?;
    let loaded = args.build.prepare(args.no_build, false).await?;
    let func = &loaded.func;
    let mut input = func.route_input();
    input
        .config
        .get_or_insert_with(Default::default)
        .extend(config);
    let route = Route::create(&args.app, input)
        .map_err(|e| anyhow::anyhow!("{}: {}", loaded.path.display(), e.message))?;
    let app = App::create(AppInput {
        name: Some(args.app.clone()),
        ..AppInput::default()
    })
    .map_err(|e| anyhow::anyhow!("--app: {}", e.message))?;
    let mut vars = config_vars(&app, &route);
    vars.extend(extra_env);

    let engine = Engine::start(EngineSettings {
        connect: args.build.docker.settings(),
        docker_auth: None,
        // Its own node id: the engine removes only its node's leftovers.
        node_id: format!("run-{}", std::process::id()),
        memory_budget_mib: None,
        admission_wait: Duration::from_secs(10),
        prestart_max_per_route: 0,
        max_concurrent_starts: 1,
        max_response_bytes: MAX_RESPONSE_BYTES,
        max_log_bytes: MAX_LOG_BYTES,
        // One call: the attach stream is enough, and leaves no directory.
        hot_socket_dir: SocketDir::Off,
    })
    .await
    .context("cannot run the function on the Docker engine")?;
    let called = tokio::select! {
        called = call(&engine, &route, vars, body) => called,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Also after a failure or Ctrl-C: no container is left behind.
    engine.shutdown(SHUTDOWN_GRACE).await;
    called
}

/// The request body: stdin when something is piped in, else empty (a
/// terminal would wait for input nobody meant to give).
fn read_body() -> anyhow::Result<Bytes> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Bytes::new());
    }
    let mut body = Vec::new();
    stdin
        .lock()
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body)
        .context("cannot read stdin")?;
    if body.len() as u64 > MAX_BODY_BYTES {
        bail!(
            "stdin holds more than {} MiB, the largest request body",
            MAX_BODY_BYTES / (1024 * 1024)
        );
    }
    Ok(Bytes::from(body))
}

async fn call(
    engine: &Engine,
    route: &Route,
    config: Vec<(String, String)>,
    body: Bytes,
) -> anyhow::Result<ExitCode> {
    let call_id = call_id();
    let target = format!("/r/{}{}", route.app_name, route.path);
    let request_url = format!("http://localhost{target}");
    let facts = CallFacts {
        call_id: &call_id,
        method: "POST",
        request_url: &request_url,
    };
    match route.format {
        Format::Default => {
            let env = call_environment(config, std::iter::empty(), &RouteFacts::of(route), &facts);
            let cold = ColdCall::of(route, call_id.clone(), env, body);
            let outcome = engine.run_cold(&cold, Duration::ZERO).await?;
            write_out(&outcome.stdout, &outcome.log)?;
            cold_exit(outcome.status, route.timeout)
        }
        Format::Http => {
            let hot = HotRoute::of(route, hot_environment(config, &RouteFacts::of(route)));
            let mut request = http::Request::builder()
                .method(http::Method::POST)
                .uri(&target)
                .body(body)
                .context("cannot make the function's request")?;
            set_fact_headers(request.headers_mut(), &route.app_name, &route.path, &facts);
            let ran = engine
                .run_hot(&hot, request, Duration::from_secs(route.timeout))
                .await?;
            let log = tokio::time::timeout(LOG_WAIT, ran.log.wait())
                .await
                .unwrap_or_default();
            match ran.outcome {
                HotOutcome::Response(response) => {
                    write_out(response.body(), &log.bytes)?;
                    let status = response.status();
                    if status.is_success() {
                        Ok(ExitCode::SUCCESS)
                    } else {
                        // 1 for 1xx/3xx/4xx, 2 for 5xx, ... : never 0.
                        eprintln!("the function answered {status}");
                        Ok(ExitCode::from(
                            u8::try_from(status.as_u16() / 100).unwrap_or(1).max(1),
                        ))
                    }
                }
                HotOutcome::TimedOut => {
                    write_out(&[], &log.bytes)?;
                    bail!(
                        "the function did not answer within its timeout of {}s",
                        route.timeout
                    )
                }
                HotOutcome::Broken(why) => {
                    write_out(&[], &log.bytes)?;
                    bail!("the function broke the HTTP exchange: {why}")
                }
                HotOutcome::TooLarge => {
                    bail!("the function's answer is larger than {MAX_RESPONSE_BYTES} bytes")
                }
            }
        }
    }
}

/// A cold call's end as this command's exit status.
fn cold_exit(status: Status, timeout: u64) -> anyhow::Result<ExitCode> {
    match status {
        Status::Success => Ok(ExitCode::SUCCESS),
        // Exit codes past 255 cannot be passed on; the shell's convention.
        Status::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        Status::Signaled(signal) => Ok(ExitCode::from(
            u8::try_from(128 + signal).unwrap_or(u8::MAX),
        )),
        Status::OutOfMemory => {
            bail!("the function ran out of memory: raise `memory:` in func.yaml")
        }
        Status::TimedOut => {
            bail!("the function did not finish within its timeout of {timeout}s: raise `timeout:` in func.yaml")
        }
        Status::OutputTooLarge => {
            bail!("the function's answer is larger than {MAX_RESPONSE_BYTES} bytes")
        }
        Status::StartFailed(why) => bail!("the function could not start: {why}"),
    }
}

/// The answer to stdout and the log to stderr, as they came.
fn write_out(answer: &[u8], log: &[u8]) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(log).and_then(|()| err.flush());
    let mut out = std::io::stdout().lock();
    match out.write_all(answer).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the answer")
        }
        _ => Ok(()),
    }
}

/// A call id that no other run on this engine has.
fn call_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("run-{}-{millis}", std::process::id())
}
