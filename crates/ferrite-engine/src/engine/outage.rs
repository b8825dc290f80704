//! When the engine goes away: throw away what it held, refuse calls until
//! it is back, then clean up after it. Whether it is up is `health.rs`'s
//! [`Health`](crate::health::Health); this is what the node does about it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::Engine;
use crate::health;
use crate::{labels, EngineError};

/// How long removing the leftovers may take once the engine is back, before
/// the node probes it again.
const PROBE_CLEANUP: Duration = Duration::from_secs(60);

impl Engine {
    /// Whether a call may start, and the engine's generation it starts in:
    /// not while shutting down, nor while the engine is down (it would fail
    /// or hang; the caller may retry soon).
    pub(super) fn ready(&self) -> Result<u64, EngineError> {
        if self.cancel.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let generation = self.health.generation();
        if !self.health.up_since(generation) {
            return Err(self.down_error());
        }
        Ok(generation)
    }

    fn down_error(&self) -> EngineError {
        EngineError::Down {
            host: self.host.clone(),
        }
    }

    /// A call begun in `generation` failed: when the engine went down
    /// meanwhile, or may be the cause and does not answer a ping (it is then
    /// marked down), the call gets [`EngineError::Down`]: its failure was
    /// the engine's, and a retry soon may work.
    pub(super) async fn failed(&self, err: EngineError, generation: u64) -> EngineError {
        if self.health.generation() != generation {
            return self.down_error();
        }
        if !err.may_be_engine() {
            return err;
        }
        if self.health.is_up() && health::answers(self.docker()).await {
            return err;
        }
        tracing::debug!(error = %err, "a call failed and the engine does not answer");
        self.went_down("a call failed and a ping got no answer");
        self.health.suspect.notify_one();
        self.down_error()
    }

    /// The engine went away: every container it held for this node died
    /// with it (or soon will), so none may be handed to a call. Their
    /// removals fail while the engine is down; what they leave is removed
    /// when it is back.
    fn went_down(&self, why: &str) {
        if !self.health.set_down() {
            return;
        }
        let (prestarted, hot) = (self.pools.idle_count(), self.hot.idle_count());
        self.pools.drain();
        self.hot.drain();
        tracing::warn!(
            host = %self.host, why, prestarted_dropped = prestarted, hot_dropped = hot,
            "Docker engine down: calls get 503 until it answers again"
        );
    }

    /// Follow the engine's event stream while it is up; when it breaks (the
    /// engine stopped or restarted) or a call saw the engine fail, and a
    /// ping gets no answer, mark it down, ping it until it answers, remove
    /// this node's leftovers, and take calls again.
    pub(super) async fn watch_loop(self: Arc<Self>) {
        let docker = self.docker().clone();
        let filters = std::collections::HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={}", labels::NODE, self.containers.node)],
            ),
        ]);
        loop {
            let mut events = docker.events(Some(EventsOptions {
                filters: Some(filters.clone()),
                ..Default::default()
            }));
            let why = tokio::select! {
                () = self.cancel.cancelled() => return,
                () = async { while let Some(Ok(_)) = events.next().await {} } => {
                    // A stopping engine stops answering at once; one that
                    // answers had the stream cut on the way (a proxy's idle
                    // timeout), and its containers are still alive.
                    if self.health.is_up() && health::answers(&docker).await {
                        tracing::debug!("the engine's event stream ended but the engine answers; following it again");
                        tokio::select! {
                            () = self.cancel.cancelled() => return,
                            () = tokio::time::sleep(health::PROBE_FIRST) => continue,
                        }
                    }
                    "its event stream ended and a ping got no answer"
                }
                () = self.health.suspect.notified() => {
                    if self.health.is_up() && health::answers(&docker).await {
                        continue;
                    }
                    "a call failed and a ping got no answer"
                }
            };
            drop(events);
            self.went_down(why);
            let began = Instant::now();
            if !self.probe().await {
                return;
            }
            let answered = began.elapsed();
            // Nothing this node made before may be left: the containers the
            // engine stopped, and those whose removal failed while it was down.
            match tokio::time::timeout(PROBE_CLEANUP, self.containers.remove_leftovers()).await {
                Ok(Ok(removed)) => {
                    self.health.set_up();
                    tracing::info!(
                        host = %self.host, down_ms = answered.as_millis(), leftovers_removed = removed,
                        ready_ms = began.elapsed().as_millis(), "Docker engine back: taking calls again"
                    );
                    self.pools.wake.notify_one();
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Docker engine answers but its leftovers cannot be listed; probing again");
                }
                Err(_) => {
                    tracing::warn!("removing leftovers took too long; probing again");
                }
            }
        }
    }

    /// Ping until the engine answers; false when the node shuts down first.
    async fn probe(&self) -> bool {
        let mut wait = health::PROBE_FIRST;
        loop {
            if health::answers(self.docker()).await {
                return true;
            }
            tokio::select! {
                () = self.cancel.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = health::next_wait(wait);
        }
    }
}
