//! A real `redis-server` for tests: a free port, a temp dir, append-only with
//! an fsync per write (so what it acknowledged survives a kill) unless asked
//! to keep nothing, killed on drop. Restartable on the same port and data, and can be hung (SIGSTOP:
//! its connections stay open and nothing answers) and resumed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    /// `requirepass`: clients must AUTH with it.
    password: Option<String>,
    /// Append-only with an fsync per write; no persistence at all otherwise.
    aof: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A server whose data survives a kill.
    pub fn start() -> RedisServer {
        Self::start_inner(None, true)
    }

    /// A server that keeps nothing on disk: quicker, for tests that never
    /// restart it.
    pub fn start_in_memory() -> RedisServer {
        Self::start_inner(None, false)
    }

    /// A server that answers only clients that AUTH with `password`.
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_inner(Some(password.to_string()), true)
    }

    fn start_inner(password: Option<String>, aof: bool) -> RedisServer {
        let which = Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .output()
            .expect("run sh");
        assert!(
            which.status.success(),
            "redis-server not found: install Debian's redis-server package (scripts/test.sh does)"
        );
        let mut server = RedisServer {
            port: crate::free_port(),
            password,
            aof,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.spawn();
        server
    }

    /// A queue URL of this server with key prefix `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/{prefix}", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path());
        if self.aof {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        assert!(
            ping(self.port, self.password.as_deref(), Duration::from_secs(10)),
            "redis-server did not answer on port {}",
            self.port
        );
    }

    /// SIGKILL the server, wait `down`, and start it again on the same data.
    pub fn kill_and_restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        self.restart();
    }

    /// SIGKILL the server (its data stays for [`RedisServer::restart`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a killed server again on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server still running");
        self.spawn();
    }

    /// Hang the server (SIGSTOP) until [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Resume a server hung by [`RedisServer::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} redis-server");
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped server still dies of SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a server on `port` answers PING (after AUTH with `password`)
/// within `within`.
fn ping(port: u16, password: Option<&str>, within: Duration) -> bool {
    let (request, expected) = match password {
        Some(password) => (
            format!("AUTH {password}\r\nPING\r\n"),
            "+OK\r\n+PONG".to_string(),
        ),
        None => ("PING\r\n".to_string(), "+PONG".to_string()),
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = vec![0u8; expected.len()];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && reply == expected.as_bytes()
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
