//! The change bus over the Redis server of a queue: pub/sub on
//! `{prefix}:changes`, so installations sharing a server (each with its
//! prefix) are apart. A subscription's dedicated connection answers PING
//! every [`PING_EVERY`], which tells a hung server from a quiet bus.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::Client;

use super::{Heard, PING_EVERY};
use crate::redis::{bounded, connect, Connected};
use crate::QueueError;

pub(super) struct RedisBus {
    /// Opens the dedicated connection of each subscription.
    client: Client,
    publisher: ConnectionManager,
    channel: String,
    /// The most any one operation may take.
    timeout: Duration,
}

impl RedisBus {
    /// The bus of the Redis server and prefix of a `redis://host:port/prefix`
    /// queue URL; every operation gives up after `timeout`.
    pub(super) async fn open(url: &str, timeout: Duration) -> Result<RedisBus, QueueError> {
        let Connected {
            client,
            conn,
            prefix,
        } = connect(url, timeout).await?;
        Ok(RedisBus {
            client,
            publisher: conn,
            channel: format!("{prefix}:changes"),
            timeout,
        })
    }

    /// See [`super::ChangeBus::publish`].
    pub(super) async fn publish(&self, message: &str) -> Result<(), QueueError> {
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

    /// See [`super::ChangeBus::listen`].
    pub(super) async fn listen(&self, mut on: impl FnMut(Heard) -> bool) -> Result<(), QueueError> {
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
