//! Keeping nodes coherent: a change to a route or an app made through any
//! node drops what every node cached of it (routes for the invoke path,
//! hot containers, containers started ahead), so the next call everywhere
//! uses the new definition.
//!
//! Locally this happens at once. Other nodes hear of it on the change bus
//! (`ferrite_queue::bus`, milliseconds): Redis pub/sub when the queue is
//! Redis, else PostgreSQL's LISTEN/NOTIFY when the store is PostgreSQL. Two
//! things make up for messages lost while the bus's server is down or hung:
//!
//! - a node that was cut off from the bus forgets every cached route when it
//!   subscribes again, since it may have missed messages;
//! - a node that could not publish a change tells every node to forget all
//!   their cached routes once the server answers again (a subscriber that
//!   never noticed a short outage missed the message).
//!
//! Forgetting cached routes is enough for containers too: the engine keeps
//! the definition each pool of hot containers and containers started ahead
//! was made for, and replaces the pool when a call brings another one (an
//! app's config changed); and a route read again that serves other versions
//! than before drops its containers of every version (`route_cache`).
//! Without a bus (SQLite: one node) the route cache's TTL bounds how long a
//! stale route is served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrite_engine::Engine;
use ferrite_queue::bus::{ChangeBus, Heard, MAX_MESSAGE_BYTES};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::route_cache::RouteCache;

/// Wait before subscribing again after the bus broke, and between tries
/// to publish what could not be published.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Change {
    /// A route was updated or deleted.
    Route { app: String, path: String },
    /// An app's config changed (its routes' environment), or it was deleted.
    App { app: String },
    /// Anything may have changed: a node could not tell the others what.
    All,
}

/// A change as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The node that made the change (it has applied it already).
    node: String,
    #[serde(flatten)]
    change: Change,
}

pub struct Changes {
    node: String,
    routes: Arc<RouteCache>,
    engine: Arc<Engine>,
    bus: Option<ChangeBus>,
    /// A change made here was not published: the others must be told to
    /// forget everything once the bus works again.
    unsent: AtomicBool,
    /// The changes made on other nodes, for what follows them beyond the
    /// caches (the services, on the node that scales them).
    heard: broadcast::Sender<Change>,
}

/// Changes from other nodes kept for a slow follower; one that falls
/// further behind is told [`Change::All`].
const HEARD_BACKLOG: usize = 256;

impl Changes {
    pub fn new(
        node: &str,
        routes: Arc<RouteCache>,
        engine: Arc<Engine>,
        bus: Option<ChangeBus>,
    ) -> Changes {
        Changes {
            node: node.to_string(),
            routes,
            engine,
            bus,
            unsent: AtomicBool::new(false),
            heard: broadcast::channel(HEARD_BACKLOG).0,
        }
    }

    /// The changes made on other nodes from now on.
    pub fn heard(&self) -> broadcast::Receiver<Change> {
        self.heard.subscribe()
    }

    /// A change made through this node: apply it here, then tell the others.
    pub async fn made(&self, change: Change) {
        self.apply(&change);
        let Some(bus) = &self.bus else { return };
        let text = encode(&self.node, change);
        if let Err(e) = bus.publish(&text).await {
            self.unsent.store(true, Ordering::SeqCst);
            tracing::warn!(error = %e, change = %text, server = bus.server(), "cannot tell other nodes about a change; they are told to forget every cached route once the bus's server answers");
        }
    }

    fn apply(&self, change: &Change) {
        match change {
            Change::Route { app, path } => {
                self.routes.forget_route(app, path);
                self.engine.forget_route(app, path);
            }
            Change::App { app } => {
                self.routes.forget_app(app);
                self.engine.forget_app(app);
            }
            Change::All => self.routes.forget_all(),
        }
    }

    /// Apply the changes other nodes make, and publish what could not be
    /// published, until `cancel`.
    pub async fn listen(self: Arc<Self>, cancel: CancellationToken) {
        let Some(bus) = &self.bus else { return };
        tokio::join!(self.subscribe(bus, &cancel), self.resend(bus, &cancel));
    }

    /// Once a publish failed: tell every node to forget all, as soon as the
    /// bus takes it.
    async fn resend(&self, bus: &ChangeBus, cancel: &CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            }
            if !self.unsent.swap(false, Ordering::SeqCst) {
                continue;
            }
            match bus.publish(&encode(&self.node, Change::All)).await {
                Ok(()) => tracing::info!("told other nodes to forget their cached routes: a change made here was not published"),
                Err(_) => self.unsent.store(true, Ordering::SeqCst),
            }
        }
    }

    async fn subscribe(&self, bus: &ChangeBus, cancel: &CancellationToken) {
        loop {
            let heard = bus.listen(|heard| {
                match heard {
                    Heard::Subscribed => {
                        // Whatever was missed meanwhile: start afresh.
                        self.routes.forget_all();
                        let _ = self.heard.send(Change::All);
                        tracing::info!("listening for changes made on other nodes");
                    }
                    Heard::Message(text) => match serde_json::from_str::<Message>(&text) {
                        Ok(message) if message.node != self.node => {
                            tracing::debug!(from = %message.node, change = ?message.change, "change made on another node");
                            self.apply(&message.change);
                            // Nobody following is no error.
                            let _ = self.heard.send(message.change);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "ignoring a change message"),
                    },
                }
                !cancel.is_cancelled()
            });
            tokio::select! {
                () = cancel.cancelled() => return,
                result = heard => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, server = bus.server(), "change bus lost; subscribing again");
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            }
        }
    }
}

/// A change made on `node` as it travels. One the bus cannot carry (over
/// [`MAX_MESSAGE_BYTES`], which names and paths as validated never reach)
/// travels as [`Change::All`]: the others forget more than needed, never
/// less.
fn encode(node: &str, change: Change) -> String {
    let text = |change| {
        serde_json::to_string(&Message {
            node: node.to_string(),
            change,
        })
        .unwrap_or_default()
    };
    let message = text(change);
    match message.len() > MAX_MESSAGE_BYTES {
        true => text(Change::All),
        false => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let message = Message {
            node: "n1".into(),
            change: Change::Route {
                app: "a".into(),
                path: "/p".into(),
            },
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            text,
            r#"{"node":"n1","kind":"route","app":"a","path":"/p"}"#
        );
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back.change, message.change);
        let app: Message = serde_json::from_str(r#"{"node":"n2","kind":"app","app":"a"}"#).unwrap();
        assert_eq!(app.change, Change::App { app: "a".into() });
        let all: Message = serde_json::from_str(r#"{"node":"n3","kind":"all"}"#).unwrap();
        assert_eq!(all.change, Change::All);
    }

    #[test]
    fn a_change_too_large_for_the_bus_travels_as_all() {
        let route = |path: String| Change::Route {
            app: "a".into(),
            path,
        };
        let fits = encode("n1", route("/p".into()));
        assert_eq!(
            serde_json::from_str::<Message>(&fits).unwrap().change,
            route("/p".into())
        );
        let huge = encode("n1", route(format!("/{}", "p".repeat(MAX_MESSAGE_BYTES))));
        assert!(huge.len() <= MAX_MESSAGE_BYTES);
        let heard: Message = serde_json::from_str(&huge).unwrap();
        assert_eq!((heard.node.as_str(), heard.change), ("n1", Change::All));
    }
}
