//! A real Prometheus (Debian's package, which scripts/test.sh installs)
//! scraping Ferrite nodes every second: its own configuration and data
//! directory, a free loopback port, and its HTTP query API. Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Prometheus {
    pub url: String,
    /// Configuration, token, data and log.
    dir: tempfile::TempDir,
    child: Child,
}

impl Prometheus {
    /// Scrape the `/metrics` of `targets` (`127.0.0.1:port`) every second as
    /// job `ferrite`; with `token_file`, through `authorization:
    /// credentials_file:` as deploy/prometheus/prometheus.yml does.
    pub fn start(targets: &[&str], token_file: Option<&Path>) -> Prometheus {
        let found = Command::new("sh")
            .args(["-c", "command -v prometheus"])
            .output()
            .expect("run sh");
        assert!(
            found.status.success(),
            "prometheus not found: install Debian's prometheus package (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let authorization = token_file.map_or(String::new(), |file| {
            format!(
                "    authorization:\n      type: Bearer\n      credentials_file: '{}'\n",
                file.display()
            )
        });
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: ferrite\n{authorization}    static_configs:\n      \
             - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = super::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&mut self) {
        let client = super::client_with_timeout(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            if client
                .get(format!("{}/-/ready", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready:\n{}", self.log());
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The answer of `/api/v1/query` for `promql`, evaluated now, whatever
    /// its status (a query Prometheus cannot parse is a 400 with a body).
    pub fn query(&self, promql: &str) -> Value {
        let reply = super::client()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .unwrap_or_else(|e| panic!("query {promql:?}: {e}"));
        let body = reply.text().expect("query answer");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {promql:?}: {e}: {body}"))
    }

    /// The samples of an instant vector `promql` must evaluate to.
    #[track_caller]
    pub fn samples(&self, promql: &str) -> Vec<Value> {
        let answer = self.query(promql);
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{promql}: no result list: {answer}"))
            .clone()
    }

    /// The value of the one sample `promql` evaluates to, if it has exactly one.
    pub fn value(&self, promql: &str) -> Option<f64> {
        match self.samples(promql).as_slice() {
            [sample] => sample["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Wait until `promql` evaluates to the one value `expected`: at most a
    /// few scrapes after the fact, since Prometheus scrapes every second.
    #[track_caller]
    pub fn wait_for(&self, promql: &str, expected: f64) {
        let seen = super::eventually(Duration::from_secs(30), || {
            self.value(promql) == Some(expected)
        });
        assert!(
            seen,
            "{promql} is {:?}, not {expected}; targets: {}\n{}",
            self.samples(promql),
            self.targets(),
            self.log()
        );
    }

    /// The scrape targets and their health, for messages.
    pub fn targets(&self) -> String {
        super::client()
            .get(format!("{}/api/v1/targets", self.url))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_else(|e| e.to_string())
    }

    /// The names of every metric Prometheus holds.
    pub fn metric_names(&self) -> Vec<String> {
        let answer: Value = super::client()
            .get(format!("{}/api/v1/label/__name__/values", self.url))
            .send()
            .and_then(|r| r.json())
            .expect("metric names");
        answer["data"]
            .as_array()
            .expect("a list of names")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
