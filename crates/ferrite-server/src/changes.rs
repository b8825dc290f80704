//! Keeping nodes coherent: a change to a route or an app made through any
//! node drops what every node cached of it (routes for the invoke path,
//! hot containers, containers started ahead), so the next call everywhere
//! uses the new definition.
//!
//! Locally this happens at once. Other nodes hear of it on the change bus
//! when the queue is Redis (pub/sub, milliseconds); a node that was cut off
//! from the bus forgets every cached route when it subscribes again, since it
//! may have missed messages. Without a bus (the embedded queue: one node) or
//! when a message is lost, the route cache's TTL bounds how long a stale
//! route is served.

use std::sync::Arc;
use std::time::Duration;

use ferrite_engine::Engine;
use ferrite_queue::bus::{ChangeBus, Heard};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::route_cache::RouteCache;

/// Wait before subscribing again after the bus broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Change {
    /// A route was updated or deleted.
    Route { app: String, path: String },
    /// An app's config changed (its routes' environment), or it was deleted.
    App { app: String },
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
}

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
        }
    }

    /// A change made through this node: apply it here, then tell the others.
    pub async fn made(&self, change: Change) {
        self.apply(&change);
        let Some(bus) = &self.bus else { return };
        let message = Message {
            node: self.node.clone(),
            change,
        };
        let text = serde_json::to_string(&message).unwrap_or_default();
        if let Err(e) = bus.publish(&text).await {
            tracing::warn!(error = %e, change = %text, "cannot tell other nodes about a change; they see it when their cached routes expire");
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
        }
    }

    /// Apply the changes other nodes make, until `cancel`.
    pub async fn listen(self: Arc<Self>, cancel: CancellationToken) {
        let Some(bus) = &self.bus else { return };
        loop {
            let heard = bus.listen(|heard| {
                match heard {
                    Heard::Subscribed => {
                        // Whatever was missed meanwhile: start afresh.
                        self.routes.forget_all();
                        tracing::info!("listening for changes made on other nodes");
                    }
                    Heard::Message(text) => match serde_json::from_str::<Message>(&text) {
                        Ok(message) if message.node != self.node => {
                            tracing::debug!(from = %message.node, change = ?message.change, "change made on another node");
                            self.apply(&message.change);
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
                        tracing::warn!(error = %e, "change bus lost; subscribing again");
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
    }
}
