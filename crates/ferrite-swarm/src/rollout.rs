//! How a service's rolling update went, and the mark a failed one leaves.
//!
//! Swarm rolls back an update whose new tasks fail, restoring the previous
//! spec (labels included) and forgetting the failed one: its `PreviousSpec`
//! is emptied, and the next change of the service (a scale, even) clears
//! its `UpdateStatus`. So once Ferrite has seen an update fail it writes
//! the failed definition's hash and the reason on the service's own labels,
//! where every node (and a restarted one) finds them: the same definition
//! is then not tried again until its route changes.

use std::collections::HashMap;

use bollard::models::{ServiceSpec, ServiceUpdateStatusStateEnum};
use serde::Deserialize;

use super::definition::labels;
use super::error::is_out_of_sequence;
use super::services::update_options;
use super::{Swarm, SwarmError};

/// The longest reason kept on a service's label.
const MAX_WHY: usize = 512;
/// One retry when the service changed between the read and the write.
const ATTEMPTS: usize = 2;

/// Where a service's last rolling update stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateProgress {
    /// Under way: new tasks starting, or the update being rolled back.
    Updating {
        rolling_back: bool,
        /// Swarm's message (for a rollback, which task made it fail).
        message: String,
    },
    /// Nothing under way: done, never updated, or its status cleared by a
    /// later change of the service.
    Done,
    /// Swarm gave the update up: rolled back (or paused).
    Failed(UpdateFailure),
}

/// An update Swarm gave up, and what it and the failed task said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailure {
    /// `rollback_completed`, `rollback_paused` or `paused`.
    pub state: String,
    /// Swarm's message; once a rollback has completed it only says so,
    /// and its message while rolling back (which task failed) is gone.
    pub message: String,
    /// The error of the service's task that failed last.
    pub task_error: Option<String>,
}

impl UpdateFailure {
    /// One line saying why: what Swarm did, its message, what the failed
    /// task said.
    pub fn why(&self) -> String {
        reason(&self.state, &self.message, self.task_error.as_deref())
    }
}

/// A task's failure, the fields read here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FailedTask {
    #[serde(rename = "Status")]
    status: Option<TaskStatus>,
    #[serde(rename = "UpdatedAt")]
    updated_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TaskStatus {
    #[serde(rename = "Err")]
    err: Option<String>,
}

impl Swarm {
    /// Where the last rolling update of service `name` stands; for a failed
    /// one, why: Swarm's message and the newest task error.
    pub async fn update_progress(&self, name: &str) -> Result<UpdateProgress, SwarmError> {
        let service = self
            .inspect(name)
            .await?
            .ok_or_else(|| SwarmError::NotFound(name.to_string()))?;
        let Some(status) = service.update_status else {
            return Ok(UpdateProgress::Done);
        };
        let message = status.message.unwrap_or_default();
        let state = match status.state {
            Some(ServiceUpdateStatusStateEnum::UPDATING) => {
                return Ok(UpdateProgress::Updating {
                    rolling_back: false,
                    message,
                })
            }
            Some(ServiceUpdateStatusStateEnum::ROLLBACK_STARTED) => {
                return Ok(UpdateProgress::Updating {
                    rolling_back: true,
                    message,
                })
            }
            Some(
                state @ (ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                | ServiceUpdateStatusStateEnum::PAUSED),
            ) => state.to_string(),
            _ => return Ok(UpdateProgress::Done),
        };
        Ok(UpdateProgress::Failed(UpdateFailure {
            state,
            message,
            task_error: self.newest_task_error(name).await?,
        }))
    }

