//! A real PostgreSQL for tests: one throwaway cluster per test process
//! (`scripts/postgres.sh run`, in a temp dir, on a free port), one fresh
//! database per test, so tests run in parallel on the one cluster.
//!
//! The script serves until its standard input closes; this process holds
//! the pipe's other end in a static, and the kernel closes it when the
//! process ends, however it ends, so the script then stops the cluster and
//! removes its directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The running cluster of this process.
struct Cluster {
    /// `postgres://ferrite@127.0.0.1:PORT`, without a database.
    base_url: String,
    /// `scripts/postgres.sh run`, whose standard input (our end of the pipe)
    /// stays open as long as this process lives.
    _script: Child,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh");
        let mut child = Command::new("bash")
            .arg(&script)
            .arg("run")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("script stdout"))
            .read_line(&mut line)
            .expect("read the script's output");
        let base_url = line
            .trim()
            .strip_prefix("POSTGRES_URL=")
            .and_then(|url| url.strip_suffix("/postgres"))
            .unwrap_or_else(|| {
                panic!("scripts/postgres.sh did not start PostgreSQL (its errors are above)")
            })
            .to_string();
        Cluster {
            base_url,
            _script: child,
        }
    })
}

/// The cluster's URL without a database, `postgres://ferrite@127.0.0.1:PORT`
/// (the superuser `ferrite`, trusted); the cluster starts on first use.
pub fn base_url() -> &'static str {
    &cluster().base_url
}

/// A name not used before by this process: `{prefix}_{pid}_{n}`.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run SQL as the cluster's superuser.
pub fn psql(sql: &str) {
    let status = Command::new("psql")
        .arg(format!("{}/postgres", base_url()))
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .status()
        .expect("run psql");
    assert!(status.success(), "psql failed: {sql}");
}

/// The URL of a new, empty database: `postgres://ferrite@127.0.0.1:PORT/NAME`.
pub fn fresh_database() -> String {
    let name = unique("ferrite");
    psql(&format!("CREATE DATABASE {name}"));
    format!("{}/{name}", base_url())
}

/// A new, empty database owned by a new role that must log in with
/// `password` (a member of `password_required`: scripts/postgres.sh), and
/// its URL without the password: `postgres://ROLE@127.0.0.1:PORT/DB`.
/// `password` must not hold a single quote.
pub fn database_with_password(password: &str) -> String {
    let role = unique("ferrite_pw");
    psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE password_required"
    ));
    psql(&format!("CREATE DATABASE {role} OWNER {role}"));
    let host = base_url()
        .rsplit_once('@')
        .map(|(_, host)| host.to_string())
        .expect("the cluster URL has a host");
    format!("postgres://{role}@{host}/{role}")
}
