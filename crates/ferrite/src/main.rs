//! The one Ferrite binary: `ferrite server` runs a node; every other command
//! is a client of the v1 API at `API_URL`.
#![forbid(unsafe_code)]

mod client;
mod commands;
mod credentials;
mod func;
mod output;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferrite",
    version,
    about = "Ferrite: serverless functions on Docker and Swarm",
    // `ferrite` alone shows the commands, as `cargo` alone does (see main).
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Ferrite node: the API and the function runner.
    Server(Box<ferrite_server::ServerConfig>),
    /// Manage apps.
    #[command(subcommand)]
    Apps(commands::apps::AppsCommand),
    /// Manage the routes of an app.
    #[command(subcommand)]
    Routes(commands::routes::RoutesCommand),
    /// See the calls of an app: history, logs, output; cancel queued ones.
    #[command(subcommand)]
    Calls(commands::calls::CallsCommand),
    /// Async calls that failed for good: list, inspect, replay, delete.
    #[command(subcommand)]
    DeadLetters(commands::dead_letters::DeadLettersCommand),
    /// Per-app API keys: create, list, revoke (the operator's).
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Cron schedules of a route: list, create, inspect, update, pause,
    /// resume, delete.
    #[command(subcommand)]
    Schedules(commands::schedules::SchedulesCommand),
    /// Write a new function in this folder: code, Dockerfile, func.yaml.
    Init(commands::init::InitArgs),
    /// Build this folder's function image through the Docker engine.
    Build(commands::build::BuildCommand),
    /// Call this folder's function once on the local Docker engine, as a
    /// server would: stdin is the body, the answer goes to stdout.
    Run(commands::run::RunArgs),
    /// Build this folder's function and create or update its route in APP.
    Deploy(commands::deploy::DeployArgs),
    /// Raise the version in func.yaml (the image's tag).
    Bump(commands::bump::BumpArgs),
    /// Print the version of this client and of the server.
    Version(commands::version::VersionArgs),
    /// Functions as Swarm services: list them (the default), build service images.
    Services(commands::services::ServicesArgs),
    /// What every route of a node is doing now: calls/s, errors/s, latency,
    /// cold starts and containers, from its /metrics.
    Top(commands::top::TopArgs),
    /// Print the tab completion script of a shell: bash, zsh, fish, ...
    Completion(commands::completion::CompletionArgs),
    /// Serve a function image's command over HTTP: the entry point of a
    /// service image (docs/watchdog.md).
    Watchdog(Box<ferrite_watchdog::WatchdogConfig>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `ferrite` (or `ferrite routes`) alone: asking what there is is not
        // a mistake, so that command's help goes to stdout with exit 0, as
        // `cargo` alone does (clap's own choice is stderr and exit 2).
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            print!("{}", e.render());
            return ExitCode::SUCCESS;
        }
        Err(e) if e.use_stderr() => {
            // One plain line (clap's first), not the usage block: scripts and
            // people both read the cause at once.
            let rendered = e.to_string();
            let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("error: invalid arguments");
            // A first line ending in ':' ("required arguments were not
            // provided:") names what it is about on the next.
            match (first.ends_with(':'), lines.next()) {
                (true, Some(next)) => eprintln!("{first} {next}"),
                _ => eprintln!("{first}"),
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Command::Watchdog(_) = &cli.command {
        // Before the runtime's threads exist: no-new-privileges is set per
        // thread and inherited only by those started afterwards.
        if let Err(e) = ferrite_watchdog::lock_down() {
            eprintln!("error: cannot make the watchdog non-dumpable with no new privileges: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Server(config) = &cli.command {
        runtime.worker_threads(config.worker_threads());
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => return commands::run::run(args).await,
            Command::Server(config) => commands::server::run(*config).await,
            Command::Apps(command) => commands::apps::run(command).await,
            Command::Routes(command) => commands::routes::run(command).await,
            Command::Calls(command) => commands::calls::run(command).await,
            Command::DeadLetters(command) => commands::dead_letters::run(command).await,
            Command::Keys(command) => commands::keys::run(command).await,
            Command::Schedules(command) => commands::schedules::run(command).await,
            Command::Version(args) => commands::version::run(args).await,
            Command::Services(command) => commands::services::run(command).await,
            Command::Top(args) => commands::top::run(args).await,
            Command::Watchdog(config) => commands::watchdog::run(*config).await,
            Command::Completion(args) => commands::completion::run(args, &mut Cli::command()),
            Command::Init(args) => commands::init::run(args),
            Command::Build(args) => commands::build::run(args).await,
            Command::Deploy(args) => commands::deploy::run(args).await,
            Command::Bump(args) => commands::bump::run(args),
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One plain line: the error and its causes, joined.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own check of the model: among others, no short flag (`-m`,
    /// `-t`, `-i`, `-c`, `-j`, ...) is taken twice in one command.
    #[test]
    fn commands_are_consistent() {
        Cli::command().debug_assert();
    }
}
