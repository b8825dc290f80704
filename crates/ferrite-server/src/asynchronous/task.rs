//! An async call as it waits in the queue: the client's request, so that a
//! worker on any node can run it later exactly as it came in.
//!
//! Layout: a 4-byte big-endian length, a JSON header of that length (ids,
//! method, URI, headers), then the body as raw bytes (a JSON array of numbers
//! would triple its size).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::executor::CallRequest;

/// Which route a queued call is for, with its request.
#[derive(Debug, Clone)]
pub struct QueuedCall {
    pub app: String,
    pub path: String,
    pub request: CallRequest,
}

#[derive(Serialize, Deserialize)]
struct Header {
    app: String,
    path: String,
    call_id: String,
    method: String,
    uri: String,
    request_url: String,
    /// Absent in calls queued before it existed, and when the task is sent
    /// the route's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_path: Option<String>,
    /// Name and value pairs, in order; values that are not text are left out
    /// (the function contract passes headers as text).
    headers: Vec<(String, String)>,
}

/// A payload that is not one of ours (corrupted, or from another version).
#[derive(Debug, thiserror::Error)]
#[error("queued call cannot be read: {0}")]
pub struct Undecodable(String);

impl QueuedCall {
    pub fn encode(&self) -> Vec<u8> {
        let request = &self.request;
        let header = Header {
            app: self.app.clone(),
            path: self.path.clone(),
            call_id: request.call_id.clone(),
            method: request.method.to_string(),
            uri: request.uri.to_string(),
            request_url: request.request_url.clone(),
            task_path: request.task_path.clone(),
            headers: request
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
                .collect(),
        };
        // Serializing strings and string pairs cannot fail.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(4 + json.len() + request.body.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&request.body);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<QueuedCall, Undecodable> {
        let bad = |what: &str| Undecodable(what.to_string());
        let len_bytes: [u8; 4] = payload
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("too short"))?;
        let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| bad("length"))?;
        let json = payload
            .get(4..4 + len)
            .ok_or_else(|| bad("header cut short"))?;
        let header: Header =
            serde_json::from_slice(json).map_err(|e| Undecodable(e.to_string()))?;
        let mut headers = HeaderMap::with_capacity(header.headers.len());
        for (name, value) in header.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
        Ok(QueuedCall {
            app: header.app,
            path: header.path,
            request: CallRequest {
                call_id: header.call_id,
                method: Method::from_bytes(header.method.as_bytes()).map_err(|_| bad("method"))?,
                uri: header
                    .uri
                    .parse::<Uri>()
                    .map_err(|e| Undecodable(format!("uri: {e}")))?,
                request_url: header.request_url,
                task_path: header.task_path,
                headers,
                body: Bytes::copy_from_slice(&payload[4 + len..]),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let call = QueuedCall {
            app: "myapp".into(),
            path: "/a/b".into(),
            request: CallRequest {
                call_id: "0193-abc".into(),
                method: Method::POST,
                uri: "/r/myapp/a/b?x=1".parse().unwrap(),
                request_url: "http://h/r/myapp/a/b?x=1".into(),
                task_path: Some("/b".into()),
                headers,
                body: Bytes::from_static(b"\x00\xffbinary"),
            },
        };
        let back = QueuedCall::decode(&call.encode()).unwrap();
        assert_eq!(back.app, "myapp");
        assert_eq!(back.path, "/a/b");
        assert_eq!(back.request.call_id, "0193-abc");
        assert_eq!(back.request.method, Method::POST);
        assert_eq!(back.request.uri, "/r/myapp/a/b?x=1");
        assert_eq!(back.request.task_path.as_deref(), Some("/b"));
        assert_eq!(back.request.body, &b"\x00\xffbinary"[..]);
        let values: Vec<_> = back.request.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn garbage_is_an_error() {
        for payload in [
            &b""[..],
            b"\x00\x00\x00\x09{}",
            b"\x00\x00\x00\x02{]",
            b"abcd",
        ] {
            assert!(QueuedCall::decode(payload).is_err(), "{payload:?}");
        }
    }
}
