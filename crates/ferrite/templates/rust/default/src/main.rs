//! A cold function (`format: default`): Ferrite runs this program once per
//! call, in a fresh container. The request body is stdin, stdout is the
//! answer, stderr is the call's log, and the exit status is the outcome.
//! Per-call facts (`METHOD`, `REQUEST_URL`, `HEADER_*`, ...) and the app's
//! and route's config keys are environment variables.

mod json;

use std::io::{self, Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut body = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut body) {
        eprintln!("cannot read the request: {e}");
        return ExitCode::FAILURE;
    }
    // `{"name":"Ada"}`; a missing, empty or unreadable name greets the World.
    let name = json::name(&String::from_utf8_lossy(&body))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "World".to_string());
    // A config key (`ferrite apps config set APP GREETING Hi`) arrives as
    // an environment variable.
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
    eprintln!("greeting {name}");
    match writeln!(io::stdout(), "{greeting}, {name}!") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the answer: {e}");
            ExitCode::FAILURE
        }
    }
}
