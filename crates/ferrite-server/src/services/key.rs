//! A service's watchdog key as this node holds it: sent with every call,
//! and read again from the service when a watchdog refuses it (the service
//! was made again, through another node, with a new key).

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use ferrite_swarm::WatchdogKey;

use super::{Managed, Services};

/// A service's watchdog key on this node.
pub(super) struct KeyState {
    pub(super) key: WatchdogKey,
    /// When it was last read again after a refusal: at most once per
    /// [`KEY_REREAD_PAUSE`], so a function that fakes refusals cannot make
    /// every call an engine request.
    pub(super) reread: Option<Instant>,
}

/// Shortest time between two readings of a service's key after refusals.
const KEY_REREAD_PAUSE: Duration = Duration::from_secs(2);

impl Managed {
    /// The key to send with a call.
    pub fn key(&self) -> WatchdogKey {
        self.key_state().key.clone()
    }

    fn key_state(&self) -> MutexGuard<'_, KeyState> {
        self.key.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Services {
    /// After `managed`'s watchdog refused `sent`: read the service's key
    /// again, and return it when it is another one (the service was made
    /// again, through another node, with a new key). `None` when the key is
    /// the same (the refusal was not about an outdated key), when it was
    /// read too recently, or when it cannot be read.
    pub(crate) async fn reread_key(
        &self,
        managed: &Managed,
        sent: &WatchdogKey,
    ) -> Option<WatchdogKey> {
        {
            let mut state = managed.key_state();
            if state.key != *sent {
                // Another call read it meanwhile.
                return Some(state.key.clone());
            }
            let now = Instant::now();
            if state
                .reread
                .is_some_and(|at| now.duration_since(at) < KEY_REREAD_PAUSE)
            {
                return None;
            }
            state.reread = Some(now);
        }
        match self.swarm.service_key(&managed.name).await {
            Ok(Some(fresh)) if fresh != *sent => {
                tracing::info!(service = %managed.name, "the service's watchdog key changed (made again through another node); using the new one");
                managed.key_state().key = fresh.clone();
                Some(fresh)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(service = %managed.name, error = %e, "cannot read the service's watchdog key");
                None
            }
        }
    }
}
