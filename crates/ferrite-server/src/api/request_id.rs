//! Request ids: every answer carries `Fn-Request-Id`, and every log line
//! written while a request is served carries it as `request_id` (the span
//! [`span`] opens around the request).
//!
//! A client's own id (`Fn-Request-Id`, else `X-Request-Id`) is kept when it
//! is 1 to 128 characters of `[A-Za-z0-9._:-]`, so that a proxy's or a
//! caller's id ties its logs to ours; anything else is replaced by a new
//! UUIDv7, never echoed: a header that ends up in log lines and answers must
//! not carry line breaks, quotes or megabytes of a client's choosing.
//!
//! tower-http's `SetRequestId` keeps whatever id a request brings, and its
//! `PropagateRequestId` keeps an id a response already has (a function may
//! set any header it likes), so the id is chosen and set here instead.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

/// The header that carries the id, in requests and in every answer.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("fn-request-id");
/// The id header of proxies and other tools, honoured when ours is absent.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest id taken from a client.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the request being served (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ever made from ASCII (a valid client id or a UUID).
        self.0.to_str().unwrap_or_default()
    }
}

/// Whether a client's id may be kept as it is.
pub fn is_valid(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The client's valid id, else a new one.
fn choose(headers: &HeaderMap) -> RequestId {
    [&REQUEST_ID_HEADER, &X_REQUEST_ID]
        .into_iter()
        .filter_map(|name| headers.get(name))
        .find(|value| is_valid(value.as_bytes()))
        .cloned()
        .map(RequestId)
        .unwrap_or_else(|| {
            let fresh = uuid::Uuid::now_v7().to_string();
            // A UUID is always a valid header value.
            RequestId(HeaderValue::from_str(&fresh).unwrap_or(HeaderValue::from_static("-")))
        })
}

/// Middleware, outermost: give the request its id (an extension the span
/// reads), and put the id on the answer whatever made it.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = choose(request.headers());
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, id.0);
    response
}

/// The span of one request (tower-http's `TraceLayer` opens it): its id,
/// method and path, and the call id once a call has one. The query string
/// is left out: it may hold a function's parameters, tokens among them.
/// At INFO, so that its fields reach every line the default filter lets through.
pub fn span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", RequestId::as_str);
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        call_id = tracing::field::Empty,
    )
}

/// Name the call this request made, on every later line of the request.
pub fn record_call_id(call_id: &str) {
    Span::current().record("call_id", tracing::field::display(call_id));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn valid_ids_are_short_and_plain() {
        assert!(is_valid(b"abc-123"));
        assert!(is_valid(b"a.b_c:d-E9"));
        assert!(is_valid("x".repeat(MAX_REQUEST_ID_LEN).as_bytes()));
        assert!(!is_valid(b""));
        assert!(!is_valid("x".repeat(MAX_REQUEST_ID_LEN + 1).as_bytes()));
        for bad in ["a b", "a\"b", "a\\b", "a/b", "a=b", "é", "a\tb", "{x}"] {
            assert!(!is_valid(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn a_valid_client_id_is_kept_ours_first() {
        let both = headers(&[("fn-request-id", "ours-1"), ("x-request-id", "proxy-2")]);
        assert_eq!(choose(&both).as_str(), "ours-1");
        let proxy = headers(&[("x-request-id", "proxy-2")]);
        assert_eq!(choose(&proxy).as_str(), "proxy-2");
        // An invalid id of ours gives way to a valid one of the proxy's.
        let mixed = headers(&[("fn-request-id", "no spaces"), ("x-request-id", "proxy-2")]);
        assert_eq!(choose(&mixed).as_str(), "proxy-2");
    }

    #[test]
    fn an_invalid_or_missing_id_is_replaced_by_a_uuid_v7() {
        for given in [
            headers(&[]),
            headers(&[("fn-request-id", "a\"b")]),
            headers(&[("x-request-id", &"y".repeat(200))]),
        ] {
            let id = choose(&given);
            let uuid = uuid::Uuid::parse_str(id.as_str()).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7);
        }
        assert_ne!(
            choose(&headers(&[])).as_str(),
            choose(&headers(&[])).as_str()
        );
    }
}
