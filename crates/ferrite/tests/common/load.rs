//! Steady load for fault tests: client threads that call function URLs in
//! turn until stopped, and record every answer (when, how long, what) so a
//! test can count what the fault cost callers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One call a client made.
#[derive(Debug, Clone)]
pub struct Record {
    /// Which [`Target`] it was made for (its index).
    pub target: usize,
    /// The URL called.
    pub url: String,
    /// When it was sent.
    pub at: Instant,
    /// How long until the answer (or the error).
    pub took: Duration,
    /// The HTTP status, or the client's error when there was no answer.
    pub status: Result<u16, String>,
    /// `Retry-After` of the answer, if any.
    pub retry_after: Option<String>,
    /// The call id of an accepted (202) async call.
    pub call_id: Option<String>,
    /// The start of the body of an error answer (4xx, 5xx): why.
    pub detail: Option<String>,
}

/// Clients calling one function through some nodes.
pub struct Target {
    /// Function URLs (`{node}/r/app/path`), called in turn.
    pub urls: Vec<String>,
    pub clients: usize,
    /// Wait between a client's calls.
    pub pause: Duration,
    /// The body of every call.
    pub body: &'static str,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Load {
    pub fn start(targets: Vec<Target>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (index, target) in targets.into_iter().enumerate() {
            for client_no in 0..target.clients {
                let (stop, records) = (stop.clone(), records.clone());
                let (urls, pause, body) = (target.urls.clone(), target.pause, target.body);
                threads.push(std::thread::spawn(move || {
                    // A connection per call: a pooled connection that a dying
                    // peer closes while a request is being written would
                    // count a failure of the client, not of the nodes.
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(60))
                        .pool_max_idle_per_host(0)
                        .build()
                        .unwrap();
                    let mut turn = client_no;
                    while !stop.load(Ordering::SeqCst) {
                        let url = &urls[turn % urls.len()];
                        turn += 1;
                        let at = Instant::now();
                        let record = match client.post(url).body(body).send() {
                            Ok(reply) => {
                                let status = reply.status().as_u16();
                                let retry_after = reply
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                // Read to the end, so the call is whole.
                                let body = reply.bytes().unwrap_or_default();
                                let call_id = match status {
                                    202 => serde_json::from_slice::<Value>(&body)
                                        .ok()
                                        .and_then(|v| v["call_id"].as_str().map(str::to_string)),
                                    _ => None,
                                };
                                let detail = (status >= 400).then(|| {
                                    String::from_utf8_lossy(&body[..body.len().min(200)])
                                        .into_owned()
                                });
                                Record {
                                    target: index,
                                    url: url.clone(),
                                    at,
                                    took: at.elapsed(),
                                    status: Ok(status),
                                    retry_after,
                                    call_id,
                                    detail,
                                }
                            }
                            Err(e) => Record {
                                target: index,
                                url: url.clone(),
                                at,
                                took: at.elapsed(),
                                status: Err(format!("{e:?}")),
                                retry_after: None,
                                call_id: None,
                                detail: None,
                            },
                        };
                        records.lock().unwrap().push(record);
                        std::thread::sleep(pause);
                    }
                }));
            }
        }
        Load {
            stop,
            threads,
            records,
        }
    }

    /// Calls answered so far with `status`, for `target`.
    pub fn count(&self, target: usize, status: u16) -> usize {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.target == target && r.status == Ok(status))
            .count()
    }

    /// Stop the clients (each finishes its call) and return every record.
    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let records = self.records.lock().unwrap();
        records.clone()
    }
}
