//! Image names that move. A route names its image by name (`ferrite/hello`,
//! `x:1.2`); `docker build -t`, a pull, a load or a `docker tag` can make
//! that name name another image while containers made from the old one wait
//! for calls. This follows the engine's image events and, for an event
//! about a name a route here uses, inspects that name once: containers made
//! from another image are removed and never handed to a call (their
//! replacements are made from the new one). Nothing is asked of the engine
//! per call: calls check the ids learnt here, in memory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::Engine;
use crate::image::{normalize, ImageMoved};

/// Image events that may change what a name names.
const ACTIONS: [&str; 6] = ["tag", "untag", "delete", "load", "pull", "import"];
/// Actions whose `name` attribute is the name that now names the image;
/// for the others it may be an id, so every name in use is checked.
const NAMED: [&str; 2] = ["tag", "pull"];
/// Pause before following the stream again after it broke.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// Follow `names` (image names as routes give them) for the server:
    /// replaces the names followed before. Their moves come to
    /// [`Engine::image_moves`] listeners.
    pub fn follow_images(&self, names: impl IntoIterator<Item = String>) {
        self.containers.images.follow(names);
    }

    /// Hear when a followed name names another image (one follower of the
    /// engine's events serves containers and services alike).
    pub fn image_moves(&self) -> tokio::sync::broadcast::Receiver<ImageMoved> {
        self.containers.images.moves()
    }

    /// Whether `name` still names image `id` as far as the image events
    /// told; in memory, cheap enough for every call.
    pub fn image_is_current(&self, name: &str, id: &str) -> bool {
        self.containers.images.is_current(name, id)
    }

    /// Follow the engine's image events until shutdown. When the stream
    /// breaks (the engine went away, a proxy cut it), it is followed again
    /// from the moment it broke, so the engine replays what was missed.
    pub(super) async fn image_watch_loop(self: Arc<Self>) {
        let docker = self.docker().clone();
        let filters = HashMap::from([
            ("type".to_string(), vec!["image".to_string()]),
            (
                "event".to_string(),
                ACTIONS.iter().map(|a| a.to_string()).collect(),
            ),
        ]);
        let mut since = None;
        loop {
            let mut events = docker.events(Some(EventsOptions {
                since: since.map(|s: u64| s.to_string()),
                filters: Some(filters.clone()),
                ..Default::default()
            }));
            loop {
                let event = tokio::select! {
                    () = self.cancel.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    Some(Ok(event)) => self.image_event(event).await,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "image event stream broke; following it again");
                        break;
                    }
                    None => break,
                }
            }
            since = Some(unix_now());
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE) => {}
            }
        }
    }

    /// One image event: check the names in use that it may have moved.
    async fn image_event(&self, event: EventMessage) {
        let mut in_use: HashMap<String, String> = self
            .pools
            .image_names()
            .into_iter()
            .chain(self.hot.image_names())
            .chain(self.containers.images.followed_names())
            .map(|name| (normalize(&name), name))
            .collect();
        let keep: HashSet<String> = in_use.keys().cloned().collect();
        self.containers.images.keep_only(&keep);
        let action = event.action.unwrap_or_default();
        let name = event
            .actor
            .and_then(|a| a.attributes)
            .and_then(|mut attributes| attributes.remove("name"))
            .map(|name| normalize(&name));
        let names: Vec<String> = match name.and_then(|n| in_use.remove(&n)) {
            Some(name) => vec![name],
            None if NAMED.contains(&action.as_str()) => Vec::new(),
            None => in_use.into_values().collect(),
        };
        for name in names {
            self.check_image(&name, &action).await;
        }
    }

    /// Learn which image `name` names now and retire the containers made
    /// from another one.
    async fn check_image(&self, name: &str, action: &str) {
        let id = match self.containers.images.id_of(name).await {
            Ok(Some(id)) => id,
            // Deleted: containers made from it stay usable (the image they
            // run is still there); a new one needs the name again.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(image = name, error = %e, "cannot inspect an image after an image event");
                return;
            }
        };
        // Recorded first: a container being started from the old image now
        // is dropped when it is added or taken.
        self.containers.images.set_current(name, id.clone());
        self.containers.images.moved(name, &id);
        let prestarted = self.pools.retire_image(name, &id);
        let hot = self.hot.retire_image(name, &id);
        if prestarted + hot > 0 {
            tracing::info!(
                image = name, image_id = %id, action, prestarted_retired = prestarted, hot_retired = hot,
                "image name moved to another image: containers of the old one removed"
            );
        }
    }
}
