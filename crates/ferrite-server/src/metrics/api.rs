//! The management API's requests: a middleware on `/v1` and `/metrics`
//! counting each request by method, route template (axum's `MatchedPath`,
//! never the raw path) and status, and timing it.

use std::time::Instant;

use ::metrics::{counter, histogram};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::{API_DURATION, API_REQUESTS};

/// Count and time one request. Added as a route layer, so only requests
/// that matched a route get here, each with its template.
pub async fn record(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let began = Instant::now();
    let method = method_label(request.method());
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(API_DURATION, "method" => method, "route" => route.clone())
        .record(began.elapsed().as_secs_f64());
    counter!(API_REQUESTS, "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// The method as a label: the standard ones by name, any other as `other`
/// (a client chooses the method, and labels must stay few).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }
}
