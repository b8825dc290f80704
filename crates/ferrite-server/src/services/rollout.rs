//! The services' rolling updates, followed to their end: one that Swarm
//! gives up (rolls back, or pauses) is logged, shown by `GET /v1/services`,
//! and marked on the service so that no node tries the same definition
//! again until its route changes (see `ferrite_swarm::Swarm::mark_failed`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrite_model::Millis;
use ferrite_swarm::{SwarmError, UpdateProgress};
use tokio_util::sync::CancellationToken;

use super::{Managed, Services};

/// How often an update under way is looked at: often enough to catch
/// Swarm's message while it rolls back, which the end of the rollback
/// replaces.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// Swarm marks an update as under way a moment after it took it; until
/// then (or for an update that changes no task) it shows none.
const START_GRACE: Duration = Duration::from_secs(10);
/// The longest an update is followed: one still under way after this is
/// left to Swarm (a service whose tasks wait for a node, say).
const FOLLOW_AT_MOST: Duration = Duration::from_secs(600);

/// A service's last rolling update, as this node knows it.
#[derive(Debug, Default)]
pub(crate) struct Rollout {
    /// When this node asked for the update it follows; `None` when it
    /// follows none.
    since: Option<Instant>,
    /// Swarm has shown the update under way.
    seen: bool,
    /// Swarm's message while it rolled the update back (it names the task
    /// whose failure made it).
    rollback_message: Option<String>,
    /// Why the update to the route's current definition failed, and when
    /// this node learnt it; the service runs its previous definition.
    pub failed: Option<(String, Millis)>,
}

impl Rollout {
    /// An update just asked of Swarm, to follow.
    pub fn started(now: Instant) -> Rollout {
        Rollout {
            since: Some(now),
            ..Rollout::default()
        }
    }

    /// Nothing to follow; `failed` when the definition's update failed
    /// before (found marked on the service).
    pub fn settled(failed: Option<String>) -> Rollout {
        Rollout {
            failed: failed.map(|why| (why, Millis::now())),
            ..Rollout::default()
        }
    }

    fn following(&self) -> bool {
        self.since.is_some()
    }
}

impl Services {
    /// Follow the updates under way until `cancel`.
    pub(super) async fn follow_rollouts(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
            let following: Vec<Arc<Managed>> = self
                .managed()
                .values()
                .filter(|m| m.rollout().following())
                .cloned()
                .collect();
            for managed in following {
                if let Err(e) = self.look_at_rollout(&managed).await {
                    tracing::debug!(service = %managed.name, error = %e, "cannot read the service's update");
                }
            }
        }
    }

    async fn look_at_rollout(&self, managed: &Managed) -> Result<(), SwarmError> {
        let progress = match self.swarm.update_progress(&managed.name).await {
            Err(SwarmError::NotFound(_)) => UpdateProgress::Done,
            other => other?,
        };
        let now = Instant::now();
        let why = {
            let mut rollout = managed.rollout();
            let Some(since) = rollout.since else {
                return Ok(());
            };
            match progress {
                UpdateProgress::Updating {
                    rolling_back,
                    message,
                } => {
                    rollout.seen = true;
                    if rolling_back && !message.is_empty() {
                        rollout.rollback_message = Some(message);
                    }
                    if now.duration_since(since) > FOLLOW_AT_MOST {
                        tracing::info!(service = %managed.name, "update still under way; no longer followed");
                        rollout.since = None;
                    }
                    return Ok(());
                }
                UpdateProgress::Done => {
                    if rollout.seen || now.duration_since(since) > START_GRACE {
                        rollout.since = None;
                    }
                    return Ok(());
                }
                UpdateProgress::Failed(mut failure) => {
                    // Swarm's message while it rolled back names the task
                    // that failed; the one it ends with only says it did.
                    if let Some(message) = rollout.rollback_message.take() {
                        failure.message = message;
                    }
                    let why = failure.why();
                    rollout.since = None;
                    rollout.failed = Some((why.clone(), Millis::now()));
                    why
                }
            }
        };
        tracing::warn!(service = %managed.name, app = %managed.app, path = %managed.path, why = %why, "the service's update failed: it runs its previous definition; a change of the route tries again");
        // Calls no longer wait for tasks of the new image: there are none.
        managed.renewing.store(false, Ordering::Release);
        self.watcher.changed(&managed.name);
        self.swarm
            .mark_failed(&managed.name, &managed.hash, &why)
            .await
    }
}
