//! `/function/{name}[/{path}]` and `/async-function/{name}[/{path}]`:
//! calls of a function's route, through the same admission, queue and
//! executor as `/r` (its `jwt_key`, its app's limits, the call body cap).

use axum::extract::{OriginalUri, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::functions::Name;
use super::mapping::ROUTE_PATH;
use crate::api::extract::Param;
use crate::api::invoke::{call_route, Mode, CALL_ID_HEADER};
use crate::api::AppState;

/// The header OpenFaaS' gateway names a queued call's id with.
const X_CALL_ID: &str = "x-call-id";

/// A sync call: the function's answer as it gave it. Every sub-path goes
/// to the function's one route; the function reads the whole URL in
/// `Fn-Request-Url`.
pub async fn sync(
    State(state): State<AppState>,
    Param(Name { name }): Param<Name>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let task_path = task_path(&uri);
    call_route(
        &state,
        &name,
        ROUTE_PATH,
        task_path,
        uri,
        request,
        Mode::AsRoute,
    )
    .await
}

/// An async call: queued with its headers as they came (`X-Callback-Url`
/// among them), 202 with the call's id in `X-Call-Id` as OpenFaaS answers
/// it (and in `Fn-Call-Id` and the JSON body, as `/r` answers it).
pub async fn queued(
    State(state): State<AppState>,
    Param(Name { name }): Param<Name>,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> Response {
    let task_path = task_path(&uri);
    let mut response = call_route(
        &state,
        &name,
        ROUTE_PATH,
        task_path,
        uri,
        request,
        Mode::Queued,
    )
    .await;
    if response.status() == StatusCode::ACCEPTED {
        if let Some(id) = response.headers().get(CALL_ID_HEADER).cloned() {
            response.headers_mut().insert(X_CALL_ID, id);
        }
    }
    response
}

/// What follows `/function/NAME` (or `/async-function/NAME`) in `uri`'s
/// path, as it came (still percent-encoded): the path OpenFaaS' gateway
/// sends the function, `/` when nothing follows.
fn task_path(uri: &Uri) -> Option<String> {
    let rest = uri.path().splitn(4, '/').nth(3).unwrap_or("");
    Some(format!("/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_gets_what_follows_the_name() {
        let cases = [
            ("/function/hello", "/"),
            ("/function/hello/", "/"),
            ("/function/hello/a/b?x=1", "/a/b"),
            ("/async-function/hello/a%20b/", "/a%20b/"),
        ];
        for (uri, want) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(task_path(&uri).as_deref(), Some(want), "{uri}");
        }
    }
}
