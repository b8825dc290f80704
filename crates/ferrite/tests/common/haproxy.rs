//! A real HAProxy (Debian's package) in front of Ferrite nodes, as in
//! production: `/r/` balanced by a consistent hash of the URI (a function
//! keeps landing where it is warm), everything else round robin; nodes are
//! health-checked on `/health`, taken out at the first connection they
//! refuse, and a refused connection is sent elsewhere.
//! Server connections are not reused between requests: a request written
//! to an idle connection of a node that just died could not be retried
//! safely, one that cannot connect can. It says whom it forwards for
//! (`X-Forwarded-For`), as a production proxy should: a node then counts its
//! requests as remote, so `/v1` through it needs the nodes' key.
//! Killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node that refuses a connection of live traffic is taken out at once,
/// not at its next failed health check: with the URI hash, a retry would
/// otherwise go to the same dead node until then.
const OBSERVE: &str = "observe layer4 error-limit 1 on-error mark-down";

pub struct HaProxy {
    pub url: String,
    _dir: tempfile::TempDir,
    child: Child,
}

impl HaProxy {
    /// Balance over the nodes at `backends` (`http://127.0.0.1:port`).
    pub fn start(backends: &[&str]) -> HaProxy {
        let found = Command::new("sh")
            .args(["-c", "command -v haproxy"])
            .output()
            .expect("run sh");
        assert!(
            found.status.success(),
            "haproxy not found: install Debian's haproxy package (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::free_port();
        let servers = |prefix: &str| -> String {
            backends
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let addr = url.trim_start_matches("http://");
                    format!(
                        "    server {prefix}{i} {addr} check inter 300ms fall 1 rise 2 {OBSERVE}\n"
                    )
                })
                .collect()
        };
        let config = format!(
            "global\n    maxconn 4096\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n\
             \x20   retries 3\n    option redispatch 1\n    option httpchk GET /health\n    http-reuse never\n\
             \x20   option forwardfor\n\
             frontend ferrite\n    bind 127.0.0.1:{port}\n\
             \x20   use_backend calls if {{ path_beg /r/ }}\n    default_backend api\n\
             backend calls\n    balance uri\n    hash-type consistent\n{}\
             backend api\n    balance roundrobin\n{}",
            servers("call"),
            servers("api"),
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let proxy = HaProxy {
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            child,
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&self) {
        let client = super::client_with_timeout(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if client
                .get(format!("{}/version", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("haproxy did not answer on {}", self.url);
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
