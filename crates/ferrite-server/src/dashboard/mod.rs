//! The dashboard's static shell: HTML, CSS and JavaScript modules embedded
//! in the binary and served at `GET /dashboard` and `GET /dashboard/{file}`.
//!
//! The shell holds no data, so it is served without auth (a browser's
//! navigation cannot carry a bearer token); every figure it shows comes from
//! `/v1` and `/metrics`, which the page fetches with the same auth as any
//! other client. The headers keep the page to itself: a Content Security
//! Policy that allows only its own files (no inline script or style, no
//! other origin), no MIME sniffing, no framing.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrite_model::ApiError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::Error;

/// What the page may load and do: its own files and its own API only.
/// `connect-src 'self'` keeps a token pasted into the page from being sent
/// anywhere but this node.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The whole dashboard; nothing else under `/dashboard/` exists.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("style.css"),
    },
    Asset {
        name: "boot.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("boot.js"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dom.js"),
    },
    Asset {
        name: "prom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("prom.js"),
    },
    Asset {
        name: "overview.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("overview.js"),
    },
    Asset {
        name: "tables.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("tables.js"),
    },
    Asset {
        name: "letters.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("letters.js"),
    },
    Asset {
        name: "schedules.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("schedules.js"),
    },
    Asset {
        name: "keys.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("keys.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("favicon.svg"),
    },
];

/// `/dashboard` and its files, without auth (see the module's docs).
pub fn router<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(file))
}

/// The page.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard",
    responses((status = 200, description = "The dashboard's page", content_type = "text/html"),
        (status = 304, description = "The browser's copy is current")))]
async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// One of the page's files (scripts, style, icon).
#[utoipa::path(get, path = "/dashboard/{file}", tag = "dashboard",
    params(("file" = String, Path, description = "The file's name, e.g. `app.js`")),
    responses((status = 200, description = "The file"),
        (status = 304, description = "The browser's copy is current"),
        (status = 404, description = "No such file", body = crate::api::error::ErrorBody)))]
async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, Error> {
    let index = ASSETS
        .iter()
        .position(|a| a.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no such dashboard file: {name:?}")))?;
    Ok(serve(index, &headers))
}

/// The file `ASSETS[index]` with its headers; 304 when the browser's copy
/// is current. The files change only with the binary, so a browser keeps
/// them but asks each time (`no-cache` with an `ETag`): an upgraded node is
/// never shown with an old page.
fn serve(index: usize, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.get(index) else {
        return Error(ApiError::not_found("no such dashboard file")).into_response();
    };
    let etag = etag(index);
    let fresh = request
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, value);
    }
    response
}

/// A quoted hash of `ASSETS[index]`, computed once per process.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut hasher = DefaultHasher::new();
                a.body.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    });
    tags.get(index).map(String::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag);
        }
        axum::Router::<()>::from(router::<()>())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_file_is_served_with_its_type_and_the_security_headers() {
        for asset in ASSETS {
            let response = get(&format!("/dashboard/{}", asset.name), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            let headers = response.headers();
            assert_eq!(headers[CONTENT_TYPE], asset.content_type);
            assert_eq!(headers[CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[X_FRAME_OPTIONS], "DENY");
            assert_eq!(headers[CACHE_CONTROL], "no-cache");
        }
        let index = get("/dashboard", None).await;
        assert_eq!(index.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    }

    #[tokio::test]
    async fn a_current_copy_is_not_sent_again() {
        let first = get("/dashboard/app.js", None).await;
        let tag = first.headers()[ETAG].to_str().unwrap().to_string();
        let again = get("/dashboard/app.js", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = get("/dashboard/app.js", Some("\"stale\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_files_are_404_json() {
        for path in [
            "/dashboard/nope.js",
            "/dashboard/..%2Fmod.rs",
            "/dashboard/mod.rs",
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        }
    }

    #[test]
    fn no_file_has_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("<style"), "inline style");
    }
}
