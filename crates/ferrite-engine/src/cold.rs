//! One cold call over a started container: the call's environment and
//! payload go in as frames, the function's stdout, stderr and exit status
//! come back as frames, so the answer does not wait for the container to
//! exit (its removal happens in the background).

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bytes::{Bytes, BytesMut};
use ferrite_wire::frame::{self, Exit, FrameDecoder};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::container::Started;
use crate::{EngineError, Timings};

/// A call to run in a fresh container.
#[derive(Debug, Clone)]
pub struct ColdCall {
    pub call_id: String,
    pub app: String,
    /// The route's path.
    pub path: String,
    /// The route's version that serves the call.
    pub version: u32,
    pub image: String,
    pub memory_mib: u64,
    /// What the container may do (from the route).
    pub confinement: ferrite_model::Confinement,
    /// Wall-clock limit from the moment the payload is handed over.
    pub timeout: Duration,
    /// The function's environment (contract variables, config, headers).
    pub env: Vec<(String, String)>,
    /// The function's stdin.
    pub body: Bytes,
}

impl ColdCall {
    /// A call `call_id` of a stored `route`, with the environment the
    /// contract gives it (ferrite-model's `contract`) and its stdin.
    pub fn of(
        route: &ferrite_model::Route,
        call_id: String,
        env: Vec<(String, String)>,
        body: Bytes,
    ) -> ColdCall {
        ColdCall {
            call_id,
            app: route.app_name.clone(),
            path: route.path.clone(),
            version: route.version,
            image: route.image.clone(),
            memory_mib: route.memory,
            confinement: route.confinement(),
            timeout: Duration::from_secs(route.timeout),
            env,
            body,
        }
    }
}

/// How the function ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Exit code 0.
    Success,
    /// Any other exit code.
    Exited(i32),
    /// Killed by a signal that was not the OOM killer's.
    Signaled(i32),
    OutOfMemory,
    /// Past the route's timeout; the container was killed.
    TimedOut,
    /// stdout went past the response cap; the container was killed.
    OutputTooLarge,
    /// The function could not be started (missing entrypoint, ...).
    StartFailed(String),
}

/// The result of a call that ran.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub stdout: Bytes,
    /// stderr, up to the log cap.
    pub log: Bytes,
    /// Bytes of stderr dropped past the cap.
    pub log_dropped: u64,
    /// Whether the call found its container ready when it came (started
    /// ahead); false when it waited, whichever start made the container.
    pub prestarted: bool,
    /// The container the call ran in.
    pub container_id: String,
    /// How long its phases took (admission and container are the caller's
    /// to fill in: they happen before the container is handed over).
    pub timings: Timings,
}

/// Caps on what a call may produce.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    pub max_stdout: usize,
    pub max_log: usize,
}

/// Feed the request to the init: environment, payload in frames, close.
async fn write_request(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    env: Vec<u8>,
    body: Bytes,
) -> std::io::Result<()> {
    let mut head =
        Vec::with_capacity(frame::HEADER_LEN * 2 + env.len() + body.len().min(frame::MAX_FRAME));
    head.extend_from_slice(&frame::header(frame::ENV, env.len() as u32));
    head.extend_from_slice(&env);
    // Small payloads go in one write with the environment: one syscall, one
    // packet through the engine.
    let mut chunks = body.chunks(frame::MAX_FRAME);
    if let Some(first) = chunks.next() {
        head.extend_from_slice(&frame::header(frame::INPUT, first.len() as u32));
        head.extend_from_slice(first);
    }
    input.write_all(&head).await?;
    for chunk in chunks {
        input
            .write_all(&frame::header(frame::INPUT, chunk.len() as u32))
            .await?;
        input.write_all(chunk).await?;
    }
    input.write_all(&frame::header(frame::CLOSE, 0)).await?;
    input.flush().await
}

/// What the output side ended with.
enum Ended {
    Exit(Exit),
    TooLarge,
    /// The stream closed without an exit frame (the container died).
    Closed,
}

