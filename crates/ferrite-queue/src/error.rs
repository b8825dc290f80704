//! Queue errors.

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A task with this id is already in the queue.
    #[error("task {0:?} is already queued")]
    Duplicate(String),
    /// The lease expired and the task was reserved again (or acknowledged,
    /// released or cancelled since): the holder of this lease must stop
    /// acting on the task, someone else owns it now.
    #[error("lease on task {0:?} was lost")]
    LeaseLost(String),
    /// A bad queue URL or an unusable data directory.
    #[error("{0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// Redis did not answer in time: down, unreachable or hung (stopped).
    /// Whether the operation took effect is unknown.
    #[error("Redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// PostgreSQL did not answer an operation of the change bus in time:
    /// down, unreachable or hung. Whether a publish took effect is unknown.
    #[error("PostgreSQL did not answer within {0:?}")]
    PostgresTimeout(std::time::Duration),
    /// A change bus message over the size every transport carries.
    #[error("a message of {bytes} bytes is over the change bus's {max}")]
    TooLarge { bytes: usize, max: usize },
}
