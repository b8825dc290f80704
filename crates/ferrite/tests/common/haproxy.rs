//! A real HAProxy (Debian's package) in front of Ferrite nodes, configured
//! by scripts/lib.sh's `haproxy_config` as the benches and
//! docs/operating.md have it: `/r/` balanced by a consistent hash of the URI (a function
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
        // The configuration the benches and docs/operating.md use.
        let addrs: Vec<&str> = backends
            .iter()
            .map(|url| url.trim_start_matches("http://"))
            .collect();
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lib.sh");
        let printed = Command::new("bash")
            .arg("-c")
            .arg(format!("source {lib} && haproxy_config \"$@\""))
            .arg("haproxy_config")
            .arg(port.to_string())
            .args(&addrs)
            .output()
            .expect("run scripts/lib.sh");
        assert!(printed.status.success(), "haproxy_config failed");
        let config = printed.stdout;
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
