//! A broadcast channel between the nodes that share a Redis queue: Redis
//! pub/sub on `{prefix}:changes`. Delivery is at-most-once to the nodes
//! subscribed at the time, so listeners must assume they missed messages
//! while they were disconnected (see [`ChangeBus::listen`]).
//!
//! Every operation is bounded by the queue's Redis timeout. A hung server
//! (stopped, not down) keeps a subscriber's connection open and silent, which
//! looks like a quiet bus; so a subscription is checked with a PING every
//! [`PING_EVERY`] and counts as broken when the answer is late.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::Client;

use crate::redis::{bounded, connect, Connected};
use crate::QueueError;

/// How often a subscription checks that the server still answers.
pub const PING_EVERY: Duration = Duration::from_secs(1);

pub struct ChangeBus {
    /// Opens the dedicated connection of each subscription.
    client: Client,
    publisher: ConnectionManager,
    channel: String,
    /// The most any one operation may take.
    timeout: Duration,
}

/// What a listener is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message published by any node (this one included).
    Message(String),
    /// The subscription is (re)established: messages may have been missed.
    Subscribed,
}

impl ChangeBus {
    /// The bus of the Redis server and prefix of a `redis://host:port/prefix`
    /// queue URL; every operation gives up after `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> Result<ChangeBus, QueueError> {
        let Connected {
            client,
            conn,
            prefix,
        } = connect(url, timeout).await?;
        Ok(ChangeBus {
            client,
            publisher: conn,
            channel: format!("{prefix}:changes"),
            timeout,
        })
    }

    /// Send `message` to every subscribed node. After a
    /// [`QueueError::Timeout`] the message may still be delivered late.
    pub async fn publish(&self, message: &str) -> Result<(), QueueError> {
        let mut conn = self.publisher.clone();
        bounded(
            self.timeout,
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(message)
                .query_async::<i64>(&mut conn),
        )
        .await?;
        Ok(())
    }

    /// Subscribe and hand every message to `on`, until the connection
    /// breaks or stops answering (`Err`) or `on` returns `false` (`Ok`).
    /// `on` first gets [`Heard::Subscribed`].
    pub async fn listen(&self, mut on: impl FnMut(Heard) -> bool) -> Result<(), QueueError> {
        let pubsub = bounded(self.timeout, self.client.get_async_pubsub()).await?;
        let (mut sink, mut messages) = pubsub.split();
        bounded(self.timeout, sink.subscribe(&self.channel)).await?;
        if !on(Heard::Subscribed) {
            return Ok(());
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(QueueError::Config(format!(
                            "the subscription to {} ended",
                            self.channel
                        )));
                    };
                    match message.get_payload::<String>() {
                        Ok(text) => {
                            if !on(Heard::Message(text)) {
                                return Ok(());
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a change message that is not text"),
                    }
                }
                _ = ping.tick() => {
                    // A subscribed connection answers PING with an array.
                    bounded(self.timeout, sink.ping::<redis::Value>()).await?;
                }
            }
        }
    }
}
