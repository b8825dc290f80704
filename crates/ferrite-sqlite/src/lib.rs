//! How Ferrite opens an embedded SQLite database: the store's and the
//! queue's files are opened the same way, here, so that they cannot drift
//! apart in durability or privacy.
//!
//! - The file (mode 0600) and its directory (0700) are created when missing:
//!   only Ferrite's user may read them.
//! - WAL, so readers are not blocked by the writer.
//! - `synchronous = FULL`, so a commit is on disk before it returns. It is
//!   SQLite's own default, which sqlx leaves alone; it is set here
//!   explicitly so that a different SQLite build cannot weaken it silently.
//! - A busy timeout, so a writer waits for another writer before failing.
//! - Foreign keys enforced.
//!
//! It must not know what the databases hold: the caller brings its
//! migrations and names its setting (`DB_URL`, `queue URL`) for the errors.
#![forbid(unsafe_code)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a writer waits for another writer before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in a pool: SQLite has one writer, so more only serve readers.
const MAX_CONNECTIONS: u32 = 8;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A bad URL, or a file or directory that cannot be created or opened;
    /// the message names the setting.
    #[error("{0}")]
    Config(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] MigrateError),
}

/// Open (creating when missing) the database of a `sqlite:` URL, with the
/// settings the crate doc lists, and bring its schema up to date with
/// `migrations`. `setting` names where the URL came from, for the errors.
pub async fn open(
    url: &str,
    setting: &str,
    migrations: &Migrator,
) -> Result<SqlitePool, OpenError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| {
            OpenError::Config(format!("{setting} {url:?} is not a valid SQLite URL: {e}"))
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    private_file(options.get_filename()).map_err(|e| {
        OpenError::Config(format!(
            "{setting}: cannot create the database file {} in a private directory: {e}",
            options.get_filename().display()
        ))
    })?;
    // No ping of a pooled connection before each use (sqlx's default): a
    // connection to a local file does not go stale as a network one does,
    // and the ping is one more round trip to the connection's thread for
    // every transaction (the async enqueue's profile counted them).
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| {
            OpenError::Config(format!(
                "{setting} {url:?}: cannot open the SQLite database: {e}"
            ))
        })?;
    migrations.run(&pool).await?;
    Ok(pool)
}

/// Create the database file (mode 0600) and its directory (0700) when
/// missing: only Ferrite's user may read them. SQLite gives its `-wal` and
/// `-shm` files the database file's mode. An existing file or directory is
/// left as it is.
fn private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if file.as_os_str() == ":memory:" || file.exists() {
        return Ok(());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The pragmas every pooled connection runs with: WAL, and
    /// `synchronous = FULL` (2) so that a commit survives a power cut; and
    /// a file and directory only their owner may read.
    #[tokio::test]
    async fn connections_are_durable_and_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("data/ferrite.db");
        let url = format!("sqlite://{}", file.display());
        let none = dir.path().join("migrations");
        std::fs::create_dir(&none).expect("migrations dir");
        let migrations = Migrator::new(none.as_path()).await.expect("no migrations");
        let pool = open(&url, "DB_URL", &migrations).await.expect("open");
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(pool.acquire().await.expect("connection"));
        }
        for conn in &mut conns {
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .expect("journal_mode");
            assert_eq!(mode, "wal");
            let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(&mut **conn)
                .await
                .expect("synchronous");
            assert_eq!(sync, 2, "FULL");
        }
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().expect("dir")), 0o700);
    }
}
