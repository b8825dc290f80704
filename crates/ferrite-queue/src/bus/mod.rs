//! A broadcast channel between the nodes of one installation, so that a
//! change made through one node reaches the others. One bus, two transports,
//! chosen by the URL it is opened with:
//!
//! - [`redis`]: pub/sub on the queue's Redis server (`redis://host:port/prefix`);
//! - [`postgres`]: LISTEN/NOTIFY on the store's PostgreSQL database
//!   (`postgres://...`), for installations without Redis.
//!
//! Both keep the same promises. Delivery is at-most-once to the nodes
//! subscribed at the time, so a listener is told [`Heard::Subscribed`] on
//! every (re)subscription and must assume it missed messages meanwhile.
//! Every operation is bounded by the timeout the bus was opened with. A hung
//! server (stopped, not down) keeps a subscriber's connection open and
//! silent, which looks like a quiet bus; so a subscription checks every
//! [`PING_EVERY`] that its server still answers on that very connection, and
//! counts as broken when the answer is late. A message is at most
//! [`MAX_MESSAGE_BYTES`], PostgreSQL's bound on a NOTIFY payload, on both
//! transports, so that what one carries the other carries too.
//!
//! It lives beside the queue because it is the other thing nodes exchange
//! through a shared server; it knows nothing of what the messages say.

pub(crate) mod postgres;
mod redis;

use std::time::Duration;

use crate::QueueError;

/// How often a subscription checks that the server still answers.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// The largest message, in bytes: PostgreSQL refuses a NOTIFY payload of
/// 8000 bytes or more.
pub const MAX_MESSAGE_BYTES: usize = 7999;

/// The change bus of one installation, over Redis or PostgreSQL.
pub struct ChangeBus {
    transport: Transport,
}

enum Transport {
    Redis(redis::RedisBus),
    /// Boxed: its connection options make it the larger by far.
    Postgres(Box<postgres::PostgresBus>),
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
    /// The bus of a `redis://host:port/prefix` queue URL (its server and
    /// prefix) or of a `postgres://` (or `postgresql://`) database URL (its
    /// database and schema); every operation gives up after `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> Result<ChangeBus, QueueError> {
        let transport = match url.split(':').next().unwrap_or_default() {
            "redis" => Transport::Redis(redis::RedisBus::open(url, timeout).await?),
            "postgres" | "postgresql" => {
                Transport::Postgres(Box::new(postgres::PostgresBus::open(url, timeout).await?))
            }
            scheme => {
                return Err(QueueError::Config(format!(
                    "{:?}: no change bus over {scheme:?}; use redis://host:port/prefix or postgres://...",
                    ferrite_model::redact::url(url)
                )))
            }
        };
        Ok(ChangeBus { transport })
    }

    /// The server the bus runs through, for messages to an operator.
    pub fn server(&self) -> &'static str {
        match self.transport {
            Transport::Redis(_) => "Redis",
            Transport::Postgres(_) => "PostgreSQL",
        }
    }

    /// Send `message` to every subscribed node. A message over
    /// [`MAX_MESSAGE_BYTES`] is refused ([`QueueError::TooLarge`]) before
    /// anything is sent. After a timeout the message may still be delivered
    /// late.
    pub async fn publish(&self, message: &str) -> Result<(), QueueError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge {
                bytes: message.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        match &self.transport {
            Transport::Redis(bus) => bus.publish(message).await,
            Transport::Postgres(bus) => bus.publish(message).await,
        }
    }

    /// Subscribe and hand every message to `on`, until the connection
    /// breaks or stops answering (`Err`) or `on` returns `false` (`Ok`).
    /// `on` first gets [`Heard::Subscribed`]; each call is a new
    /// subscription, so a caller that listens again after an `Err` is told
    /// `Subscribed` again.
    pub async fn listen(&self, on: impl FnMut(Heard) -> bool) -> Result<(), QueueError> {
        match &self.transport {
            Transport::Redis(bus) => bus.listen(on).await,
            Transport::Postgres(bus) => bus.listen(on).await,
        }
    }
}
