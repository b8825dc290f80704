//! A broadcast channel between the nodes that share a Redis queue: Redis
//! pub/sub on `{prefix}:changes`. Delivery is at-most-once to the nodes
//! subscribed at the time, so listeners must assume they missed messages
//! while they were disconnected (see [`ChangeBus::listen`]).

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::Client;

use crate::redis::parse_url;
use crate::QueueError;

pub struct ChangeBus {
    client: Client,
    publisher: ConnectionManager,
    channel: String,
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
    /// queue URL.
    pub async fn open(url: &str) -> Result<ChangeBus, QueueError> {
        let (server, prefix) = parse_url(url)?;
        let shown = ferrite_model::redact::url(url);
        let client = Client::open(server.as_str()).map_err(|e| {
            QueueError::Config(format!("queue URL {shown:?} is not a valid Redis URL: {e}"))
        })?;
        let publisher = ConnectionManager::new(client.clone()).await?;
        Ok(ChangeBus {
            client,
            publisher,
            channel: format!("{prefix}:changes"),
        })
    }

    /// Send `message` to every subscribed node.
    pub async fn publish(&self, message: &str) -> Result<(), QueueError> {
        let mut conn = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Subscribe and hand every message to `on`, until the connection
    /// breaks (`Err`) or `on` returns `false` (`Ok`). `on` first gets
    /// [`Heard::Subscribed`].
    pub async fn listen(&self, mut on: impl FnMut(Heard) -> bool) -> Result<(), QueueError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        if !on(Heard::Subscribed) {
            return Ok(());
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            match message.get_payload::<String>() {
                Ok(text) => {
                    if !on(Heard::Message(text)) {
                        return Ok(());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a change message that is not text"),
            }
        }
        Err(QueueError::Config(format!(
            "the subscription to {} ended",
            self.channel
        )))
    }
}
