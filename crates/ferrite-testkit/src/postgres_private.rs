//! A PostgreSQL cluster of one test's own, for tests that stop and start it
//! (the shared one of `postgres.rs` serves other tests and must stay up).
//!
//! It lives in a temp dir (data directory, unix socket, log), listens on
//! 127.0.0.1 on a free port that it keeps across restarts, trusts the
//! superuser `ferrite`, and runs as the `postgres` system user when the
//! tests run as root (PostgreSQL refuses root), as scripts/postgres.sh does.
//! Dropping it stops it (immediate) and removes the dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `runuser -u postgres --` when running as root.
    as_postgres: bool,
}

impl PrivatePostgres {
    /// initdb and start a new cluster.
    pub fn start() -> PrivatePostgres {
        let bin = server_bin();
        let dir = tempfile::Builder::new()
            .prefix("ferrite-pg-")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run_ok(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown",
            );
        }
        let cluster = PrivatePostgres {
            dir,
            bin,
            port: crate::free_port(),
            as_postgres,
        };
        let data = cluster.data();
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "ferrite", "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"]);
        run_ok(&mut initdb, "initdb");
        cluster.start_again();
        cluster
    }

    /// `DB_URL` of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://ferrite@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Stop the server (`pg_ctl stop -m fast`: clients are disconnected,
    /// the data is consistent) and wait until it is down.
    pub fn stop(&self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"]);
        run_ok(&mut stop, "pg_ctl stop");
    }

    /// Start the server on the same data and port, and wait until it
    /// accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='{}' \
             -c max_connections=100 -c shared_buffers=32MB -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        run_ok(&mut start, "pg_ctl start");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, as the user that may run it.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            false => Command::new(path),
        };
        command.stdin(Stdio::null());
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The newest server the postgresql package installed.
fn server_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql package")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[track_caller]
fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
