//! Callbacks: an async call that names a URL in `X-Callback-Url` has its
//! result POSTed there once it has ended, signed with the operator's key.
//!
//! Off until the operator opens it: Ferrite would otherwise POST wherever a
//! caller points it, its own database and the operator's internal network
//! included. `FERRITE_CALLBACK_HOSTS` lists the receivers (`host` or
//! `host:port`) and `FERRITE_CALLBACK_KEY` signs what is sent to them; a call
//! naming another host, or any callback while either is unset, is refused
//! with a 400 before it is queued. Redirects are not followed (they could
//! lead anywhere).
//!
//! Delivery rides on the call's own task: the task is acknowledged only once
//! the receiver answered 2xx or [`ATTEMPTS`] tries have failed, and between
//! tries it goes back to the queue with a backoff, so a slow receiver holds
//! no worker and a node that dies mid-delivery leaves it to another node.
//! Hence at least once: a receiver tells repeats by `X-Call-Id`.
//!
//! What is sent: the call's output as the body, and headers naming the call,
//! its route and how it ended (`X-Function-Status` as an HTTP status, the
//! way OpenFaaS receivers read it). `X-Ferrite-Signature: t=<unix seconds>,
//! v1=<hex>` is HMAC-SHA256 under the key of `<t>.<call id>.<status>.`
//! followed by the body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use ferrite_model::{ApiError, Call, CallStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

/// The request header an async call names its receiver in (OpenFaaS' name).
pub const CALLBACK_HEADER: &str = "x-callback-url";
/// Tries of one callback, the first included.
pub const ATTEMPTS: u32 = 5;
/// How long one try may take, connecting included.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest callback URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// Why a callback setting cannot be used (at start).
#[derive(Debug, thiserror::Error)]
pub enum CallbackConfigError {
    #[error("FERRITE_CALLBACK_HOSTS: `{0}` is not a host or host:port")]
    BadHost(String),
    #[error("cannot make the callbacks' HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why one try failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the receiver answered {0}")]
    Status(reqwest::StatusCode),
    #[error("cannot reach the receiver: {0}")]
    Send(#[from] reqwest::Error),
    #[error("callbacks are off on this node")]
    Off,
}

/// A receiver the operator allows: a host, and its port if one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

impl Allowed {
    fn parse(entry: &str) -> Result<Allowed, CallbackConfigError> {
        let bad = || CallbackConfigError::BadHost(entry.to_string());
        let entry = entry.trim();
        if entry.is_empty() || entry.contains(['/', '@', '?', '#']) {
            return Err(bad());
        }
        let url = Url::parse(&format!("http://{entry}")).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        Ok(Allowed {
            host,
            port: url.port(),
        })
    }

    fn admits(&self, url: &Url) -> bool {
        url.host_str()
            .is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
            && self
                .port
                .is_none_or(|port| url.port_or_known_default() == Some(port))
    }
}

/// This node's callback settings and its client.
pub struct Callbacks {
    allowed: Vec<Allowed>,
    /// None: callbacks are off (no key).
    key: Option<Vec<u8>>,
    /// None: callbacks are off ([`Callbacks::off`]).
    client: Option<reqwest::Client>,
}

impl Callbacks {
    /// Callbacks to `hosts`, signed with `key`; off while either is empty.
    pub fn new(hosts: &[String], key: Option<&str>) -> Result<Callbacks, CallbackConfigError> {
        let allowed = hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| Allowed::parse(h))
            .collect::<Result<Vec<_>, _>>()?;
        let client = reqwest::Client::builder()
            .timeout(TRY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferrite/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Callbacks {
            allowed,
            key: key.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec()),
            client: Some(client),
        })
    }

    /// No callbacks at all: every call that names one is refused.
    pub fn off() -> Callbacks {
        Callbacks {
            allowed: Vec::new(),
            key: None,
            client: None,
        }
    }

    /// The receiver a call's headers name, if any: `Err` (a 400 for its
    /// client) when it is not a URL this node may call.
    pub fn receiver(&self, headers: &HeaderMap) -> Result<Option<Url>, ApiError> {
        let Some(value) = headers.get(CALLBACK_HEADER) else {
            return Ok(None);
        };
        if self.key.is_none() || self.allowed.is_empty() || self.client.is_none() {
            return Err(ApiError::bad_request(
                "callbacks are off on this server: the operator opens them with \
                 FERRITE_CALLBACK_HOSTS and FERRITE_CALLBACK_KEY",
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request("X-Callback-Url is not a URL"))?;
        if value.len() > MAX_URL_BYTES {
            return Err(ApiError::bad_request(format!(
                "X-Callback-Url is longer than {MAX_URL_BYTES} bytes"
            )));
        }
        let url = Url::parse(value)
            .map_err(|e| ApiError::bad_request(format!("X-Callback-Url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return Err(ApiError::bad_request(
                "X-Callback-Url must be an http or https URL without credentials",
            ));
        }
        if !self.allowed.iter().any(|a| a.admits(&url)) {
            return Err(ApiError::bad_request(format!(
                "X-Callback-Url: {} is not among the hosts this server sends callbacks to \
                 (FERRITE_CALLBACK_HOSTS)",
                url.host_str().unwrap_or_default()
            )));
        }
        Ok(Some(url))
    }

    /// One try at telling `url` how `call` ended, with `output` as the body.
    pub async fn deliver(
        &self,
        url: Url,
        call: &Call,
        output: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let status = function_status(call.status);
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = self
            .key
            .as_deref()
            .map(|key| signature(key, at, &call.id, status, &output));
        let client = self.client.as_ref().ok_or(DeliveryError::Off)?;
        let mut request = client
            .post(url)
            .header("content-type", "application/octet-stream")
            .header("x-call-id", &call.id)
            .header("x-function-name", &call.app_name)
            .header("x-function-status", status.to_string())
            .header("x-ferrite-app", &call.app_name)
            .header("x-ferrite-route", &call.path)
            .header("x-ferrite-status", call.status.as_str());
        if let (Some(started), Some(ended)) = (call.started_at, call.completed_at) {
            let seconds = (ended.0 - started.0).max(0) as f64 / 1000.0;
            request = request.header("x-duration-seconds", format!("{seconds:.3}"));
        }
        if let Some(signature) = signature {
            request = request.header("x-ferrite-signature", signature);
        }
        let answer = request.body(output).send().await?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(answer.status()))
        }
    }
}

