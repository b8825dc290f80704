//! One function call as a fault test makes it, with its status.

use super::{client, TestServer};

/// Call `path` (`/r/app/route`) on `server` with an empty JSON body; its
/// status, and what it answered when that is not 200.
pub fn post(server: &TestServer, path: &str) -> u16 {
    let reply = client()
        .post(format!("{}{path}", server.url))
        .body("{}")
        .send()
        .unwrap();
    let status = reply.status().as_u16();
    if status != 200 {
        println!("{path}: {status} {}", reply.text().unwrap_or_default());
    }
    status
}
