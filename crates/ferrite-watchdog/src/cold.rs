//! `format: default`: one process per call. The request body is its stdin
//! (for a GET, the `payload` query parameter), its stdout the response body;
//! exit 0 is 200, another exit 500 `exit code N`; past the timeout the
//! process group is killed and the answer is 504 `Timed out`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdout;
use tokio::sync::Semaphore;

use crate::children::{Children, Exit};
use crate::respond;

/// How long a killed process may take to be collected before the answer
/// goes out anyway.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Runs calls, at most `slots` at a time.
pub struct Cold {
    pub children: Children,
    pub command: Vec<String>,
    pub slots: Arc<Semaphore>,
    /// The number of slots, for the busy message.
    pub concurrency: usize,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

/// Why reading a function's output stopped early.
enum ReadError {
    TooLarge,
    Io(std::io::Error),
}

impl Cold {
    /// Run one call: `env` on top of the watchdog's environment, `stdin` as
    /// the process's input.
    pub async fn call(&self, call_id: &str, env: &[(String, String)], stdin: Bytes) -> Response {
        let Some(_slot) = respond::take_slot(&self.slots, self.timeout).await else {
            return respond::busy(self.concurrency, self.timeout);
        };
        let mut child = match self.children.spawn(&self.command, env) {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(call_id, error = %e, command = ?self.command, "cannot start the function");
                return respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot start the function: {e}"),
                );
            }
        };
        let pid = child.pid;
        let input = child.stdin.take();
        let output = child.stdout.take();
        let write = async move {
            if let Some(mut input) = input {
                // A function may exit without reading its input: the broken
                // pipe is its choice, not a failure.
                let _ = input.write_all(&stdin).await;
            }
        };
        let children = self.children.clone();
        let cap = self.max_response_bytes;
        let read = async move {
            let result = read_capped(output, cap).await;
            if matches!(result, Err(ReadError::TooLarge)) {
                // Stop it now rather than at the timeout.
                children.kill(pid);
            }
            result
        };
        let exit = &mut child.exit;
        let run = async { tokio::join!(write, read, exit) };
        let ((), output, exit) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_elapsed) => {
                child.kill_and_wait(KILL_WAIT).await;
                tracing::debug!(call_id, pid, "function timed out");
                return respond::error(StatusCode::GATEWAY_TIMEOUT, "Timed out");
            }
        };
        let exit = match exit {
            Ok(exit) => exit,
            // The reaper never drops a sender of a live process.
            Err(_) => {
                return respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the function's exit was lost",
                )
            }
        };
        tracing::debug!(call_id, pid, ?exit, "function ended");
        match (output, exit) {
            (Err(ReadError::TooLarge), _) => respond::error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "function response is larger than the limit of {} bytes",
                    self.max_response_bytes
                ),
            ),
            (Err(ReadError::Io(e)), _) => respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the function's output: {e}"),
            ),
            (Ok(stdout), Exit::Code(0)) => respond::output(stdout),
            (Ok(_), Exit::Code(code)) => respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("exit code {code}"),
            ),
            (Ok(_), Exit::Signal(signal)) => respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("killed by signal {signal}"),
            ),
        }
    }
}

/// The whole of `output`, up to `cap` bytes.
async fn read_capped(output: Option<ChildStdout>, cap: usize) -> Result<Vec<u8>, ReadError> {
    let Some(output) = output else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "over it".
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    output
        .take(limit)
        .read_to_end(&mut bytes)
        .await
        .map_err(ReadError::Io)?;
    if bytes.len() > cap {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}