/// The HTTP status a call's end reads as, for receivers written for
/// OpenFaaS: what its client would have had from a sync call.
fn function_status(status: CallStatus) -> u16 {
    match status {
        CallStatus::Success => 200,
        CallStatus::Timeout => 504,
        CallStatus::Cancelled => 410,
        CallStatus::Error | CallStatus::Queued | CallStatus::Running => 500,
    }
}

/// `t=<at>,v1=<hex HMAC-SHA256(key, "<at>.<call id>.<status>." + body)>`.
fn signature(key: &[u8], at: u64, call_id: &str, status: u16, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{at}.{call_id}.{status}.").as_bytes());
    mac.update(body);
    format!("t={at},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callbacks(hosts: &[&str]) -> Callbacks {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        Callbacks::new(&hosts, Some("a key of thirty-two bytes or more!!")).expect("settings")
    }

    fn named(url: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CALLBACK_HEADER, url.parse().expect("header value"));
        headers
    }

    #[test]
    fn a_call_without_the_header_has_no_receiver() {
        assert_eq!(callbacks(&[]).receiver(&HeaderMap::new()).ok(), Some(None));
        assert_eq!(
            Callbacks::off().receiver(&HeaderMap::new()).ok(),
            Some(None)
        );
        assert!(Callbacks::off().receiver(&named("http://a/")).is_err());
    }

    #[test]
    fn callbacks_are_refused_until_hosts_and_key_are_set() {
        let no_hosts = callbacks(&[]);
        let message = no_hosts
            .receiver(&named("http://127.0.0.1:9/x"))
            .expect_err("refused")
            .message;
        assert!(message.contains("callbacks are off"), "{message}");
        let no_key = Callbacks::new(&["127.0.0.1".into()], None).expect("settings");
        assert!(no_key.receiver(&named("http://127.0.0.1:9/x")).is_err());
    }

    #[test]
    fn only_listed_hosts_and_ports_are_admitted() {
        let c = callbacks(&["127.0.0.1:9000", "Receiver.Example", "[::1]"]);
        for ok in [
            "http://127.0.0.1:9000/done",
            "https://receiver.example/hook?x=1",
            "http://receiver.example:8080/",
            "http://[::1]:7/",
        ] {
            assert!(c.receiver(&named(ok)).is_ok_and(|u| u.is_some()), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:9001/done",
            "http://127.0.0.1/done",
            "http://169.254.169.254/latest",
            "http://receiver.example.evil/",
            "http://user:pw@receiver.example/",
            "file:///etc/passwd",
            "ftp://receiver.example/",
            "not a url",
        ] {
            assert!(c.receiver(&named(refused)).is_err(), "{refused}");
        }
        let long = format!("http://receiver.example/{}", "a".repeat(MAX_URL_BYTES));
        assert!(c.receiver(&named(&long)).is_err());
    }

    #[test]
    fn host_entries_that_are_not_hosts_stop_the_server() {
        for bad in ["http://x", "x/y", "a@b", ":80", "x:port"] {
            assert!(Callbacks::new(&[bad.into()], Some("k")).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signature_covers_time_call_status_and_body() {
        // As a receiver computes it, e.g. Python's
        // hmac.new(b"key", b"10.c1.200.out", hashlib.sha256).hexdigest().
        let one = signature(b"key", 10, "c1", 200, b"out");
        assert_eq!(
            one,
            "t=10,v1=bb19358ef81db92efc75e752cdedf98163fd424997c0213b7eedc0a6d52f7a06"
        );
        for other in [
            signature(b"key2", 10, "c1", 200, b"out"),
            signature(b"key", 11, "c1", 200, b"out"),
            signature(b"key", 10, "c2", 200, b"out"),
            signature(b"key", 10, "c1", 500, b"out"),
            signature(b"key", 10, "c1", 200, b"out!"),
        ] {
            assert_ne!(one, other);
        }
    }
}
