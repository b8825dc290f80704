//! How a failed request reads: one line, with the server's own message when
//! there is an answer and the innermost cause when there is none.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// How much of a body that is not the API's JSON error is worth showing.
const BODY_EXCERPT_CHARS: usize = 200;

/// A failed call, worded so that `error: {e}` reads as one complete line.
#[derive(Debug)]
pub enum ClientError {
    /// No HTTP answer: refused, unresolvable host, TLS failure, connect timeout.
    Unreachable { url: String, reason: String },
    /// The server accepted the connection but did not answer within `after`.
    TimedOut { url: String, after: Duration },
    /// A non-2xx answer; `message` is the server's, or an excerpt of the
    /// body. `path` is what was asked for: the server's own words name no
    /// app, route or call (IronFunctions' texts, `App not found`), the path
    /// does.
    Status {
        status: StatusCode,
        message: String,
        path: String,
    },
    /// A 2xx answer that is not the JSON the API promises.
    BadAnswer { url: String, reason: String },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable { url, reason } => {
                write!(f, "cannot reach the server at {url}: {reason}")
            }
            ClientError::TimedOut { url, after } => write!(
                f,
                "the server at {url} did not answer within {}s",
                after.as_secs()
            ),
            ClientError::Status {
                status,
                message,
                path,
            } if message.is_empty() => write!(f, "{status} ({path})"),
            ClientError::Status {
                status,
                message,
                path,
            } => write!(f, "{status}: {message} ({path})"),
            ClientError::BadAnswer { url, reason } => {
                write!(f, "unexpected answer from the server at {url}: {reason}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// The server's `{"error":{"message":...}}`, or the start of whatever it sent.
pub(super) fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
    {
        return message.to_string();
    }
    excerpt(String::from_utf8_lossy(body).trim())
}

/// At most [`BODY_EXCERPT_CHARS`] characters, on one line.
pub(super) fn excerpt(text: &str) -> String {
    crate::output::one_line(text, BODY_EXCERPT_CHARS)
}

/// The innermost cause of a transport error: "Connection refused (os error
/// 111)" says more than reqwest's "error sending request for url (...)".
pub(super) fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"App not found"}}"#),
            "App not found"
        );
        assert_eq!(error_message(b"<html>\nbad</html>"), "<html> bad</html>");
        assert_eq!(error_message(&[b'x'; 300]).len(), 203);
        let e = ClientError::Status {
            status: StatusCode::NOT_FOUND,
            message: "App not found".into(),
            path: "/v1/apps/nope".into(),
        };
        assert_eq!(
            e.to_string(),
            "404 Not Found: App not found (/v1/apps/nope)"
        );
    }
}