    /// Write on service `name` that the update to the definition hashed
    /// `hash` failed, and `why`; nothing else of it changes (its tasks are
    /// not touched: only the service's own labels do).
    pub async fn mark_failed(&self, name: &str, hash: &str, why: &str) -> Result<(), SwarmError> {
        for attempt in 1..=ATTEMPTS {
            let service = self
                .inspect(name)
                .await?
                .ok_or_else(|| SwarmError::NotFound(name.to_string()))?;
            let mut spec = service.spec.clone().unwrap_or_default();
            if failed_for(&spec, hash).as_deref() == Some(why) {
                return Ok(());
            }
            let labels_of = spec.labels.get_or_insert_with(HashMap::new);
            labels_of.insert(labels::FAILED_SPEC.to_string(), hash.to_string());
            labels_of.insert(labels::FAILED_WHY.to_string(), clip(why));
            let options = update_options(&service, name)?;
            match self.docker.update_service(name, spec, options, None).await {
                Ok(_) => return Ok(()),
                Err(e) if is_out_of_sequence(&e) && attempt < ATTEMPTS => {}
                Err(e) if is_out_of_sequence(&e) => {
                    return Err(SwarmError::Conflict(name.to_string()))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(SwarmError::Conflict(name.to_string()))
    }

    /// The error of the service's task that failed last, if any says one.
    async fn newest_task_error(&self, name: &str) -> Result<Option<String>, SwarmError> {
        let filters = serde_json::json!({ "service": [name] }).to_string();
        let tasks: Vec<FailedTask> = self
            .get
            .get_json("/tasks", &[("filters", &filters)])
            .await?;
        Ok(tasks
            .into_iter()
            .filter_map(|t| {
                let err = t.status?.err.filter(|e| !e.is_empty())?;
                Some((t.updated_at.unwrap_or_default(), err))
            })
            // RFC 3339 times of one clock sort as text.
            .max()
            .map(|(_, err)| err))
    }
}

/// Why the update to the definition hashed `hash` failed, when the spec
/// carries the mark of that failure.
pub(crate) fn failed_for(spec: &ServiceSpec, hash: &str) -> Option<String> {
    let labels_of = spec.labels.as_ref()?;
    if labels_of.get(labels::FAILED_SPEC).map(String::as_str) != Some(hash) {
        return None;
    }
    Some(
        labels_of
            .get(labels::FAILED_WHY)
            .cloned()
            .unwrap_or_default(),
    )
}

/// One line saying why: what Swarm did and what the failed task said.
fn reason(state: &str, message: &str, task_error: Option<&str>) -> String {
    let done = match state {
        "rollback_completed" => "the update failed and Swarm rolled it back",
        "rollback_paused" => "the update failed and so did its rollback (paused)",
        _ => "the update failed and Swarm paused it",
    };
    let mut why = done.to_string();
    // "rollback completed" and the like say nothing more than `done`.
    if !message.is_empty() && !message.starts_with("rollback ") && message != "update paused" {
        why.push_str(" (");
        why.push_str(message);
        why.push(')');
    }
    if let Some(err) = task_error {
        why.push_str("; task error: ");
        why.push_str(err);
    }
    why
}

/// `why` cut to [`MAX_WHY`] bytes at a character boundary.
fn clip(why: &str) -> String {
    let mut end = why.len().min(MAX_WHY);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    why[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_names_one_definition() {
        let mut spec = ServiceSpec::default();
        assert_eq!(failed_for(&spec, "h1"), None);
        spec.labels = Some(HashMap::from([
            (labels::FAILED_SPEC.to_string(), "h1".to_string()),
            (
                labels::FAILED_WHY.to_string(),
                "task error: exit 1".to_string(),
            ),
        ]));
        assert_eq!(
            failed_for(&spec, "h1").as_deref(),
            Some("task error: exit 1")
        );
        assert_eq!(failed_for(&spec, "h2"), None, "another definition is tried");
    }

    #[test]
    fn the_reason_says_what_swarm_did_and_what_the_task_said() {
        assert_eq!(
            reason(
                "rollback_completed",
                "rollback completed",
                Some("task: non-zero exit (1)")
            ),
            "the update failed and Swarm rolled it back; task error: task: non-zero exit (1)"
        );
        assert_eq!(
            reason(
                "paused",
                "update paused due to failure or early termination of task x",
                None
            ),
            "the update failed and Swarm paused it (update paused due to failure or early \
             termination of task x)"
        );
        let long = "é".repeat(MAX_WHY);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_WHY && long.starts_with(&clipped));
    }
}
