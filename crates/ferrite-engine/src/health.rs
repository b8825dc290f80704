//! Whether the engine answers. The engine's event stream breaks when it
//! stops or restarts, and a call can fail on a dead engine before that: either
//! marks the engine down. While down, calls are refused at once (they would
//! fail or hang on a dead engine, and the containers this node holds died
//! with it); a probe pings the engine until it answers again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use tokio::sync::Notify;

/// How long a ping may take before the engine counts as not answering: a
/// local engine answers in milliseconds, a remote one well within this.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The probe's first wait after the engine went down, and its longest (it
/// doubles in between): the engine is seen back within a second of
/// answering, without flooding a struggling engine with pings.
pub const PROBE_FIRST: Duration = Duration::from_millis(500);
pub const PROBE_MAX: Duration = Duration::from_secs(1);

pub struct Health {
    up: AtomicBool,
    /// How many times the engine went down: a container made, or a call
    /// begun, in an earlier generation belongs to an engine that has gone
    /// away since.
    generation: AtomicU64,
    /// Wakes the watcher when a call saw the engine fail.
    pub suspect: Notify,
}

impl Health {
    pub fn new() -> Health {
        Health {
            up: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            suspect: Notify::new(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether the engine is up and has not gone down since `generation`.
    pub fn up_since(&self, generation: u64) -> bool {
        self.is_up() && self.generation() == generation
    }

    /// Mark the engine down; true when it was up (the caller then throws
    /// away what the engine held).
    pub fn set_down(&self) -> bool {
        let was_up = self.up.swap(false, Ordering::SeqCst);
        if was_up {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        was_up
    }

    pub fn set_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Whether the engine answers a ping within [`PING_TIMEOUT`].
pub async fn answers(docker: &Docker) -> bool {
    matches!(
        tokio::time::timeout(PING_TIMEOUT, docker.ping()).await,
        Ok(Ok(_))
    )
}

/// The wait before the probe's next ping.
pub fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(PROBE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_waits_double_up_to_the_cap() {
        let waits: Vec<Duration> =
            std::iter::successors(Some(PROBE_FIRST), |w| Some(next_wait(*w)))
                .take(4)
                .collect();
        assert_eq!(
            waits,
            [500, 1000, 1000, 1000].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn down_reports_the_change_once() {
        let health = Health::new();
        assert!(health.is_up());
        let before = health.generation();
        assert!(health.up_since(before));
        assert!(health.set_down());
        assert!(!health.set_down());
        health.set_up();
        assert!(health.is_up());
        assert!(!health.up_since(before), "went down since");
        assert!(health.up_since(before + 1));
    }
}
