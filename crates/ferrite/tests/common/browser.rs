//! A real headless Chromium for the dashboard's tests, driven over
//! WebDriver: Debian's `chromedriver` on a free port, and a session of
//! `chromium` (both from scripts/test.sh's apt line).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// A `chromedriver` process, and the browsers it starts, killed on drop.
pub struct ChromeDriver {
    pub url: String,
    child: Child,
    /// The browsers' profiles and temporary files, removed on drop (a
    /// killed browser leaves them behind).
    profiles: tempfile::TempDir,
}

impl ChromeDriver {
    /// Start `chromedriver` and wait until it takes sessions.
    pub fn start() -> ChromeDriver {
        use std::os::unix::process::CommandExt as _;
        let port = super::free_port();
        let profiles = tempfile::tempdir().expect("temp dir");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // The driver's and the browsers' temporary files go with it.
            .env("TMPDIR", profiles.path())
            // Its own process group, so that drop ends the browsers too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: install chromium and chromium-driver");
        let driver = ChromeDriver {
            url: format!("http://127.0.0.1:{port}"),
            child,
            profiles,
        };
        let status = format!("{}/status", driver.url);
        let client = super::client_with_timeout(Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = client
                .get(&status)
                .send()
                .and_then(|r| r.json::<Value>())
                .is_ok_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not start on port {port}");
    }

    /// A new headless browser at `width`x`height`, with its console log
    /// kept for [`console_errors`].
    pub async fn session(&self, width: u32, height: u32) -> Client {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("temp dir");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // --no-sandbox: tests run as root, where Chromium's sandbox
                // refuses to start; /dev/shm is small in CI machines.
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.keep().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        resize_viewport(&browser, width, height).await;
        browser
    }

    /// chromedriver's address of `browser`'s session, for its endpoints
    /// that WebDriver itself lacks.
    async fn session_url(&self, browser: &Client) -> String {
        let session = browser
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a session id");
        format!("{}/session/{session}", self.url)
    }

    /// Send Chromium's DevTools command `cmd` to `browser` (chromedriver
    /// passes it on).
    pub async fn devtools(&self, browser: &Client, cmd: &str, params: Value) {
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/goog/cdp/execute",
                self.session_url(browser).await
            ))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .expect("chromedriver's DevTools endpoint");
        let status = answer.status();
        assert!(
            status.is_success(),
            "{cmd}: {status} {}",
            answer.text().await.unwrap_or_default()
        );
    }

    /// The browser console's errors since the last look (JavaScript errors,
    /// failed loads, Content-Security-Policy refusals): chromedriver's log
    /// endpoint, which WebDriver itself lacks.
    pub async fn console_errors(&self, browser: &Client) -> Vec<String> {
        let log: Value = reqwest::Client::new()
            .post(format!("{}/se/log", self.session_url(browser).await))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("chromedriver's log")
            .json()
            .await
            .expect("chromedriver's log as JSON");
        log["value"]
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            // Docker adds and removes the host's network interfaces as it
            // starts and removes containers; Chromium then fails the
            // requests in flight. The host's doing, not the page's.
            .filter(|message| !message.contains("net::ERR_NETWORK_CHANGED"))
            .collect()
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group: chromedriver and the browsers it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make the page prefer a dark colour scheme, as a system set to dark would
/// (chromedriver passes the DevTools command on).
pub async fn prefer_dark(driver: &ChromeDriver, browser: &Client) {
    let dark = json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
    driver
        .devtools(browser, "Emulation.setEmulatedMedia", dark)
        .await;
}

/// Make the page's viewport `width`x`height` (the window is larger by
/// what the browser draws around the page).
pub async fn resize_viewport(browser: &Client, width: u32, height: u32) {
    let frame = browser
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .expect("the window's frame");
    let extra = |i: usize| {
        frame[i]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    browser
        .set_window_size(width + extra(0), height + extra(1))
        .await
        .expect("resize the window");
}

/// Where screenshots go: `target/test-output/<name>/`.
pub fn output_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-output")
        .join(name);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Save a PNG of what `browser` shows as `<dir>/<file>`, and print its path.
pub async fn screenshot(browser: &Client, dir: &std::path::Path, file: &str) -> PathBuf {
    let png = browser.screenshot().await.expect("a screenshot");
    let path = dir.join(file);
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    path
}