/// Run `call` in `started`; the container is removed when this returns
/// (or is dropped), whatever the outcome.
pub async fn run(
    started: Started,
    call: &ColdCall,
    limits: OutputLimits,
    prestarted: bool,
) -> Result<Outcome, EngineError> {
    let Started {
        id, io, removal, ..
    } = started;
    let env = frame::encode_env(&call.env)
        .map_err(|e| EngineError::Protocol(format!("call environment: {e}")))?;
    let began = Instant::now();
    let writer = tokio::spawn(write_request(io.input, env, call.body.clone()));
    let mut output = io.output;
    let mut decoder = FrameDecoder::new();
    let mut stdout = BytesMut::new();
    let mut log = BytesMut::new();
    let mut log_dropped = 0u64;

    let read = async {
        while let Some(item) = output.next().await {
            let bytes = match item? {
                LogOutput::StdOut { message } => message,
                // The init writes nothing to stderr itself; anything there is
                // the engine's or the runtime's, and belongs in the log.
                LogOutput::StdErr { message } => {
                    append_capped(&mut log, &message, limits.max_log, &mut log_dropped);
                    continue;
                }
                _ => continue,
            };
            decoder.push(&bytes);
            while let Some((kind, payload)) = decoder
                .next_frame()
                .map_err(|e| EngineError::Protocol(e.to_string()))?
            {
                match kind {
                    frame::STDOUT => {
                        if stdout.len() + payload.len() > limits.max_stdout {
                            return Ok(Ended::TooLarge);
                        }
                        stdout.extend_from_slice(&payload);
                    }
                    frame::STDERR => {
                        append_capped(&mut log, &payload, limits.max_log, &mut log_dropped)
                    }
                    frame::EXIT => {
                        return Exit::decode(&payload)
                            .map(Ended::Exit)
                            .map_err(|e| EngineError::Protocol(e.to_string()))
                    }
                    other => {
                        return Err(EngineError::Protocol(format!(
                            "unexpected frame type {other:#04x}"
                        )))
                    }
                }
            }
        }
        Ok::<_, EngineError>(Ended::Closed)
    };
    let ended = tokio::time::timeout(call.timeout, read).await;
    writer.abort();
    let status = match ended {
        Err(_elapsed) => Status::TimedOut,
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Ended::TooLarge)) => Status::OutputTooLarge,
        Ok(Ok(Ended::Exit(exit))) => match exit {
            Exit::Code(0) => Status::Success,
            Exit::Code(code) => Status::Exited(code),
            Exit::Signal(signal) => Status::Signaled(signal),
            Exit::Oom(_) => Status::OutOfMemory,
            Exit::Failed { message, .. } => Status::StartFailed(message),
        },
        Ok(Ok(Ended::Closed)) => closed_status(&removal, &id).await?,
    };
    let run = began.elapsed();
    drop(removal);
    Ok(Outcome {
        status,
        stdout: stdout.freeze(),
        log: log.freeze(),
        log_dropped,
        prestarted,
        container_id: id,
        timings: Timings {
            run,
            ..Timings::default()
        },
    })
}

/// The stream ended without an exit frame: the whole container died. The
/// OOM killer is the usual reason (it may pick the init); the engine knows.
async fn closed_status(
    removal: &crate::container::Removal,
    id: &str,
) -> Result<Status, EngineError> {
    let docker = removal.docker();
    // The engine records OOMKilled when the container has exited.
    let mut exited =
        docker.wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    let _ = tokio::time::timeout(Duration::from_secs(5), exited.next()).await;
    let state = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?
        .state
        .unwrap_or_default();
    if state.oom_killed == Some(true) {
        return Ok(Status::OutOfMemory);
    }
    Err(EngineError::Protocol(format!(
        "the container ended without reporting a status (exit code {})",
        state.exit_code.unwrap_or(-1)
    )))
}

fn append_capped(log: &mut BytesMut, bytes: &[u8], cap: usize, dropped: &mut u64) {
    let room = cap.saturating_sub(log.len());
    let kept = bytes.len().min(room);
    log.extend_from_slice(&bytes[..kept]);
    *dropped += (bytes.len() - kept) as u64;
}
